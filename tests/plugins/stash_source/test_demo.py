"""``stash2plex demo`` as a user runs it: a real process, the printed requests replayed."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

STARTUP_S = 30.0  # generous: a 2-core CI box importing everything cold


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STASH2PLEX_")}
    return {**env, **extra}


def start_demo(tmp_path: Path, port: int, **env: str) -> subprocess.Popen[str]:
    # Logs go to stderr; a file cannot fill up and block the process like a pipe.
    with (tmp_path / "stderr.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "stash2plex", "demo", "--port", str(port), "--scenes", "50"],
            cwd=tmp_path,
            env=demo_env(**env),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )


def read_until(proc: subprocess.Popen[str], marker: str, within_s: float) -> list[str]:
    """stdout lines up to the one containing ``marker`` (a reader thread: no blocking)."""
    lines: list[str] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if marker in line:
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    if not done.wait(within_s) or not any(marker in line for line in lines):
        raise AssertionError(f"demo never printed {marker!r}; got {lines}")
    return lines


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def replay(curl: str) -> tuple[int, Any]:
    """Run one printed ``curl`` line with urllib."""
    args = shlex.split(curl)
    assert args[0] == "curl"
    method, url, body, headers = "GET", "", None, {}
    i = 1
    while i < len(args):
        if args[i] == "-X":
            method, i = args[i + 1], i + 2
        elif args[i] == "-H":
            name, _, value = args[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 2
        elif args[i] == "-d":
            body, i = args[i + 1].encode(), i + 2
        else:
            url, i = args[i], i + 1
    return http(method, url, body, headers)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_runs_what_it_prints(tmp_path, stop):
    port = free_port()
    # A Stash URL in the environment must not turn the demo into a real deployment.
    proc = start_demo(tmp_path, port, STASH2PLEX_STASH__URL="http://127.0.0.1:9")
    try:
        lines = read_until(proc, "Ctrl+C", STARTUP_S)
        base = f"http://127.0.0.1:{port}"
        assert any(base in line and "provider URL" in line for line in lines), lines
        curls = [line.strip() for line in lines if line.strip().startswith("curl ")]
        root, match, metadata, healthz = curls

        deadline = time.monotonic() + STARTUP_S
        while True:  # the port opens once the index is built and the app started
            try:
                status, body = replay(healthz)
            except (urllib.error.URLError, ConnectionError):
                status, body = 0, None
            if status == 200:
                break
            assert time.monotonic() < deadline, f"/healthz never 200: {status} {body}"
            time.sleep(0.1)
        assert body["plugins"]["stash_source"]["sample_library"] is True
        assert body["plugins"]["stash_source"]["index_scenes"] == 50

        status, body = replay(root)
        assert status == 200 and body["MediaProvider"]["identifier"]

        expected_key = metadata.rsplit("/", 1)[-1]
        status, body = replay(match)
        assert status == 200
        assert [m["ratingKey"] for m in body["MediaContainer"]["Metadata"]] == [expected_key]

        status, body = replay(metadata)
        assert status == 200
        (item,) = body["MediaContainer"]["Metadata"]
        assert item["ratingKey"] == expected_key and item["title"]
    finally:
        proc.send_signal(stop)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
            assert proc.stdout is not None
            proc.stdout.close()
    log = (tmp_path / "stderr.log").read_text()
    assert code == 0, log[-2000:]
    assert "Traceback" not in log
    # Nothing left behind in the working directory (the demo's data is temporary).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stderr.log"]


def test_demo_on_a_busy_port_says_so(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = start_demo(tmp_path, port)
        code = proc.wait(timeout=STARTUP_S)
        assert proc.stdout is not None
        proc.stdout.close()
    log = (tmp_path / "stderr.log").read_text()
    assert code == 2, log[-2000:]
    assert f"127.0.0.1:{port}" in log and "--port" in log
    assert "Traceback" not in log
