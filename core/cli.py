"""``stash2plex``: serve the provider, list plugins, check the configuration.

Plugins add sub-commands through the ``cli_commands`` hook. Exit codes: 0 fine, 1 a check
failed, 2 the configuration or the command line is wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from . import __version__, logs
from . import config as config_mod
from .app import CONFIG, HOOKS, PLUGINS, create_app
from .config import ConfigError
from .models import CliCommand
from .plugins import PluginError

CONFIG_ENV = "STASH2PLEX_CONFIG"


def _global_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stash2plex",
        description="Plex custom metadata provider backed by Stash.",
        add_help=False,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None,
        help=f"TOML configuration file (default: ${CONFIG_ENV}, else built-in defaults)",
    )
    parser.add_argument("--log-format", choices=["json", "console"], help="override [log] format")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help="override [log] level"
    )
    return parser


def _serve(args: argparse.Namespace, app: web.Application) -> int:
    server = app[CONFIG].server
    try:
        loop = new_event_loop(server.event_loop)
    except ConfigError as exc:
        print(f"stash2plex: {exc}", file=sys.stderr)
        return 2
    web.run_app(
        app,
        host=server.host,
        port=server.port,
        access_log_class=logs.AccessLogger,
        shutdown_timeout=server.shutdown_timeout_s,
        print=None,
        handle_signals=True,
        loop=loop,
    )
    return 0


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The loop ``serve`` runs on (``[server] event_loop``). uvloop takes a fifth to a
    quarter off the CPU every request costs in the event loop and in aiohttp's transport."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise ConfigError(
                    [
                        "server.event_loop: 'uvloop' is not installed (pip install uvloop; "
                        "there is none for Windows): use 'auto' or 'asyncio'"
                    ]
                ) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _plugins(args: argparse.Namespace, app: web.Application) -> int:
    infos = app[PLUGINS].describe()
    if args.json:
        print(json.dumps([_info_dict(i) for i in infos], indent=2))
        return 0
    for info in infos:
        dist = f"{info.distribution} {info.version}".strip() or "-"
        print(f"{info.name:<16} {info.status:<8} {dist}")
        if info.hooks:
            print(f"{'':<16} hooks: {', '.join(info.hooks)}")
        if info.error:
            print(f"{'':<16} error: {info.error}")
    return 0


def _info_dict(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "status": info.status,
        "distribution": info.distribution,
        "version": info.version,
        "hooks": info.hooks,
        "error": info.error,
    }


async def _check(args: argparse.Namespace, app: web.Application) -> int:
    config = app[CONFIG]
    print(f"ok   configuration ({config.source})")
    failed = 0
    for info in app[PLUGINS].describe():
        if info.status == "failed":
            failed += 1
            print(f"FAIL plugin {info.name}: {info.error}")
    for plugin, results in await app[HOOKS].checks():
        for result in results:
            failed += not result.ok
            mark = "ok  " if result.ok else "FAIL"
            detail = f": {result.detail}" if result.detail else ""
            print(f"{mark} {plugin}: {result.name}{detail}")
    return 1 if failed else 0


def _show_config(args: argparse.Namespace, app: web.Application) -> int:
    print(json.dumps(app[CONFIG].redacted(), indent=2, default=str))
    return 0


def _core_commands() -> list[CliCommand]:
    return [
        CliCommand(
            name="serve",
            help="run the provider (the main job)",
            add_arguments=lambda p: None,
            run=_serve,
        ),
        CliCommand(
            name="plugins",
            help="list plugins: name, distribution, version, hooks, status",
            add_arguments=lambda p: p.add_argument("--json", action="store_true"),
            run=_plugins,
        ),
        CliCommand(
            name="check",
            help="validate the configuration and run plugin checks",
            add_arguments=lambda p: None,
            run=_check,
        ),
        CliCommand(
            name="config",
            help="print the effective configuration, secrets redacted",
            add_arguments=lambda p: None,
            run=_show_config,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre, rest = _global_parser().parse_known_args(argv)
    # A service's log is its output (stdout, for Docker); other commands keep stdout clean.
    command = next((a for a in rest if not a.startswith("-")), None)
    stream = "stdout" if command == "serve" else "stderr"
    try:
        # [log] first: loggers are configured once, before anything logs.
        raw = config_mod.read_file(pre.config)
        core = config_mod.core_raw(raw, os.environ)
        logs.configure(
            level=pre.log_level or core.log.level,
            fmt=pre.log_format or core.log.format,
            stream=stream,
            batch=command == "serve",
        )
        app = create_app(raw, config_path=pre.config)
    except (ConfigError, PluginError) as exc:
        print(f"stash2plex: {exc}", file=sys.stderr)
        return 2

    parser = argparse.ArgumentParser(
        prog="stash2plex", parents=[_global_parser()], description=_global_parser().description
    )
    parser.add_argument("--version", action="version", version=f"stash2plex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, CliCommand] = {}
    owners: dict[str, str] = {}
    plugin_commands = [("stash2plex", c) for c in _core_commands()]
    plugin_commands += [(p, c) for p, cmds in app[HOOKS].cli_commands() for c in cmds]
    for owner, command in plugin_commands:
        if command.name in commands:
            print(
                f"stash2plex: command {command.name!r} is defined by both "
                f"{owners[command.name]!r} and {owner!r}",
                file=sys.stderr,
            )
            return 2
        commands[command.name], owners[command.name] = command, owner
        command.add_arguments(sub.add_parser(command.name, help=command.help))
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    result = commands[args.command].run(args, app)
    if not isinstance(result, int):
        result = asyncio.run(_await(result))
    return int(result)


async def _await(value: Awaitable[Any]) -> int:
    return int(await value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
