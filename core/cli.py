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
import urllib.error
import urllib.request
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
from .server import run_app
from .state import RUNTIME

CONFIG_ENV = "STASH2PLEX_CONFIG"
log = logs.get_logger("stash2plex.cli")


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """``--config``, ``--log-format``, ``--log-level``: accepted before the sub-command and
    after it (``suppress``: a sub-command's copy sets nothing unless given)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    from_env = os.environ.get(CONFIG_ENV)
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        default=default(Path(from_env) if from_env else None),
        help=f"the TOML configuration file (default: ${CONFIG_ENV}, else built-in defaults)",
    )
    parser.add_argument(
        "--log-format",
        choices=["json", "console"],
        default=default(None),
        help="override [log] format: json lines for collectors, console for people",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default=default(None),
        help="override [log] level",
    )


def _global_parser() -> argparse.ArgumentParser:
    # allow_abbrev off: a sub-command's own --log... must not be read as one of these.
    parser = argparse.ArgumentParser(
        prog="stash2plex",
        description="Plex custom metadata provider backed by Stash.",
        add_help=False,
        allow_abbrev=False,
    )
    _add_global_options(parser)
    return parser


def _serve(args: argparse.Namespace, app: web.Application) -> int:
    server = app[CONFIG].server
    # Checked before listening, so a bad data_dir is one line, not a failed start-up.
    config_mod.prepare_data_dir(app[CONFIG].data_dir)
    loop = new_event_loop(server.event_loop)

    async def stopping(_app: web.Application) -> None:
        log.info("provider.stopping")

    app.on_shutdown.append(stopping)
    try:
        run_app(
            app,
            host=server.host,
            port=server.port,
            shutdown_timeout=server.shutdown_timeout_s,
            loop=loop,
        )
    except OSError as exc:  # the port is taken, or the address is not this host's
        print(
            f"stash2plex: cannot listen on {server.host}:{server.port}: {exc.strerror or exc} "
            f"(server.host, server.port)",
            file=sys.stderr,
        )
        return 2
    log.info("provider.stopped")
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
    try:
        config_mod.prepare_data_dir(config.data_dir, create=False)
    except ConfigError as exc:
        failed += 1
        print(f"FAIL {exc.problems[0]}")
    else:
        print(f"ok   data directory {config.data_dir} (writable)")
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


def _healthcheck(args: argparse.Namespace, app: web.Application) -> int:
    server = app[CONFIG].server
    # A wildcard address is not one to connect to: this host's loopback answers for it.
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(server.host, server.host)
    url = f"http://{f'[{host}]' if ':' in host else host}:{server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {url}: {getattr(exc, 'reason', None) or exc}")
        return 1
    print(f"{'healthy' if status == 200 else 'unhealthy'}: {url} answered {status}")
    return 0 if status == 200 else 1


def _show_config(args: argparse.Namespace, app: web.Application) -> int:
    print(json.dumps(app[CONFIG].redacted(), indent=2, default=str))
    return 0


def _core_commands() -> list[CliCommand]:
    return [
        CliCommand(
            name="serve",
            help="run the provider (the main job)",
            description="Run the provider until SIGTERM or Ctrl+C: JSON log lines on stdout, "
            "[server] host and port from the configuration.",
            run=_serve,
        ),
        CliCommand(
            name="plugins",
            help="list plugins: name, distribution, version, hooks, status",
            add_arguments=lambda p: p.add_argument(
                "--json", action="store_true", help="print a JSON list instead of a table"
            ),
            run=_plugins,
        ),
        CliCommand(
            name="check",
            help="validate the configuration and run plugin checks",
            description="Validate the configuration, the data directory and each plugin's "
            "own checks (Stash reachable, path rules). Exit 0 all ok, 1 a check failed, 2 the "
            "configuration is unusable.",
            run=_check,
        ),
        CliCommand(
            name="config",
            help="print the effective configuration, secrets redacted",
            run=_show_config,
        ),
        CliCommand(
            name="healthcheck",
            help="ask the running provider's /healthz (for Docker's HEALTHCHECK)",
            description="GET /healthz of the provider this configuration describes ([server] "
            "host and port; a wildcard host means loopback). Exit 0 when it answers 200.",
            add_arguments=lambda p: p.add_argument(
                "--timeout",
                type=float,
                default=4.0,
                help="seconds to wait for the answer (4)",
            ),
            run=_healthcheck,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except (ConfigError, PluginError) as exc:
        # An operator's mistake (a bad key, a data_dir that cannot be written, a
        # directory where the TOML file should be): one line, never a traceback.
        print(f"stash2plex: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`stash2plex config | head`): nothing left to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str]) -> int:
    pre, rest = _global_parser().parse_known_args(argv)
    # A service's log is its output (stdout, for Docker); other commands keep stdout clean.
    command = next((a for a in rest if not a.startswith("-")), None)
    stream = "stdout" if command == "serve" else "stderr"
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

    parser, commands = build_parser(app)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if args.command != "serve":
        app[RUNTIME].command = args.command  # read by plugins' start-up: cli_command()
    result = commands[args.command].run(args, app)
    if not isinstance(result, int):
        result = asyncio.run(_await(result))
    return int(result)


def build_parser(
    app: web.Application,
) -> tuple[argparse.ArgumentParser, dict[str, CliCommand]]:
    """The whole command line: the core's sub-commands and every plugin's, each with the
    global options too. PluginError when two define the same name."""
    # No abbreviations anywhere: the global options are read before this parser exists
    # (they choose the configuration), by a parser that takes none.
    parser = argparse.ArgumentParser(
        prog="stash2plex",
        parents=[_global_parser()],
        description=_global_parser().description,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"stash2plex {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands: dict[str, CliCommand] = {}
    owners: dict[str, str] = {}
    plugin_commands = [("stash2plex", c) for c in _core_commands()]
    plugin_commands += [(p, c) for p, cmds in app[HOOKS].cli_commands() for c in cmds]
    for owner, command in plugin_commands:
        if command.name in commands:
            raise PluginError(
                f"command {command.name!r} is defined by both "
                f"{owners[command.name]!r} and {owner!r}"
            )
        commands[command.name], owners[command.name] = command, owner
        subparser = sub.add_parser(
            command.name,
            help=command.help,
            description=command.description or _sentence(command.help),
            allow_abbrev=False,
        )
        command.add_arguments(subparser)
        _add_global_options(subparser.add_argument_group("global options"), suppress=True)
    return parser, commands


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


async def _await(value: Awaitable[Any]) -> int:
    return int(await value)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
