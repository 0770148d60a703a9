"""Read a big Plex library through the plex plugin, beside the bare cost of the same pages.

    .venv/bin/python bench/plex_read.py                    # 10k and 100k items
    .venv/bin/python bench/plex_read.py --items 20000 --rounds 1

A fake PMS (``stash2plex_plex.fake``) serves the library from its own process. Each
measurement is a fresh process, so its peak RSS is its own:

* ``bare``: ``requests`` fetches every page (same URL, same ``X-Plex-Container-*``
  headers, same page size) and ElementTree parses it; each item's element is looked at
  and dropped. The floor for reading these pages in Python.
* ``plugin``: the plex plugin in a started host app reads the whole library into its
  item index (through plexapi on its worker thread, parsed into records), as at start-up.

Printed per size: wall seconds, CPU seconds (user + system, of the reading process only:
steadier than wall time on a shared machine) and peak RSS of each, and the ratios plugin
/ bare (target: time within 2x). Each side's best of ``--rounds`` runs, after a warm-up
read, so the fake's own first rendering counts for no one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from xml.etree.ElementTree import fromstring

PAGE = 500
TOKEN = "bench-token"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _serve(items: int) -> None:
    from stash2plex_plex.fake import FakePMS

    async with FakePMS(token=TOKEN) as pms:
        pms.add_section("1", "Stash", locations=["/data/stash"])
        pms.generate("1", items)
        print(pms.url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def _bare(url: str) -> dict[str, float]:
    import requests

    started, cpu = time.perf_counter(), _cpu_s()
    session = requests.Session()
    seen = 0
    start = 0
    while True:
        response = session.get(
            f"{url}/library/sections/1/all?type=1&includeGuids=1",
            headers={
                "X-Plex-Token": TOKEN,
                "X-Plex-Container-Start": str(start),
                "X-Plex-Container-Size": str(PAGE),
            },
            timeout=60,
        )
        response.raise_for_status()
        container = fromstring(response.content)
        for video in container:
            seen += video.get("ratingKey") is not None
        start += PAGE
        if start >= int(container.get("totalSize", "0")):
            break
    return {
        "seconds": time.perf_counter() - started,
        "cpu_s": _cpu_s() - cpu,
        "peak_rss_mb": _peak_mb(),
        "items": seen,
    }


async def _plugin(url: str) -> dict[str, float]:
    from stash2plex import HOOKS, create_app, started
    from stash2plex_plex import plugin

    with tempfile.TemporaryDirectory() as data:
        app = create_app(
            {
                "server": {"data_dir": data},
                "log": {"level": "warning"},
                "plex": {"url": url, "token": TOKEN, "page_size": PAGE, "timeout_s": 60},
            },
            plugins=[("plex", plugin)],
            load_entrypoints=False,
            env={},
        )
        begun, cpu = time.perf_counter(), _cpu_s()
        async with started(app):
            library = await app[HOOKS].plex_library()
            await library.refresh_index()  # type: ignore[union-attr]
            seconds, cpu = time.perf_counter() - begun, _cpu_s() - cpu
            items = library.state().items  # type: ignore[union-attr]
        return {"seconds": seconds, "cpu_s": cpu, "peak_rss_mb": _peak_mb(), "items": items}


def _measure(kind: str, url: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--measure", kind, "--url", url],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _run(sizes: list[int], rounds: int) -> None:
    for size in sizes:
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            _measure("bare", url)  # warm-up: the fake renders each item once
            best: dict[str, dict[str, float]] = {}
            for _ in range(rounds):
                for kind in ("bare", "plugin"):
                    result = _measure(kind, url)
                    if kind not in best or result["cpu_s"] < best[kind]["cpu_s"]:
                        best[kind] = result
            bare, plug = best["bare"], best["plugin"]
            assert bare["items"] == plug["items"] == size, (bare, plug)
            print(
                f"{size:>7} items"
                f"  bare {bare['seconds']:5.2f} s (cpu {bare['cpu_s']:5.2f}) "
                f"{bare['peak_rss_mb']:4.0f} MB"
                f"  plugin {plug['seconds']:5.2f} s (cpu {plug['cpu_s']:5.2f}) "
                f"{plug['peak_rss_mb']:4.0f} MB"
                f"  time x{plug['seconds'] / bare['seconds']:.2f}"
                f"  cpu x{plug['cpu_s'] / bare['cpu_s']:.2f}"
                f"  memory x{plug['peak_rss_mb'] / bare['peak_rss_mb']:.2f}",
                flush=True,
            )
        finally:
            if server.stdin is not None:
                server.stdin.close()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2, help="best of N per side (2)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=["bare", "plugin"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
    elif args.measure == "bare":
        print(json.dumps(_bare(args.url)))
    elif args.measure == "plugin":
        print(json.dumps(asyncio.run(_plugin(args.url))))
    else:
        print(f"page size {PAGE}, fake PMS in its own process, best of {args.rounds} round(s)")
        _run(args.items, args.rounds)


if __name__ == "__main__":
    main()
