"""plex: every hook this plugin implements, in one file.

The Plex Media Server side: one connection through python-plexapi on a worker thread, a
light item index read page by page, edits and uploads, handed to push sync and gap
detection through the ``plex_library`` hook. The provider's own routes never wait for
Plex: ``/healthz`` reports Plex's state from memory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import attrs
from aiohttp import web

from stash2plex import (
    CONFIG,
    CheckResult,
    CliCommand,
    ConfigSection,
    HealthReport,
    PlexError,
    PlexLibrary,
    hookimpl,
)
from stash2plex.logs import get_logger

from . import ops
from .config import PlexConfig
from .connection import PlexConnection, client_identifier
from .library import PlexLibraryService

SECTION = "plex"
log = get_logger("stash2plex.plex")


@attrs.define
class ServiceHolder:
    """Put in the app while it is built (it is frozen by start-up), filled at start."""

    #: The running service (None while Plex is not configured, before start-up, after).
    service: PlexLibraryService | None = None


RUNTIME = web.AppKey("stash2plex_plex.runtime", ServiceHolder)


def get_service(app: web.Application) -> PlexLibraryService | None:
    holder = app.get(RUNTIME)
    return None if holder is None else holder.service


def new_service(app: web.Application) -> PlexLibraryService:
    """A service for ``app``'s ``[plex]`` (not started: no background reads)."""
    config: PlexConfig = app[CONFIG].section(SECTION)
    connection = PlexConnection(
        config.url,
        config.token,
        client_id=client_identifier(app[CONFIG].data_dir),
        timeout_s=config.timeout_s,
        verify_tls=config.verify_tls,
    )
    return PlexLibraryService(config, connection, identifier=app[CONFIG].provider.identifier)


async def _keep_index(service: PlexLibraryService) -> None:
    """Read the index now and every ``index_refresh_s``; after a failure, sooner."""
    interval = service.config.index_refresh_s
    while True:
        try:
            await service.refresh_index()
            delay = interval
        except PlexError as exc:
            log.warning("plex.index_failed", error=str(exc))
            delay = min(interval, 60.0)
        await asyncio.sleep(delay)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    config: PlexConfig = app[CONFIG].section(SECTION)
    if not config.url:
        log.info("plex.not_configured")
        yield
        return
    service = new_service(app)
    app[RUNTIME].service = service
    service.start_reading()  # at once, so a caller's first refresh_index() joins this read
    task = asyncio.get_running_loop().create_task(_keep_index(service), name="plex.index")
    log.info(
        "plex.starting",
        url=service.connection.url,
        libraries=config.libraries or "every movie library",
    )
    if not config.verify_tls and config.url.startswith("https://"):
        log.warning("plex.tls_not_verified", url=service.connection.url)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.close()
        service.connection.close()
        app[RUNTIME].service = None


@hookimpl
def config_section() -> ConfigSection:
    return ConfigSection(name=SECTION, cls=PlexConfig)


@hookimpl
def cleanup_ctx(app: web.Application) -> Callable[[web.Application], AsyncIterator[None]]:
    app[RUNTIME] = ServiceHolder()  # while the app can still take new keys
    return _lifetime


@hookimpl
def plex_library(app: web.Application) -> PlexLibrary | None:
    return get_service(app)


@hookimpl
def health(app: web.Application) -> HealthReport:
    # Plex down is reported, never a 503: the provider serves Plex from Stash alone.
    service = get_service(app)
    if service is None:
        configured = bool(app[CONFIG].section(SECTION).url)
        return HealthReport(
            ready=True,
            details={"configured": configured, "state": "not started" if configured else "off"},
        )
    state = service.state()
    age = state.index_age_s
    return HealthReport(
        ready=True,
        details={
            "configured": True,
            "reachable": state.reachable,
            "error": state.error,
            "server": state.server,
            "items": state.items,
            "index_age_s": None if age is None else round(age, 1),
        },
    )


@hookimpl
async def checks(app: web.Application) -> list[CheckResult]:
    config: PlexConfig = app[CONFIG].section(SECTION)
    if not config.url:
        return [
            CheckResult(
                name="plex",
                ok=True,
                detail="no [plex] url: push sync and gap detection have no Plex to talk to",
            )
        ]
    service = new_service(app)
    try:
        return await ops.check_lines(service)
    finally:
        service.connection.close()


async def _plex_command(args: argparse.Namespace, app: web.Application) -> int:
    config: PlexConfig = app[CONFIG].section(SECTION)
    if not config.url:
        print("stash2plex plex: no [plex] url configured (docs/plugins/plex.md)")
        return 2
    # A service of its own, not the started app: no other plugin needs to start for this.
    service = new_service(app)
    try:
        return await ops.run(args, app, service)
    finally:
        await service.close()
        service.connection.close()


@hookimpl
def cli_commands() -> list[CliCommand]:
    return [
        CliCommand(
            name="plex",
            help="troubleshoot Plex: 'plex libraries', 'plex find PATH'",
            add_arguments=ops.add_arguments,
            run=_plex_command,
        )
    ]
