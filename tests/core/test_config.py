"""Configuration: TOML file, environment overrides, strict types, redaction."""

from __future__ import annotations

import pytest
from attrs import define

from stash2plex.config import ConfigError, ProviderConfig, load, prepare_data_dir


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


# --- operator mistakes: one line naming the key or path, and the reason -----------------


def test_config_path_that_is_a_directory(tmp_path):
    # What Docker bind-mounts when the host file is missing.
    with pytest.raises(ConfigError) as err:
        load(tmp_path, {}, env={})
    assert str(err.value).startswith(f"invalid configuration: {tmp_path}: is a directory,")
    assert "\n" not in str(err.value) and "create the file on the host" in str(err.value)


def test_config_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[provider]\ntitle = "Café"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load(path, {}, env={})
    assert str(err.value) == (
        f"invalid configuration: {path}: not UTF-8 text (byte 0xe9 at offset 23); save it as UTF-8"
    )


def test_paths_holding_a_nul_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a usable path"):
        load(tmp_path / "a\0b.toml", {}, env={})
    with pytest.raises(ConfigError, match=r"server\.data_dir: .* not a usable path"):
        prepare_data_dir(tmp_path / "a\0b")


def test_data_dir_is_created_and_probed(tmp_path):
    target = tmp_path / "a" / "b"
    prepare_data_dir(target, create=False)  # could be created: fine, and not created
    assert not target.exists()
    prepare_data_dir(target)
    assert target.is_dir() and list(target.iterdir()) == []  # the probe left nothing


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("afile", "'{base}/afile' is a file, not a directory"),
        ("afile/sub", "'{base}/afile/sub' cannot be created: '{base}/afile' is a file"),
    ],
)
@pytest.mark.parametrize("create", [True, False])
def test_data_dir_that_is_a_file(tmp_path, where, reason, create):
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        prepare_data_dir(tmp_path / where, create=create)
    assert err.value.problems == [f"server.data_dir: {reason.format(base=tmp_path)}"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("STASH2PLEX_SEVER__PORT", "STASH2PLEX_SEVER__PORT: unknown section 'sever' (known: "),
        (
            "STASH2PLEX_SERVER_PORT",
            "STASH2PLEX_SERVER_PORT: not a configuration variable: keys are "
            "STASH2PLEX_<SECTION>__<KEY>, with two underscores (did you mean "
            "STASH2PLEX_SERVER__PORT?); the others allowed are STASH2PLEX_CONFIG, "
            "STASH2PLEX_VENV",
        ),
        ("STASH2PLEX_STASH_API_KEY", "(did you mean STASH2PLEX_STASH__API_KEY?)"),
        ("STASH2PLEX_TOKEN", "STASH2PLEX_TOKEN: not a configuration variable"),
    ],
)
def test_misspelled_variables_are_refused(name, problem):
    @define
    class Stash:
        api_key: str = ""

    with pytest.raises(ConfigError) as err:
        load(None, {"stash": Stash}, env={name: "9000"})
    assert problem in str(err.value)


def test_variables_that_are_not_keys_and_sections_of_disabled_plugins_are_allowed():
    env = {
        "STASH2PLEX_CONFIG": "/config/stash2plex.toml",
        "STASH2PLEX_VENV": "/opt/venv",
        "STASH2PLEX_PLEX__TOKEN": "t",  # [plex] of a plugin installed but disabled
        "NOT_OURS__X": "1",
    }
    assert load(None, {}, env=env, ignored=frozenset({"plex"})).server.port == 8787


def test_disable_naming_no_installed_plugin_lists_the_known_ones(make_app):
    class Engine:
        pass

    raw = {"plugins": {"disable": ["path_regx"]}}
    with pytest.raises(ConfigError) as err:
        make_app(raw, plugins=[("path_regex", Engine()), ("stash_source", Engine())])
    assert str(err.value) == (
        "invalid configuration: plugins.disable: 'path_regx' is not an installed plugin "
        "(known: path_regex, stash_source)"
    )
    make_app({"plugins": {"disable": ["path_regex"]}}, plugins=[("path_regex", Engine())])
