"""Gap detection at scale: a whole scan against merely reading Plex's listings.

    .venv/bin/python bench/gaps.py                    # 10k and 100k
    .venv/bin/python bench/gaps.py --sizes 10000 --rounds 2

For each size one helper process serves a generated library twice over loopback: as the
fake Stash (GraphQL) and as the fake PMS (XML listings, Plex's files under another root,
nine items in ten matched by this provider, one in ten by none). This process runs the
real plugins (stash_source's index and catalog, the plex plugin, path_regex with one rule,
gap_scheduler) and, in alternating rounds, times

* the baseline: ``async for item in plex.read_items()``, reading and parsing every page
  of Plex's listing through the plex plugin, nothing else;
* a whole scan: read Stash's catalog, map every path, read Plex's listing, compare, write
  the report in one transaction.

It prints each round, the best of each and their ratio (target: at most 2), each round's
own ratio and their median (rounds are seconds apart, so they drift less), the scan's own
split (waiting on Plex's listing, on the catalog, the rest comparing and writing), and the
peak memory Python allocates while merely reading Plex and during a whole scan
(tracemalloc, in separate untimed runs: the difference is the scan's own), and the
process's peak RSS. Index building (stash_source's, from the fake Stash) is set-up, not timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

IDENT = "tv.plex.agents.custom.stash2plex"


async def serve(scenes: int, seed: int) -> None:
    """The helper process: fake Stash and fake PMS over one generated library."""
    from stash2plex_plex.fake import FakePMS
    from stash2plex_stash_source.fake import FakeStash, generate_library

    library = generate_library(scenes=scenes, seed=seed)
    pms = FakePMS()
    pms.add_section("1", "Scenes", locations=["/media/plex"])
    for n, f in enumerate(library.plex_files(root="/media/plex")):
        sid = f.expected_scene_id if f.stash_path is not None else None
        guid = f"{IDENT}://movie/stash-{sid}" if sid is not None and n % 10 else ""
        pms.add_item("1", f"item {n}", files=[f.plex_path], guid=guid)
    async with FakeStash(library) as stash, pms:
        print(json.dumps({"stash": stash.url, "plex": pms.url, "token": pms.token}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until EOF


async def measure(size: int, rounds: int, urls: dict[str, str]) -> dict[str, Any]:
    import stash2plex_gap_scheduler.plugin as gaps_plugin
    import stash2plex_path_regex.plugin as path_plugin
    import stash2plex_plex.plugin as plex_plugin
    import stash2plex_stash_source.plugin as stash_plugin
    from stash2plex import HOOKS, create_app, logs, started
    from stash2plex_gap_scheduler.detector import STATE

    logs.configure(level="warning", fmt="json")
    with tempfile.TemporaryDirectory() as data_dir:
        raw = {
            "server": {"data_dir": data_dir},
            "stash": {"url": urls["stash"], "timeout_s": 120.0},
            "plex": {"url": urls["plex"], "token": urls["token"], "timeout_s": 120.0},
            "path_regex": {
                "rules": [
                    {"name": "plex", "plex_prefix": "/media/plex", "stash_prefix": "/data/stash"}
                ]
            },
            "gaps": {"interval": "0"},
        }
        app = create_app(
            raw,
            plugins=[
                ("stash_source", stash_plugin),
                ("plex", plex_plugin),
                ("path_regex", path_plugin),
                ("gap_scheduler", gaps_plugin),
            ],
            load_entrypoints=False,
            env={},
        )
        async with started(app):
            catalog = await app[HOOKS].scene_catalog()
            plex = await app[HOOKS].plex_library()
            assert catalog is not None and plex is not None
            set_up = time.perf_counter()
            while not catalog.ready:  # noqa: ASYNC110 - set-up only; no event to wait on
                await asyncio.sleep(0.1)
            index_s = time.perf_counter() - set_up
            detector = app[STATE].detector
            assert detector is not None

            async def baseline() -> float:
                started_at = time.perf_counter()
                async for _item in plex.read_items():
                    pass
                return time.perf_counter() - started_at

            await baseline()  # warm: the plex plugin's first connection, caches
            reads: list[float] = []
            scans: list[tuple[float, dict[str, Any]]] = []
            for _ in range(rounds):
                reads.append(await baseline())
                row = await detector.scan("bench")
                assert row.status == "ok", row.error
                scans.append((row.finished_at - row.started_at, row.stats))
                print(
                    f"  {size}: read Plex {reads[-1]:.2f}s, whole scan {scans[-1][0]:.2f}s",
                    file=sys.stderr,
                    flush=True,
                )
            # Memory, untimed: reading Plex alone (the plex plugin keeps an item index of
            # what it read), then the whole scan.
            tracemalloc.start()
            await baseline()
            _now, read_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            tracemalloc.start()
            row = await detector.scan("bench")
            _now, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    best_read = min(reads)
    best_scan, stats = min(scans, key=lambda pair: pair[0])
    return {
        "size": size,
        "plex_items": stats["plex_items"],
        "scenes": stats["scenes"],
        "gaps": stats["found"],
        "index_build_s": round(index_s, 2),
        "read_plex_s": [round(r, 3) for r in reads],
        "scan_s": [round(s, 3) for s, _ in scans],
        "best_read_plex_s": round(best_read, 3),
        "best_scan_s": round(best_scan, 3),
        "ratio": round(best_scan / best_read, 2),
        # Rounds are seconds apart: each round's own ratio drifts less than the bests'.
        "round_ratios": [round(s / r, 2) for (s, _), r in zip(scans, reads, strict=True)],
        "median_round_ratio": round(
            statistics.median(s / r for (s, _), r in zip(scans, reads, strict=True)), 2
        ),
        "scan_split": {
            "waiting_on_plex": round(stats["read_plex_s"] / best_scan, 2),
            "waiting_on_catalog": round(stats["read_stash_s"] / best_scan, 2),
            "comparing_and_writing": round(stats["compare_s"] / best_scan, 2),
        },
        "read_plex_peak_traced_mb": round(read_peak / 2**20, 1),
        "scan_peak_traced_mb": round(peak / 2**20, 1),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.seed))
        return 0
    results = []
    for size in args.sizes:
        # one process per size: its peak RSS is that size's alone
        helper = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(size), "--seed", str(args.seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert helper.stdout is not None
            urls = json.loads(helper.stdout.readline())
            worker = subprocess.run(
                [sys.executable, "-c", _MEASURE, json.dumps([size, args.rounds, urls])],
                stdout=subprocess.PIPE,
                text=True,
                check=True,
                cwd=Path(__file__).resolve().parent,
            )
            results.append(json.loads(worker.stdout))
        finally:
            if helper.stdin is not None:
                helper.stdin.close()
            helper.wait(timeout=30)
    for result in results:
        print(json.dumps(result))
    print()
    head = ("scenes", "read Plex", "scan", "ratio", "median", "MB read", "MB scan")
    print("{:>8} {:>10} {:>8} {:>6} {:>6} {:>8} {:>8}  split".format(*head))
    for r in results:
        split = ", ".join(f"{k} {v:.0%}" for k, v in r["scan_split"].items())
        print(
            f"{r['size']:>8} {r['best_read_plex_s']:>9.2f}s {r['best_scan_s']:>7.2f}s "
            f"{r['ratio']:>6.2f} {r['median_round_ratio']:>6.2f} "
            f"{r['read_plex_peak_traced_mb']:>8.1f} "
            f"{r['scan_peak_traced_mb']:>8.1f}  {split}"
        )
    return 0


# Each size is measured in a fresh interpreter, so its peak RSS is its own.
_MEASURE = """
import asyncio, json, sys
sys.path.insert(0, ".")
from gaps import measure
size, rounds, urls = json.loads(sys.argv[1])
print(json.dumps(asyncio.run(measure(size, rounds, urls))))
"""


if __name__ == "__main__":
    sys.exit(main())
