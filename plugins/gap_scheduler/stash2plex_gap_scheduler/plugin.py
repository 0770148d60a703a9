"""gap_scheduler: every hook this plugin implements, in one file.

Records what Plex could not match (``on_unmatched``), compares Plex's libraries with
Stash's scenes on a schedule and on demand, and serves the report (``GET /gaps``,
``stash2plex gaps``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

from stash2plex import (
    CONFIG,
    Candidate,
    CliCommand,
    ConfigSection,
    HealthReport,
    MatchRequest,
    cli_command,
    hookimpl,
)

from . import report
from .config import GapsConfig
from .detector import SECTION, STATE, GapDetector, State, log
from .scan import iso
from .store import Store


@hookimpl
def config_section() -> ConfigSection:
    return ConfigSection(name=SECTION, cls=GapsConfig)


@hookimpl
def cleanup_ctx(app: web.Application) -> Callable[[web.Application], AsyncIterator[None]]:
    app[STATE] = State()  # created while the app still takes new keys; filled at start

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        config: GapsConfig = app[CONFIG].section(SECTION)
        store = await Store(app[CONFIG].data_dir).open()
        detector = GapDetector(app, store, config)
        state = app[STATE]
        state.detector = detector
        serving = cli_command(app) is None  # a CLI process runs no schedule
        detector.start(schedule=serving)
        log.info(
            "gaps.ready",
            interval=config.interval,
            libraries=config.libraries or "all",
            auto_push=config.auto_push,
            schedule=serving and bool(config.interval_s),
        )
        try:
            yield
        finally:
            state.detector = None
            await detector.stop()
            await store.close()

    return lifetime


@hookimpl
def routes(app: web.Application) -> Sequence[web.AbstractRouteDef]:
    return report.routes()


@hookimpl
def on_unmatched(
    request: MatchRequest, candidates: Sequence[Candidate], app: web.Application
) -> None:
    detector = app[STATE].detector
    if detector is not None:
        detector.recorder.record(request, candidates)


@hookimpl
def health(app: web.Application) -> HealthReport:
    # Gap detection never makes the provider unready: Plex can match without it.
    detector = app[STATE].detector
    if detector is None:
        return HealthReport(ready=True, details={"state": "not started"})
    return HealthReport(
        ready=True,
        details={
            "next_scan_at": iso(detector.next_scan_at),
            "scan_running_since": iso(detector.running),
        },
    )


@hookimpl
def cli_commands() -> list[CliCommand]:
    return [
        CliCommand(
            name="gaps",
            help="gap detection: print the report, `gaps scan` to compare now, "
            "`gaps fix` to push stale scenes",
            add_arguments=report.add_arguments,
            run=report.run,
        )
    ]
