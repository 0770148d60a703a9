"""dev.py, as the README has people run it: ``python3 dev.py serve`` becomes the server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.prefix)


def _installed() -> bool:
    """dev.py would reinstall (pip, network) unless this environment is its current one."""
    projects = [ROOT, *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))]
    digest = hashlib.sha256(b"".join((p / "pyproject.toml").read_bytes() for p in projects))
    stamp = VENV / ".installed-test"
    return stamp.exists() and stamp.read_text() == digest.hexdigest()


@pytest.mark.skipif(os.name == "nt", reason="Windows has no exec: dev.py waits on a child")
def test_dev_serve_replaces_itself_with_the_server(tmp_path):
    if not _installed():
        pytest.skip("not run from the environment dev.py made (python3 dev.py test)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cfg = tmp_path / "f.toml"
    cfg.write_text(f'[server]\nhost = "127.0.0.1"\nport = {port}\n', encoding="utf-8")
    env = {**os.environ, "STASH2PLEX_VENV": str(VENV)}
    env["STASH2PLEX_SERVER__DATA_DIR"] = str(tmp_path / "data")
    # --config after serve, as people type it
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "serve", "--config", str(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        for _ in range(150):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as resp:
                    assert json.load(resp)["MediaProvider"]["title"] == "Stash"
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.2)
        else:
            pytest.fail("the provider never answered")
        # The process we started is the server itself, not a parent waiting on it.
        if Path("/proc/self/cmdline").exists():
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
            assert any(part.endswith(b"stash2plex") for part in cmdline), cmdline
            assert b"serve" in cmdline
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["event"] == "provider.stopped"
    with pytest.raises(OSError):  # nothing is left listening
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
