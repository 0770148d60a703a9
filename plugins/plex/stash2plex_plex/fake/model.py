"""The fake PMS's in-memory library: sections and items, and how edits change them.

Plain mutable records; the server (:mod:`.server`) renders them as PMS's XML and applies
the edit requests to them. Tag lists are kept per *edit kind* (``genre``, ``actor``...),
the names PMS's edit parameters use; :data:`TAG_ELEMENTS` gives each kind's XML element.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from attrs import define, field

#: Tag kind (as edits name it) -> the XML element PMS lists it as.
TAG_ELEMENTS: dict[str, str] = {
    "genre": "Genre",
    "director": "Director",
    "writer": "Writer",
    "producer": "Producer",
    "country": "Country",
    "collection": "Collection",
    "label": "Label",
    "actor": "Role",
}
#: How many of each tag a *list* (partial) item shows, as PMS truncates them; kinds not
#: named here are absent from list items.
LIST_TAGS: dict[str, int] = {"genre": 2, "director": 1, "country": 1, "actor": 3}
#: Fields an edit may set (``<field>.value``); PMS answers 400 for others.
EDITABLE_FIELDS = frozenset(
    {
        "title",
        "titleSort",
        "originalTitle",
        "summary",
        "tagline",
        "studio",
        "originallyAvailableAt",
        "contentRating",
        "userRating",
        "rating",
        "audienceRating",
        "addedAt",
        "editionTitle",
        "year",
    }
)
#: Names an edit may lock (``<name>.locked``): fields, tag kinds, artwork.
LOCKABLE = EDITABLE_FIELDS | frozenset(TAG_ELEMENTS) | {"thumb", "art", "theme"}


@define(kw_only=True)
class FakeSection:
    key: str
    title: str
    type: str = "movie"
    agent: str = "tv.plex.agents.none"
    scanner: str = "Plex Video Files Scanner"
    language: str = "xn"
    locations: list[str] = field(factory=list)
    uuid: str = ""


@define(kw_only=True)
class Artwork:
    """One poster or background the item holds (``kind`` is ``posters`` or ``arts``)."""

    kind: str
    key: str  # url or upload://<sha256>
    sha256: str = ""
    size: int = 0
    selected: bool = False


@define(kw_only=True, eq=False)
class FakeItem:
    """One movie-type item. ``media`` holds one list of part file paths per Media
    element (several parts: a stacked item; several media: versions)."""

    rating_key: str
    section_key: str
    title: str
    guid: str = ""  # "" -> local://<ratingKey>
    media: list[list[str]] = field(factory=list)
    fields: dict[str, str] = field(factory=dict)
    tags: dict[str, list[str]] = field(factory=dict)
    external_guids: list[str] = field(factory=list)
    locked: set[str] = field(factory=set)
    added_at: int = field(factory=lambda: int(time.time()))
    updated_at: int = field(factory=lambda: int(time.time()))
    artwork: list[Artwork] = field(factory=list)
    refreshed: int = 0
    #: the rendered list element, dropped whenever the item changes
    list_xml: str | None = field(default=None, repr=False)

    @property
    def files(self) -> list[str]:
        return [path for parts in self.media for path in parts]

    @property
    def effective_guid(self) -> str:
        return self.guid or f"local://{self.rating_key}"

    def changed(self) -> None:
        """Bump ``updatedAt`` (never backwards, always forwards) and drop cached XML."""
        self.updated_at = max(int(time.time()), self.updated_at + 1)
        self.list_xml = None

    def apply_tags(self, kind: str, wanted: Sequence[str], *, replace: bool) -> None:
        current = self.tags.setdefault(kind, [])
        if replace:
            current[:] = list(dict.fromkeys(wanted))
        else:  # a PMS that only adds what an indexed list names
            current.extend(t for t in wanted if t not in current)

    def remove_tags(self, kind: str, unwanted: Iterable[str]) -> None:
        drop = set(unwanted)
        if kind in self.tags:
            self.tags[kind] = [t for t in self.tags[kind] if t not in drop]
