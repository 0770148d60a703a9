"""Push N scenes to a fake PMS through plex_push, beside the bare cost of the same edits.

    .venv/bin/python bench/push.py                  # 10k scenes
    .venv/bin/python bench/push.py --scenes 500     # a quick look

The fake PMS (``stash2plex_plex.fake``) runs in its own process and counts every request
it gets. The push side is a real host app (the plex plugin through plexapi, plex_push's
queue file, worker and ledger) served on loopback for its own artwork route; scenes come
from an in-memory source plugin, so Stash's cost is not measured here. Phases:

1. ``new``: every scene queued once, none pushed before: fields, lists and both
   artworks go out.
2. ``unchanged``: every scene queued again with nothing changed (target: 0 requests).
3. ``changed``: every scene's summary and one tag edited, artwork untouched (target: one
   edit, no upload).

And two baselines in the same run:

* ``bare``: ``requests`` sends one edit ``PUT`` per item straight to the fake PMS (no
  queue, no lookup, no ledger, no plexapi): the floor for N edits over HTTP in Python.
* ``queue``: the queue file alone: enqueue N, then take, finish and record each job
  (``synchronous=FULL``, the same calls the worker makes): the queue's overhead per job.

Printed: scenes/s per phase, Plex requests per scene by kind, the ratio new-phase
scenes/s / bare edits/s, queue overhead per job, and the push process's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

TOKEN = "bench-token"
ROOT = "/media/plex"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the fake PMS, in a process of its own ---------------------------------------------


async def _serve(scenes: int) -> None:
    from stash2plex_plex.fake import FakePMS

    async with FakePMS(token=TOKEN) as pms:
        pms.add_section("1", "Stash", locations=[ROOT])
        for n in range(scenes):
            pms.add_item("1", f"file {n}", files=[f"{ROOT}/scene-{n:06d}.mp4"])
        print(pms.url, flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "quit":
                return
            if line.strip() == "stats":
                kinds = Counter(f"{r.method} {_kind(r.path)}" for r in pms.requests)
                print(json.dumps(kinds), flush=True)
                pms.requests.clear()


def _kind(path: str) -> str:
    if path.endswith(("/posters", "/arts")):
        return "upload"
    if path.startswith("/library/sections/") and path.endswith("/all"):
        return "listing/edit"
    if path.startswith("/library/metadata/"):
        return "item"
    return path


class Pms:
    def __init__(self, scenes: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(scenes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def stats(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=30)


# --- the push side ---------------------------------------------------------------------


class BenchSource:
    """Scenes as Metadata from memory, their files, and their artwork under /images."""

    def __init__(self, scenes: int) -> None:
        self.scenes = scenes
        self.version = 1

    def metadata(self, rating_key: str) -> Any:
        from stash2plex import Image, Metadata, Role, Tag

        n = int(rating_key.split("-")[1])
        tags = [f"Tag {n % 50}", f"Tag {(n * 7) % 50}", f"Tag {(n * 13) % 50}"]
        if self.version > 1:
            tags[0] = f"Tag {(n + self.version) % 50}"
        return Metadata(
            rating_key=rating_key,
            title=f"Scene {n}",
            summary=f"About scene {n}, edit {self.version}",
            originally_available_at="2024-05-06",
            studio=f"Studio {n % 97}",
            content_rating="XXX",
            tagline=f"S{n:05d}",
            genres=[Tag(tag=t) for t in tags],
            roles=[Role(tag=f"Performer {n % 300}"), Role(tag=f"Performer {(n * 3) % 300}")],
            collections=[Tag(tag=f"Studio {n % 97}")],
            user_rating=float(n % 11),
            images=[
                Image(type="coverPoster", url=f"/images/bench/{n}/poster"),
                Image(type="background", url=f"/images/bench/{n}/art"),
            ],
        )

    def plugin(self) -> Any:
        from aiohttp import web

        from stash2plex import CatalogScene, PathDirection, hookimpl

        source = self

        class Catalog:
            ready = True

            async def scenes(self):  # pragma: no cover - unused here
                for n in range(source.scenes):
                    yield CatalogScene(rating_key=f"stash-{n}", title=f"Scene {n}")

            async def scene(self, rating_key: str) -> CatalogScene:
                n = int(rating_key.split("-")[1])
                return CatalogScene(
                    rating_key=rating_key, title="", files=(f"/data/stash/scene-{n:06d}.mp4",)
                )

        catalog = Catalog()

        class Plugin:
            @hookimpl
            def build_metadata(self, rating_key: str) -> Any:
                return source.metadata(rating_key)

            @hookimpl
            def scene_catalog(self) -> Any:
                return catalog

            @hookimpl
            def map_path(self, path: str, direction: PathDirection) -> str | None:
                if direction is PathDirection.STASH_TO_PLEX:
                    return ROOT + path[len("/data/stash") :]
                return None

            @hookimpl
            def routes(self) -> list[web.AbstractRouteDef]:
                async def image(request: web.Request) -> web.Response:
                    body = (request.path * 64).encode()[:4096]  # 4 KiB, distinct per URL
                    return web.Response(body=body, content_type="image/jpeg")

                return [web.get("/images/bench/{n}/{kind}", image)]

        return Plugin()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _push(pms: Pms, scenes: int, data_dir: Path) -> dict[str, Any]:
    from aiohttp import web

    import stash2plex_plex.plugin as plex_plugin
    import stash2plex_plex_push.plugin as push_plugin
    from stash2plex import HOOKS, create_app, logs
    from stash2plex_plex_push.service import get_service

    logs.configure(level="warning", fmt="json")
    source = BenchSource(scenes)
    port = _free_port()
    app = create_app(
        {
            "server": {"host": "127.0.0.1", "port": port, "data_dir": str(data_dir)},
            "plex": {"url": pms.url, "token": TOKEN, "timeout_s": 30.0},
            "push": {"rate_per_s": 0, "poll_s": 0.05, "webhook_token": "bench"},
        },
        plugins=[("plex", plex_plugin), ("plex_push", push_plugin), ("bench", source.plugin())],
        load_entrypoints=False,
        env={},
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        library = await app[HOOKS].plex_library()
        assert library is not None
        await library.refresh_index()  # type: ignore[attr-defined]
        pms.stats()  # the index read is not push's cost
        service = get_service(app)
        keys = [f"stash-{n}" for n in range(scenes)]
        out: dict[str, Any] = {}
        for phase in ("new", "unchanged", "changed"):
            if phase == "changed":
                source.version = 2
            worker = service.worker
            done_before = worker.pushed + worker.unchanged
            started = time.perf_counter()
            await service.enqueue(keys, f"bench:{phase}")
            while True:
                counts = await service.store.call(service.store.store.counts)
                finished = worker.pushed + worker.unchanged >= done_before + scenes
                if finished and not (counts.pending or counts.retrying):
                    break
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - started
            await asyncio.sleep(2.5)  # the plex plugin re-reads written items: count them too
            requests = pms.stats()
            out[phase] = {
                "seconds": round(elapsed, 2),
                "scenes_per_s": round(scenes / elapsed, 1),
                "requests_per_scene": {
                    k: round(v / scenes, 3) for k, v in sorted(requests.items())
                },
                "dead": counts.dead,
            }
        out["webhook_ms"] = await _webhook(port, min(scenes, 500))
        out["peak_rss_mb"] = round(_peak_mb(), 1)
        return out
    finally:
        await runner.cleanup()


async def _webhook(port: int, events: int) -> dict[str, float]:
    """Milliseconds from a webhook POST to its 202 (the row flushed to disk), as the
    Stash companion plugin sees it: p50 and p99 over ``events`` sequential events."""
    import aiohttp

    times = []
    async with aiohttp.ClientSession() as session:
        for n in range(events):
            started = time.perf_counter()
            async with session.post(
                f"http://127.0.0.1:{port}/push/webhook",
                json={"event": "Scene.Update.Post", "id": n},
                headers={"Authorization": "Bearer bench"},
            ) as resp:
                assert resp.status == 202
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"p50": round(times[len(times) // 2], 2), "p99": round(times[len(times) * 99 // 100], 2)}


# --- the baselines ---------------------------------------------------------------------


def _bare(pms: Pms, scenes: int) -> float:
    """Edits per second: one PUT per item, straight to the fake PMS."""
    from urllib.parse import quote

    import requests

    session = requests.Session()
    started = time.perf_counter()
    for n in range(scenes):
        query = (
            f"type=1&id={101 + n}&title.value={quote(f'Scene {n}')}&title.locked=1"
            f"&summary.value={quote(f'About scene {n}')}&genre%5B0%5D.tag.tag={quote(f'Tag {n}')}"
        )
        response = session.put(
            f"{pms.url}/library/sections/1/all?{query}",
            headers={"X-Plex-Token": TOKEN},
            timeout=30,
        )
        response.raise_for_status()
    elapsed = time.perf_counter() - started
    pms.stats()
    return scenes / elapsed


def _queue(scenes: int, data_dir: Path) -> float:
    """Seconds per job of the queue file's own work."""
    from stash2plex_plex_push.store import LedgerLine, Store

    store = Store(data_dir / "bench-queue.sqlite3")
    started = time.perf_counter()
    store.enqueue([f"stash-{n}" for n in range(scenes)], "bench")
    while (job := store.next_job(time.time())) is not None:
        store.ledger_line(job.rating_key)
        line = LedgerLine(
            rating_key=job.rating_key, plex_rating_key="1", pushed_at=time.time(),
            digest="0" * 64, written="{}",
        )  # fmt: skip
        store.done(job, line)
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed / scenes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(_serve(args.serve))
        return 0
    pms = Pms(args.scenes)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bare = _bare(pms, args.scenes)
            per_job = _queue(args.scenes, Path(tmp))
            push = asyncio.run(_push(pms, args.scenes, Path(tmp) / "data"))
    finally:
        pms.close()
    print(f"push of {args.scenes} scenes to a fake PMS")
    for phase in ("new", "unchanged", "changed"):
        p = push[phase]
        print(
            f"  {phase:<10} {p['scenes_per_s']:>8} scenes/s  ({p['seconds']} s, dead {p['dead']})"
        )
        for kind, per_scene in p["requests_per_scene"].items():
            print(f"  {'':<10} {per_scene:>8} {kind} requests per scene")
    print(f"  bare       {bare:>8.1f} edits/s (one PUT per item, requests, no queue)")
    print(
        f"  ratio      {push['new']['scenes_per_s'] / bare:>8.2f} new-phase scenes/s / bare edits/s"
    )
    print(f"  queue      {per_job * 1000:>8.3f} ms per job (enqueue, take, ledger, done)")
    hook = push["webhook_ms"]
    print(f"  webhook    {hook['p50']:>8} ms p50, {hook['p99']} ms p99 to the 202 (row on disk)")
    print(f"  peak RSS   {push['peak_rss_mb']:>8} MB (push process)")
    print(
        json.dumps(
            {
                "scenes": args.scenes,
                "bare_edits_per_s": round(bare, 1),
                "queue_ms_per_job": round(per_job * 1000, 3),
                **push,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
