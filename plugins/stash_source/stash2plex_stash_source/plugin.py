"""stash_source: every hook this plugin implements, in one file.

Match and metadata from Stash, answered from a local scene index (matching) and a cached
``findScene`` (metadata); artwork through signed ``/images`` routes; a built-in sample
library when no Stash is configured; ``stash2plex demo``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import aiohttp
from aiohttp import web

from stash2plex import (
    CONFIG,
    HOOKS,
    Candidate,
    CheckResult,
    CliCommand,
    ConfigSection,
    HealthReport,
    MatchRequest,
    Metadata,
    PathDirection,
    SceneCatalog,
    hookimpl,
)

from . import demo, images, queries
from .client import StashClient, StashError
from .config import StashConfig
from .source import RUNTIME_SOURCE, SECTION, SourceHolder, get_source, lifetime


@hookimpl
def config_section() -> ConfigSection:
    return ConfigSection(name=SECTION, cls=StashConfig)


@hookimpl
def routes(app: web.Application) -> Sequence[web.AbstractRouteDef]:
    return images.routes(get_source)


@hookimpl
def cleanup_ctx(app: web.Application) -> Callable[[web.Application], AsyncIterator[None]]:
    # The holder is created now, while the app can still take new keys; filled at start.
    app[RUNTIME_SOURCE] = SourceHolder()
    return lifetime


@hookimpl
async def resolve_match(request: MatchRequest, app: web.Application) -> list[Candidate] | None:
    source = get_source(app)
    if source is None:
        return None
    return await source.resolve(request)


@hookimpl
async def build_metadata(rating_key: str, app: web.Application) -> Metadata | None:
    source = get_source(app)
    if source is None:
        return None
    return await source.metadata(rating_key)


@hookimpl
def scene_catalog(app: web.Application) -> SceneCatalog | None:
    source = get_source(app)
    return None if source is None else source.catalog


@hookimpl
def health(app: web.Application) -> HealthReport | None:
    source = get_source(app)
    if source is None:
        return HealthReport(ready=False, details={"state": "not started"})
    # Ready once an index exists: matching then works even while Stash is down.
    return HealthReport(ready=source.index.ready, details=source.health())


@hookimpl
async def checks(app: web.Application) -> list[CheckResult]:
    config: StashConfig = app[CONFIG].section(SECTION)
    if not config.url:
        return [CheckResult(name="stash", ok=True, detail="no [stash] url: sample library")]
    results = []
    async with aiohttp.ClientSession() as session:
        client = StashClient(
            config.url, config.api_key, session=session, timeout_s=config.timeout_s, retries=1
        )
        try:
            data = await client.execute(queries.VERSION)
        except StashError as exc:
            return [CheckResult(name=f"stash reachable at {client.url}", ok=False, detail=str(exc))]
        version = (data.get("version") or {}).get("version") or "unknown version"
        status = (data.get("systemStatus") or {}).get("status")
        results.append(
            CheckResult(
                name=f"stash reachable at {client.url}",
                ok=status in (None, "OK"),
                detail=f"{version}, status {status}"
                + ("" if status in (None, "OK") else ": finish Stash's setup or migration first"),
            )
        )
        paths = await _sample_paths(client)
    results.append(await _round_trip(app, paths))
    return results


async def _sample_paths(client: StashClient) -> list[str]:
    """The primary paths of the first 25 scenes: real paths to round-trip."""
    try:
        data = await client.execute(queries.SCENE_PAGE, {"after": 0, "n": 25})
    except StashError:
        return []
    return [s["files"][0]["path"] for s in data["findScenes"]["scenes"] if s.get("files")]


async def _round_trip(app: web.Application, paths: list[str]) -> CheckResult:
    """Every mapping engine must bring a real Stash path back to itself."""
    hooks = app[HOOKS]
    mapped = broken = 0
    detail: list[str] = []
    for original in paths:
        plex = await hooks.map_path(original, PathDirection.STASH_TO_PLEX)
        if plex is None:
            continue
        mapped += 1
        back = await hooks.map_path(plex, PathDirection.PLEX_TO_STASH)
        if back != original:
            broken += 1
            detail.append(f"{original} -> {plex} -> {back}")
    if broken:
        return CheckResult(name="path mapping round-trip", ok=False, detail="; ".join(detail[:5]))
    return CheckResult(
        name="path mapping round-trip",
        ok=True,
        detail=f"{mapped} of {len(paths)} sampled Stash paths mapped and came back unchanged"
        + ("" if mapped else " (no rule applies: matching uses path suffixes and hashes)"),
    )


@hookimpl
def cli_commands() -> list[CliCommand]:
    return [demo.COMMAND]
