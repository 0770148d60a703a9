"""Each hook, exercised through the host: dispatch order, async, failures, lifecycles."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from aiohttp import web
from attrs import define

from stash2plex import (
    HOOKS,
    Candidate,
    CheckResult,
    ConfigSection,
    Gap,
    GapKind,
    HealthReport,
    MatchRequest,
    Metadata,
    PathDirection,
    hookimpl,
    logs,
)
from stash2plex.app import CONFIG
from stash2plex.config import ConfigError
from stash2plex.plugins import PluginError


def _meta(key: str) -> Metadata:
    return Metadata(rating_key=key, title=key)


async def test_hook_map_path_first_non_none_wins_and_async_none_never_wins(make_app):
    calls: list[str] = []

    class AsyncNone:
        @hookimpl(tryfirst=True)
        async def map_path(self, path, direction):
            calls.append("async-none")
            return None  # a coroutine is not None; the host must await before judging

    class Sync:
        @hookimpl
        def map_path(self, path, direction, app):
            calls.append("sync")
            assert app is not None
            return f"/stash{path}" if direction is PathDirection.PLEX_TO_STASH else None

    class Never:
        @hookimpl(trylast=True)
        def map_path(self, path):
            calls.append("never")
            return "/wrong"

    app = make_app(plugins=[("never", Never()), ("sync", Sync()), ("async_none", AsyncNone())])
    hooks = app[HOOKS]
    assert await hooks.map_path("/a.mp4", PathDirection.PLEX_TO_STASH) == "/stash/a.mp4"
    assert calls == ["async-none", "sync"]
    calls.clear()
    assert await hooks.map_path("/a.mp4", PathDirection.STASH_TO_PLEX) == "/wrong"
    assert calls == ["async-none", "sync", "never"]


async def test_hook_map_path_none_everywhere_is_none(make_app):
    app = make_app()
    assert await app[HOOKS].map_path("/x", PathDirection.PLEX_TO_STASH) is None


async def test_hook_resolve_match_collects_all_sources_and_survives_a_crash(make_app, capsys):
    class A:
        @hookimpl
        async def resolve_match(self, request):
            return [Candidate(metadata=_meta("a-1"), score=90)]

    class B:
        @hookimpl
        def resolve_match(self, request, app):
            return [Candidate(metadata=_meta("b-1"), score=70, reason="title")]

    class Crash:
        @hookimpl
        async def resolve_match(self, request):
            raise RuntimeError("source exploded")

    app = make_app(plugins=[("a", A()), ("b", B()), ("crash", Crash())])
    found = await app[HOOKS].resolve_match(MatchRequest(title="x"))
    assert sorted((c.metadata.rating_key, c.source) for c in found) == [("a-1", "a"), ("b-1", "b")]
    out = capsys.readouterr().out
    assert '"plugin":"crash"' in out and "source exploded" in out


async def test_hook_build_metadata_first_owner_wins(make_app):
    class Owner:
        @hookimpl
        async def build_metadata(self, rating_key):
            return _meta(rating_key) if rating_key.startswith("own-") else None

    class Other:
        @hookimpl
        def build_metadata(self, rating_key):
            return _meta("other") if rating_key == "own-1" else None

    app = make_app(plugins=[("other", Other()), ("owner", Owner())])
    plugin, item = await app[HOOKS].build_metadata("own-2")
    assert (plugin, item.rating_key) == ("owner", "own-2")
    assert await app[HOOKS].build_metadata("nobody") is None


async def test_hook_on_unmatched_is_broadcast(make_app):
    seen: list[str] = []

    class One:
        @hookimpl
        async def on_unmatched(self, request, candidates):
            seen.append(f"one:{request.filename}:{len(candidates)}")

    class Two:
        @hookimpl
        def on_unmatched(self, request, app):
            seen.append(f"two:{request.filename}")

    app = make_app(plugins=[("one", One()), ("two", Two())])
    await app[HOOKS].on_unmatched(MatchRequest(filename="f.mp4"), [])
    assert sorted(seen) == ["one:f.mp4:0", "two:f.mp4"]


async def test_hook_on_gap_is_broadcast(make_app):
    gaps: list[Gap] = []

    class Push:
        @hookimpl
        async def on_gap(self, gap, app):
            gaps.append(gap)

    app = make_app(plugins=[("push", Push())])
    gap = Gap(kind=GapKind.STASH_ONLY, stash_path="/data/a.mp4", scene_id="1")
    await app[HOOKS].on_gap(gap)
    assert gaps == [gap]


@define
class DemoConfig:
    url: str = "http://localhost:9999"
    retries: int = 3
    enabled: bool = True


class WithSection:
    @hookimpl
    def config_section(self):
        return ConfigSection(name="demo", cls=DemoConfig)


def test_hook_config_section_is_structured_strictly(make_app):
    app = make_app({"demo": {"retries": 5}}, plugins=[("demo", WithSection())])
    assert app[CONFIG].section("demo") == DemoConfig(retries=5)
    with pytest.raises(ConfigError) as err:
        make_app(
            {"demo": {"retries": "5", "enabled": "false", "nope": 1}},
            plugins=[("demo", WithSection())],
        )
    problems = err.value.problems
    assert "demo.retries: expected int, got str '5'" in problems
    assert "demo.enabled: expected bool, got str 'false'" in problems
    assert "demo.nope: unknown key" in problems


def test_hook_config_section_env_override(make_app):
    env = {"STASH2PLEX_DEMO__RETRIES": "7", "STASH2PLEX_DEMO__ENABLED": "false"}
    app = make_app(plugins=[("demo", WithSection())], env=env)
    assert app[CONFIG].section("demo") == DemoConfig(retries=7, enabled=False)


def test_hook_config_section_name_clash_is_refused(make_app):
    class Again(WithSection):
        pass

    with pytest.raises(PluginError, match=r"\[demo\]"):
        make_app(plugins=[("demo", WithSection()), ("again", Again())])


async def test_hook_routes_are_served(aiohttp_client, make_app):
    class Routes:
        @hookimpl
        def routes(self, app):
            async def hello(request):
                return web.json_response({"hello": request.app[CONFIG].provider.title})

            return [web.get("/hello", hello)]

    client = await aiohttp_client(make_app(plugins=[("r", Routes())]))
    assert await (await client.get("/hello")).json() == {"hello": "Stash"}


async def test_hook_cleanup_ctx_runs_around_the_app(aiohttp_server, make_app):
    events: list[str] = []

    class Life:
        @hookimpl
        def cleanup_ctx(self, app):
            async def ctx(app):
                events.append("start")
                yield
                events.append("stop")

            return ctx

    server = await aiohttp_server(make_app(plugins=[("life", Life())]))
    assert events == ["start"]
    await server.close()
    assert events == ["start", "stop"]


def test_hook_cli_commands_become_sub_commands(tmp_path):
    # A subprocess, so the real entry points and argparse wiring are used end to end.
    script = f"""
import sys
from stash2plex import CliCommand, cli_command, hookimpl, cli, app as app_mod

class Hello:
    @hookimpl
    def cli_commands(self):
        return [CliCommand(name="hello", help="say hello",
                           add_arguments=lambda p: p.add_argument("who"),
                           run=lambda args, app: print("hello", args.who,
                                                       cli_command(app)) or 3)]

real = app_mod.create_app
def create_app(*args, **kw):
    return real(plugins=[("hello", Hello())], load_entrypoints=False,
                raw_config={{"server": {{"data_dir": {str(tmp_path)!r}}}}})
cli.create_app = create_app
sys.exit(cli.main(["hello", "world"]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert "hello world hello" in done.stdout  # cli_command(app): the command it runs


async def test_hook_checks_are_collected(make_app):
    class Checks:
        @hookimpl
        async def checks(self, app):
            return [CheckResult(name="stash reachable", ok=False, detail="refused")]

    app = make_app(plugins=[("c", Checks())])
    results = await app[HOOKS].checks()
    assert results == [("c", [CheckResult(name="stash reachable", ok=False, detail="refused")])]


async def test_hook_health_is_collected(make_app):
    class Health:
        @hookimpl
        def health(self):
            return HealthReport(ready=True, details={"x": 1})

    app = make_app(plugins=[("h", Health())])
    assert await app[HOOKS].health() == [("h", HealthReport(ready=True, details={"x": 1}))]


def test_hook_wrappers_are_refused(make_app):
    class Wrapper:
        @hookimpl(wrapper=True)
        def resolve_match(self, request):
            return (yield)

    with pytest.raises(PluginError, match="wrappers"):
        make_app(plugins=[("w", Wrapper())])


async def test_background_broadcast_does_not_block(make_app):
    release = asyncio.Event()

    class Slow:
        @hookimpl
        async def on_unmatched(self, request):
            await release.wait()

    app = make_app(plugins=[("slow", Slow())])
    task = asyncio.create_task(app[HOOKS].on_unmatched(MatchRequest(), []))
    await asyncio.sleep(0)
    assert not task.done()
    release.set()
    await task


def test_sync_registration_hooks_must_not_be_async(make_app):
    class Bad:
        @hookimpl
        async def routes(self, app):
            return []

    with pytest.raises(PluginError, match="routes must be a plain def, not async"):
        make_app(plugins=[("bad", Bad())])


async def test_a_wrong_answer_from_a_first_result_hook_lets_the_next_plugin_answer(make_app):
    class Wrong:
        @hookimpl(tryfirst=True)
        def build_metadata(self, rating_key):
            return {"title": "not a Metadata"}

        @hookimpl(tryfirst=True)
        def map_path(self, path):
            return 42

    class Right:
        @hookimpl
        def build_metadata(self, rating_key):
            return Metadata(rating_key=rating_key, title="A")

        @hookimpl
        def map_path(self, path):
            return "/mapped"

    hooks = make_app(plugins=[("right", Right()), ("wrong", Wrong())])[HOOKS]
    assert await hooks.build_metadata("x-1") == ("right", Metadata(rating_key="x-1", title="A"))
    assert await hooks.map_path("/a", PathDirection.PLEX_TO_STASH) == "/mapped"


@pytest.mark.parametrize("hook", ["config_section", "routes", "cleanup_ctx"])
def test_a_raising_registration_hook_stops_the_build_naming_plugin_and_hook(make_app, hook):
    def broken(*_args):
        raise RuntimeError("no database configured")

    plugin = type("Broken", (), {hook: staticmethod(hookimpl(broken))})
    with pytest.raises(PluginError) as info:
        make_app(plugins=[("broken", plugin())])
    assert str(info.value) == (
        f"plugin 'broken' failed in hook {hook}: RuntimeError: no database configured"
    )


async def test_hook_calls_are_timed_at_debug_only(make_app, capsys):
    class Sync:
        @hookimpl
        def map_path(self, path):
            return "/mapped"

    app = make_app(plugins=[("sync", Sync())])
    capsys.readouterr()
    await app[HOOKS].map_path("/a", PathDirection.PLEX_TO_STASH)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    called = [line for line in lines if line["event"] == "plugin.hook_called"]
    assert called and called[0]["plugin"] == "sync" and called[0]["answered"] is True
    assert called[0]["duration_ms"] >= 0

    logs.configure(level="info", fmt="json", cache=False)
    await app[HOOKS].map_path("/a", PathDirection.PLEX_TO_STASH)
    assert "plugin.hook_called" not in capsys.readouterr().out


async def test_hook_implementations_follow_registration(make_app):
    """The host remembers each hook's implementations (a scan calls them hundreds of
    times a second), but a plugin registered later is still called."""
    app = make_app()
    hooks = app[HOOKS]
    assert await hooks.map_path("/a", PathDirection.PLEX_TO_STASH) is None
    assert not hooks.implemented("map_path")

    class Late:
        @hookimpl
        def map_path(self, path):
            return "/late"

    hooks.pm.register(Late(), name="late")
    assert hooks.implemented("map_path")
    assert await hooks.map_path("/a", PathDirection.PLEX_TO_STASH) == "/late"
    hooks.pm.unregister(name="late")
    assert await hooks.map_path("/a", PathDirection.PLEX_TO_STASH) is None
