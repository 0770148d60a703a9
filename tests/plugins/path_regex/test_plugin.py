"""The plugin inside the host: configuration, map_path, swapping engines, checks, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import stash2plex_path_regex.plugin as path_regex
from stash2plex import HOOKS, CheckResult, ConfigError, PathDirection, hookimpl
from stash2plex_path_regex.plugin import ENGINE

P2S, S2P = PathDirection.PLEX_TO_STASH, PathDirection.STASH_TO_PLEX
PLUGIN = ("path_regex", path_regex)
NAS = {
    "name": "nas",
    "plex_prefix": r"D:\Media",
    "stash_prefix": "/data/media",
    "samples": [r"D:\Media\Studio\Scene 01.mp4"],
}
DOCKER = {"name": "docker", "plex_prefix": "/media", "stash_prefix": "/data/docker"}


def config(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"path_regex": {"rules": list(rules)}}


async def test_map_path_through_the_host(make_app):
    app = make_app(config(NAS), plugins=[PLUGIN])
    hooks = app[HOOKS]
    assert await hooks.map_path(r"d:/media/A/b.mp4", P2S) == "/data/media/A/b.mp4"
    assert await hooks.map_path("/data/media/A/b.mp4", S2P) == r"D:\Media\A\b.mp4"
    assert await hooks.map_path("/elsewhere/b.mp4", S2P) is None


async def test_no_section_means_no_rules(make_app):
    app = make_app(plugins=[PLUGIN])
    assert await app[HOOKS].map_path("/media/x", P2S) is None


async def test_engine_is_built_at_start_up_and_used_while_running(aiohttp_server, make_app):
    app = make_app(config(NAS), plugins=[PLUGIN])
    server = await aiohttp_server(app)  # runs the cleanup context, then freezes the app
    engine = app[ENGINE]
    assert [r.name for r in engine.rules] == ["nas"]
    # Warnings are errors in this suite: a frozen app's state must not be touched here.
    assert await app[HOOKS].map_path(r"D:\Media\x.mp4", P2S) == "/data/media/x.mp4"
    assert app[ENGINE] is engine
    await server.close()


async def test_each_translation_is_logged_with_its_rule(make_app, capsys):
    app = make_app(config(DOCKER, NAS), plugins=[PLUGIN])
    await app[HOOKS].map_path(r"D:\Media\x.mp4", P2S)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    mapped = [line for line in lines if line["event"] == "path.mapped"]
    assert len(mapped) == 1
    assert mapped[0]["logger"] == "stash2plex.path_regex"
    assert mapped[0]["level"] == "debug"
    assert {k: mapped[0][k] for k in ("rule", "direction", "source", "target")} == {
        "rule": "nas",
        "direction": "plex_to_stash",
        "source": r"D:\Media\x.mp4",
        "target": "/data/media/x.mp4",
    }


# --- configuration errors stop start-up, naming the rule --------------------------------


def test_a_rule_that_does_not_round_trip_stops_start_up(make_app):
    lossy = {
        "name": "lossy",
        "plex_pattern": r"/media/(?P<studio>[^/]+)/(?P<file>[^/]+)",
        "stash_template": "/data/{file}",
        "stash_pattern": r"/data/(?P<file>[^/]+)",
        "plex_template": "/media/unknown/{file}",
        "samples": ["/media/Studio/x.mp4"],
    }
    with pytest.raises(ConfigError) as err:
        make_app(config(NAS, lossy), plugins=[PLUGIN])
    assert err.value.problems == [
        "path_regex.rules[1]: rule 'lossy': sample does not round-trip: "
        "'/media/Studio/x.mp4' -> '/data/x.mp4' -> '/media/unknown/x.mp4'"
    ]


def test_bad_regex_and_template_are_reported_per_rule(make_app):
    bad = {
        "name": "bad",
        "plex_pattern": "/media/(?P<rest>.*",
        "stash_template": "/data/{rest}",
        "stash_pattern": "/data/(?P<rest>.*)",
        "plex_template": "/media/{rest}",
    }
    with pytest.raises(ConfigError) as err:
        make_app(config(DOCKER, bad), plugins=[PLUGIN])
    [problem] = err.value.problems
    assert problem.startswith("path_regex.rules[1]: rule 'bad': plex_pattern does not compile")


def test_strict_types_and_unknown_keys(make_app):
    with pytest.raises(ConfigError) as err:
        make_app(
            config({**DOCKER, "case_insensitive": "yes", "plex_prefx": "/x"}), plugins=[PLUGIN]
        )
    assert sorted(err.value.problems) == [
        "path_regex.rules[0].case_insensitive: expected bool, got str 'yes'",
        "path_regex.rules[0].plex_prefx: unknown key",
    ]


def test_rules_taken_by_an_earlier_rule_are_reported(make_app):
    special = {**NAS, "name": "special", "plex_prefix": r"D:\Media\Special"}
    special["samples"] = [r"D:\Media\Special\x.mp4"]
    with pytest.raises(ConfigError) as err:
        make_app(config(NAS, special), plugins=[PLUGIN])
    assert err.value.problems == [
        "path_regex: rule 'special': sample 'D:\\Media\\Special\\x.mp4' is taken by the "
        "earlier rule 'nas' (first match wins: reorder or narrow the rules)"
    ]


async def test_rules_from_the_environment(make_app):
    env = {
        "STASH2PLEX_PATH_REGEX__RULES": (
            '[{name = "env", plex_prefix = "/media", stash_prefix = "/data"}]'
        )
    }
    app = make_app(plugins=[PLUGIN], env=env)
    assert await app[HOOKS].map_path("/media/x", P2S) == "/data/x"


# --- swapping engines -------------------------------------------------------------------


class OtherEngine:
    """A different mapping engine, as another distribution would ship it."""

    @hookimpl
    def map_path(self, path: str, direction: PathDirection) -> str | None:
        return "/other" + path if direction is PathDirection.PLEX_TO_STASH else None


async def test_disabling_path_regex_hands_map_path_to_another_engine(make_app):
    raw = {**config(DOCKER), "plugins": {"disable": ["path_regex"]}}
    app = make_app(raw, plugins=[PLUGIN, ("other", OtherEngine())])
    # The disabled plugin's section is tolerated, not structured; the other engine answers.
    assert await app[HOOKS].map_path("/media/x", P2S) == "/other/media/x"
    assert ENGINE not in app


async def test_with_both_engines_the_first_answer_wins(make_app):
    # Plugins registered later are asked first (pluggy order): here path_regex.
    app = make_app(config(DOCKER), plugins=[("other", OtherEngine()), PLUGIN])
    hooks = app[HOOKS]
    assert await hooks.map_path("/media/x", P2S) == "/data/docker/x"
    assert await hooks.map_path("/unmapped/x", P2S) == "/other/unmapped/x"  # ours said None


# --- checks -----------------------------------------------------------------------------


async def test_checks_describe_each_rule(make_app):
    app = make_app(config(NAS, DOCKER), plugins=[PLUGIN])
    [(plugin, results)] = await app[HOOKS].checks()
    assert plugin == "path_regex"
    assert results == [
        CheckResult(
            name="rule 'nas' (rules[0])",
            ok=True,
            detail="prefix 'D:\\Media' <-> '/data/media' (Plex side case-insensitive, "
            "Stash side case-sensitive); 1 sample(s) round-trip",
        ),
        CheckResult(
            name="rule 'docker' (rules[1])",
            ok=True,
            detail="prefix '/media' <-> '/data/docker' (case-sensitive); no samples "
            "(add samples = [...] to prove it)",
        ),
    ]


async def test_checks_without_rules(make_app):
    [(_plugin, [result])] = await make_app(plugins=[PLUGIN])[HOOKS].checks()
    assert result.ok and "none configured" in result.detail


# --- the command line, end to end -------------------------------------------------------

PLUGIN_ROOT = Path(path_regex.__file__).resolve().parents[1]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """An installed-looking distribution whose entry points come from our pyproject.toml."""
    project = tomllib.loads((PLUGIN_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    info = tmp_path / "site" / "stash2plex_path_regex-0.1.0.dist-info"
    info.mkdir(parents=True)
    info.joinpath("METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['project']['name']}\nVersion: 0.1.0\n",
        encoding="utf-8",
    )
    points = project["project"]["entry-points"]["stash2plex"]
    info.joinpath("entry_points.txt").write_text(
        "[stash2plex]\n" + "".join(f"{k} = {v}\n" for k, v in points.items()), encoding="utf-8"
    )
    return tmp_path / "site"


def cli(site: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "stash2plex.toml"
    if not cfg.exists():
        cfg.write_text(
            f"[server]\ndata_dir = {str(tmp_path / 'data')!r}\n\n"
            "[[path_regex.rules]]\n"
            "name = 'docker'\nplex_prefix = '/mnt/media'\nstash_prefix = '/data/docker'\n\n"
            "[[path_regex.rules]]\n"
            "name = 'nas'\nplex_prefix = 'D:\\Media'\nstash_prefix = '/data/media'\n"
            "case_insensitive = false\nsamples = ['D:\\Media\\A\\b.mp4']\n",
            encoding="utf-8",
        )
    return subprocess.run(
        [sys.executable, "-m", "stash2plex", "--config", str(cfg), "--log-level", "info", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGIN_ROOT)])},
        timeout=60,
    )


def test_cli_paths_prints_the_mapping_and_the_rule(site, tmp_path):
    done = cli(site, tmp_path, "paths", r"D:\Media\A\b.mp4", "--to", "stash")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2:] == [
        "/data/media/A/b.mp4",
        "  rule 'nas' (rules[1]): prefix 'D:\\Media' <-> '/data/media' (case-sensitive)",
    ]
    done = cli(site, tmp_path, "paths", "/data/docker/A/b.mp4", "/data/media/c", "--to", "plex")
    assert done.returncode == 0, done.stderr
    assert "/mnt/media/A/b.mp4" in done.stdout.splitlines()
    assert "D:\\Media\\c" in done.stdout.splitlines()


def test_cli_paths_explains_a_miss(site, tmp_path):
    done = cli(site, tmp_path, "paths", r"d:\media\A\b.mp4", "--to", "stash")
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == f"configuration: {tmp_path / 'stash2plex.toml'}"
    assert done.stdout.splitlines()[-4:-1] == [
        r"no rule maps 'd:\media\A\b.mp4' to Stash",
        r"  nearest: rule 'nas' (rules[1]) expects prefix 'D:\Media' (case-sensitive); "
        r"path starts with 'd:\media'",
        "  rule 'docker' (rules[0]) expects a POSIX path under '/mnt/media'; "
        "got a Windows drive path",
    ]


def test_cli_bad_rule_stops_with_the_rule_and_its_paths(site, tmp_path):
    cfg = tmp_path / "stash2plex.toml"
    cfg.write_text(
        "[[path_regex.rules]]\nname = 'nas'\nplex_prefix = 'D:\\Media'\n"
        "stash_prefix = '/data/media'\nsamples = ['E:\\Media\\x.mp4']\n",
        encoding="utf-8",
    )
    done = cli(site, tmp_path, "check")
    assert done.returncode == 2
    assert (
        "path_regex.rules[0]: rule 'nas': sample 'E:\\Media\\x.mp4' is not mapped by this "
        "rule: expects prefix 'D:\\Media'; path starts with 'E:\\Media'"
    ) in done.stderr


def test_cli_paths_reads_the_configuration_serve_reads(site, tmp_path):
    cli(site, tmp_path, "config")  # writes the usual stash2plex.toml
    cfg = str(tmp_path / "stash2plex.toml")
    bare = [sys.executable, "-m", "stash2plex", "paths", r"D:\Media\A\b.mp4", "--to", "stash"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(PLUGIN_ROOT)])}
    # --config after the sub-command, as people type it; or $STASH2PLEX_CONFIG, as Docker sets
    for args, extra in (([*bare, "--config", cfg], {}), (bare, {"STASH2PLEX_CONFIG": cfg})):
        done = subprocess.run(
            args, capture_output=True, text=True, cwd=tmp_path, env={**env, **extra}, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines()[0] == "/data/media/A/b.mp4"
    # and a miss says which configuration it looked in
    done = subprocess.run(bare, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1].startswith("configuration: built-in defaults")


def test_cli_template_in_another_dialect_stops_check(site, tmp_path):
    cfg = tmp_path / "stash2plex.toml"
    cfg.write_text(
        "[[path_regex.rules]]\nname = 'nas'\nplex_pattern = '/media/(?P<rest>.*)'\n"
        "stash_template = '/data/\\g<rest>'\nstash_pattern = '/data/(?P<rest>.*)'\n"
        "plex_template = '/media/{rest}'\n",
        encoding="utf-8",
    )
    done = cli(site, tmp_path, "check")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert (
        "path_regex.rules[0]: rule 'nas': stash_template '/data/\\g<rest>' uses \\g<rest>, "
        "another regex dialect's group reference: write '/data/{rest}' (templates name groups "
        "as {name} or {1}"
    ) in done.stderr


def test_cli_check_lists_the_rules(site, tmp_path):
    done = cli(site, tmp_path, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok   path_regex: rule 'nas' (rules[1]): prefix 'D:\\Media'" in done.stdout


# --- the documentation's examples are valid configurations -----------------------------

DOCS = PLUGIN_ROOT.parents[1] / "docs" / "plugins" / "path_regex.md"


def _toml_blocks() -> list[str]:
    text = DOCS.read_text(encoding="utf-8")
    return [block.split("```", 1)[0] for block in text.split("```toml\n")[1:]]


@pytest.mark.parametrize("block", _toml_blocks())
async def test_documented_configuration_examples_load(make_app, block):
    raw = tomllib.loads(block)
    app = make_app(raw, plugins=[PLUGIN])  # samples included: a bad example fails here
    if "path_regex" in raw and "plugins" not in raw:
        for rule in raw["path_regex"]["rules"]:
            for sample in rule.get("samples", []):
                assert await app[HOOKS].map_path(sample, P2S) is not None


async def test_documented_regex_example_maps_as_described(make_app):
    [block] = [b for b in _toml_blocks() if 'name = "drives"' in b]
    hooks = make_app(tomllib.loads(block), plugins=[PLUGIN])[HOOKS]
    stash = "/data/studios/F/Some Studio/Scene 01.mp4"
    assert await hooks.map_path(r"F:\Studios\Some Studio\Scene 01.mp4", P2S) == stash
    assert await hooks.map_path(stash, S2P) == r"F:\Studios\Some Studio\Scene 01.mp4"
