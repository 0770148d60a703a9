"""Exceptions a plugin may raise to tell the host something precise, and the one shape of
every error answer."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp import web


class Unavailable(Exception):
    """Raise from ``build_metadata`` when the item is yours but cannot be served right now
    (e.g. Stash is down and nothing is cached). If no other plugin answers, the host
    replies 503 with this message instead of 404."""


def error_response(status: int, message: str, **extra: Any) -> web.Response:
    """Every error is JSON: ``{"error": <reason>, "message": <what to do>}``."""
    reason = HTTPStatus(status).phrase
    return web.json_response({"error": reason, "message": message, **extra}, status=status)
