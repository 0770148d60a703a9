"""One comparison of Plex's libraries with Stash's scenes: gap detection proper.

Three passes. Plex's listing streams through once, so memory grows with the Stash side
only (its scene records, as the catalog hands them out, and two dicts of path keys),
never with Plex's listing:

1. every scene of the catalog (read once, kept for pass 3): its files keyed both as Stash
   spells them and as Plex would (``map_path(stash_to_plex)``, or the path itself when no
   rule applies);
2. every item of the scanned Plex libraries: a file found by its own key, or by its
   ``map_path(plex_to_stash)`` key, belongs to a scene (``other_agent`` when the item is
   not ours); an item none of whose files is found is ``plex_only``;
3. every scene again, from memory: one Plex has is checked against the sync ledger
   (``stale``); one it has not is ``stash_only`` when Plex's libraries cover where its
   file would be, and otherwise counted into one ``unmappable`` gap for its folder.

A mapping miss never invents gaps: files whose folder no rule maps and that lie outside
every scanned Plex library are reported once per folder, with a hint, on either side.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from attrs import define, field

from stash2plex import (
    HOOKS,
    CatalogScene,
    Gap,
    GapKind,
    PathDirection,
    PlexAgentKind,
    PlexItem,
    SyncRecord,
    path_key,
)

from .store import UnmatchedEntry, gap_row

_T = TypeVar("_T")
_STASH_ID = re.compile(r"stash-(\d+)")
#: Gaps are handed to the store in batches of this many rows.
STAGE_BATCH = 2000


class ScanError(Exception):
    """A scan could not run (no Plex, no catalog, an unknown library, Plex failing);
    the message says what to do. The previous report stays as it was."""


class NotReady(ScanError):
    """The scene catalog is still being built: comparing now would invent gaps."""


def scene_id(rating_key: str | None) -> str | None:
    """Stash's own scene id of a provider key (``stash-123`` -> ``123``), for links."""
    found = _STASH_ID.fullmatch(rating_key or "")
    return found.group(1) if found else None


def parent(key: str) -> str:
    head, _sep, _tail = key.rpartition("/")
    return head or "/"


def top_folder(key: str) -> str:
    """The first two folders of a normalized file path: ``/data/media`` of
    ``/data/media/a/b.mp4``, ``D:/Media`` of ``D:/Media/b.mp4``, ``//nas/share``."""
    if key.startswith("//"):
        return "//" + "/".join(key[2:].split("/")[:2])
    folders = key.split("/")[:-1]
    keep = folders[:3] if folders and folders[0] == "" else folders[:2]
    return "/".join(keep) or "/"


def under(key: str, roots: Sequence[str]) -> bool:
    """Whether ``key`` (casefolded) lies in one of ``roots`` (casefolded folders)."""
    folded = key.casefold()
    return any(r == "/" or folded == r or folded.startswith(r + "/") for r in roots)


def iso(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, float | int):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@define
class _Folder:
    """Files of one side that no rule maps and no scanned library covers, reported once."""

    side: str  # "stash" or "plex"
    reason: str  # "unmapped" (no rule) or "outside" (a rule maps it outside the libraries)
    count: int = 0
    common: list[str] = field(factory=list)
    example: str = ""
    example_mapped: str | None = None

    def add(self, key: str, original: str, mapped: str | None) -> None:
        folders = parent(key).split("/")
        if not self.count:
            self.common, self.example, self.example_mapped = folders, original, mapped
        else:
            same = 0
            for a, b in zip(self.common, folders, strict=False):
                if a != b:
                    break
                same += 1
            del self.common[same:]
        self.count += 1

    @property
    def folder(self) -> str:
        return "/".join(self.common) or "/"


@define
class _Timer:
    """Time spent waiting on a side's iterator (reading), apart from the comparison."""

    seconds: float = 0.0
    count: int = 0

    async def each(self, items: AsyncIterator[_T]) -> AsyncIterator[_T]:
        clock = time.perf_counter
        iterator = items.__aiter__()
        while True:
            started = clock()
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                self.seconds += clock() - started
                return
            self.seconds += clock() - started
            self.count += 1
            yield item


@define(kw_only=True)
class ScanOutput:
    """What a scan hands the store: statistics and the unmatched entries it resolved."""

    stats: dict[str, Any]
    resolved_unmatched: list[str]


Stage = Callable[[Sequence[tuple[Any, ...]]], Awaitable[None]]


class Scan:
    """One comparison. :meth:`run` stages every gap it finds through ``stage`` and
    returns the statistics; it changes nothing else."""

    def __init__(
        self,
        app: web.Application,
        *,
        libraries: Sequence[str],
        unmatched: Sequence[UnmatchedEntry],
        stage: Stage,
        started_at: float,
    ) -> None:
        self.hooks = app[HOOKS]
        self.libraries = list(libraries)
        self.unmatched = list(unmatched)
        self._stage = stage
        self.started_at = started_at
        self._rows: list[tuple[Any, ...]] = []
        self.counts = {k.value: 0 for k in GapKind}
        self._mapping = self.hooks.implemented("map_path")

    async def _map(self, path: str, direction: PathDirection) -> str | None:
        return await self.hooks.map_path(path, direction) if self._mapping else None

    async def _add(self, ident: str, gap: Gap) -> None:
        self.counts[gap.kind.value] += 1
        self._rows.append(gap_row(ident, gap))
        if len(self._rows) >= STAGE_BATCH:
            rows, self._rows = self._rows, []
            await self._stage(rows)

    async def run(self) -> ScanOutput:
        started = time.perf_counter()
        plex = await self.hooks.plex_library()
        if plex is None:
            raise ScanError(
                "no Plex library: install the plex plugin (stash2plex-plex) and set "
                "[plex] url and token"
            )
        catalog = await self.hooks.scene_catalog()
        if catalog is None:
            raise ScanError("no scene catalog: install and configure stash_source ([stash] url)")
        if not catalog.ready:
            raise NotReady("the Stash scene index is still being built; try again shortly")
        push = await self.hooks.push_sync()
        ledger: Mapping[str, SyncRecord] | None = await push.records() if push else None

        sections = list(await plex.sections())
        if self.libraries:
            by_name = {s.title.casefold(): s for s in sections}
            unknown = [n for n in self.libraries if n.casefold() not in by_name]
            if unknown:
                known = ", ".join(repr(s.title) for s in sections) or "none"
                raise ScanError(
                    f"[gaps] libraries names {', '.join(map(repr, unknown))}, which Plex "
                    f"does not list among the libraries it reads (those are: {known})"
                )
            sections = [by_name[n.casefold()] for n in self.libraries]
            wanted: set[str] | None = {s.key for s in sections}
        else:
            wanted = None
        locations = [path_key(loc).casefold() for s in sections for loc in s.locations]

        # --- pass 1: Stash's files under both spellings ----------------------------
        stash_read = _Timer()
        by_stash: dict[str, str] = {}  # Stash's key -> scene
        by_plexside: dict[str, str] = {}  # Plex's key -> Stash's key (the same string)
        stash_tops: set[str] = set()
        # Kept for pass 3: reading the catalog again would cost more than holding it.
        scenes: list[CatalogScene] = []
        async for scene in stash_read.each(catalog.scenes()):
            scenes.append(scene)
            for original in scene.files:
                own = path_key(original)
                by_stash[own] = scene.rating_key
                mapped = await self._map(original, PathDirection.STASH_TO_PLEX)
                by_plexside[path_key(mapped) if mapped is not None else own] = own
                stash_tops.add(top_folder(own).casefold())

        # --- pass 2: Plex's items --------------------------------------------------
        plex_read = _Timer()
        in_plex: dict[str, str] = {}  # scene -> Plex's ratingKey of the item holding it
        plex_tops: set[str] = set()
        plex_folders: dict[tuple[str, str], _Folder] = {}
        wanted_log = _UnmatchedIndex(self.unmatched)
        items = 0
        # closed even when the scan stops midway: the read holds a pause of the cyclic GC
        async with contextlib.aclosing(plex.read_items()) as listing:
            async for item in plex_read.each(listing):
                if wanted is not None and item.section_key not in wanted:
                    continue
                items += 1
                found: str | None = None  # Stash's key of the file found
                mapped_to: str | None = None
                for original in item.files:
                    key = path_key(original)
                    plex_tops.add(top_folder(key).casefold())
                    if wanted_log:
                        wanted_log.see(key, item)
                    if found is not None:
                        continue
                    found = by_plexside.get(key)
                    if found is None:
                        mapped = await self._map(original, PathDirection.PLEX_TO_STASH)
                        if mapped is not None:
                            mapped_to = mapped
                            own = path_key(mapped)
                            found = own if own in by_stash else None
                if found is not None:
                    scene_key, stash_key = by_stash[found], found
                    in_plex.setdefault(scene_key, item.rating_key)
                    if item.agent is not PlexAgentKind.OURS:
                        await self._add(item.rating_key, _other_agent(item, scene_key, stash_key))
                elif not item.files:
                    continue  # nothing to compare (Plex lists no part for it)
                elif mapped_to is not None or any(
                    top_folder(path_key(f)).casefold() in stash_tops for f in item.files
                ):
                    await self._add(item.rating_key, _plex_only(item, mapped_to))
                else:
                    key = path_key(item.files[0])
                    folder = plex_folders.setdefault(
                        ("plex", top_folder(key)), _Folder(side="plex", reason="unmapped")
                    )
                    folder.add(key, item.files[0], None)
        del by_plexside, by_stash  # pass 3 needs neither

        # --- pass 3: Stash's scenes against what Plex has --------------------------
        roots = locations or sorted(plex_tops)
        stash_folders: dict[tuple[str, str], _Folder] = {}
        never = without_files = 0
        for scene in scenes:
            plex_key = in_plex.get(scene.rating_key)
            if plex_key is not None:
                if ledger is not None:
                    gap = _stale(scene, plex_key, ledger.get(scene.rating_key))
                    if gap is not None:
                        never += gap.detail.startswith("never pushed")
                        await self._add(scene.rating_key, gap)
                continue
            if not scene.files:
                without_files += 1
                continue
            misses: list[tuple[str, str, str | None]] = []
            expected: str | None = None
            for original in scene.files:
                own = path_key(original)
                mapped = await self._map(original, PathDirection.STASH_TO_PLEX)
                plexside = path_key(mapped) if mapped is not None else own
                if under(plexside, roots):
                    expected = mapped if mapped is not None else original
                    break
                misses.append((own, original, mapped))
            if expected is not None:
                await self._add(scene.rating_key, _stash_only(scene, expected))
                continue
            own, original, mapped = misses[0]
            reason = "unmapped" if mapped is None else "outside"
            folder = stash_folders.setdefault(
                (reason, top_folder(own)), _Folder(side="stash", reason=reason)
            )
            folder.add(own, original, mapped)

        # Named by the group's top folder, which stays put while files come and go below.
        for (_reason, top), folder in [*stash_folders.items(), *plex_folders.items()]:
            await self._add(f"{folder.side}:{folder.reason}:{top}", _unmappable(folder, roots))

        resolved: list[str] = []
        for entry in self.unmatched:
            gap = wanted_log.judge(entry, self.started_at)
            if gap is None:
                resolved.append(entry.key)
            else:
                await self._add(entry.key, gap)

        if self._rows:
            await self._stage(self._rows)
            self._rows = []
        total = time.perf_counter() - started
        stats = {
            "plex_items": items,
            "plex_items_read": plex_read.count,
            "libraries": [s.title for s in sections],
            "scenes": len(scenes),
            "scenes_without_files": without_files,
            "push_sync": ledger is not None,
            "found": dict(self.counts),
            "never_pushed": never,
            "unmatched_resolved": len(resolved),
            "read_plex_s": round(plex_read.seconds, 3),
            "read_stash_s": round(stash_read.seconds, 3),
            "compare_s": round(max(0.0, total - plex_read.seconds - stash_read.seconds), 3),
        }
        return ScanOutput(stats=stats, resolved_unmatched=resolved)


class _UnmatchedIndex:
    """Finds the files of the unmatched log in Plex's listing as it streams past. Plex
    sends ``filename`` relative to the library root or absolute, so an entry is found by
    its whole key or as a suffix of a listed path, looked up by file name first."""

    def __init__(self, entries: Sequence[UnmatchedEntry]) -> None:
        self._by_name: dict[str, list[tuple[str, str]]] = {}
        for entry in entries:
            if entry.filename:
                suffix = path_key(entry.filename).lstrip("/")
                name = suffix.rpartition("/")[2].casefold()
                self._by_name.setdefault(name, []).append((entry.key, suffix))
        self.holders: dict[str, list[tuple[str, PlexItem]]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_name)

    def see(self, key: str, item: PlexItem) -> None:
        wanted = self._by_name.get(key.rpartition("/")[2].casefold())
        if wanted:
            for entry_key, suffix in wanted:
                if key == suffix or key.endswith("/" + suffix):
                    self.holders.setdefault(entry_key, []).append((key, item))

    def judge(self, entry: UnmatchedEntry, scan_started: float) -> Gap | None:
        """The entry's gap if it is still unmatched; None once resolved (Plex now holds
        the file through this provider, or no longer lists it)."""
        holders = self.holders.get(entry.key, [])
        recent = entry.last_seen >= scan_started  # asked while Plex was being read
        others = [(k, i) for k, i in holders if i.agent is not PlexAgentKind.OURS]
        if not others and not recent:
            return None
        plex_path, item = others[0] if others else (entry.filename, None)
        held = ""
        if item is not None:
            held = (
                f"; Plex holds it with {item.agent_detail or 'another agent'}"
                if item.agent is PlexAgentKind.OTHER
                else "; Plex holds it without metadata (no agent)"
            )
        return Gap(
            kind=GapKind.UNMATCHED,
            plex_path=plex_path,
            plex_rating_key=item.rating_key if item is not None else None,
            title=entry.title or (entry.filename or "").rpartition("/")[2],
            detail=f"{verdict_text(entry.verdict, entry.candidates)}; asked {entry.count} "
            f"time(s), last {iso(entry.last_seen)}{held}",
        )


def verdict_text(verdict: str, candidates: Sequence[Mapping[str, Any]]) -> str:
    listed = ", ".join(f"{c['rating_key']} ({c['score']})" for c in candidates)
    if verdict == "ambiguous":
        return f"ambiguous: Stash has several likely scenes, none clearly best: {listed}"
    if verdict == "below_threshold":
        return f"below the bar: Stash has a likely scene, but the evidence is weak: {listed}"
    return "none: Stash has no likely scene for this file"


def _other_agent(item: PlexItem, scene_key: str, stash_key: str) -> Gap:
    if item.agent is PlexAgentKind.OTHER:
        who = f"held by another agent ({item.agent_detail or item.guid or 'unknown'})"
    else:
        who = f"held by no agent ({item.agent_detail or 'local media'})"
    return Gap(
        kind=GapKind.OTHER_AGENT,
        plex_path=item.files[0] if item.files else None,
        stash_path=stash_key,
        scene_id=scene_id(scene_key),
        rating_key=scene_key,
        plex_rating_key=item.rating_key,
        title=item.title,
        detail=f"{who}; Stash has it as {scene_key}: Fix Match with this provider, or "
        "rescan the library with this provider as its agent",
    )


def _plex_only(item: PlexItem, mapped: str | None) -> Gap:
    where = f" (looked for {mapped})" if mapped else ""
    return Gap(
        kind=GapKind.PLEX_ONLY,
        plex_path=item.files[0],
        plex_rating_key=item.rating_key,
        title=item.title,
        detail=f"no Stash scene has this file{where}: scan the folder in Stash, or check "
        "the path rules",
    )


def _stash_only(scene: CatalogScene, expected: str) -> Gap:
    return Gap(
        kind=GapKind.STASH_ONLY,
        plex_path=expected,
        stash_path=scene.files[0],
        scene_id=scene_id(scene.rating_key),
        rating_key=scene.rating_key,
        title=scene.title,
        detail=f"Plex has no item for it (expected at {expected}): scan the Plex library",
    )


def _stale(scene: CatalogScene, plex_key: str, record: SyncRecord | None) -> Gap | None:
    if record is None:
        detail = "never pushed: Plex has it but push sync has not written it yet"
    elif scene.updated_at is not None and scene.updated_at > record.pushed_at:
        detail = (
            f"changed in Stash at {iso(scene.updated_at)}, after the last push at "
            f"{iso(record.pushed_at)}"
        )
    else:
        return None
    return Gap(
        kind=GapKind.STALE,
        plex_path=None,
        stash_path=scene.files[0] if scene.files else None,
        scene_id=scene_id(scene.rating_key),
        rating_key=scene.rating_key,
        plex_rating_key=plex_key,
        title=scene.title,
        detail=detail + ": stash2plex gaps fix queues it for push sync",
    )


def _unmappable(folder: _Folder, roots: Sequence[str]) -> Gap:
    libraries = ", ".join(roots) or "none listed"
    n = folder.count
    if folder.side == "plex":
        return Gap(
            kind=GapKind.UNMAPPABLE,
            plex_path=folder.folder,
            title=folder.folder,
            detail=f"{n} Plex item(s) under {folder.folder}: no path rule maps this folder to "
            f"Stash and no Stash scene lives under it (e.g. {folder.example}). Add a "
            "[[path_regex.rules]] entry for it, add the folder to Stash, or leave its "
            "library out with [gaps] libraries",
        )
    if folder.reason == "unmapped":
        hint = (
            f"no path rule maps this folder to Plex, and Plex's scanned libraries "
            f"({libraries}) do not hold it as it is. Add a [[path_regex.rules]] entry "
            f"mapping {folder.folder} to the folder Plex sees"
        )
    else:
        hint = (
            f"a path rule maps it (e.g. to {folder.example_mapped}) but that lies outside "
            f"Plex's scanned libraries ({libraries}). Fix the rule, or add the folder to a "
            "Plex library (or to [gaps] libraries)"
        )
    return Gap(
        kind=GapKind.UNMAPPABLE,
        stash_path=folder.folder,
        title=folder.folder,
        detail=f"{n} Stash scene(s) under {folder.folder}: {hint} (e.g. {folder.example})",
    )
