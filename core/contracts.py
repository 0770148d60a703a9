"""The contracts between the two sides: Plex's library, Stash's scene catalog, push sync.

Push sync and gap detection act between Plex and Stash but import neither side's code:
they ask the host for an object through a hook (``plex_library``, ``scene_catalog``,
``push_sync``) and talk to it only through the protocols and records here. No plexapi
type, no Stash query and no SQLite row crosses these boundaries, so either side can be
replaced, disabled or faked in a test.

Records are frozen attrs classes with plain values: paths are strings as the owning side
spells them, times are aware UTC datetimes (or None when the side does not say).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from attrs import define, field

_SLASHES = re.compile(r"/{2,}")


def path_key(path: str) -> str:
    """A file path as lookups compare it: Unicode in NFC (macOS shares hand out NFD),
    backslashes as forward slashes, repeated slashes merged (a leading ``//`` of a UNC
    path kept), no trailing slash. Case is kept: whether case matters is the mapping
    rule's business, not the lookup's.
    """
    text = unicodedata.normalize("NFC", path).replace("\\", "/")
    if "//" in text:  # rare: the regex only then (a gap scan keys every path twice)
        unc = text.startswith("//")
        text = _SLASHES.sub("/", text)
        if unc:
            text = "/" + text
    return text.rstrip("/") if len(text) > 1 else text


# --- errors -------------------------------------------------------------------------------


class PlexError(Exception):
    """A call to Plex Media Server failed. Catch one of the two subclasses, never parse
    the message: :class:`PlexTransient` is worth retrying, :class:`PlexPermanent` is not.

    ``status`` is the HTTP status when Plex answered (None for a timeout or a refused
    connection).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PlexTransient(PlexError):
    """Try again later: a timeout, a refused connection, a 5xx, a 429.

    ``retry_after`` is the delay in seconds Plex asked for (429 ``Retry-After``), else None.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PlexPermanent(PlexError):
    """Retrying will not help: a rejected token (401/403), an item that is gone (404),
    data Plex refuses (400)."""


# --- the Plex side ------------------------------------------------------------------------


class PlexAgentKind(enum.StrEnum):
    """Who holds a Plex item's metadata, read from its guid."""

    OURS = "ours"  # matched by this provider: guid ``{identifier}://movie/{ratingKey}``
    OTHER = "other"  # matched by another agent (Plex Movie, another custom provider...)
    NONE = "none"  # no agent: local media (``local://``, ``com.plexapp.agents.none``)


class PlexImageKind(enum.StrEnum):
    """Which artwork :meth:`PlexLibrary.upload_image` replaces."""

    POSTER = "poster"
    BACKGROUND = "background"


@define(frozen=True, kw_only=True)
class PlexSection:
    """One Plex library (a "section"): ``key`` is its id (``librarySectionID``)."""

    key: str
    title: str
    type: str  # "movie", "show", ...
    agent: str = ""  # the section's agent identifier
    locations: tuple[str, ...] = ()  # root folders, as Plex sees them


@define(frozen=True, kw_only=True)
class PlexItem:
    """One item of a Plex library, as light as the listing gives it.

    ``files`` holds every file path of every media part, as Plex spells it. ``agent`` says
    whose metadata the item carries; ``agent_detail`` names it (the guid's scheme, such as
    ``plex`` or ``com.plexapp.agents.imdb``, or ``local``). ``rating_key`` is Plex's own
    key (digits), not a provider ratingKey; ``provider_key`` is ours (``stash-123``) when
    ``agent`` is :attr:`PlexAgentKind.OURS`.
    """

    rating_key: str
    section_key: str
    title: str
    guid: str | None = None
    agent: PlexAgentKind = PlexAgentKind.NONE
    agent_detail: str = ""
    provider_key: str | None = None
    files: tuple[str, ...] = ()
    added_at: datetime | None = None
    updated_at: datetime | None = None


@define(frozen=True, kw_only=True)
class PlexEdit:
    """Everything one push writes to one item, sent as one request.

    ``fields`` maps Plex's field names (``title``, ``titleSort``, ``summary``,
    ``originallyAvailableAt``, ``studio``, ``contentRating``, ``tagline``, ``userRating``)
    to their new value; an empty string clears the field. ``tags`` maps a tag kind
    (``genre``, ``collection``, ``actor``, ``director``, ``label``) to its *complete*
    list: tags the item holds that are not in it are removed. ``locked`` and ``unlocked``
    name fields or tag kinds whose lock is set or cleared (a locked field survives an
    agent refresh).

    ``clear_if`` makes clears careful: for a field it names whose new value is empty, the
    field is cleared (and its ``unlocked`` entry applied) only while Plex still holds the
    given value, what the caller wrote there before; a value someone else set since stays
    as it is, lock and all. Reading the current value costs no extra request: the edit
    reads the item for its tag lists anyway.
    """

    fields: Mapping[str, str] = field(factory=dict)
    tags: Mapping[str, tuple[str, ...]] = field(factory=dict)
    locked: frozenset[str] = frozenset()
    unlocked: frozenset[str] = frozenset()
    clear_if: Mapping[str, str] = field(factory=dict)

    def is_empty(self) -> bool:
        return not (self.fields or self.tags or self.locked or self.unlocked)


@define(frozen=True, kw_only=True)
class PlexState:
    """What is known about Plex right now, from memory (for ``/healthz``)."""

    configured: bool
    reachable: bool | None = None  # None: not asked yet
    error: str = ""
    server: str = ""  # the server's friendly name and version, once known
    items: int = 0  # items in the local item index
    index_age_s: float | None = None


@runtime_checkable
class PlexLibrary(Protocol):
    """Plex Media Server as push sync and gap detection see it; returned by the
    ``plex_library`` hook. Every method is a coroutine that never blocks the event loop
    and raises only :class:`PlexError` subclasses for Plex's failures."""

    def state(self) -> PlexState:
        """From memory; never a request."""
        ...

    async def sections(self) -> Sequence[PlexSection]:
        """The configured libraries (``[plex] libraries``; default every movie library)."""
        ...

    def read_items(self) -> AsyncIterator[PlexItem]:
        """Read every configured library now, page by page, yielding each item once; the
        local item index is replaced by what was read when the read completes. A caller
        that may stop early closes it (``contextlib.aclosing``): a read may hold resources
        (the plex plugin pauses the cyclic GC for it) until its generator is closed."""
        ...

    async def find_by_path(self, path: str) -> PlexItem | None:
        """The item holding this file (Plex's spelling; separators and Unicode are
        normalized), from the local item index: no request."""
        ...

    async def find_by_guid(self, guid: str) -> Sequence[PlexItem]:
        """Items whose primary guid is ``guid``, from the local item index: no request."""
        ...

    async def edit(self, rating_key: str, edit: PlexEdit) -> None:
        """Apply ``edit`` to the item in one request."""
        ...

    async def refresh(self, rating_key: str) -> None:
        """Ask Plex to refresh the item from its agent (asynchronous on Plex's side)."""
        ...

    async def upload_image(self, rating_key: str, kind: PlexImageKind, data: bytes) -> None:
        """Upload poster or background bytes and make them the item's current one."""
        ...


# --- the Stash side -----------------------------------------------------------------------


@define(frozen=True, kw_only=True)
class CatalogScene:
    """One scene of a source's index: ``rating_key`` is the provider key (``stash-123``),
    ``files`` every file path as the source spells it, ``updated_at`` the source's own
    change time."""

    rating_key: str
    title: str
    files: tuple[str, ...] = ()
    updated_at: datetime | None = None


@runtime_checkable
class SceneCatalog(Protocol):
    """Read access to a source's local index; returned by the ``scene_catalog`` hook.
    Served from local state: no request to Stash."""

    @property
    def ready(self) -> bool:
        """Whether the index holds a complete library (False while it is first built)."""
        ...

    def scenes(self) -> AsyncIterator[CatalogScene]:
        """Every scene, in batches read from the index (bounded memory)."""
        ...

    async def scene(self, rating_key: str) -> CatalogScene | None: ...


# --- push sync ----------------------------------------------------------------------------


@define(frozen=True, kw_only=True)
class SyncRecord:
    """The sync ledger's line for one scene: where it went, when, and what was written."""

    rating_key: str  # the provider key, ``stash-123``
    plex_rating_key: str
    pushed_at: datetime
    digest: str  # a hash of what was written


@runtime_checkable
class PushSync(Protocol):
    """Push sync as gap detection sees it; returned by the ``push_sync`` hook."""

    async def records(self) -> Mapping[str, SyncRecord]:
        """The whole sync ledger, keyed by provider ratingKey."""
        ...

    async def enqueue(self, rating_keys: Sequence[str], reason: str) -> int:
        """Queue these scenes for a push (durably); returns how many were queued."""
        ...
