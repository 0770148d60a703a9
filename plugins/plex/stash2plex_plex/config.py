"""``[plex]``: where Plex Media Server is, which libraries to read, how patiently."""

from __future__ import annotations

from typing import Any

import attrs
from attrs import define, field

from stash2plex import secret


def _positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be greater than 0, got {value}")


def _url(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    if "x-plex-token" in value.lower():
        # The URL is logged and shown; the token must never be (and goes in a header).
        raise ValueError("url must not carry the token: set [plex] token instead")
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https:// (or be empty), got {value!r}")


def _page_size(_inst: object, _attribute: attrs.Attribute[Any], value: int) -> None:
    if not 10 <= value <= 5000:
        raise ValueError(f"page_size must be between 10 and 5000, got {value}")


@define
class PlexConfig:
    """Every key of ``[plex]``; environment: ``STASH2PLEX_PLEX__<KEY>``."""

    #: Plex Media Server's base URL, e.g. ``http://plex:32400``. Empty: Plex is not
    #: configured (push sync and gap detection have no Plex to talk to).
    url: str = field(default="", validator=_url)
    #: The X-Plex-Token (docs/plugins/plex.md says how to find it). Sent as a header only.
    token: str = secret()
    #: Library (section) names to read. Empty: every movie library on the server.
    libraries: list[str] = field(factory=list)
    #: Per request to Plex (connect and read); a slower answer is a transient error.
    timeout_s: float = field(default=15.0, validator=_positive)
    #: Check Plex's TLS certificate (https URLs). Off only for a self-signed certificate.
    verify_tls: bool = True
    #: How often the item index is read again from Plex (after writes, the written items
    #: are re-read on their own within a second or two).
    index_refresh_s: float = field(default=900.0, validator=_positive)
    #: Items per listing page (``X-Plex-Container-Size``).
    page_size: int = field(default=500, validator=_page_size)
