"""The Plex item index: every item of the configured libraries, found by path or guid.

Filled from the light listing (:func:`parse_items` reads only the item's own attributes
and ``Media/Part/@file``), kept in memory: Plex is the source of truth and is read again
on a schedule anyway, a restart costs one paged read (seconds for 100k items), and a
lookup is a dict access. Nothing here does I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from xml.etree.ElementTree import Element

from stash2plex import PlexAgentKind, PlexItem, PlexSection, path_key

#: Guid schemes of items no agent matched (Personal Media, the legacy "none" agent).
_LOCAL_SCHEMES = frozenset({"local", "com.plexapp.agents.none", "tv.plex.agents.none"})
# Module constants: an enum member looked up on its class costs a descriptor call, and
# a 100k-item read classifies 100k guids.
_OURS, _OTHER, _NONE = PlexAgentKind.OURS, PlexAgentKind.OTHER, PlexAgentKind.NONE


def classify(guid: str | None, identifier: str) -> tuple[PlexAgentKind, str, str | None]:
    """(agent kind, agent detail, our provider key) of an item's primary guid."""
    if not guid:
        return _NONE, "", None
    scheme, sep, rest = guid.partition("://")
    if not sep:
        return _OTHER, guid, None
    if scheme == identifier:
        key = rest[6:] if rest.startswith("movie/") else None
        return _OURS, scheme, key or None
    if scheme in _LOCAL_SCHEMES:
        return _NONE, scheme, None
    return _OTHER, scheme, None


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def parse_items(container: Element, section_key: str, identifier: str) -> list[PlexItem]:
    """The items of one listing (or ``/library/metadata``) page: only the attributes the
    record holds, no tags, no streams."""
    items = []
    for video in container:
        get = video.get
        rating_key = get("ratingKey")
        if rating_key is None:
            continue
        guid = get("guid")
        agent, detail, provider_key = classify(guid, identifier)
        # Part elements live only under Media; iter() filters in C (iterfind() or a loop
        # over every child with its tags cost more than the whole record)
        files = tuple([part.get("file", "") for part in video.iter("Part")])
        items.append(
            PlexItem(
                rating_key=rating_key,
                section_key=get("librarySectionID") or section_key,
                title=get("title") or "",
                guid=guid,
                agent=agent,
                agent_detail=detail,
                provider_key=provider_key,
                files=files,
                added_at=_time(get("addedAt")),
                updated_at=_time(get("updatedAt")),
            )
        )
    return items


def parse_sections(container: Element) -> list[PlexSection]:
    return [
        PlexSection(
            key=d.get("key", ""),
            title=d.get("title", ""),
            type=d.get("type", ""),
            agent=d.get("agent", ""),
            locations=tuple(loc.get("path", "") for loc in d.iterfind("Location")),
        )
        for d in container.iterfind("Directory")
    ]


class ItemIndex:
    """Items by Plex ratingKey, by normalized file path (every file of every part) and by
    primary guid."""

    def __init__(self, items: Iterable[PlexItem] = ()) -> None:
        self._items: dict[str, PlexItem] = {}
        self._paths: dict[str, str] = {}
        self._guids: dict[str, list[str]] = {}
        self.built_at: float | None = None
        for item in items:
            self.put(item)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, rating_key: object) -> bool:
        return rating_key in self._items

    def __iter__(self) -> Iterator[PlexItem]:
        return iter(self._items.values())

    def mark_built(self) -> None:
        self.built_at = time.monotonic()

    def age_s(self) -> float | None:
        return None if self.built_at is None else time.monotonic() - self.built_at

    def put(self, item: PlexItem) -> None:
        key = item.rating_key
        if key in self._items:  # read again: its old paths and guid go first
            self.remove(key)
        self._items[key] = item
        for path in item.files:
            self._paths[path_key(path)] = key
        if item.guid:
            self._guids.setdefault(item.guid, []).append(key)

    def add_page(self, page: Iterable[PlexItem]) -> list[PlexItem]:
        """Put the items of a listing page not in the index yet (an item can show up on
        two pages when the library changes during a read); those, in order. One loop with
        its lookups bound locally: a 100k-item read runs it 100k times."""
        items, paths, guids = self._items, self._paths, self._guids
        new = []
        for item in page:
            key = item.rating_key
            if key in items:
                continue
            items[key] = item
            for path in item.files:
                paths[path_key(path)] = key
            if item.guid:
                guids.setdefault(item.guid, []).append(key)
            new.append(item)
        return new

    def remove(self, rating_key: str) -> None:
        old = self._items.pop(rating_key, None)
        if old is None:
            return
        for path in old.files:
            pk = path_key(path)
            if self._paths.get(pk) == rating_key:
                del self._paths[pk]
        if old.guid and old.guid in self._guids:
            keys = [k for k in self._guids[old.guid] if k != rating_key]
            if keys:
                self._guids[old.guid] = keys
            else:
                del self._guids[old.guid]

    def get(self, rating_key: str) -> PlexItem | None:
        return self._items.get(rating_key)

    def by_path(self, path: str) -> PlexItem | None:
        key = self._paths.get(path_key(path))
        return None if key is None else self._items.get(key)

    def by_guid(self, guid: str) -> list[PlexItem]:
        return [self._items[k] for k in self._guids.get(guid, ())]

    def by_file_name(self, name: str) -> list[PlexItem]:
        """Items holding a file of this name in any folder (troubleshooting: a slow scan)."""
        folded = path_key(name).rsplit("/", 1)[-1].casefold()
        return [
            item
            for item in self._items.values()
            if any(path_key(f).rsplit("/", 1)[-1].casefold() == folded for f in item.files)
        ]
