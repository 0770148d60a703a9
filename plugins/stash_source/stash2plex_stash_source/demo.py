"""``stash2plex demo``: the provider against the built-in sample library, on loopback."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
from typing import Any

from stash2plex import CliCommand, create_app, run_app

from .fake import generate_library

SEED = 7  # the sample library the provider serves uses the same seed


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8787, help="port on 127.0.0.1 (8787)")
    parser.add_argument("--scenes", type=int, default=300, help="sample library size (300)")


def _examples(base: str, scenes: int) -> list[str]:
    library = generate_library(scenes=scenes, seed=SEED)
    plex = library.plex_files(root="/media/plex", relative=True)
    resolvable = [f for f in plex if f.expected_scene_id is not None and not f.ambiguous]
    # An ordinary file makes the clearest example; a tiny library may hold only hard cases.
    matched = next((f for f in resolvable if f.note == ""), resolvable[0])
    body = shlex.quote(f'{{"type": 1, "filename": {_json(matched.plex_path)}}}')
    return [
        f"curl {base}/",
        f"curl -X POST {base}/library/metadata/matches -H 'Content-Type: application/json' "
        f"-d {body}",
        f"curl {base}/library/metadata/stash-{matched.expected_scene_id}",
        f"curl {base}/healthz",
    ]


def _json(text: str) -> str:
    import json

    return json.dumps(text)


def _run(args: argparse.Namespace, _app: Any) -> int:
    base = f"http://127.0.0.1:{args.port}"
    with tempfile.TemporaryDirectory(prefix="stash2plex-demo-") as data_dir:
        app = create_app(
            {
                "server": {"host": "127.0.0.1", "port": args.port, "data_dir": data_dir},
                "stash": {"url": "", "sample_scenes": args.scenes},
            },
            # The demo is self-contained: STASH2PLEX_* variables of a real deployment
            # (a Stash URL, a Plex token) must not point it at real servers.
            env={},
        )
        print(f"stash2plex demo: a sample library of {args.scenes} scenes")
        print(f"provider URL (register it in Plex): {base}")
        print("try:")
        for line in _examples(base, args.scenes):
            print(f"  {line}")
        print("Ctrl+C stops it.", flush=True)
        try:
            run_app(app, host="127.0.0.1", port=args.port, shutdown_timeout=5)
        except OSError as exc:  # the port is taken (or not ours to bind)
            print(
                f"stash2plex demo: cannot listen on 127.0.0.1:{args.port}: "
                f"{exc.strerror or exc}; pick another port with --port",
                file=sys.stderr,
            )
            return 2
    return 0


COMMAND = CliCommand(
    name="demo",
    help="run the provider on loopback against a built-in sample library",
    add_arguments=_add_arguments,
    run=_run,
)
