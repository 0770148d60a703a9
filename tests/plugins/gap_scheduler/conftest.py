"""Gap detection's fixtures: an app with the real gap_scheduler and path_regex plugins
around in-memory sides (``gapfakes``), importable by this folder's tests."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

HERE = Path(__file__).resolve().parent
PLUGIN_ROOT = HERE.parents[2] / "plugins" / "gap_scheduler"
if importlib.util.find_spec("stash2plex_gap_scheduler") is None:
    sys.path.insert(0, str(PLUGIN_ROOT))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))  # the tests import gapfakes

from gapfakes import RULES, Sides  # noqa: E402

import stash2plex_gap_scheduler.plugin as gaps_plugin  # noqa: E402
import stash2plex_path_regex.plugin as path_plugin  # noqa: E402


@pytest.fixture
def gaps_app(make_app) -> Callable[..., web.Application]:
    """``gaps_app(sides, gaps={...}, rules=[...])``: an app (not started) with the real
    gap_scheduler and path_regex plugins; scheduling off unless ``gaps`` says otherwise."""

    def build(
        sides: Sides, gaps: dict[str, Any] | None = None, rules: list[dict[str, Any]] | None = None
    ) -> web.Application:
        raw: dict[str, Any] = {"gaps": {"interval": "0", **(gaps or {})}}
        raw["path_regex"] = {"rules": RULES if rules is None else rules}
        return make_app(
            raw,
            plugins=[("gap_scheduler", gaps_plugin), ("path_regex", path_plugin), ("sides", sides)],
        )

    return build


@pytest.fixture(scope="session")
def library():
    from stash2plex_stash_source.fake import generate_library

    return generate_library(scenes=120, seed=5)


@pytest.fixture
async def fake_stash(library):
    from stash2plex_stash_source.fake import FakeStash

    async with FakeStash(library) as stash:
        yield stash
