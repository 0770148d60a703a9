"""``[push]``: strict keys, clear errors, the example file and the docs in step."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import attrs
import pytest

import stash2plex_plex_push.plugin as push_plugin
from stash2plex import CONFIG, ConfigError
from stash2plex_plex_push.config import PushConfig

ROOT = Path(__file__).resolve().parents[3]
PUSH = [("plex_push", push_plugin)]


@pytest.mark.parametrize(
    ("push", "named"),
    [
        ({"fields": ["title", "colour"]}, "colour"),
        ({"on_gaps": ["sometimes"]}, "sometimes"),
        ({"rate_per_s": -1}, "rate_per_s"),
        ({"webhok_token": "x"}, "webhok_token"),
        ({"self_url": "localhost:8787"}, "self_url"),
    ],
)
def test_bad_config_stops_start_up_naming_the_key(make_app, push, named):
    with pytest.raises(ConfigError) as err:
        make_app({"push": push}, plugins=PUSH)
    assert named in str(err.value)


def test_the_token_comes_from_the_environment_and_is_redacted(make_app):
    app = make_app({}, plugins=PUSH, env={"STASH2PLEX_PUSH__WEBHOOK_TOKEN": "s3cret"})
    assert app[CONFIG].section("push").webhook_token == "s3cret"
    assert "s3cret" not in str(app[CONFIG].redacted())


def test_the_example_file_configures_push(make_app):
    raw = tomllib.loads((ROOT / "stash2plex.example.toml").read_text(encoding="utf-8"))
    config = make_app({"push": raw["push"]}, plugins=PUSH)[CONFIG].section("push")
    assert config == PushConfig()  # the example shows the defaults


def test_the_docs_list_every_key():
    text = (ROOT / "docs" / "plugins" / "plex_push.md").read_text(encoding="utf-8")
    documented = set(
        re.findall(
            r"^\| `(\w+)` \| (?:secret|bool|list|int|float|string)", text, flags=re.MULTILINE
        )
    )
    assert documented == {a.name for a in attrs.fields(PushConfig)}


async def test_check_reports_the_webhook_and_the_queue_file(make_app):
    from stash2plex import HOOKS

    app = make_app({"push": {"webhook_token": "t"}}, plugins=PUSH)
    [(_plugin, results)] = await app[HOOKS].checks()
    by_name = {r.name: r for r in results}
    assert by_name["push webhook"].detail == "token set"
    assert by_name["push queue file"].ok
    assert "0 queued, 0 dead, breaker closed" in by_name["push queue file"].detail
