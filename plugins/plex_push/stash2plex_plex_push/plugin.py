"""plex_push: every hook this plugin implements, in one file.

Stash edits reach Plex without a rescan: triggers (the webhook the Stash companion plugin
calls, ``on_scenes_changed``, ``on_gap``, the CLI) queue scenes in a SQLite file; one
worker pushes each through ``plex_library``, writing what ``build_metadata`` says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from stash2plex import (
    CONFIG,
    CheckResult,
    CliCommand,
    ConfigSection,
    Gap,
    HealthReport,
    PushSync,
    hookimpl,
)

from . import cli
from . import routes as webhook
from .config import SECTION, PushConfig
from .service import RUNTIME, ServiceHolder, get_service, lifetime
from .worker import open_store


@hookimpl
def config_section() -> ConfigSection:
    return ConfigSection(name=SECTION, cls=PushConfig)


@hookimpl
def routes(app: web.Application) -> Sequence[web.AbstractRouteDef]:
    return webhook.route_defs()


@hookimpl
def cleanup_ctx(app: web.Application) -> Callable[[web.Application], AsyncIterator[None]]:
    # The holder is created now, while the app can still take new keys; filled at start.
    app[RUNTIME] = ServiceHolder()
    return lifetime


@hookimpl
async def health(app: web.Application) -> HealthReport | None:
    service = app[RUNTIME].service
    if service is None:
        return None
    await service.refresh_counts()  # the local queue file, at most once a second
    # Always ready: Plex being down delays pushes, it never makes the provider unhealthy.
    return HealthReport(ready=True, details=service.health())


@hookimpl
def push_sync(app: web.Application) -> PushSync | None:
    return get_service(app)


@hookimpl
async def on_scenes_changed(rating_keys: Sequence[str], app: web.Application) -> None:
    await get_service(app).enqueue(list(rating_keys), "changed")


@hookimpl
async def on_gap(gap: Gap, app: web.Application) -> None:
    service = get_service(app)
    if gap.rating_key and gap.kind.value in service.config.on_gaps:
        await service.enqueue([gap.rating_key], f"gap:{gap.kind.value}")


@hookimpl
def checks(app: web.Application) -> list[CheckResult]:
    config: PushConfig = app[CONFIG].section(SECTION)
    results = [
        CheckResult(
            name="push webhook",
            ok=True,
            detail="token set"
            if config.webhook_token
            else "off: no [push] webhook_token, so the Stash companion plugin cannot reach it",
        )
    ]
    try:
        store = open_store(app)
    except Exception as exc:  # the data directory: missing rights, a full disk...
        results.append(CheckResult(name="push queue file", ok=False, detail=str(exc)))
        return results
    try:
        counts, breaker = store.counts(), store.breaker()
    finally:
        store.close()
    results.append(
        CheckResult(
            name="push queue file",
            ok=True,
            detail=f"{store.path}: {counts.pending + counts.retrying} queued, "
            f"{counts.dead} dead, breaker {breaker.state}",
        )
    )
    return results


@hookimpl
def cli_commands() -> list[CliCommand]:
    return cli.COMMANDS
