"""The hooks that plug the path mapping engine into the stash2plex host.

``[[path_regex.rules]]`` is validated while the configuration is structured (a bad rule
stops start-up, naming it); the compiled :class:`~.engine.Engine` is kept under
:data:`ENGINE` and answers ``map_path`` from memory.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable, Sequence

from aiohttp import web

import stash2plex
from stash2plex import (
    CheckResult,
    CliCommand,
    ConfigSection,
    PathDirection,
    debug_enabled,
    hookimpl,
)

from .engine import Engine, PathRegexConfig, describe_rule, log, validate_rules

SECTION = "path_regex"
ENGINE = web.AppKey("stash2plex_path_regex.engine", Engine)


def get_engine(app: web.Application) -> Engine:
    """The app's engine, built from its configuration on first use.

    The cleanup context builds it at start-up, before aiohttp freezes the app; a CLI app
    (built, never started) gets it on its first call instead.
    """
    try:
        return app[ENGINE]  # set at start-up: the path every scan request takes
    except KeyError:
        pass
    config: PathRegexConfig = app[stash2plex.CONFIG].section(SECTION)
    engine = Engine(config.rules)
    if not app.frozen:  # a frozen app's state must not change (aiohttp warns)
        app[ENGINE] = engine
    return engine


@hookimpl
def config_section() -> ConfigSection:
    return ConfigSection(name=SECTION, cls=PathRegexConfig)


@hookimpl
def cleanup_ctx(app: web.Application) -> Callable[[web.Application], AsyncIterator[None]]:
    async def engine_lifetime(app: web.Application) -> AsyncIterator[None]:
        engine = get_engine(app)
        log.info("path_regex.ready", rules=[r.name for r in engine.rules])
        yield

    return engine_lifetime


@hookimpl
def map_path(path: str, direction: PathDirection, app: web.Application) -> str | None:
    engine = get_engine(app)
    if not engine.compiled:
        return None  # no rules (the usual set-up): every scan request asks, answer at once
    found = engine.translate(path, direction)
    if debug_enabled():
        engine.log_result(path, direction, found)
    return None if found is None else found[1]


@hookimpl
def checks(app: web.Application) -> list[CheckResult]:
    engine = get_engine(app)
    if not engine.rules:
        return [
            CheckResult(
                name="path rules",
                ok=True,
                detail="none configured: paths are matched by suffix, basename and fingerprint",
            )
        ]
    problems = validate_rules(engine.rules)  # already passed at load; cheap to confirm
    results = []
    for index, rule in enumerate(engine.rules):
        mine = [p for p in problems if p.startswith(f"rule {rule.name!r}:")]
        if mine:
            detail = "; ".join(mine)
        elif rule.samples:
            detail = f"{describe_rule(rule)}; {len(rule.samples)} sample(s) round-trip"
        else:
            detail = f"{describe_rule(rule)}; no samples (add samples = [...] to prove it)"
        results.append(
            CheckResult(name=f"rule {rule.name!r} (rules[{index}])", ok=not mine, detail=detail)
        )
    return results


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="+", help="a file path as the source side spells it")
    parser.add_argument(
        "--to",
        choices=["stash", "plex"],
        required=True,
        help="stash: PATH is Plex's spelling; plex: PATH is Stash's spelling",
    )


def _run(args: argparse.Namespace, app: web.Application) -> int:
    engine = get_engine(app)
    direction = PathDirection.PLEX_TO_STASH if args.to == "stash" else PathDirection.STASH_TO_PLEX
    unmapped = 0
    for path in args.path:
        print(engine.explain(path, direction))
        unmapped += engine.map(path, direction) is None
    if unmapped:
        # The rules come from the same place serve reads them: say which, in case it is
        # not the file meant.
        source = app[stash2plex.CONFIG].source
        shown = "built-in defaults (no --config, no $STASH2PLEX_CONFIG)"
        print(f"configuration: {shown if source == 'defaults' else source}")
    return 1 if unmapped else 0


@hookimpl
def cli_commands() -> Sequence[CliCommand]:
    return [
        CliCommand(
            name="paths",
            help="map a path between Plex and Stash and say which rule did it (or why none)",
            add_arguments=_add_arguments,
            run=_run,
        )
    ]
