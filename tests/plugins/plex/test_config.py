"""``[plex]``: strict, named errors; the example file and the docs match the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs
import pytest

from stash2plex import CONFIG, ConfigError
from stash2plex_plex import plugin as plex_plugin
from stash2plex_plex.config import PlexConfig

ROOT = Path(__file__).resolve().parents[3]
PLEX = [("plex", plex_plugin)]


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({"url": "plex:32400"}, "plex.url"),
        ({"url": "http://plex:32400/?X-Plex-Token=abc"}, "must not carry the token"),
        ({"timeout_s": 0}, "plex.timeout_s"),
        ({"page_size": 5}, "plex.page_size"),
        ({"libraries": "Stash"}, "plex.libraries"),
        ({"tokn": "x"}, "tokn"),
    ],
)
def test_bad_values_stop_start_up_naming_the_key(make_app, section, named):
    with pytest.raises(ConfigError) as caught:
        make_app({"plex": section}, plugins=PLEX)
    assert named in str(caught.value)


def test_the_token_comes_from_the_environment_and_is_redacted(make_app):
    app = make_app({}, plugins=PLEX, env={"STASH2PLEX_PLEX__TOKEN": "s3cret"})
    assert app[CONFIG].section("plex").token == "s3cret"
    assert "s3cret" not in str(app[CONFIG].redacted())


def test_the_example_file_configures_plex(make_app):
    raw = tomllib.loads((ROOT / "stash2plex.example.toml").read_text(encoding="utf-8"))
    config = make_app({"plex": raw["plex"]}, plugins=PLEX)[CONFIG].section("plex")
    assert config == PlexConfig()  # the example shows the defaults


def test_the_docs_list_every_key():
    text = (ROOT / "docs" / "plugins" / "plex.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE))
    assert documented == {a.name for a in attrs.fields(PlexConfig)}
