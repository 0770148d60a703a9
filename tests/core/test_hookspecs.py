"""The hook contract stays in lockstep with its documentation and its tests."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from stash2plex import hookspecs

TESTS = Path(__file__).resolve().parents[1]
SPECS = [
    fn
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "stash2plex_spec")
]


def test_there_are_hooks():
    names = {fn.__name__ for fn in SPECS}
    assert {"map_path", "resolve_match", "build_metadata", "on_unmatched", "on_gap"} <= names
    assert {"config_section", "routes", "cleanup_ctx", "cli_commands"} <= names


@pytest.mark.parametrize("spec", SPECS, ids=lambda f: f.__name__)
def test_every_parameter_and_the_result_are_documented(spec):
    doc = inspect.getdoc(spec) or ""
    first_line = doc.splitlines()[0] if doc else ""
    assert first_line.endswith("."), f"{spec.__name__}: needs a one-line summary"
    for param in inspect.signature(spec).parameters:
        assert re.search(rf":param {param}:", doc), f"{spec.__name__}: {param} undocumented"
    assert ":returns:" in doc, f"{spec.__name__}: result contract undocumented"
    # Every spec says whether the first answer wins or every plugin is asked.
    assert re.search(
        r"first\s+result\s+wins|collected\s+from\s+every\s+plugin|broadcast", doc, re.I
    ), spec.__name__


@pytest.mark.parametrize("spec", SPECS, ids=lambda f: f.__name__)
def test_every_hook_has_a_test(spec):
    pattern = re.compile(rf"def test_hook_{spec.__name__}[_(]")
    sources = (p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py"))
    assert any(pattern.search(text) for text in sources), f"no test_hook_{spec.__name__}"


def test_hookspecs_take_no_default_values():
    # pluggy silently does not pass arguments that have defaults.
    for spec in SPECS:
        for param in inspect.signature(spec).parameters.values():
            assert param.default is inspect.Parameter.empty, (spec.__name__, param.name)
