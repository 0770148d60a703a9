"""The command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stash2plex.cli import new_event_loop
from stash2plex.config import ConfigError

SITE = Path(__file__).parent / "data" / "site"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stash2plex", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(SITE), **(env or {})},
        timeout=60,
    )


def test_plugins_lists_status_distribution_and_hooks(tmp_path):
    done = run(
        "plugins", "--json", cwd=tmp_path, env={"STASH2PLEX_PLUGINS__DISABLE": "fake_blocked"}
    )
    assert done.returncode == 0, done.stderr
    infos = {i["name"]: i for i in json.loads(done.stdout)}
    assert infos["fake_good"]["status"] == "enabled"
    assert infos["fake_good"]["distribution"] == "stash2plex-fakeplugins"
    assert infos["fake_good"]["version"] == "1.0"
    assert infos["fake_good"]["hooks"] == ["resolve_match"]
    assert infos["fake_broken"]["status"] == "failed"
    assert infos["fake_blocked"]["status"] == "blocked"

    text = run("plugins", cwd=tmp_path, env={"STASH2PLEX_PLUGINS__DISABLE": "fake_blocked"})
    assert "fake_good" in text.stdout and "hooks: resolve_match" in text.stdout


def test_check_fails_on_failed_plugins_and_passes_without(tmp_path):
    done = run("check", cwd=tmp_path, env={"STASH2PLEX_PLUGINS__DISABLE": "fake_blocked"})
    assert done.returncode == 1
    assert "FAIL plugin fake_broken" in done.stdout
    cfg = tmp_path / "ok.toml"
    cfg.write_text(
        '[plugins]\ndisable = ["fake_blocked", "fake_broken", "fake_typo"]\n', encoding="utf-8"
    )
    done = run("--config", str(cfg), "check", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   configuration" in done.stdout


def test_bad_config_exits_2_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[server]\nport = 'eighty'\n", encoding="utf-8")
    done = run("--config", str(cfg), "check", cwd=tmp_path)
    assert done.returncode == 2
    assert "server.port: expected int, got str 'eighty'" in done.stderr
    assert "Traceback" not in done.stderr


def test_config_env_var_and_redaction(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[provider]\ntitle = "From File"\n', encoding="utf-8")
    done = run(
        "config",
        cwd=tmp_path,
        env={"STASH2PLEX_CONFIG": str(cfg), "STASH2PLEX_PROVIDER__SIGNING_KEY": "topsecret"},
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["provider"]["title"] == "From File"
    assert shown["provider"]["signing_key"] == "***"
    assert "topsecret" not in done.stdout + done.stderr


def test_console_script_and_help(tmp_path):
    exe = Path(sys.executable).parent / "stash2plex"
    done = subprocess.run([str(exe), "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0
    for command in ("serve", "plugins", "check"):
        assert command in done.stdout


def test_event_loop_choice(monkeypatch):
    loop = new_event_loop("asyncio")
    assert type(loop).__module__.startswith("asyncio")
    loop.close()
    # uvloop is a dependency wherever it has wheels: "auto" takes it when installed.
    installed = importlib.util.find_spec("uvloop") is not None
    loop = new_event_loop("auto")
    assert type(loop).__module__.startswith("uvloop" if installed else "asyncio")
    loop.close()

    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on Windows: not installable
    loop = new_event_loop("auto")
    assert isinstance(loop, asyncio.AbstractEventLoop)
    assert type(loop).__module__.startswith("asyncio")
    loop.close()
    with pytest.raises(ConfigError, match=r"server\.event_loop: 'uvloop' is not installed"):
        new_event_loop("uvloop")


def test_serve_refuses_a_missing_event_loop_naming_the_key(tmp_path):
    done = run(
        "serve",
        cwd=tmp_path,
        env={
            "STASH2PLEX_SERVER__EVENT_LOOP": "tokio",
            "STASH2PLEX_PLUGINS__DISABLE": "fake_blocked",
        },
    )
    assert done.returncode == 2
    assert "server.event_loop" in done.stderr and "tokio" in done.stderr
