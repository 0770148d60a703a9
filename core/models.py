"""The objects that cross the host's boundaries: Plex's wire shapes and the hook records.

Wire models subclass :class:`Wire`; the converter in :mod:`stash2plex.wire` renames their
snake_case attributes to Plex's spelling (``rating_key`` -> ``ratingKey``, ``images`` ->
``Image``). Plugins build these objects; the host serializes them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from attrs import define, field

#: Plex accepts only these characters in a ratingKey: it becomes a URL path segment and the
#: last segment of the guid.
RATING_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")
#: Plex's rule for a custom provider identifier.
IDENTIFIER_RE = re.compile(r"^tv\.plex\.agents\.custom\.[A-Za-z0-9.]+$")


def wire(name: str, *, omit_empty: bool = False) -> dict[str, Any]:
    """Field metadata naming the wire key when it is not the camelCase of the attribute;
    ``omit_empty`` leaves an empty list out of the JSON instead of sending ``[]``."""
    return {"wire": name, "omit_empty": omit_empty}


def push_only() -> dict[str, Any]:
    """Field metadata for what Plex takes from push sync only, never on the provider's
    wire (the provider protocol has no collections and no user rating)."""
    return {"push_only": True}


class Wire:
    """Marker base: attrs classes that travel to or from Plex in Plex's spelling."""


class PathDirection(enum.StrEnum):
    """Which way :func:`~stash2plex.hookspecs.map_path` translates."""

    PLEX_TO_STASH = "plex_to_stash"
    STASH_TO_PLEX = "stash_to_plex"


# --- what Plex sends -------------------------------------------------------------------


@define(kw_only=True)
class MatchRequest(Wire):
    """The body of ``POST /library/metadata/matches``, in Plex's spelling on the wire.

    Every field but ``type`` is optional; keys Plex adds that are not listed here are
    tolerated and logged at debug. ``filename`` is an opaque path: Plex documents it as
    relative to the library root, but some servers send it absolute. Over HTTP, text
    fields are held to 1024 characters (``filename`` to 32767) by the match route.
    """

    type: int = 1
    title: str | None = None
    year: int | None = None
    guid: str | None = None
    filename: str | None = None
    manual: int = 0
    include_adult: int | None = None
    duration: int | None = None
    ohash: str | None = None
    open_subtitles_hash: str | None = None
    date: str | None = None
    parent_title: str | None = None
    grandparent_title: str | None = None
    index: int | None = None
    parent_index: int | None = None
    include_children: int | None = None
    episode_order: str | None = None
    include_elements: str | None = None
    include_fields: str | None = None
    exclude_elements: str | None = None
    exclude_fields: str | None = None

    @property
    def oshash(self) -> str | None:
        """The OpenSubtitles hash Plex computed for the file, under either name it uses."""
        value = self.ohash or self.open_subtitles_hash
        return value.lower() if value else None

    @property
    def is_manual(self) -> bool:
        """True for "Fix Match": the user wants a ranked list, not one automatic pick."""
        return bool(self.manual)


# --- what the host answers -------------------------------------------------------------


@define(kw_only=True)
class Tag(Wire):
    """A tag-like entry: ``Genre``, ``Studio``, ``Country``, ``Director``..."""

    tag: str


@define(kw_only=True)
class Role(Wire):
    """A performer. ``thumb`` must be a URL Plex can fetch (see the images routes)."""

    tag: str
    role: str | None = None
    thumb: str | None = None
    order: int | None = None


@define(kw_only=True)
class Image(Wire):
    """One artwork asset. ``type`` is one of Plex's image types (``coverPoster``,
    ``background``, ``backgroundSquare``, ``clearLogo``, ``snapshot``)."""

    type: str
    url: str
    alt: str | None = None


@define(kw_only=True)
class ExternalGuid(Wire):
    """An entry of the ``Guid`` array: an external id such as ``stashdb://<uuid>``."""

    id: str


IMAGE_TYPES = frozenset({"coverPoster", "background", "backgroundSquare", "clearLogo", "snapshot"})


def _check_rating_key(_inst: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not RATING_KEY_RE.match(value):
        raise ValueError(f"{attribute.name} {value!r} is outside [A-Za-z0-9_-]+")


# Validators run when a record is built, not again on each later assignment: a scan builds
# these on every request, and attrs' per-attribute setattr hook doubled what that cost.
@define(kw_only=True, on_setattr=attrs.setters.NO_OP)
class Metadata(Wire):
    """One item as Plex's metadata feature wants it (movie type only, for now).

    A plugin fills what it knows; ``guid`` and ``key`` are set by the host from the
    provider identifier so every guid has exactly the shape Plex requires.
    """

    rating_key: str = field(validator=_check_rating_key)
    title: str
    type: str = "movie"
    guid: str | None = None
    key: str | None = None
    originally_available_at: str | None = None
    year: int | None = None
    summary: str | None = None
    tagline: str | None = None
    studio: str | None = None
    content_rating: str | None = None
    is_adult: bool | None = None
    duration: int | None = None
    title_sort: str | None = None
    original_title: str | None = None
    thumb: str | None = None
    art: str | None = None
    added_at: int | None = None
    score: int | None = None
    images: list[Image] = field(factory=list, metadata=wire("Image", omit_empty=True))
    genres: list[Tag] = field(factory=list, metadata=wire("Genre", omit_empty=True))
    roles: list[Role] = field(factory=list, metadata=wire("Role", omit_empty=True))
    directors: list[Tag] = field(factory=list, metadata=wire("Director", omit_empty=True))
    studios: list[Tag] = field(factory=list, metadata=wire("Studio", omit_empty=True))
    countries: list[Tag] = field(factory=list, metadata=wire("Country", omit_empty=True))
    guids: list[ExternalGuid] = field(factory=list, metadata=wire("Guid", omit_empty=True))
    #: For push sync (one mapping for both ways to Plex): collections (studio, parent
    #: studio, groups, chosen tags) and the user rating (0-10). Never serialized.
    collections: list[Tag] = field(factory=list, metadata=push_only())
    user_rating: float | None = field(default=None, metadata=push_only())


@define(kw_only=True)
class MediaContainer(Wire):
    """Plex's envelope for matches, metadata, images and sub-resources."""

    identifier: str
    offset: int = 0
    total_size: int = 0
    size: int = 0
    metadata: list[Metadata] | None = field(default=None, metadata=wire("Metadata"))
    images: list[Image] | None = field(default=None, metadata=wire("Image"))


@define(kw_only=True)
class Scheme(Wire):
    scheme: str


@define(kw_only=True)
class MediaType(Wire):
    type: int
    schemes: list[Scheme] = field(metadata=wire("Scheme"))


@define(kw_only=True)
class Feature(Wire):
    type: str
    key: str


@define(kw_only=True)
class MediaProvider(Wire):
    """The provider root, ``GET /``."""

    identifier: str
    title: str
    version: str
    types: list[MediaType] = field(metadata=wire("Types"))
    features: list[Feature] = field(metadata=wire("Feature"))


# --- what plugins hand the host ---------------------------------------------------------


def _check_score(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 100:
        raise ValueError(f"{attribute.name} must be between 0 and 100, got {value!r}")


@define(kw_only=True, on_setattr=attrs.setters.NO_OP)  # as Metadata: checked when built
class Candidate:
    """One possible answer to a match request, from one match source.

    ``score`` is 0-100: 100 is proof (own guid, exact fingerprint), 85+ is strong evidence,
    below that Plex only sees it under Fix Match. ``reason`` says which evidence scored it
    (``"oshash"``, ``"path"``, ``"basename"``...), for logs and for Fix Match debugging.
    ``source`` is filled in by the host with the plugin's name.
    """

    metadata: Metadata
    score: int = field(validator=_check_score)
    reason: str = ""
    source: str = ""


class GapKind(enum.StrEnum):
    """What kind of difference between Plex and Stash a :class:`Gap` reports."""

    UNMATCHED = "unmatched"  # Plex asked us to match a file and nothing cleared the bar
    PLEX_ONLY = "plex_only"  # in Plex, not in Stash
    STASH_ONLY = "stash_only"  # in Stash, not in Plex
    OTHER_AGENT = "other_agent"  # in both, but Plex matched it with another agent
    STALE = "stale"  # Stash changed after our last push to Plex
    UNMAPPABLE = "unmappable"  # a Stash folder no path rule maps to Plex's side


@define(kw_only=True)
class Gap:
    """A difference between the two libraries, found by gap detection."""

    kind: GapKind
    plex_path: str | None = None
    stash_path: str | None = None
    scene_id: str | None = None
    #: The provider ratingKey of the scene (``stash-123``), when a scene is involved.
    rating_key: str | None = None
    plex_rating_key: str | None = None
    title: str = ""
    detail: str = ""


@define(kw_only=True)
class ConfigSection:
    """A plugin's configuration section: ``[name]`` in the TOML file, structured into
    ``cls`` (an attrs class whose fields all have defaults, so an absent section is valid).
    """

    name: str
    cls: type


def _no_arguments(parser: Any) -> None:
    """A sub-command without options of its own."""


@define(kw_only=True)
class CliCommand:
    """A ``stash2plex <name>`` sub-command contributed by a plugin.

    ``help`` is its line in ``stash2plex --help``; ``description`` (optional) the text atop
    ``stash2plex <name> --help`` (default: ``help``). ``add_arguments`` (optional) receives
    the sub-command's :class:`argparse.ArgumentParser`: give every option a ``help``
    sentence. The global options (``--config``, ``--log-level``, ``--log-format``) are
    added for you, so they work after the sub-command's name too. ``run`` receives the
    parsed arguments and the (not started) application and returns the process exit code,
    or an awaitable of it; a :class:`~stash2plex.ConfigError` it raises is printed as one
    line with exit code 2.
    """

    name: str
    help: str
    run: Callable[[Any, Any], int | Awaitable[int]]
    add_arguments: Callable[[Any], None] = _no_arguments
    description: str = ""


@define(kw_only=True)
class CheckResult:
    """One line of ``stash2plex check``: what was checked, whether it passed, and why."""

    name: str
    ok: bool
    detail: str = ""


@define(kw_only=True)
class HealthReport:
    """A plugin's part of ``GET /healthz``. ``ready=False`` makes the host answer 503."""

    ready: bool
    details: dict[str, Any] = field(factory=dict)
