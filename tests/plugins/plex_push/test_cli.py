"""``stash2plex push`` and ``stash2plex queue``, run as a user runs them: subprocesses on
the queue file, no server needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from stash2plex_plex_push.store import Store


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stash2plex", "--config", str(cwd / "s.toml"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": ""},
        timeout=60,
    )


def test_push_and_queue_commands(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    done = run("push", "--scene", "12", "--scene", "stash-13", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "queued 2 scene(s)" in done.stdout
    assert run("push", "--since", "7d", cwd=tmp_path).returncode == 0
    assert run("push", "--all", cwd=tmp_path).returncode == 0
    bad = run("push", "--since", "last tuesday", cwd=tmp_path)
    assert bad.returncode == 2
    assert "not a date" in bad.stderr

    summary = json.loads(run("queue", "--json", cwd=tmp_path).stdout)
    assert summary["pending"] == 2
    assert summary["sweeps"] == 2
    assert summary["breaker"]["state"] == "closed"

    store = Store(tmp_path / "data" / "push-queue.sqlite3")
    job = store.job("stash-12")
    assert job is not None
    store.kill(job, "Plex refused: HTTP 401")
    text = run("queue", cwd=tmp_path).stdout
    assert "dead         1" in text
    listing = run("queue", "list", cwd=tmp_path).stdout
    assert "stash-12" in listing and "401" in listing
    assert "1 dead letter(s) queued again" in run("queue", "retry", "12", cwd=tmp_path).stdout
    store.kill(store.job("stash-12"), "again")  # type: ignore[arg-type]
    assert "1 dead letter(s) deleted" in run("queue", "purge", cwd=tmp_path).stdout
    assert json.loads(run("queue", "list", "--json", cwd=tmp_path).stdout)["dead"] == []
