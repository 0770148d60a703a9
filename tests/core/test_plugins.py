"""Real entry-point discovery, through a checked-in fake installed distribution.

``tests/core/data/site`` is on pytest's ``pythonpath``; it holds
``stash2plex_fakeplugins-1.0.dist-info/entry_points.txt`` and the modules it names, so
``importlib.metadata`` finds them exactly as it finds pip-installed plugins.
"""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path
from typing import Any

import pytest

from stash2plex import HOOKS, MatchRequest
from stash2plex.app import PLUGINS
from stash2plex.config import ConfigError

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


def _infos(app):
    return {i.name: i for i in app[PLUGINS].describe()}


def test_entry_points_are_discovered_and_failures_reported(make_app, capsys):
    app = make_app({"plugins": {"disable": ["fake_blocked"]}}, load_entrypoints=True)
    infos = _infos(app)

    good = infos["fake_good"]
    assert (good.status, good.distribution, good.version) == (
        "enabled",
        "stash2plex-fakeplugins",
        "1.0",
    )
    assert good.hooks == ["resolve_match"]

    broken = infos["fake_broken"]
    assert broken.status == "failed"
    assert "needs a library that is not installed" in broken.error

    typo = infos["fake_typo"]
    assert typo.status == "failed"
    assert "map_pth" in typo.error

    assert infos["fake_blocked"].status == "blocked"

    out = capsys.readouterr().out
    assert '"event":"plugin.load_failed"' in out
    assert '"distribution":"stash2plex-fakeplugins"' in out
    assert '"version":"1.0"' in out


async def test_discovered_plugin_answers(make_app):
    app = make_app({"plugins": {"disable": ["fake_blocked"]}}, load_entrypoints=True)
    found = await app[HOOKS].resolve_match(MatchRequest(title="fake good"))
    assert [(c.metadata.rating_key, c.source) for c in found if c.source == "fake_good"] == [
        ("fake-1", "fake_good")
    ]


def test_misspelled_hook_never_runs(make_app):
    app = make_app({"plugins": {"disable": ["fake_blocked"]}}, load_entrypoints=True)
    assert app[PLUGINS].pm.get_plugin("fake_typo") is None


def test_disable_blocks_before_import(make_app):
    # fakeplugin_blocked raises on import: blocking must mean "never imported".
    app = make_app({"plugins": {"disable": ["fake_blocked", "fake_good"]}}, load_entrypoints=True)
    infos = _infos(app)
    assert infos["fake_good"].status == "blocked"
    assert app[PLUGINS].pm.get_plugin("fake_good") is None


def test_disable_from_the_environment(make_app):
    env = {"STASH2PLEX_PLUGINS__DISABLE": "fake_blocked,fake_good"}
    app = make_app(load_entrypoints=True, env=env)
    assert _infos(app)["fake_good"].status == "blocked"


def test_config_section_of_a_disabled_plugin_is_tolerated(make_app):
    from stash2plex import ConfigSection, hookimpl

    class Owner:
        @hookimpl
        def config_section(self):
            from attrs import define

            @define
            class Cfg:
                x: int = 1

            return ConfigSection(name="owner", cls=Cfg)

    app = make_app(
        {"owner": {"x": 2}, "plugins": {"disable": ["owner"]}}, plugins=[("owner", Owner())]
    )
    assert app[PLUGINS].pm.get_plugin("owner") is None
    with pytest.raises(ConfigError, match=r"\[ghost\]: unknown section"):
        make_app({"ghost": {"x": 1}})


def test_declared_section_of_a_disabled_plugin_is_tolerated_without_importing_it(make_app):
    # The fake distribution declares [fake_settings] in the group stash2plex.sections.
    env = {"STASH2PLEX_FAKE_SETTINGS__X": "1", "STASH2PLEX_PLUGINS__DISABLE": "fake_blocked"}
    app = make_app({"fake_settings": {"x": 1}}, load_entrypoints=True, env=env)
    assert _infos(app)["fake_blocked"].sections == ["fake_settings"]
    for raw, env in (({"ghost": {"x": 1}}, {}), ({}, {"STASH2PLEX_GHOST__X": "1"})):
        with pytest.raises(ConfigError, match="ghost"):
            make_app(
                raw,
                load_entrypoints=True,
                env={**env, "STASH2PLEX_PLUGINS__DISABLE": "fake_blocked"},
            )


def _repository_plugins() -> list[tuple[str, Any, list[str]]]:
    found = []
    for pyproject in sorted(PLUGINS_DIR.glob("*/pyproject.toml")):
        points = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["entry-points"]
        for name, target in points["stash2plex"].items():
            declared = list(points.get("stash2plex.sections", {}))
            found.append((name, target, declared))
    return found


@pytest.mark.parametrize(("name", "target", "declared"), _repository_plugins())
def test_each_repository_plugin_declares_the_sections_not_named_after_it(name, target, declared):
    plugin = importlib.import_module(target)
    hook = getattr(plugin, "config_section", None)
    owned = set() if hook is None else {hook().name}
    # otherwise [section] would be refused while the plugin is disabled
    assert owned <= {name, *declared}, (
        f"{name}: declare {sorted(owned - {name})} under "
        '[project.entry-points."stash2plex.sections"] in its pyproject.toml'
    )
