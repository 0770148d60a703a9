"""``[push]``: the webhook, what gets written to Plex, and how fast."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import define, field

from stash2plex import GapKind, secret

SECTION = "push"

#: Every field push can write, by its name in ``[push] fields``.
FIELDS = (
    "title",
    "sort_title",
    "summary",
    "date",
    "studio",
    "content_rating",
    "tagline",
    "genres",
    "actors",
    "directors",
    "collections",
    "rating",
    "poster",
    "background",
)


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be greater than 0, got {value}")


def _not_negative(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value}")


def _fields(_inst: object, _attribute: attrs.Attribute[Any], value: list[str]) -> None:
    unknown = [name for name in value if name not in FIELDS]
    if unknown:
        raise ValueError(f"fields: unknown {unknown}; known fields are {', '.join(FIELDS)}")


def _gap_kinds(_inst: object, _attribute: attrs.Attribute[Any], value: list[str]) -> None:
    known = [kind.value for kind in GapKind]
    unknown = [name for name in value if name not in known]
    if unknown:
        raise ValueError(f"on_gaps: unknown {unknown}; gap kinds are {', '.join(known)}")


def _url(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"{attribute.name} must start with http:// or https://, got {value!r}")


@define
class PushConfig:
    """Every key of ``[push]``; environment: ``STASH2PLEX_PUSH__<KEY>``."""

    #: Shared secret of ``POST /push/webhook`` (the Stash companion plugin sends it).
    #: Empty: the webhook is off and says so.
    webhook_token: str = secret()
    #: Push at all (False: the queue still fills, nothing is sent to Plex).
    enabled: bool = True
    #: What is written; leave a name out to never touch that field in Plex.
    fields: list[str] = field(factory=lambda: list(FIELDS), validator=_fields)
    #: Lock every written field, so a Plex refresh or another agent does not undo it.
    lock: bool = True
    #: At most this many entries per tag list (genres, actors, directors, collections).
    max_tags: int = field(default=100, validator=_positive)
    #: Stash tags that also become Plex collections (case-insensitive; matched against
    #: the scene's genres, i.e. after ``[stash] ignore_tags``).
    collection_tags: list[str] = field(factory=list)
    #: Gap kinds (from gap detection) that queue a push, e.g. ["stale"].
    on_gaps: list[str] = field(factory=list, validator=_gap_kinds)
    #: Steady push rate to Plex, items per second (0: no limit). After an outage the
    #: rate starts at 1/s and doubles every ``ramp_s`` until it reaches this.
    rate_per_s: float = field(default=20.0, validator=_not_negative)
    ramp_s: float = field(default=5.0, validator=_positive)
    #: Retry delays: ``backoff_s * 2**attempt``, capped, with jitter.
    backoff_s: float = field(default=2.0, validator=_positive)
    max_backoff_s: float = field(default=600.0, validator=_positive)
    #: Consecutive transient Plex failures that open the circuit breaker.
    breaker_threshold: int = field(default=5, validator=_positive)
    #: How long the breaker stays open before one job probes Plex (doubles per failed
    #: probe, up to ``max_backoff_s``).
    breaker_cooldown_s: float = field(default=30.0, validator=_positive)
    #: A scene Plex has not scanned yet is retried this long, then parked as "not in
    #: Plex" (gap detection reports it) until it changes again.
    not_found_for_s: float = field(default=3600.0, validator=_positive)
    #: How often the worker looks for rows queued by another process (the CLI).
    poll_s: float = field(default=1.0, validator=_positive)
    #: Where this process's own ``/images`` routes answer, for artwork bytes. Empty:
    #: loopback on ``[server] port``.
    self_url: str = field(default="", validator=_url)
