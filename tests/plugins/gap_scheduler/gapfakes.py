"""In-memory Plex, catalog and push sync satisfying core's protocols, for gap detection's
tests (the loopback tests use the real plugins and fakes)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from stash2plex import (
    CatalogScene,
    PlexAgentKind,
    PlexEdit,
    PlexImageKind,
    PlexItem,
    PlexSection,
    PlexState,
    PlexTransient,
    SyncRecord,
    hookimpl,
)

OURS = PlexAgentKind.OURS


def at(day: int) -> datetime:
    return datetime(2026, 1, day, 12, 0, tzinfo=UTC)


def item(key: str, *files: str, agent: PlexAgentKind = OURS, section: str = "1", **kw: Any):
    return PlexItem(
        rating_key=key,
        section_key=section,
        title=kw.pop("title", f"item {key}"),
        files=files,
        agent=agent,
        **kw,
    )


def scene(n: int, *files: str, updated: datetime | None = None, title: str = "") -> CatalogScene:
    return CatalogScene(
        rating_key=f"stash-{n}", title=title or f"scene {n}", files=files, updated_at=updated
    )


class MemoryPlex:
    """PlexLibrary in memory; ``fail_after`` makes read_items raise midway."""

    def __init__(self, items: list[PlexItem], sections: list[PlexSection] | None = None) -> None:
        self.items = items
        self.sections_ = sections or [
            PlexSection(key="1", title="Movies", type="movie", locations=("/media/videos",))
        ]
        self.fail_after: int | None = None
        self.reads = 0

    def state(self) -> PlexState:
        return PlexState(configured=True, reachable=True, items=len(self.items))

    async def sections(self) -> Sequence[PlexSection]:
        return self.sections_

    async def read_items(self) -> AsyncIterator[PlexItem]:
        self.reads += 1
        for n, one in enumerate(self.items):
            if self.fail_after is not None and n >= self.fail_after:
                raise PlexTransient("Plex went away", status=503)
            yield one

    async def find_by_path(self, path: str) -> PlexItem | None:
        return None

    async def find_by_guid(self, guid: str) -> Sequence[PlexItem]:
        return []

    async def edit(self, rating_key: str, edit: PlexEdit) -> None:
        return None

    async def refresh(self, rating_key: str) -> None:
        return None

    async def upload_image(self, rating_key: str, kind: PlexImageKind, data: bytes) -> None:
        return None


class MemoryCatalog:
    def __init__(self, scenes: list[CatalogScene], ready: bool = True) -> None:
        self.scenes_ = scenes
        self.ready = ready

    async def scenes(self) -> AsyncIterator[CatalogScene]:
        for one in self.scenes_:
            yield one

    async def scene(self, rating_key: str) -> CatalogScene | None:
        return next((s for s in self.scenes_ if s.rating_key == rating_key), None)


class MemoryPush:
    def __init__(self, pushed: Mapping[str, datetime]) -> None:
        self.ledger = {
            k: SyncRecord(rating_key=k, plex_rating_key="?", pushed_at=t, digest="d")
            for k, t in pushed.items()
        }
        self.queued: list[tuple[list[str], str]] = []

    async def records(self) -> Mapping[str, SyncRecord]:
        return self.ledger

    async def enqueue(self, rating_keys: Sequence[str], reason: str) -> int:
        self.queued.append((list(rating_keys), reason))
        return len(rating_keys)


class Sides:
    """The hooks of the two sides (and push sync, when given), plus an on_gap listener."""

    def __init__(self, plex: Any = None, catalog: Any = None, push: Any = None) -> None:
        self.plex, self.catalog, self.push = plex, catalog, push
        self.broadcast: list[Any] = []

    @hookimpl
    def plex_library(self):
        return self.plex

    @hookimpl
    def scene_catalog(self):
        return self.catalog

    @hookimpl
    def push_sync(self):
        return self.push

    @hookimpl
    def on_gap(self, gap):
        self.broadcast.append(gap)


RULES = [{"name": "videos", "plex_prefix": "/media/videos", "stash_prefix": "/data/videos"}]
