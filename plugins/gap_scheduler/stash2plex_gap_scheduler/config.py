"""``[gaps]``: how often gap detection compares Plex with Stash, and what it does then."""

from __future__ import annotations

import re
from typing import Any

import attrs
from attrs import define, field

from stash2plex import secret

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> float:
    """``"24h"``, ``"30m"``, ``"90s"``, ``"7d"`` in seconds; ``"0"`` (scheduling off) is 0."""
    text = text.strip()
    if text == "0":
        return 0.0
    found = _DURATION.match(text)
    if not found or int(found.group(1)) == 0:
        raise ValueError(
            f"interval must be a whole number and a unit (s, m, h or d), such as '24h' or "
            f"'30m', or '0' to turn scheduled scans off; got {text!r}"
        )
    return float(int(found.group(1)) * _UNITS[found.group(2)])


def _interval(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    parse_interval(value)


def _libraries(_inst: object, _attribute: attrs.Attribute[Any], value: list[str]) -> None:
    if any(not name.strip() for name in value):
        raise ValueError("libraries must name Plex libraries; an empty name is not one")


@define
class GapsConfig:
    """Every key of ``[gaps]``; environment: ``STASH2PLEX_GAPS__<KEY>``."""

    #: How often the scheduled comparison runs: "24h", "30m", "7d"...; "0" turns it off
    #: (``stash2plex gaps scan`` still works). The last run is kept in the data directory.
    interval: str = field(default="24h", validator=_interval)
    #: Plex library names to compare (empty: every library the plex plugin reads).
    libraries: list[str] = field(factory=list, validator=_libraries)
    #: After each scan, hand stale and never-pushed scenes to push sync.
    auto_push: bool = False
    #: Shared secret of ``POST /gaps/scan`` (the Stash companion plugin's "Scan for gaps"
    #: task sends its one token: give this the value of ``[push] webhook_token``).
    #: Empty: the route is off and says so.
    scan_token: str = secret()
    #: The real-time log of unmatched requests is written at most this often, or sooner
    #: once this many events wait.
    flush_every_s: float = field(default=1.0, validator=attrs.validators.gt(0))
    flush_events: int = field(default=500, validator=attrs.validators.gt(0))

    @property
    def interval_s(self) -> float:
        return parse_interval(self.interval)
