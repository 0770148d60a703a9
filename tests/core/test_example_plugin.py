"""A third-party plugin, pip-installed into a fresh virtual environment, just appears.

The fresh environment borrows this environment's dependencies through a ``.pth`` line (so
the test needs no network); the example plugin itself is really built and installed by
pip, and found by the host only through its entry point.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "stash2plex-example-source"

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import asyncio, json
    from aiohttp.test_utils import TestClient, TestServer
    from stash2plex import create_app

    async def main():
        app = create_app({"server": {"data_dir": DATA}}, env={})
        async with TestClient(TestServer(app)) as client:
            body = {"type": 1, "filename": "Movies/A Scene {example-42}.mp4"}
            resp = await client.post("/library/metadata/matches", json=body)
            body = await resp.json()
            meta = await (await client.get("/library/metadata/example-42")).json()
        print(json.dumps({"match": body, "meta": meta}))

    asyncio.run(main())
    """
)


def test_pip_installed_example_plugin_answers_a_match(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        text=True,
    ).strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "borrowed.pth").write_text(f"import site; site.addsitedir({ours!r})\n")

    # --ignore-installed: the example may be installed here too (its README says how), and
    # pip must still put it into the fresh environment, not count the borrowed copy.
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-build-isolation", "--no-index", "--ignore-installed", "--quiet", str(EXAMPLE)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr

    listed = subprocess.run(
        [str(python), "-m", "stash2plex", "plugins", "--json"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    infos = {i["name"]: i for i in json.loads(listed.stdout)}
    assert infos["example_source"]["status"] == "enabled"
    assert infos["example_source"]["distribution"] == "stash2plex-example-source"
    assert infos["example_source"]["hooks"] == ["build_metadata", "resolve_match"]

    script = f"DATA = {str(tmp_path / 'data')!r}\n" + SCRIPT
    done = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    (item,) = result["match"]["MediaContainer"]["Metadata"]
    assert item["ratingKey"] == "example-42"
    assert item["guid"] == "tv.plex.agents.custom.stash2plex://movie/example-42"
    assert result["meta"]["MediaContainer"]["Metadata"][0]["title"] == "Example 42"

    # and what answered is the copy pip put into the fresh environment, whether or not
    # this environment has one too
    where = subprocess.run(
        [str(python), "-c", "import stash2plex_example_source as m; print(m.__file__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(env_dir)

    # The test snippet of docs/writing-plugins.md, run outside this repository.
    outside = tmp_path / "my-plugin"
    outside.mkdir()
    docs = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    section = docs.split("## Testing your plugin", 1)[1]
    config = section.split("```toml\n", 1)[1].split("```", 1)[0]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    (outside / "pyproject.toml").write_text(config, encoding="utf-8")
    (outside / "tests").mkdir()
    (outside / "tests" / "test_plugin.py").write_text(snippet, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    done = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        capture_output=True, text=True, cwd=outside, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
