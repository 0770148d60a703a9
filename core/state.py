"""The host's per-app state, under typed :class:`web.AppKey` keys, and what uses only it.

Its own module so that the app factory (:mod:`stash2plex.app`) and the routes it mounts
(:mod:`stash2plex.provider`) both import it and never each other's way back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from aiohttp import web
from attrs import define

from .config import Config
from .dispatch import Hooks
from .logs import get_logger
from .plugins import PluginSet

log = get_logger("stash2plex.app")


@define
class Runtime:
    """The core's mutable state of one app (set up while it starts)."""

    #: ``loop.time()`` when start-up finished; None before it and after clean-up.
    started_at: float | None = None
    #: The key image URLs are signed with, read or created on first use.
    signing_key: bytes | None = None
    #: The CLI sub-command this process runs (``gaps``, ``plex``...); None when it serves.
    command: str | None = None


CONFIG = web.AppKey("stash2plex.config", Config)
HOOKS = web.AppKey("stash2plex.hooks", Hooks)
PLUGINS = web.AppKey("stash2plex.plugins", PluginSet)
RUNTIME = web.AppKey("stash2plex.runtime", Runtime)
#: Tasks started by :func:`run_in_background`, awaited (briefly) at shutdown.
BACKGROUND = web.AppKey("stash2plex.background", set[asyncio.Task[None]])


def cli_command(app: web.Application) -> str | None:
    """The ``stash2plex`` sub-command this app was built for, or None when it serves
    (``serve``, a test's server). A plugin's start-up uses it to leave schedules and
    periodic upkeep to the serving process: a CLI command beside a running server
    should do its one job, not a second copy of the server's."""
    return app[RUNTIME].command


def run_in_background(app: web.Application, coro: Awaitable[Any], name: str) -> None:
    """Run ``coro`` without delaying anyone; keep a reference so it is not collected."""

    async def guarded() -> None:
        try:
            await coro
        except Exception:
            log.exception("background.failed", task=name)

    task = asyncio.get_running_loop().create_task(guarded(), name=name)
    app[BACKGROUND].add(task)
    task.add_done_callback(app[BACKGROUND].discard)
