#!/usr/bin/env python3
"""Bootstrap: one command to run the provider, one to run the tests. Needs only Python 3.11+.

    python3 dev.py serve [--config FILE ...]    install everything into .venv, run the provider
    python3 dev.py test [pytest args...]        install everything (with test tools), run the suite
    python3 dev.py stash2plex ARGS...           any stash2plex command, from .venv

Installs the host and every plugin of this repository (editable) into ``.venv`` (or
``$STASH2PLEX_VENV``) once, and again only when a pyproject.toml changes. ``serve`` and
``stash2plex`` then become that command (same process), so stopping this stops it; they
run from the repository's folder, where relative paths (``--config``, ``./data``) point.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("STASH2PLEX_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")


def _projects() -> list[Path]:
    return [ROOT, *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))]


def _install(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may meet an older python3
        sys.exit(f"stash2plex needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    stamp = VENV / f".installed-{extras or 'run'}"
    digest = hashlib.sha256(
        b"".join((p / "pyproject.toml").read_bytes() for p in _projects())
    ).hexdigest()
    # An install with the test tools holds everything a plain run needs too.
    done = [stamp, VENV / ".installed-test"] if not extras else [stamp]
    if PYTHON.exists() and any(s.exists() and s.read_text() == digest for s in done):
        return
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip", "setuptools>=77"], check=True)
    targets = [f"{ROOT}[{extras}]" if extras else str(ROOT)]
    targets += [str(p) for p in _projects()[1:]]
    args = [*pip]
    for target in targets:
        args += ["-e", target]
    print("installing stash2plex and its plugins", flush=True)
    subprocess.run(args, check=True)
    stamp.write_text(digest)


def _exec(argv: list[str]) -> int:
    return subprocess.run(argv, cwd=ROOT).returncode


def _replace_with(argv: list[str]) -> int:
    """Become ``argv`` (same pid), so SIGTERM or Ctrl+C sent to this process reaches the
    server itself. Windows has no such exec: there the child shares the console, and
    Ctrl+C reaches it anyway."""
    if os.name == "nt":
        return _exec(argv)
    sys.stdout.flush()
    os.chdir(ROOT)
    os.execv(argv[0], argv)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command == "serve":
        _install("")
        # global options (--config FILE, --log-format) work before or after "serve"
        return _replace_with([str(BIN / "stash2plex"), "serve", *rest])
    if command == "test":
        _install("test")
        checks = [
            [str(BIN / "ruff"), "check", "."],
            [str(BIN / "ruff"), "format", "--check", "."],
            [str(BIN / "hadolint"), "--failure-threshold", "warning", "Dockerfile"],
        ]
        for check in checks:
            print("$", Path(check[0]).name, *check[1:], flush=True)
            if _exec(check) != 0:
                return 1
        return _exec([str(PYTHON), "-m", "pytest", *rest])
    if command == "stash2plex":
        _install("")
        return _replace_with([str(BIN / "stash2plex"), *rest])
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
