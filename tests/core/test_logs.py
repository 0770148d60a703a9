"""Logs: every line the served app prints is one JSON object with the agreed keys.

Runs the real ``stash2plex serve`` in a subprocess on a free loopback port, makes
requests, stops it with SIGTERM (as Docker does) and parses everything it printed.
"""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stash2plex import logs

SITE = Path(__file__).parent / "data" / "site"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, data: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=data, headers={"X-Request-ID": "req-" + str(len(url))})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


@pytest.fixture
def served(tmp_path):
    port = _free_port()
    config = tmp_path / "stash2plex.toml"
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\ndata_dir = "{tmp_path / "data"}"\n'
        '[plugins]\ndisable = ["fake_blocked", "stash_source", "path_regex"]\n'
        '[provider]\nsigning_key = "s3cret-signing-key"\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(SITE), "STASH2PLEX_LOG__LEVEL": "debug"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stash2plex", "--config", str(config), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _request(base + "/healthz")
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("server did not start: " + proc.communicate()[1])
    yield proc, base
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_every_line_is_json_and_sigterm_stops_cleanly(served):
    proc, base = served
    assert _request(base + "/") == 200
    assert _request(base + "/library/metadata/matches", b'{"type": 1, "title": "x"}') == 200
    assert _request(base + "/library/metadata/matches", b'{"type": 1, "title": "crash"}') == 200
    assert _request(base + "/library/metadata/matches", b"{oops") == 400
    assert _request(base + "/library/metadata/nope-1") == 404
    assert _request(base + "/crash") == 500
    assert _request(base + "/?apikey=leaky-key&X-Plex-Token=leaky-token") == 200

    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 10, "must stop within Docker's grace period"
    assert proc.returncode == 0, err

    lines = [line for line in out.splitlines() if line.strip()]
    assert lines, "the server printed nothing"
    records = []
    for line in lines:
        record = json.loads(line)  # every line, no exceptions
        assert isinstance(record, dict)
        for key in ("ts", "level", "event", "logger"):
            assert key in record, (key, line)
        assert RFC3339_UTC.match(record["ts"]), record["ts"]
        assert record["level"] in {"debug", "info", "warning", "error", "critical"}
        records.append(record)

    access = [r for r in records if r["logger"] == "aiohttp.access"]
    assert len(access) >= 8
    for r in access:
        assert {"method", "path", "status", "duration_ms", "request_id"} <= set(r)
        # Timed by the request itself, not by uvloop's loop.time() (whole milliseconds,
        # advanced once per loop iteration), which gave most requests 0.0.
        assert r["duration_ms"] > 0, r
    assert {(r["method"], r["path"], r["status"]) for r in access} >= {
        ("GET", "/", 200),
        ("POST", "/library/metadata/matches", 400),
        ("GET", "/crash", 500),
    }

    crash = [r for r in records if r["event"] == "request.failed"]
    assert crash and crash[0]["request_id"].startswith("req-")
    assert "deliberate crash" in json.dumps(crash[0]["exception"])

    hook_failed = [r for r in records if r["event"] == "plugin.hook_failed"]
    assert hook_failed and hook_failed[0]["plugin"] == "fake_crash"

    load_failed = [r for r in records if r["event"] == "plugin.load_failed"]
    assert load_failed and load_failed[0]["distribution"] == "stash2plex-fakeplugins"

    # Secrets never reach the log, whoever logged them.
    assert "leaky-key" not in out and "leaky-token" not in out
    assert "s3cret-signing-key" not in out
    assert "Traceback" not in out


def test_console_format_for_humans(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "stash2plex", "--log-format", "console", "plugins"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SITE)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "plugin.load_failed" in done.stderr
    assert not done.stderr.lstrip().startswith("{")


class _CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_batched_output_writes_once_per_loop_iteration(monkeypatch):
    """Under a scan's load the lines of one event-loop iteration cost one write; a line
    never waits longer than that iteration, and a line from a thread is written at once."""
    stream = _CountingStream()
    monkeypatch.setattr(sys, "stdout", stream)
    output = logs._Output("stdout", batch=True)
    for n in range(3):
        output.write(f'{{"n": {n}}}')
    assert stream.writes == 0
    await asyncio.sleep(0)
    assert stream.writes == 1
    assert stream.getvalue() == '{"n": 0}\n{"n": 1}\n{"n": 2}\n'

    output.write('{"n": 3}')
    worker = threading.Thread(target=output.write, args=('{"from": "thread"}',))
    worker.start()
    worker.join()  # no loop iteration in between: the thread's line is written at once
    assert stream.getvalue().endswith('{"n": 2}\n{"from": "thread"}\n')
    await asyncio.sleep(0)
    assert stream.getvalue().endswith('{"from": "thread"}\n{"n": 3}\n')
    output.write('{"n": 4}')
    output.flush()  # what atexit does
    assert stream.getvalue().endswith('{"n": 4}\n')
    assert output._pending == []


def test_unbatched_output_writes_each_line(monkeypatch):
    stream = _CountingStream()
    monkeypatch.setattr(sys, "stdout", stream)
    output = logs._Output("stdout")
    output.write("a")
    output.write("b")
    assert stream.getvalue() == "a\nb\n" and stream.writes == 2


def test_nested_secrets_are_scrubbed_and_odd_keys_never_break_a_line():
    event = {"Token": "t", "n": {"API_KEY": "q", 3: "x", "u": "a?token=zz"}, "p": "x=1"}
    assert logs.redact_secrets(None, "info", event) == {
        "Token": "***",
        "n": {"API_KEY": "***", 3: "x", "u": "a?token=***"},
        "p": "x=1",
    }


def test_access_line_scrubs_what_the_generic_renderer_would(monkeypatch):
    """The access line goes through the same chain as every line: secrets in the user
    agent and in the handler's fields are redacted too."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    logs.configure("info", cache=False)
    try:
        request = make_mocked_request(
            "POST", "/library/metadata/matches", headers={"User-Agent": "Plex token=abc"}
        )
        request[logs.LOG_FIELDS] = {"match_filename": "a?apikey=k.mp4", "api_key": "k2", "n": 1}

        def serve() -> None:  # as aiohttp does: in a task of the request's own
            logs.bind_request_id("r-1")
            logs.AccessLogger(logging.getLogger("aiohttp.access"), "").log(
                request, web.Response(status=201), 0.0123
            )

        contextvars.copy_context().run(serve)
    finally:
        logs.configure("info", cache=False)
    line = json.loads(stream.getvalue())
    assert RFC3339_UTC.match(line.pop("ts"))
    assert line == {
        "method": "POST",
        "path": "/library/metadata/matches",
        "status": 201,
        "duration_ms": 12.3,
        "remote": None,
        "user_agent": "Plex token=***",
        "match_filename": "a?apikey=***",
        "api_key": "***",
        "n": 1,
        "event": "request",
        "request_id": "r-1",
        "level": "info",
        "logger": "aiohttp.access",
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"note": "see ?token=abc"},
        {"Plex_Token": "abc"},
        {"details": {"nested": {"ApiKey": "abc"}}},
        {"tries": [{"password": "abc"}]},
        {"texts": ["x", "api_key=abc"]},
    ],
)
def test_access_line_never_carries_a_secret(monkeypatch, fields):
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    logs.configure("info", cache=False)
    try:
        request = make_mocked_request("GET", "/healthz")
        request[logs.LOG_FIELDS] = fields
        logs.AccessLogger(logging.getLogger("aiohttp.access"), "").log(
            request, web.Response(), 0.001
        )
    finally:
        logs.configure("info", cache=False)
    line = stream.getvalue()
    assert "abc" not in line and "***" in line, line
    assert fields == request[logs.LOG_FIELDS]  # the handler's own record is left as it was


def test_access_line_times_the_request_from_when_it_was_bound(monkeypatch):
    """aiohttp hands the access logger a duration from loop.time(), which uvloop keeps in
    whole milliseconds: the request's own start (bound with its id) is used instead."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stream)
    logs.configure("info", cache=False)
    try:

        def serve() -> None:
            logs.bind_request_id("r-2", time.perf_counter() - 0.25)
            logs.AccessLogger(logging.getLogger("aiohttp.access"), "").log(
                make_mocked_request("GET", "/healthz"), web.Response(), 0.0
            )

        contextvars.copy_context().run(serve)
    finally:
        logs.configure("info", cache=False)
    line = json.loads(stream.getvalue())
    assert line["request_id"] == "r-2"
    assert 250 <= line["duration_ms"] < 10_000  # never the 0.0 it was handed


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.0, 0.0), (0.0000004, 0.0), (0.0123, 12.3), (1.0, 1000.0), (0.0004567, 0.457)],
)
def test_milliseconds_to_the_microsecond(seconds, shown):
    assert logs.milliseconds(seconds) == shown
