"""kill -9 at random moments of a push run: a real ``stash2plex serve`` process against
the fake Stash and the fake PMS, killed and restarted several times while scenes are
queued and edited; at the end every scene is in Plex as Stash has it, none lost."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp

from stash2plex_plex.fake import FakePMS
from stash2plex_stash_source.fake import FakeStash, generate_library

from .conftest import free_port
from .test_loopback import PLEX_ROOT, STASH_ROOT, _chosen, _plex_path, _tags

AUTH = {"Authorization": "Bearer s3cret"}


def _config(path: Path, port: int, stash: FakeStash, pms: FakePMS) -> Path:
    cfg = path / "stash2plex.toml"
    cfg.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
data_dir = "{path / "data"}"
shutdown_timeout_s = 1

[log]
level = "warning"

[stash]
url = "{stash.url}"
timeout_s = 2.0
index_refresh_s = 0.5

[[path_regex.rules]]
name = "nas"
plex_prefix = "{PLEX_ROOT}"
stash_prefix = "{STASH_ROOT}"

[plex]
url = "{pms.url}"
token = "{pms.token}"
timeout_s = 3.0

[push]
webhook_token = "s3cret"
rate_per_s = 8
ramp_s = 0.2
backoff_s = 0.05
max_backoff_s = 0.3
poll_s = 0.05
""",
        encoding="utf-8",
    )
    return cfg


class Server:
    def __init__(self, cfg: Path, port: int, log: Path) -> None:
        self.cfg, self.port, self.log = cfg, port, log
        self.proc: asyncio.subprocess.Process | None = None
        self.base = f"http://127.0.0.1:{port}"

    async def start(self, session: aiohttp.ClientSession) -> None:
        out = self.log.open("ab")
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "stash2plex",
            "--config",
            str(self.cfg),
            "serve",
            stdout=out,
            stderr=out,
            env={**os.environ, "PYTHONPATH": ""},
        )
        out.close()
        for _ in range(400):
            try:
                async with session.get(f"{self.base}/push/status") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert self.proc.returncode is None, self.log.read_text()[-3000:]
            await asyncio.sleep(0.05)
        raise AssertionError("stash2plex serve never answered: " + self.log.read_text()[-3000:])

    async def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 15)


async def _hook(session: aiohttp.ClientSession, server: Server, scene_id: int) -> None:
    async with session.post(
        f"{server.base}/push/webhook",
        json={"event": "Scene.Update.Post", "id": scene_id},
        headers=AUTH,
    ) as resp:
        assert resp.status == 202


async def _status(session: aiohttp.ClientSession, server: Server) -> dict[str, Any]:
    async with session.get(f"{server.base}/push/status") as resp:
        return await resp.json()


async def test_kill_9_during_a_run_loses_nothing(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    library = generate_library(scenes=80, seed=9)
    async with FakeStash(library) as stash, FakePMS() as pms:
        pms.add_section("1", "Stash", locations=[PLEX_ROOT])
        scenes = _chosen(library, 20)
        item = {s["id"]: pms.add_item("1", "f", files=[_plex_path(s)]).rating_key for s in scenes}
        port = free_port()
        server = Server(_config(tmp_path, port, stash, pms), port, tmp_path / "serve.log")
        async with aiohttp.ClientSession() as session:
            try:
                await server.start(session)
                for scene in scenes:
                    await _hook(session, server, scene["id"])
                for _round in range(3):
                    # Kill at a random moment while the worker pushes (8 items a second).
                    await asyncio.sleep(rng.uniform(0.05, 1.2))
                    await server.kill9()
                    # Stash keeps changing meanwhile: the newest state must win.
                    for scene in rng.sample(scenes, 3):
                        if len(scene["tags"]) > 1:  # scene is the library's own record
                            library.touch(scene["id"], tags=[t["id"] for t in scene["tags"][1:]])
                    await server.start(session)
                    for scene in rng.sample(scenes, 3):
                        await _hook(session, server, scene["id"])
                for _ in range(600):
                    status = await _status(session, server)
                    done = status["pending"] == 0 and status["retrying"] == 0
                    if done and all(
                        pms.items[item[s["id"]]].tags.get("genre") == _tags(library.scenes[s["id"]])
                        for s in scenes
                    ):
                        break
                    await asyncio.sleep(0.05)
                else:
                    raise AssertionError(f"seed {seed}: not every scene reached Plex: {status}")
                assert status["dead"] == 0, f"seed {seed}: {status}"
            finally:
                await server.stop()
