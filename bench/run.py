"""The benchmark: stash2plex against a bare aiohttp handler, same machine, same run.

    python bench/run.py [--scenes 100000] [--duration 10] [--rounds 3] [--paths mapped]

Measures, with a 100k-scene library in a fake Stash (its own process):
  * index build time and peak memory (a process of its own, like the provider's start);
  * provider start-up with that persisted index (until /healthz is 200);
  * match requests/s of the provider vs the bare handler (ratio; target >= 0.5), in rounds
    where the servers take turns (the median round stands for the run);
  * Stash GraphQL requests per match (target 0);
  * cached metadata requests/s vs the bare handler.
Load comes from wrk when installed (apt-get install wrk), else from an aiohttp client,
which is slower than the servers it measures: its ratios are then a lower bound.
Every server listens on 127.0.0.1; every load run is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, within_s: float, want: int = 200) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < within_s:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == want:
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(url)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def wrk(url: str, script: Path, data: Path, duration: int, connections: int) -> dict:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script),
         url, "--", str(data)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p50 = re.search(r"50%\s+([\d.]+\w+)", out).group(1)
    p99 = re.search(r"99%\s+([\d.]+\w+)", out).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "requests": total,
        "p50": p50,
        "p99": p99,
        "non_2xx": int(errors.group(1)) if errors else 0,
    }


async def _client_load(url: str, method: str, items: list[str], duration: int, conc: int) -> dict:
    import aiohttp

    done = 0
    stop = time.perf_counter() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as session:

        async def worker(offset: int) -> None:
            nonlocal done
            i = offset
            while time.perf_counter() < stop:
                item = items[i % len(items)]
                i += conc
                if method == "POST":
                    async with session.post(
                        url, data=item, headers={"Content-Type": "application/json"}
                    ) as r:
                        await r.read()
                else:
                    async with session.get(f"{url}/{item}") as r:
                        await r.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(conc)))
        elapsed = time.perf_counter() - started
    return {"rps": done / elapsed, "requests": done, "p50": "-", "p99": "-", "non_2xx": 0}


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measured(pid: int, base: str, kind: str, data: Path, duration: int, conns: int) -> dict:
    """A load run plus the server's CPU time per request: on a shared (noisy) machine the
    CPU a request costs is steadier than the requests a second it gets."""
    user, system = cpu_seconds(pid)
    result = load(base, kind, data, duration, conns)
    after_user, after_system = cpu_seconds(pid)
    per_request = 1e6 / max(result["requests"], 1)
    result["user_us"] = (after_user - user) * per_request
    result["system_us"] = (after_system - system) * per_request
    result["cpu_us"] = result["user_us"] + result["system_us"]
    return result


def load(base: str, kind: str, data: Path, duration: int, connections: int) -> dict:
    if shutil.which("wrk"):
        if kind == "match":
            return wrk(
                f"{base}/library/metadata/matches", HERE / "match.lua", data, duration, connections
            )
        return wrk(f"{base}/", HERE / "metadata.lua", data, duration, connections)
    items = data.read_text().splitlines()
    if kind == "match":
        return asyncio.run(
            _client_load(f"{base}/library/metadata/matches", "POST", items, duration, connections)
        )
    return asyncio.run(
        _client_load(f"{base}/library/metadata", "GET", items, duration, connections)
    )


#: Where Plex sees the library in ``--paths mapped`` runs (Stash sees it elsewhere).
PLEX_ROOT = "/media/plex"


def prepare_library(
    work: Path, scenes: int, seed: int, procs: list[subprocess.Popen], *, mapped: bool = False
) -> dict:
    """A fake Stash with a generated library (its process appended to ``procs``), the scene
    index built from it under ``work``, and the requests to replay: the library's files as
    Plex names them and a sample of rating keys. Plex's names are relative to its library
    root, or with ``mapped`` absolute under :data:`PLEX_ROOT`, which a path rule
    (:func:`write_config`) maps to the Stash root."""
    print(f"fake Stash: generating {scenes} scenes...", flush=True)
    fake = subprocess.Popen(
        [PY, str(HERE / "fake_stash.py"), "--scenes", str(scenes), "--seed", str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    procs.append(fake)
    endpoints = json.loads(fake.stdout.readline())

    print("building the scene index...", flush=True)
    data_dir = work / "data"
    data_dir.mkdir()
    built = json.loads(
        subprocess.run(
            [
                PY,
                str(HERE / "build_index.py"),
                "--url",
                endpoints["url"],
                "--path",
                str(data_dir / "stash-index.sqlite3"),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )

    kind = "absolute, mapped" if mapped else "relative"
    print(f"preparing requests from the same library (Plex's {kind} filenames)...", flush=True)
    from stash2plex_stash_source.fake import generate_library

    library = generate_library(scenes=scenes, seed=seed)
    files = library.plex_files(root=PLEX_ROOT, relative=not mapped)
    step = max(1, len(files) // 20_000)
    bodies = work / "bodies.txt"
    bodies.write_text(
        "\n".join(
            json.dumps({"type": 1, "filename": f.plex_path, "includeAdult": 1})
            for f in files[::step]
        )
        + "\n"
    )
    keys = work / "keys.txt"
    scene_ids = sorted(library.scenes)[:: max(1, len(library.scenes) // 500)][:500]
    keys.write_text("\n".join(f"stash-{i}" for i in scene_ids) + "\n")
    return {
        "url": endpoints["url"],
        "stats_url": endpoints["stats_url"],
        "stash_root": library.stash_root if mapped else None,
        "data_dir": data_dir,
        "bodies": bodies,
        "keys": keys,
        "index_build": built,
    }


def write_config(
    path: Path, port: int, library: dict, *, log_level: str, event_loop: str = "auto"
) -> None:
    """The provider's configuration for a prepared library (with its path rule when the
    requests carry Plex's absolute paths)."""
    text = (
        f'[server]\nhost = "127.0.0.1"\nport = {port}\ndata_dir = "{library["data_dir"]}"\n'
        f'event_loop = "{event_loop}"\n'
        f'[stash]\nurl = "{library["url"]}"\nindex_refresh_s = 3600\n'
        f'[log]\nlevel = "{log_level}"\n'
    )
    if library["stash_root"]:
        text += (
            f'[[path_regex.rules]]\nname = "bench"\nplex_prefix = "{PLEX_ROOT}"\n'
            f'stash_prefix = "{library["stash_root"]}"\n'
        )
    path.write_text(text)


def library_arguments(parser: argparse.ArgumentParser, *, scenes: int) -> None:
    """The options both benchmarks share: the generated library, the provider's log
    level, and how Plex names the files."""
    parser.add_argument("--scenes", type=int, default=scenes)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--log-level", default="info", help="the provider's [log] level")
    parser.add_argument(
        "--paths",
        default="relative",
        choices=["relative", "mapped"],
        help="Plex's filenames: relative to its library root (no configuration needed), or "
        "absolute under another root than Stash's, with a path_regex rule (a Docker set-up)",
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    library_arguments(parser, scenes=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="match load rounds, the servers taking turns"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--event-loop",
        default="auto",
        choices=["auto", "asyncio", "uvloop"],
        help="the provider's [server] event_loop (auto: uvloop, as served by default)",
    )
    parser.add_argument(
        "--keep-log",
        action="store_true",
        help="write the provider's log to provider.log in the work folder, and keep that "
        "folder when the run fails (the log costs the provider a little CPU)",
    )
    args = parser.parse_args()

    procs: list[subprocess.Popen] = []
    work = Path(tempfile.mkdtemp(prefix="stash2plex-bench-"))
    results: dict = {"scenes": args.scenes, "load": "wrk" if shutil.which("wrk") else "aiohttp"}
    try:
        library = prepare_library(
            work, args.scenes, args.seed, procs, mapped=args.paths == "mapped"
        )
        endpoints = {"url": library["url"], "stats_url": library["stats_url"]}
        bodies, keys = library["bodies"], library["keys"]
        results["index_build"] = library["index_build"]

        port = free_port()
        config = work / "stash2plex.toml"
        write_config(config, port, library, log_level=args.log_level, event_loop=args.event_loop)
        started = time.perf_counter()
        # --keep-log: the provider's log in the work folder, which a failed run keeps
        log_to = (work / "provider.log").open("wb") if args.keep_log else subprocess.DEVNULL
        provider = subprocess.Popen(
            [PY, "-m", "stash2plex", "--config", str(config), "serve"],
            stdout=log_to,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
        procs.append(provider)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", 120)
        results["startup_s"] = time.perf_counter() - started

        # The baseline is aiohttp as it runs by default (asyncio's loop); the same handler
        # on uvloop is measured too, for a like-for-like figure.
        bares = {}
        for loop in ("asyncio", "uvloop"):
            bare_port = free_port()
            proc = subprocess.Popen(
                [PY, str(HERE / "bare.py"), "--port", str(bare_port), "--loop", loop]
            )
            procs.append(proc)
            bares[loop] = (proc, f"http://127.0.0.1:{bare_port}")
            wait_http(f"{bares[loop][1]}/library/metadata/x", 30)
        bare, bare_base = bares["asyncio"]
        bare_uv, bare_uv_base = bares["uvloop"]

        # The machine drifts between minutes: the three servers take turns, round after
        # round, and each round's ratio compares runs a few seconds apart.
        print(f"load: match, {args.rounds} rounds (bare, bare uvloop, provider)...", flush=True)
        load(bare_base, "match", bodies, 2, args.connections)  # warm-ups
        load(bare_uv_base, "match", bodies, 2, args.connections)
        load(base, "match", bodies, 2, args.connections)
        rounds = []
        before = get_json(endpoints["stats_url"])["graphql_requests"]
        served = 0
        for _ in range(args.rounds):
            one = {
                "bare_match": measured(
                    bare.pid, bare_base, "match", bodies, args.duration, args.connections
                ),
                "bare_uvloop_match": measured(
                    bare_uv.pid, bare_uv_base, "match", bodies, args.duration, args.connections
                ),
                "provider_match": measured(
                    provider.pid, base, "match", bodies, args.duration, args.connections
                ),
            }
            served += one["provider_match"]["requests"]
            rounds.append(one)
        after = get_json(endpoints["stats_url"])["graphql_requests"]
        results["match_rounds"] = [
            r["provider_match"]["rps"] / r["bare_match"]["rps"] for r in rounds
        ]
        # Each server's least disturbed round: the CPU a request costs it at best.
        results["match_best_cpu"] = {
            name: min(r[name]["cpu_us"] for r in rounds)
            for name in ("bare_match", "bare_uvloop_match", "provider_match")
        }
        # The round whose ratio is the median stands for the run.
        order = sorted(range(len(rounds)), key=lambda i: results["match_rounds"][i])
        results.update(rounds[order[len(order) // 2]])
        results["stash_requests_per_match"] = (after - before) / max(served, 1)

        print("load: cached metadata (bare, then provider)...", flush=True)
        for key in keys.read_text().split():
            urllib.request.urlopen(f"{base}/library/metadata/{key}", timeout=30).read()
        results["bare_metadata"] = measured(
            bare.pid, bare_base, "metadata", keys, args.duration, args.connections
        )
        results["bare_uvloop_metadata"] = measured(
            bare_uv.pid, bare_uv_base, "metadata", keys, args.duration, args.connections
        )
        before = get_json(endpoints["stats_url"])["graphql_requests"]
        results["provider_metadata"] = measured(
            provider.pid, base, "metadata", keys, args.duration, args.connections
        )
        results["provider_rss_mb"] = rss_mb(provider.pid)
        results["stash_requests_during_cached_metadata"] = (
            get_json(endpoints["stats_url"])["graphql_requests"] - before
        )
    except BaseException:
        if args.keep_log:
            print(f"the run failed; its files (provider.log) stay in {work}", file=sys.stderr)
            work = None  # type: ignore[assignment]
        raise
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)

    b = results["index_build"]
    print()
    print(
        f"stash2plex benchmark: {args.scenes} scenes, load by {results['load']}, "
        f"{args.connections} connections, {args.duration} s per run, {os.cpu_count()} cores, "
        f"log level {args.log_level}, provider event loop {args.event_loop}, "
        f"{args.paths} paths"
    )
    print(
        f"  index build            {b['seconds']:.1f} s, peak RSS {b['peak_rss_mb']:.0f} MB, "
        f"file {b['file_mb']:.0f} MB, {b['stash_requests']} Stash requests"
    )
    print(f"  start-up (persisted)   {results['startup_s']:.2f} s until /healthz is 200")
    print(f"  provider RSS           {results['provider_rss_mb']:.0f} MB after the load runs")
    for name in ("match", "metadata"):
        prov_r = results[f"provider_{name}"]
        for label, key in (("bare", f"bare_{name}"), ("bare uvloop", f"bare_uvloop_{name}")):
            bare_r = results[key]
            print(
                f"  {name:<8} {label:<13} {bare_r['rps']:>9.0f} req/s  p50 {bare_r['p50']:>8} "
                f"p99 {bare_r['p99']:>8}  CPU {_cpu(bare_r)}"
            )
        print(
            f"  {name:<8} {'stash2plex':<13} {prov_r['rps']:>9.0f} req/s  p50 {prov_r['p50']:>8} "
            f"p99 {prov_r['p99']:>8}  CPU {_cpu(prov_r)}  non-2xx {prov_r['non_2xx']}"
        )
    for name, label in (("match", "match"), ("metadata", "cached metadata")):
        prov_r = results[f"provider_{name}"]
        bare_r, bare_uv_r = results[f"bare_{name}"], results[f"bare_uvloop_{name}"]
        target = "  (target >= 0.5)" if name == "match" else ""
        print(
            f"  ratio {label:<16} {prov_r['rps'] / bare_r['rps']:.2f} req/s, "
            f"{bare_r['cpu_us'] / prov_r['cpu_us']:.2f} by CPU per request{target}; "
            f"against bare on uvloop {prov_r['rps'] / bare_uv_r['rps']:.2f} req/s, "
            f"{bare_uv_r['cpu_us'] / prov_r['cpu_us']:.2f} by CPU"
        )
    ratios = ", ".join(f"{r:.2f}" for r in results["match_rounds"])
    print(f"  match ratio by round   {ratios} (req/s; the median round is shown above)")
    best = results["match_best_cpu"]
    print(
        f"  match, best rounds     bare {best['bare_match']:.0f} us, "
        f"stash2plex {best['provider_match']:.0f} us CPU per request: "
        f"ratio {best['bare_match'] / best['provider_match']:.2f} "
        f"(against bare on uvloop {best['bare_uvloop_match'] / best['provider_match']:.2f})"
    )
    print(f"  Stash requests/match   {results['stash_requests_per_match']:.4f}  (target 0)")
    print(
        f"  Stash requests during cached metadata load: "
        f"{results['stash_requests_during_cached_metadata']}"
    )
    return 0


def _cpu(result: dict) -> str:
    return (
        f"{result['cpu_us']:.0f} us/req ({result['user_us']:.0f} user, "
        f"{result['system_us']:.0f} kernel)"
    )


if __name__ == "__main__":
    sys.exit(main())
