"""The command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from stash2plex import create_app
from stash2plex.cli import build_parser, new_event_loop
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


# --- operator mistakes, as people make them ---------------------------------------------


def test_operator_mistakes_are_one_line_and_exit_2(tmp_path):
    (tmp_path / "a-directory.toml").mkdir()
    (tmp_path / "latin1.toml").write_bytes(b'[provider]\ntitle = "Caf\xe9"\n')
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    quiet = {"STASH2PLEX_PLUGINS__DISABLE": "fake_blocked"}
    cases = [
        (["check", "--config", "a-directory.toml"], {}, "a-directory.toml: is a directory"),
        (["serve", "--config", "latin1.toml"], {}, "latin1.toml: not UTF-8 text (byte 0xe9"),
        (["serve"], {"STASH2PLEX_SERVER__DATA_DIR": "afile"}, "'afile' is a file, not a dir"),
        (["serve"], {"STASH2PLEX_SEVER__PORT": "9000"}, "unknown section 'sever'"),
        (["check"], {"STASH2PLEX_PLUGINS__DISABLE": "fake_blokced"}, " fake_blocked, fake_b"),
    ]
    for args, env, problem in cases:
        done = run(*args, cwd=tmp_path, env={**quiet, **env})
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("stash2plex: invalid configuration: "), done.stderr
        assert problem in done.stderr and done.stderr.count("\n") == 1, done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        env = {**quiet, "STASH2PLEX_SERVER__HOST": "127.0.0.1", "STASH2PLEX_SERVER__PORT": port}
        done = run("serve", cwd=tmp_path, env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"stash2plex: cannot listen on 127.0.0.1:{port}: ")
    assert "address already in use (server.host, server.port)" in done.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _other_user() -> dict[str, Any]:
    """Run as nobody when we are root (root writes anywhere); as ourselves otherwise."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return {"user": 65534, "group": 65534, "extra_groups": []}
    return {}


@pytest.fixture
def shared_dir() -> Any:
    """A folder another uid can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="stash2plex-uid-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_runs_as_the_uid_owning_its_data_dir_and_logs_shutdown(shared_dir):
    """As a NAS user runs the image (``user: "1000:1000"``): a data folder that uid owns
    works; one it cannot write is a FAIL in check and one line from serve."""
    who = _other_user()
    theirs, ours = shared_dir / "theirs", shared_dir / "ours"
    theirs.mkdir(mode=0o755)
    ours.mkdir()
    if who:
        os.chown(ours, who["user"], who["group"])
    else:
        theirs.chmod(0o555)
    port = str(_free_port())
    env = {**os.environ, "PYTHONPATH": str(SITE), "STASH2PLEX_PLUGINS__DISABLE": "fake_blocked"}
    env["STASH2PLEX_SERVER__PORT"] = port

    def cli(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "stash2plex", *args],
            capture_output=True, text=True, cwd=shared_dir, timeout=60,
            env={**env, "STASH2PLEX_SERVER__DATA_DIR": str(data)}, **who,
        )  # fmt: skip

    done = cli("check", data=theirs)
    assert done.returncode == 1
    assert f"FAIL server.data_dir: '{theirs}' is not writable: Permission denied" in done.stdout
    done = cli("serve", data=theirs / "sub")
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"'{theirs / 'sub'}' cannot be created: Permission denied" in done.stderr
    assert cli("check", data=ours).returncode == 1  # fake_broken fails; the data dir does not
    assert f"ok   data directory {ours} (writable)" in cli("check", data=ours).stdout

    server = subprocess.Popen(
        [sys.executable, "-m", "stash2plex", "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=shared_dir,
        env={**env, "STASH2PLEX_SERVER__DATA_DIR": str(ours)}, **who,
    )  # fmt: skip
    try:
        for _ in range(100):
            if cli("healthcheck", "--timeout", "1", data=ours).returncode == 0:
                break
            assert server.poll() is None, server.communicate()
            time.sleep(0.2)
        else:
            pytest.fail("the provider never answered /healthz")
        # the index was written there, by that uid
        uid = who.get("user", os.getuid())
        assert [f for f in ours.iterdir() if f.stat().st_uid == uid]
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, err
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert events[-2:] == ["provider.stopping", "provider.stopped"]
    assert "Traceback" not in err


def test_global_options_before_or_after_the_command(tmp_path):
    cfg = tmp_path / "f.toml"
    cfg.write_text('[provider]\ntitle = "From F"\n', encoding="utf-8")
    env = {"STASH2PLEX_PLUGINS__DISABLE": "fake_blocked"}
    for args in (
        ["--config", str(cfg), "config"],
        ["config", "--config", str(cfg)],
        ["config", "--log-level", "debug", "--config", str(cfg), "--log-format", "console"],
    ):
        done = run(*args, cwd=tmp_path, env=env)
        assert done.returncode == 0, (args, done.stderr)
        assert json.loads(done.stdout)["provider"]["title"] == "From F"
    done = run("check", "--config", str(cfg), cwd=tmp_path, env=env)
    assert f"ok   configuration ({cfg})" in done.stdout


def test_every_command_and_option_has_a_help_sentence(tmp_path):
    # The real plugins of this repository, as installed, with their own commands.
    app = create_app({"server": {"data_dir": str(tmp_path)}}, env={})
    parser, commands = build_parser(app)
    assert {"serve", "check", "config", "plugins", "healthcheck", "paths", "demo"} <= set(commands)
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for name, subparser in sub.choices.items():
        assert subparser.description, name
        options = {o for a in subparser._actions for o in a.option_strings}
        assert {"--config", "--log-level", "--log-format"} <= options, name
        nested = [subparser]  # a plugin's own sub-commands (queue list, plex find) too
        while nested:
            each = nested.pop()
            for action in each._actions:
                assert action.help and action.help.strip(), (name, each.prog, action.dest)
                if isinstance(action, argparse._SubParsersAction):
                    nested.extend(action.choices.values())
    text = sub.choices["serve"].format_help()
    assert "--config FILE" in text and "the TOML configuration file" in text
    # what chooses the configuration is never guessed from an abbreviation
    for argv in (["--conf", "x.toml", "check"], ["check", "--conf", "x.toml"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
