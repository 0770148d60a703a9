"""Configuration: TOML file, environment overrides, strict types, redaction."""

from __future__ import annotations

import pytest

from stash2plex.config import ConfigError, ProviderConfig, load


def _write(tmp_path, text: str):
    path = tmp_path / "stash2plex.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file():
    config = load(None, {}, env={})
    assert config.server.port == 8787
    assert config.provider.identifier == "tv.plex.agents.custom.stash2plex"
    assert config.provider.match_threshold == 85
    assert config.plugins.disable == []


def test_file_then_environment(tmp_path):
    path = _write(tmp_path, '[server]\nport = 9000\n[provider]\ntitle = "Mine"\n')
    env = {
        "STASH2PLEX_SERVER__PORT": "9100",
        "STASH2PLEX_PROVIDER__MATCH_THRESHOLD": "90",
        "STASH2PLEX_PLUGINS__DISABLE": '["a", "b"]',
        "OTHER_VAR": "ignored",
    }
    config = load(path, {}, env=env)
    assert config.server.port == 9100
    assert config.provider.title == "Mine"
    assert config.provider.match_threshold == 90
    assert config.plugins.disable == ["a", "b"]


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        ("[server]\nport = 0\n", "server.port: must be between 1 and 65535"),
        ("[server]\nport = '8787'\n", "server.port: expected int, got str '8787'"),
        ("[server]\nprot = 1\n", "server.prot: unknown key"),
        ("[provider]\nmatch_threshold = 85.5\n", "provider.match_threshold: expected int"),
        ("[provider]\nidentifier = 'tv.plex.agents.custom.bad/id'\n", "identifier"),
        ("[provider]\npublic_url = 'plex.example'\n", "provider.public_url: must start with http"),
        ("[log]\nlevel = 'loud'\n", "log.level: must be one of"),
        ("[plugins]\ndisable = 'path_regex'\n", "plugins.disable"),
        ("server = 3\n", "server: expected a table"),
        ("[nonsense]\n", "[nonsense]: unknown section"),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_bad_values_stop_with_key_and_reason(tmp_path, toml, problem):
    with pytest.raises(ConfigError) as err:
        load(_write(tmp_path, toml), {}, env={})
    assert problem in str(err.value)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("STASH2PLEX_SERVER__PORT", "http", "expected an integer"),
        ("STASH2PLEX_SERVER__NOPE", "1", "server has no key 'nope'"),
        ("STASH2PLEX_PROVIDER__MATCH_MARGIN", "ten", "expected an integer"),
    ],
)
def test_bad_environment_names_the_variable(name, value, problem):
    with pytest.raises(ConfigError) as err:
        load(None, {}, env={name: value})
    assert name in str(err.value) and problem in str(err.value)


def test_no_silent_string_to_bool():
    # cattrs' default would turn "false" into True; ours refuses in files...
    from attrs import define

    @define
    class Flags:
        on: bool = False

    with pytest.raises(ConfigError, match="expected bool"):
        from stash2plex.config import build

        build({"flags": {"on": "false"}}, {"flags": Flags})
    # ...and reads the environment by the field's type.
    assert load(None, {"flags": Flags}, env={"STASH2PLEX_FLAGS__ON": "false"}).section(
        "flags"
    ) == Flags(on=False)
    with pytest.raises(ConfigError, match="expected true or false"):
        load(None, {"flags": Flags}, env={"STASH2PLEX_FLAGS__ON": "maybe"})


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "absent.toml", {}, env={})


def test_secrets_are_redacted():
    config = load(None, {}, env={"STASH2PLEX_PROVIDER__SIGNING_KEY": "hunter2"})
    assert config.provider.signing_key == "hunter2"
    shown = config.redacted()
    assert shown["provider"]["signing_key"] == "***"
    assert "hunter2" not in repr(shown)
    # an empty secret is shown as empty, so "not set" stays visible
    assert load(None, {}, env={}).redacted()["provider"]["signing_key"] == ""


def test_provider_defaults_are_valid():
    ProviderConfig()
