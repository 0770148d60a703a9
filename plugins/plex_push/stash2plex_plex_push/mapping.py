"""One mapping from ``build_metadata``'s :class:`Metadata` to what Plex gets from push.

The provider serves the same Metadata, so what Plex shows after a provider refresh and
after a push can never disagree. :func:`wanted` is what the source says now; :func:`plan`
turns it, and what the ledger says was written last time, into one :class:`PlexEdit`:
lists replaced whole, written fields locked, and a value cleared only where push wrote
the value being cleared (never what someone else set).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from attrs import define, field

from stash2plex import Metadata, PlexEdit

from .config import PushConfig

#: ``[push] fields`` name -> Plex's field name, for plain fields.
PLAIN = {
    "title": "title",
    "sort_title": "titleSort",
    "summary": "summary",
    "date": "originallyAvailableAt",
    "studio": "studio",
    "content_rating": "contentRating",
    "tagline": "tagline",
    "rating": "userRating",
}
#: ``[push] fields`` name -> Plex's tag kind, for lists.
LISTS = {"genres": "genre", "actors": "actor", "directors": "director", "collections": "collection"}
#: ``[push] fields`` name -> the Metadata image type, and Plex's lock name for it.
IMAGES = {"poster": ("coverPoster", "thumb"), "background": ("background", "art")}
#: What a provider cannot express: written even to items our provider matched.
PUSH_ONLY_FIELDS = frozenset({"userRating"})
PUSH_ONLY_TAGS = frozenset({"collection"})


@define(frozen=True, kw_only=True)
class Wanted:
    """What the source says now, per Plex field ("" and () mean "no value at the source")."""

    fields: dict[str, str] = field(factory=dict)
    tags: dict[str, tuple[str, ...]] = field(factory=dict)
    #: "poster"/"background" -> the image's URL (this host's signed /images route)
    images: dict[str, str] = field(factory=dict)

    def digest(self) -> str:
        return _digest({"fields": self.fields, "tags": self.tags, "images": self.images})


def wanted(metadata: Metadata, config: PushConfig) -> Wanted:
    on = set(config.fields)
    values = {
        "title": metadata.title,
        "sort_title": metadata.title_sort,
        "summary": metadata.summary,
        "date": metadata.originally_available_at,
        "studio": metadata.studio,
        "content_rating": metadata.content_rating,
        "tagline": metadata.tagline,
        "rating": _rating(metadata.user_rating),
    }
    fields = {PLAIN[name]: (value or "").strip() for name, value in values.items() if name in on}
    genres = [t.tag for t in metadata.genres]
    chosen = {t.casefold() for t in config.collection_tags}
    lists = {
        "genres": genres,
        "actors": [r.tag for r in metadata.roles],
        "directors": [t.tag for t in metadata.directors],
        "collections": [t.tag for t in metadata.collections]
        + [g for g in genres if g.casefold() in chosen],
    }
    tags = {
        LISTS[name]: _unique(values_, config.max_tags)
        for name, values_ in lists.items()
        if name in on
    }
    by_type = {image.type: image.url for image in metadata.images}
    images = {
        name: by_type[kind]
        for name, (kind, _lock) in IMAGES.items()
        if name in on and by_type.get(kind)
    }
    return Wanted(fields=fields, tags=tags, images=images)


def _rating(value: float | None) -> str | None:
    if value is None:
        return None
    return f"{max(0.0, min(10.0, value)):g}"


def _unique(values: list[str], cap: int) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        value = value.strip()
        if value and value.casefold() not in seen:
            seen[value.casefold()] = value
    return tuple(seen.values())[:cap]


@define(frozen=True, kw_only=True)
class Plan:
    edit: PlexEdit
    #: What push holds in Plex once the edit is applied: the memory for the next clear.
    owned: dict[str, Any]


def plan(want: Wanted, owned_before: Mapping[str, Any] | None, *, ours: bool, lock: bool) -> Plan:
    """The one edit for ``want``. ``owned_before`` is what push held in the item after
    the last push (None: nothing, e.g. a new item). ``ours``: our provider matched the
    item, so a refresh brings the provider's fields and only push-only ones are written."""
    before_fields: Mapping[str, str] = (owned_before or {}).get("fields", {})
    before_tags: Mapping[str, list[str]] = (owned_before or {}).get("tags", {})
    fields: dict[str, str] = {}
    tags: dict[str, tuple[str, ...]] = {}
    locked: set[str] = set()
    unlocked: set[str] = set()
    owned_fields: dict[str, str] = {}
    owned_tags: dict[str, list[str]] = {}
    clear_if: dict[str, str] = {}
    for name, value in want.fields.items():
        if ours and name not in PUSH_ONLY_FIELDS:
            continue
        if value:
            fields[name] = value
            owned_fields[name] = value
            if lock and name != "userRating":  # a rating has no lock in Plex
                locked.add(name)
        elif before_fields.get(name):
            # The source dropped a value push wrote: clear it, and let go of the field,
            # but only while Plex still holds what push wrote (clear_if).
            fields[name] = ""
            clear_if[name] = before_fields[name]
            if name != "userRating":
                unlocked.add(name)
    for kind, values in want.tags.items():
        if ours and kind not in PUSH_ONLY_TAGS:
            continue
        if values:
            tags[kind] = values
            owned_tags[kind] = list(values)
            if lock:
                locked.add(kind)
        elif before_tags.get(kind):
            tags[kind] = ()
            unlocked.add(kind)
    if lock:
        locked.update(IMAGES[name][1] for name in want.images)
    edit = PlexEdit(
        fields=fields,
        tags=tags,
        locked=frozenset(locked),
        unlocked=frozenset(unlocked),
        clear_if=clear_if,
    )
    return Plan(edit=edit, owned={"fields": owned_fields, "tags": owned_tags})


def edit_json(edit: PlexEdit) -> dict[str, Any]:
    """The edit as plain data, for the ledger and for comparing with the last one sent."""
    return {
        "fields": dict(edit.fields),
        "tags": {kind: list(values) for kind, values in edit.tags.items()},
        "locked": sorted(edit.locked),
        "unlocked": sorted(edit.unlocked),
        # only when set: ledgers written before it existed keep their digests
        **({"clear_if": dict(edit.clear_if)} if edit.clear_if else {}),
    }


def _digest(data: Any) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def written_digest(owned: Mapping[str, Any], images: Mapping[str, Any]) -> str:
    """The ledger's hash of what was written: the values push holds and the artwork's
    content hashes."""
    return _digest({"owned": owned, "images": {k: v.get("sha256") for k, v in images.items()}})
