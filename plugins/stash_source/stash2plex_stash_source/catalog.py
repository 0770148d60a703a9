"""The scene catalog: the local index as core's ``SceneCatalog`` (for gap detection and
push sync), read in batches from SQLite in a worker thread, never a request to Stash."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

from stash2plex import CatalogScene

from .index import CatalogRow, IndexedScene, SceneIndex
from .matcher import RATING_KEY_PREFIX, scene_id_from_key
from .metadata import stem

#: Scenes per batch: one SQLite statement and one thread hop each; 100k scenes are 50.
BATCH = 2000


def utc(stamp: str | None) -> datetime | None:
    """Stash's RFC 3339 ``updated_at`` (in the Stash server's offset) as an aware UTC
    datetime; None when absent or unreadable. A stamp without an offset is taken as UTC."""
    if not stamp:
        return None
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _title(scene_id: int, title: str | None, basename: str | None) -> str:
    # What Stash shows for an untitled scene: its primary file's name.
    return title or (stem(basename) if basename else "") or f"Scene {scene_id}"


def _record(row: CatalogRow) -> CatalogScene:
    sid, title, updated_at, basename, paths = row
    return CatalogScene(
        rating_key=f"{RATING_KEY_PREFIX}{sid}",
        title=_title(sid, title, basename),
        files=tuple(paths),
        updated_at=utc(updated_at),
    )


class StashCatalog:
    """:class:`stash2plex.SceneCatalog` over a :class:`SceneIndex`.

    ``ready`` is the ``ready`` callable's answer: the source decides whether its index is
    complete and belongs to the Stash it is configured for.
    """

    def __init__(self, index: SceneIndex, ready: Callable[[], bool]) -> None:
        self._index = index
        self._ready = ready

    @property
    def ready(self) -> bool:
        return self._ready()

    async def scenes(self) -> AsyncIterator[CatalogScene]:
        """Every scene by id. Each batch is read and turned into records in a worker
        thread, so the event loop only hands them out."""
        pages = self._index.catalog_pages(BATCH)
        try:
            while True:
                batch = await asyncio.to_thread(_next_batch, pages)
                if batch is None:
                    return
                for scene in batch:
                    yield scene
        finally:
            pages.close()

    async def scene(self, rating_key: str) -> CatalogScene | None:
        scene_id = scene_id_from_key(rating_key)
        if scene_id is None:
            return None
        # One indexed statement: cheaper in the loop than a thread hop.
        found = self._index.get(scene_id)
        return None if found is None else from_indexed(found)


def _next_batch(pages: Iterator[list[CatalogRow]]) -> list[CatalogScene] | None:
    rows = next(pages, None)
    return None if rows is None else [_record(row) for row in rows]


def from_indexed(scene: IndexedScene) -> CatalogScene:
    return _record(
        (
            scene.id,
            scene.title,
            scene.updated_at,
            scene.primary_basename,
            [f.path for f in scene.files],
        )
    )
