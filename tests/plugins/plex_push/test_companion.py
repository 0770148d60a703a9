"""The Stash companion plugin, run as Stash runs it (a subprocess, its input as JSON on
stdin) against the real webhook; its settings read from a Stash-like GraphQL endpoint."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import stash2plex_plex_push
from stash2plex_plex_push.store import Store

COMPANION = Path(stash2plex_plex_push.__file__).parent / "companion"
SCRIPT = COMPANION / "stash2plex_push.py"


class StashSettings:
    """Answers the one query the script sends to Stash: this plugin's settings."""

    def __init__(self, url: str, token: str) -> None:
        self.settings = {"url": url, "token": token}
        self.cookies: list[str | None] = []

    async def graphql(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.cookies.append(request.cookies.get("session"))
        assert "configuration" in body["query"]
        assert body["variables"] == {"ids": ["stash2plex_push"]}
        return web.json_response(
            {"data": {"configuration": {"plugins": {"stash2plex_push": self.settings}}}}
        )


async def _run(stdin: dict[str, Any], *, plain: bool = False) -> dict[str, Any]:
    # plain: without site-packages, so without stashapp-tools (the degraded path)
    flags = ["-S"] if plain else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *flags,
        str(SCRIPT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(stdin).encode()), 30)
    assert proc.returncode == 0, err
    return json.loads(out.decode().strip().splitlines()[-1])


def _input(stash: TestServer, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "server_connection": {
            "Scheme": "http",
            "Host": "127.0.0.1",
            "Port": stash.port,
            "SessionCookie": {"Name": "session", "Value": "cookie-from-stash"},
            "Dir": "/root/.stash",
            "PluginDir": str(COMPANION),
        },
        "args": args,
    }


@pytest.fixture
async def stash_and_host(push_app, serve, tmp_path):
    app = push_app({"enabled": False})  # no worker: the queued rows stay to be looked at
    host = await serve(app)
    stash, settings = await _stash_for(host)
    yield stash, settings, Store(tmp_path / "data" / "push-queue.sqlite3")
    await stash.close()


async def _stash_for(host: Any) -> tuple[TestServer, StashSettings]:
    """A Stash stand-in whose plugin settings name ``host`` and the token ``s3cret``."""
    settings = StashSettings(str(host.make_url("")).rstrip("/"), "s3cret")
    stash_app = web.Application()
    stash_app.router.add_post("/graphql", settings.graphql)
    stash = TestServer(stash_app, host="127.0.0.1")
    await stash.start_server()
    return stash, settings


@pytest.mark.parametrize("plain", [False, True], ids=["stashapi", "stdlib-only"])
async def test_hook_events_reach_the_queue(stash_and_host, plain):
    stash, settings, store = stash_and_host
    for event, scene in [
        ("Scene.Update.Post", 45),
        ("Scene.Create.Post", 46),
        ("Scene.Destroy.Post", 47),
    ]:
        hook = {"type": event, "id": scene, "input": {"id": str(scene)}, "inputFields": ["id"]}
        answer = await _run(_input(stash, {"hookContext": hook}), plain=plain)
        assert answer == {"output": f"queued scene {scene} ({event})"}
    jobs = {j.rating_key: j for j in store.jobs()}
    assert set(jobs) == {"stash-45", "stash-46", "stash-47"}
    assert jobs["stash-47"].destroyed
    assert settings.cookies == ["cookie-from-stash"] * 3


async def test_tasks_queue_sweeps(stash_and_host):
    stash, _settings, store = stash_and_host
    for mode in ("push_all", "push_recent_24h", "push_recent_7d"):
        answer = await _run(_input(stash, {"mode": mode}))
        assert "error" not in answer, answer
    assert [s.since is None for s in store.sweeps()] == [True, False, False]
    # No gap_scheduler in this host: the task says what to do instead.
    answer = await _run(_input(stash, {"mode": "scan_gaps"}))
    assert "gap_scheduler" in answer["error"]


async def test_the_scan_for_gaps_task_starts_a_scan(make_app, serve):
    # A host with gap detection, its scan_token the companion's one token.
    from stash2plex_gap_scheduler import plugin as gaps_plugin

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(
        {
            "server": {"host": "127.0.0.1", "port": port},
            "gaps": {"interval": "0", "scan_token": "s3cret"},
        },
        plugins=[("gap_scheduler", gaps_plugin)],
    )
    stash, _settings = await _stash_for(await serve(app))
    try:
        answer = await _run(_input(stash, {"mode": "scan_gaps"}))
    finally:
        await stash.close()
    assert answer["output"].startswith("scan_gaps: ") and '"started"' in answer["output"]


async def test_a_wrong_token_is_reported_to_stash(stash_and_host):
    stash, settings, store = stash_and_host
    settings.settings["token"] = "wrong"
    hook = {"type": "Scene.Update.Post", "id": 1}
    answer = await _run(_input(stash, {"hookContext": hook}))
    assert "401" in answer["error"]
    assert store.jobs() == []


def test_the_manifest_declares_the_hooks_and_tasks() -> None:
    manifest = (COMPANION / "stash2plex_push.yml").read_text()
    lines = [line.strip() for line in manifest.splitlines()]
    assert "interface: raw" in lines
    assert '- "{pluginDir}/stash2plex_push.py"' in lines
    for event in ("Scene.Update.Post", "Scene.Create.Post", "Scene.Destroy.Post"):
        assert f"- {event}" in lines
    modes = [line.split(":", 1)[1].strip() for line in lines if line.startswith("mode:")]
    assert modes == ["push_all", "push_recent_24h", "push_recent_7d", "scan_gaps"]
