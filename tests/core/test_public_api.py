"""What plugins may import from the host: the package's exports, documented."""

from __future__ import annotations

import ast
from pathlib import Path

import stash2plex

ROOT = Path(__file__).resolve().parents[2]
#: Kept importable for plugins written before ``get_logger`` was exported.
LEGACY = {"stash2plex.logs": {"get_logger"}}


def _plugin_sources() -> list[Path]:
    found = []
    for base in (ROOT / "plugins", ROOT / "examples"):
        for path in sorted(base.rglob("*.py")):
            parts = set(path.relative_to(base).parts)
            if not parts & {"tests", ".venv", "build"}:
                found.append(path)
    return found


def _host_imports(path: Path) -> list[tuple[str, set[str]]]:
    """(module, names) for every import of a stash2plex module in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "stash2plex":
                out.append((node.module, {a.name for a in node.names}))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "stash2plex":
                    out.append((alias.name, set()))
    return out


def test_plugins_import_only_the_public_api():
    sources = _plugin_sources()
    assert any(p.name == "plugin.py" for p in sources)
    public = set(stash2plex.__all__)
    wrong = []
    for path in sources:
        for module, names in _host_imports(path):
            where = path.relative_to(ROOT)
            if module == "stash2plex":
                if names - public:
                    wrong.append(f"{where}: {sorted(names - public)} not exported")
            elif not names or not names <= LEGACY.get(module, set()):
                wrong.append(f"{where}: imports the private module {module}")
    assert not wrong, "\n".join(wrong)


def test_every_export_is_documented():
    doc = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    missing = [n for n in stash2plex.__all__ if n != "__version__" and f"`{n}" not in doc]
    assert not missing, missing


def test_legacy_logger_path_is_the_exported_one():
    from stash2plex.logs import get_logger

    assert get_logger is stash2plex.get_logger
