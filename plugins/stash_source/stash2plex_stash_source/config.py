"""``[stash]``: where Stash is and how stash_source matches and describes scenes."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import define, field

from stash2plex import secret

from .metadata import check_template


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be greater than 0, got {value}")


def _url(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https:// (or be empty), got {value!r}")


def _template(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    check_template(value)


def _poster(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in ("screenshot", "portrait"):
        raise ValueError(f"poster must be 'screenshot' or 'portrait', got {value!r}")


@define
class StashConfig:
    """Every key of ``[stash]``; environment: ``STASH2PLEX_STASH__<KEY>``."""

    #: Stash's base URL, e.g. ``http://localhost:9999``. Empty: the built-in sample
    #: library is served (a real GraphQL server on loopback), so a new install shows
    #: something before it is configured.
    url: str = field(default="", validator=_url)
    #: Settings > Security > API Key in Stash. Only sent when set.
    api_key: str = secret()
    timeout_s: float = field(default=10.0, validator=_positive)
    #: Extra attempts after a connection error, a 5xx or "database is locked".
    retries: int = field(default=3, validator=attrs.validators.in_(range(0, 11)))
    #: After repeated failures Stash is not asked again for this long (answers come from
    #: the index and the cache meanwhile), then one request tests it.
    breaker_cooldown_s: float = field(default=30.0, validator=_positive)
    #: How often the index asks Stash for scenes changed since the last refresh.
    index_refresh_s: float = field(default=300.0, validator=_positive)
    #: How often the index checks for deleted scenes (a pass over ids only).
    sweep_every_s: float = field(default=3600.0, validator=_positive)
    #: A full rebuild now and then catches what updated_at cannot show (files moved, a
    #: studio renamed, edits hidden by a daylight-saving clock change).
    rebuild_every_s: float = field(default=86400.0, validator=_positive)
    #: Folders where the files Plex names can be read by this provider (read-only mounts);
    #: the oshash of a file found there matches it exactly, whatever its path.
    media_roots: list[str] = field(factory=list)
    #: Never auto-match scenes not marked organized / without a stash-box id.
    require_organized: bool = False
    require_stash_id: bool = False
    #: Fields: {title} {date} {studio} {code} {performers} {filename}. An untitled
    #: scene's {title} is its file name.
    title_template: str = field(default="{title}", validator=_template)
    content_rating: str = "XXX"
    #: Tags never sent to Plex as genres (case-insensitive).
    ignore_tags: list[str] = field(factory=list)
    #: How long fetched scene metadata is reused (served stale beyond that if Stash is down).
    metadata_ttl_s: float = field(default=600.0, validator=_positive)
    #: "screenshot" sends the 16:9 screenshot as poster; "portrait" renders a 2:3 poster.
    poster: str = field(default="screenshot", validator=_poster)
    #: Size of the built-in sample library (only used when ``url`` is empty).
    sample_scenes: int = field(default=300, validator=_positive)
