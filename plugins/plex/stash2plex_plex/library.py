"""The :class:`~stash2plex.PlexLibrary` the ``plex_library`` hook hands out.

Reads are paged raw listings parsed for the item record only; the item index answers
lookups locally; a write is one request (an edit with lists needs one read of the item
first: its complete current tags, which listings truncate). Written items are re-read in
a batch shortly after, so the index shows the new title and ``updatedAt``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import attrs
from plexapi import utils as plex_utils
from plexapi.server import PlexServer

from stash2plex import (
    PlexEdit,
    PlexError,
    PlexImageKind,
    PlexItem,
    PlexPermanent,
    PlexSection,
    PlexState,
    PlexTransient,
    gc_paused,
)
from stash2plex.logs import get_logger

from .config import PlexConfig
from .connection import PlexConnection
from .index import ItemIndex, parse_items, parse_sections

log = get_logger("stash2plex.plex")
_T = TypeVar("_T")
#: Tag kind (as :class:`~stash2plex.PlexEdit` names it) -> the element a full item lists.
TAG_ELEMENTS = {
    "genre": "Genre",
    "collection": "Collection",
    "actor": "Role",
    "director": "Director",
    "writer": "Writer",
    "producer": "Producer",
    "label": "Label",
    "country": "Country",
}
_IMAGE_ROUTE = {PlexImageKind.POSTER: "posters", PlexImageKind.BACKGROUND: "arts"}
#: Keys per ``GET /library/metadata/{a,b,c}`` when written items are read again.
REREAD_BATCH = 50


class PlexLibraryService:
    """One per app; created by the plugin's cleanup context."""

    def __init__(
        self,
        config: PlexConfig,
        connection: PlexConnection,
        *,
        identifier: str,
        reread_delay_s: float = 1.0,
    ) -> None:
        self.config = config
        self.connection = connection
        self.identifier = identifier
        self.index = ItemIndex()
        self.reread_delay_s = reread_delay_s
        self._sections: list[PlexSection] | None = None
        self._missing: list[str] = []
        self._reachable: bool | None = None
        self._error = ""
        self._server = ""
        self._indexing: asyncio.Task[None] | None = None
        self._dirty: set[str] = set()
        self._reread: asyncio.Task[None] | None = None

    # --- state ------------------------------------------------------------------------

    def state(self) -> PlexState:
        return PlexState(
            configured=True,
            reachable=self._reachable,
            error=self._error,
            server=self._server,
            items=len(self.index),
            index_age_s=self.index.age_s(),
        )

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """A call on the worker thread that also keeps :meth:`state` current."""
        try:
            result = await self.connection.call(fn, *args)
        except PlexTransient as exc:
            self._reachable, self._error = False, str(exc)
            raise
        except PlexPermanent as exc:
            if exc.status in (401, 403):
                self._reachable, self._error = True, str(exc)
            raise
        if self._reachable is not True or self._error:
            self._reachable, self._error = True, ""
        self._server = self.connection.server_name
        return result

    # --- sections ---------------------------------------------------------------------

    async def all_sections(self) -> list[PlexSection]:
        """Every library on the server, configured or not."""
        container = await self._call(PlexConnection.get, "/library/sections")
        return parse_sections(container)

    async def sections(self) -> Sequence[PlexSection]:
        everything = await self.all_sections()
        wanted = self.config.libraries
        if not wanted:
            chosen = [s for s in everything if s.type == "movie"]
            self._missing = []
        else:
            by_title = {s.title: s for s in everything}
            # Only movie libraries: an item's files are on the item itself there.
            chosen = [by_title[n] for n in wanted if n in by_title and by_title[n].type == "movie"]
            self._missing = [n for n in wanted if n not in by_title]
            if self._missing:
                log.warning("plex.libraries_missing", missing=self._missing)
            others = [n for n in wanted if n in by_title and by_title[n].type != "movie"]
            if others:
                log.warning("plex.libraries_not_movie", libraries=others)
        self._sections = chosen
        return chosen

    @property
    def read_sections(self) -> list[PlexSection]:
        """The libraries the last read covered (empty before the first)."""
        return list(self._sections or ())

    @property
    def missing_libraries(self) -> list[str]:
        """Configured library names the server did not have at the last look."""
        return list(self._missing)

    async def count(self, section_key: str) -> int:
        """How many items a library holds: one empty page, its ``totalSize``."""
        container = await self._call(
            PlexConnection.get,
            f"/library/sections/{section_key}/all?type=1"
            "&X-Plex-Container-Start=0&X-Plex-Container-Size=0",
        )
        return int(container.get("totalSize") or 0)

    # --- reading ----------------------------------------------------------------------

    async def read_pages(self) -> AsyncIterator[list[PlexItem]]:
        """Every configured library, one parsed page at a time. An item can show up twice
        when the library changes between two pages (offsets shift).

        The next page is asked for before this one is handed out, so Plex renders it and
        the worker parses it while the caller works on this one."""
        size = self.config.page_size
        for section in await self.sections():
            page, total = await self._call(self._read_page, section.key, 0, size)
            start = 0
            while True:
                start += size
                ahead = None
                if page and start < total:
                    ahead = asyncio.ensure_future(
                        self._call(self._read_page, section.key, start, size)
                    )
                    ahead.add_done_callback(_retrieved)
                try:
                    if page:
                        yield page
                except BaseException:  # the caller stopped reading, or was cancelled
                    if ahead is not None:
                        ahead.cancel()
                    raise
                if ahead is None:
                    break
                page, total = await ahead

    def _read_page(
        self, server: PlexServer, section_key: str, start: int, size: int
    ) -> tuple[list[PlexItem], int]:
        # Worker thread: fetch and parse here, so only plain records reach the loop.
        container = PlexConnection.get(
            server,
            f"/library/sections/{section_key}/all?type=1&includeGuids=1",
            headers={"X-Plex-Container-Start": str(start), "X-Plex-Container-Size": str(size)},
        )
        total = int(container.get("totalSize") or container.get("size") or 0)
        return parse_items(container, section_key, self.identifier), total

    async def read_items(self) -> AsyncIterator[PlexItem]:
        """Every item once. A caller that stops early should close this (``aclosing``):
        the read holds a pause of the cyclic GC until its generators are closed."""
        async with contextlib.aclosing(self._read_index()) as pages:
            async for page in pages:
                for item in page:
                    yield item

    async def _read_index(self) -> AsyncIterator[list[PlexItem]]:
        """:meth:`read_pages`, replacing the index with what was read once it completes."""
        fresh = ItemIndex()
        with gc_paused():
            async with contextlib.aclosing(self.read_pages()) as pages:
                async for page in pages:
                    new = fresh.add_page(page)  # each item once
                    if new:
                        yield new
        fresh.mark_built()
        self.index = fresh
        log.info("plex.index_read", items=len(fresh), sections=len(self._sections or ()))

    def start_reading(self) -> asyncio.Task[None]:
        """Start reading the index again (unless a read is under way); the read's task."""
        if self._indexing is None or self._indexing.done():
            self._indexing = asyncio.get_running_loop().create_task(
                self._consume(), name="plex.read_index"
            )
        return self._indexing

    async def refresh_index(self) -> None:
        """Read the index again, or wait for the read already under way."""
        await asyncio.shield(self.start_reading())

    async def _consume(self) -> None:
        async for _page in self._read_index():
            pass

    async def find_by_path(self, path: str) -> PlexItem | None:
        return (await self._read_index_once()).by_path(path)

    async def find_by_guid(self, guid: str) -> Sequence[PlexItem]:
        return (await self._read_index_once()).by_guid(guid)

    async def _read_index_once(self) -> ItemIndex:
        """The index; before the first read has completed, that read (joined if under
        way): "not found" must mean "not in Plex's listing", never "not read yet". A
        Plex that cannot be read then raises :class:`~stash2plex.PlexTransient`."""
        if self.index.built_at is None:
            await self.refresh_index()
        return self.index

    # --- writing ----------------------------------------------------------------------

    async def edit(self, rating_key: str, edit: PlexEdit) -> None:
        if edit.is_empty():
            return
        known = self.index.get(rating_key)
        await self._call(self._edit, rating_key, edit, known.section_key if known else None)
        log.info(
            "plex.edited",
            plex_rating_key=rating_key,
            fields=sorted(edit.fields),
            tags=sorted(edit.tags),
        )
        self._written(rating_key)

    def _edit(
        self, server: PlexServer, rating_key: str, edit: PlexEdit, section_key: str | None
    ) -> None:
        current: dict[str, list[str]] = {}
        if edit.tags or edit.clear_if or section_key is None:
            # The item's complete lists (a listing shows only a few of each).
            container = PlexConnection.get(server, f"/library/metadata/{rating_key}")
            video = next(iter(container), None)
            if video is None:
                raise PlexPermanent(f"Plex has no item {rating_key}", status=404)
            section_key = video.get("librarySectionID") or container.get("librarySectionID")
            for kind in edit.tags:
                element = TAG_ELEMENTS.get(kind)
                if element is None:
                    raise PlexPermanent(f"unknown tag kind {kind!r}", status=400)
                current[kind] = [t.get("tag", "") for t in video.iterfind(element)]
            edit = careful_clears(edit, video.attrib)
            if edit.is_empty():
                return
        if not section_key:
            raise PlexPermanent(f"cannot tell the library of item {rating_key}", status=404)
        PlexConnection.put(
            server, f"/library/sections/{section_key}/all{edit_query(rating_key, edit, current)}"
        )

    async def refresh(self, rating_key: str) -> None:
        await self._call(PlexConnection.put, f"/library/metadata/{rating_key}/refresh")
        self._written(rating_key)

    async def upload_image(self, rating_key: str, kind: PlexImageKind, data: bytes) -> None:
        route = _IMAGE_ROUTE[PlexImageKind(kind)]
        await self._call(PlexConnection.post, f"/library/metadata/{rating_key}/{route}", data)
        log.info("plex.image_uploaded", plex_rating_key=rating_key, kind=str(kind), size=len(data))

    # --- after writes -----------------------------------------------------------------

    def _written(self, rating_key: str) -> None:
        self._dirty.add(rating_key)
        if self._reread is None or self._reread.done():
            self._reread = asyncio.get_running_loop().create_task(self._reread_dirty())

    async def _reread_dirty(self) -> None:
        await asyncio.sleep(self.reread_delay_s)  # gather a burst of writes into one read
        while self._dirty:
            keys = sorted(self._dirty)[:REREAD_BATCH]
            self._dirty.difference_update(keys)
            try:
                items = await self._call(self._read_items_by_key, keys)
            except PlexError as exc:
                log.warning("plex.reread_failed", error=str(exc), items=len(keys))
                return
            for item in items:
                if self.index.get(item.rating_key) is not None or self._in_scope(item):
                    self.index.put(item)

    def _read_items_by_key(self, server: PlexServer, keys: list[str]) -> list[PlexItem]:
        container = PlexConnection.get(server, f"/library/metadata/{','.join(keys)}")
        return parse_items(container, container.get("librarySectionID", ""), self.identifier)

    def _in_scope(self, item: PlexItem) -> bool:
        return self._sections is not None and any(s.key == item.section_key for s in self._sections)

    async def close(self) -> None:
        for task in (self._indexing, self._reread):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, PlexError):
                    await task


def _retrieved(future: asyncio.Future[object]) -> None:
    """Mark a read-ahead's failure as seen: the reader meets it when it awaits the page,
    or has stopped reading and does not care."""
    if not future.cancelled():
        future.exception()


def careful_clears(edit: PlexEdit, held: Mapping[str, str]) -> PlexEdit:
    """``edit`` less the clears of ``clear_if`` fields whose value in Plex (``held``, the
    item's attributes) is no longer the one expected: someone else set it since."""
    clearing = [n for n in edit.clear_if if n in edit.fields and not edit.fields[n]]
    spared = {n for n in clearing if not _same(held.get(n, ""), edit.clear_if[n])}
    if not spared:
        return edit
    return attrs.evolve(
        edit,
        fields={k: v for k, v in edit.fields.items() if k not in spared},
        unlocked=edit.unlocked - spared,
        clear_if={},
    )


def _same(held: str, expected: str) -> bool:
    """Whether Plex still holds ``expected``: text as written, a rating as a number
    (Plex answers ``8.0`` for ``8``)."""
    held, expected = held.strip(), expected.strip()
    if held == expected:
        return True
    try:
        return float(held) == float(expected)
    except ValueError:
        return False


def edit_query(rating_key: str, edit: PlexEdit, current: dict[str, list[str]]) -> str:
    """The edit PUT's query string, encoded as plexapi encodes its own edits.

    Each wanted list goes out complete and indexed (``genre[0].tag.tag=A``); the tags the
    item holds beyond it are removed in the same request (``genre[].tag.tag-=B,C``, each
    value quoted once more, as plexapi's ``removeGenre`` sends it), so the list ends up
    exactly as given, whether PMS replaces or only adds on an indexed list.
    """
    params: dict[str, object] = {"id": rating_key, "type": 1}
    for name, value in edit.fields.items():
        params[f"{name}.value"] = value
    for kind, wanted in edit.tags.items():
        wanted = tuple(dict.fromkeys(wanted))
        for i, tag in enumerate(wanted):
            params[f"{kind}[{i}].tag.tag"] = tag
        unwanted = [t for t in current.get(kind, []) if t not in wanted]
        if unwanted:
            params[f"{kind}[].tag.tag-"] = ",".join(quote(t, safe="") for t in unwanted)
    for name in edit.locked:
        params[f"{name}.locked"] = 1
    for name in edit.unlocked:
        params[f"{name}.locked"] = 0
    return str(plex_utils.joinArgs(params))
