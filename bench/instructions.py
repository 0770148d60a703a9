"""Instructions per match request, stash2plex against the bare handler, under callgrind.

    python bench/instructions.py [--scenes 20000] [--requests 2000] [--simulate]

On a shared machine the time a request costs drifts by a third between minutes; the
instructions it executes do not (the same figure to within about 1% run after run). Both
servers run under valgrind's callgrind with instrumentation off; after a warm-up it is
switched on for exactly ``--requests`` match requests (the library's files as Plex names
them, over 8 keep-alive connections), then off, and the count is read from the dump.

What it does not see: time in the kernel, and what cache misses cost. A ratio here is an
upper bound of the ratio by CPU time (bench/run.py), never a replacement for it: use it to
tell whether a change made the request path cheaper. ``--simulate`` also counts cache
misses and branch mispredictions as callgrind simulates them (L1 and last level; no L2,
no TLB), which tells whether the provider's instructions miss more than the bare
handler's. Needs valgrind (apt-get install
valgrind); every server listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from run import HERE, PY, free_port, library_arguments, prepare_library, wait_http, write_config

CONNECTIONS = 8


async def _send(port: int, bodies: list[bytes], count: int) -> None:
    """``count`` POSTs spread over keep-alive connections, each answer read whole."""

    async def one_connection(share: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for body in share:
            writer.write(
                b"POST /library/metadata/matches HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"User-Agent: PlexMediaServer/1.43.0\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
        writer.close()

    picked = [bodies[i % len(bodies)] for i in range(count)]
    await asyncio.gather(*(one_connection(picked[k::CONNECTIONS]) for k in range(CONNECTIONS)))


#: With ``--simulate``: what callgrind's cache and branch simulation counts, by line shown.
SIMULATED = {
    "L1 instruction-cache misses": ("I1mr",),
    "L1 data-cache misses": ("D1mr", "D1mw"),
    "last-level data-cache misses": ("DLmr", "DLmw"),
    "branch mispredictions": ("Bcm", "Bim"),
}


def counts_per_request(
    command: list[str],
    port: int,
    ready_url: str,
    bodies: list[bytes],
    count: int,
    work: Path,
    *,
    simulate: bool = False,
) -> dict[str, float]:
    """callgrind's event counts (``Ir``: instructions; with ``simulate`` also cache and
    branch events) per match request, over ``count`` requests after a warm-up."""
    out = work / f"callgrind.{port}.out"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    if simulate:
        valgrind += ["--cache-sim=yes", "--branch-sim=yes"]
    proc = subprocess.Popen(
        [*valgrind, f"--callgrind-out-file={out}", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(ready_url, 600)  # everything runs some 50 times slower under valgrind
        asyncio.run(_send(port, bodies, 400))  # warm-up: caches, specialised bytecode
        control = ["callgrind_control"]
        subprocess.run([*control, "-i", "on", str(proc.pid)], check=True, capture_output=True)
        asyncio.run(_send(port, bodies, count))
        subprocess.run([*control, "-i", "off", str(proc.pid)], check=True, capture_output=True)
        subprocess.run([*control, "-d", str(proc.pid)], check=True, capture_output=True)
        dumps = sorted(work.glob(f"{out.name}.*"))
        lines = dumps[-1].read_text().splitlines()
        events = next(line.split()[1:] for line in lines if line.startswith("events:"))
        totals = next(line.split()[1:] for line in lines if line.startswith("totals:"))
        return {event: int(total) / count for event, total in zip(events, totals, strict=True)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    library_arguments(parser, scenes=20_000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="also count simulated cache misses and branch mispredictions (twice as slow)",
    )
    args = parser.parse_args()
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2

    procs: list[subprocess.Popen] = []
    work = Path(tempfile.mkdtemp(prefix="stash2plex-instructions-"))
    try:
        library = prepare_library(
            work, args.scenes, args.seed, procs, mapped=args.paths == "mapped"
        )
        bodies = library["bodies"].read_bytes().splitlines()
        random.Random(args.seed).shuffle(bodies)

        bare_port = free_port()
        bare = counts_per_request(
            [PY, str(HERE / "bare.py"), "--port", str(bare_port)],
            bare_port,
            f"http://127.0.0.1:{bare_port}/library/metadata/x",
            bodies,
            args.requests,
            work,
            simulate=args.simulate,
        )
        port = free_port()
        config = work / "stash2plex.toml"
        write_config(config, port, library, log_level=args.log_level)
        provider = counts_per_request(
            [PY, "-m", "stash2plex", "--config", str(config), "serve"],
            port,
            f"http://127.0.0.1:{port}/healthz",
            bodies,
            args.requests,
            work,
            simulate=args.simulate,
        )
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"stash2plex instructions per match request: {args.scenes} scenes, "
        f"{args.requests} requests, log level {args.log_level}, {args.paths} paths"
    )
    print(f"  bare handler   {bare['Ir']:>9.0f}")
    print(f"  stash2plex     {provider['Ir']:>9.0f}")
    ratio = bare["Ir"] / provider["Ir"]
    print(f"  ratio          {ratio:>9.2f}  (by CPU time it is lower: see run.py)")
    summary = {"bare": round(bare["Ir"]), "stash2plex": round(provider["Ir"])}
    if args.simulate:
        print("simulated, per match request       bare   stash2plex   x")
        for label, events in SIMULATED.items():
            ours, theirs = (sum(side[e] for e in events) for side in (bare, provider))
            print(f"  {label:<30} {ours:>8.1f} {theirs:>12.1f} {theirs / ours:>5.2f}")
            summary[label] = {"bare": round(ours, 1), "stash2plex": round(theirs, 1)}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
