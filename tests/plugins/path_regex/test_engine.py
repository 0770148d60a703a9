"""The mapping engine on its own: real-world paths, rule shapes, validation, explanations."""

from __future__ import annotations

import enum
import unicodedata
from typing import Any

import pytest
import structlog

from stash2plex_path_regex.engine import (
    PLEX_TO_STASH,
    STASH_TO_PLEX,
    Engine,
    Mapping,
    PathRegexConfig,
    Rule,
    Style,
    Template,
    canonical,
    detect_style,
    quote,
    validate_rules,
)

P2S, S2P = PLEX_TO_STASH, STASH_TO_PLEX


def prefix(name: str, plex: str, stash: str, **kw: Any) -> Rule:
    return Rule(name=name, plex_prefix=plex, stash_prefix=stash, **kw)


def regex(name: str, pp: str, st: str, sp: str, pt: str, **kw: Any) -> Rule:
    return Rule(
        name=name, plex_pattern=pp, stash_template=st, stash_pattern=sp, plex_template=pt, **kw
    )


def to_stash(engine: Engine, path: str) -> str | None:
    found = engine.map(path, P2S)
    return None if found is None else found.path


def to_plex(engine: Engine, path: str) -> str | None:
    found = engine.map(path, S2P)
    return None if found is None else found.path


# --- prefix rules: the shapes users run into --------------------------------------------


def test_docker_prefix_posix_to_posix():
    engine = Engine([prefix("docker", "/media", "/data/media")])
    assert engine.map("/media/Studio/Scene 01.mp4", P2S) == Mapping(
        path="/data/media/Studio/Scene 01.mp4", rule="docker"
    )
    assert to_plex(engine, "/data/media/Studio/Scene 01.mp4") == "/media/Studio/Scene 01.mp4"


def test_windows_drive_both_separators_and_back():
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    for spelling in (r"D:\Media\A\b.mp4", "D:/Media/A/b.mp4", r"D:\Media/A\b.mp4"):
        assert to_stash(engine, spelling) == "/data/media/A/b.mp4"
    assert to_plex(engine, "/data/media/A/b.mp4") == r"D:\Media\A\b.mp4"


def test_windows_prefix_written_with_forward_slashes_renders_backslashes():
    engine = Engine([prefix("nas", "D:/Media/", "/data/media/")])
    assert to_plex(engine, "/data/media/A/b.mp4") == r"D:\Media\A\b.mp4"


def test_unc_share():
    engine = Engine([prefix("unc", r"\\nas\media", "/data")])
    assert to_stash(engine, r"\\nas\media\Studio\x.mkv") == "/data/Studio/x.mkv"
    assert to_stash(engine, "//nas/media/Studio/x.mkv") == "/data/Studio/x.mkv"
    assert (
        to_stash(engine, r"\\NAS\Media\Studio\x.mkv") == "/data/Studio/x.mkv"
    )  # Windows: any case
    assert to_plex(engine, "/data/Studio/x.mkv") == r"\\nas\media\Studio\x.mkv"
    assert to_stash(engine, r"\\nas2\media\x.mkv") is None
    assert to_stash(engine, r"\\nas") is None  # above the prefix


def test_windows_long_path_spellings():
    engine = Engine([prefix("d", r"D:\Media", "/d"), prefix("u", r"\\nas\m", "/u")])
    assert to_stash(engine, r"\\?\D:\Media\x.mp4") == "/d/x.mp4"
    assert to_stash(engine, r"\\?\UNC\nas\m\x.mp4") == "/u/x.mp4"


def test_unc_to_windows_drive():
    engine = Engine([prefix("w", r"\\nas\media", r"E:\Stash")])
    assert to_stash(engine, r"\\nas\media\a\b.mp4") == r"E:\Stash\a\b.mp4"
    assert to_plex(engine, "e:/stash/a/b.mp4") == r"\\nas\media\a\b.mp4"


def test_roots_map_whole_trees():
    engine = Engine([prefix("root", "/", r"Z:\\")])
    assert to_stash(engine, "/x/y.mp4") == r"Z:\x\y.mp4"
    assert to_stash(engine, "/") == "Z:\\"
    assert to_plex(engine, "Z:") == "/"


def test_the_prefix_itself_maps_to_the_other_prefix():
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    assert to_stash(engine, "D:\\Media\\") == "/data/media"
    assert to_plex(engine, "/data/media/") == r"D:\Media"


def test_prefix_matches_whole_components_only():
    engine = Engine([prefix("m", "/data/media", r"D:\Media")])
    assert to_stash(engine, "/data/media2/x") is None
    assert to_stash(engine, "/data/medi") is None
    assert to_stash(engine, "/data") is None
    assert to_stash(engine, "/data/media/x") == r"D:\Media\x"
    assert to_plex(engine, r"D:\Media2\x") is None


def test_repeated_and_trailing_separators_collapse():
    engine = Engine([prefix("m", "/media", r"D:\M")])
    assert to_stash(engine, "//media///a//b.mp4//") == r"D:\M\a\b.mp4"
    assert to_plex(engine, r"D:\\M\\\a\\b.mp4\\") == "/media/a/b.mp4"


@pytest.mark.parametrize(
    "name",
    [
        "Scene 01 (2021) [1080p].mp4",
        'It\'s "quoted".mp4',
        "100% real_name #3.mkv",
        "[Studio] {braces} & more!.mp4",
        "a" * 250 + ".mp4",
        "日本語のタイトル.mp4",
        "emoji 🎬.mp4",
    ],
)
def test_awkward_names_survive_both_ways(name):
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    stash = f"/data/media/{name}"
    assert to_stash(engine, f"D:\\Media\\{name}") == stash
    assert to_plex(engine, stash) == f"D:\\Media\\{name}"


def test_very_deep_paths():
    parts = [f"level {i}" for i in range(200)]
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    assert to_stash(engine, "D:\\Media\\" + "\\".join(parts)) == "/data/media/" + "/".join(parts)


def test_a_backslash_in_a_posix_name_cannot_go_to_windows():
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    assert to_plex(engine, r"/data/media/a\b.mp4") is None
    # POSIX to POSIX keeps it: it is an ordinary character there.
    posix = Engine([prefix("p", "/media", "/data")])
    assert to_stash(posix, r"/media/a\b.mp4") == r"/data/a\b.mp4"


# --- case -------------------------------------------------------------------------------


def test_case_default_follows_each_side():
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    # Plex on Windows: any case names the same file.
    assert to_stash(engine, r"d:\MEDIA\A\b.mp4") == "/data/media/A/b.mp4"
    # Stash on Linux: /data/Media is another directory.
    assert to_plex(engine, "/data/Media/A/b.mp4") is None
    # Below the prefix the case is kept as sent.
    assert to_stash(engine, r"D:\Media\MiXeD\b.MP4") == "/data/media/MiXeD/b.MP4"


def test_case_insensitive_false_is_honoured_on_windows():
    engine = Engine([prefix("nas", r"D:\Media", "/data/media", case_insensitive=False)])
    assert to_stash(engine, r"d:\media\A\b.mp4") is None
    assert to_stash(engine, r"D:\Media\A\b.mp4") == "/data/media/A/b.mp4"


def test_case_insensitive_true_for_macos_plex():
    engine = Engine([prefix("mac", "/Volumes/Media", "/data", case_insensitive=True)])
    assert to_stash(engine, "/volumes/MEDIA/x.mp4") == "/data/x.mp4"
    assert to_stash(engine, "/Volumes/Media/x.mp4") == "/data/x.mp4"


def test_case_insensitive_uses_unicode_case_folding():
    engine = Engine([prefix("de", "/Straße", "/data", case_insensitive=True)])
    assert to_stash(engine, "/STRASSE/x") == "/data/x"
    assert to_stash(engine, "/ÉTÉ/x") is None
    engine = Engine([prefix("fr", "/été", "/data", case_insensitive=True)])
    assert to_stash(engine, "/ÉTÉ/x") == "/data/x"


# --- Unicode ----------------------------------------------------------------------------


def test_nfd_from_macos_matches_and_comes_out_nfc():
    nfd = unicodedata.normalize("NFD", "/Volumes/Médias/Beyoncé.mp4")
    engine = Engine([prefix("mac", "/Volumes/Médias", "/data")])
    out = to_stash(engine, nfd)
    assert out == unicodedata.normalize("NFC", "/data/Beyoncé.mp4")
    assert unicodedata.is_normalized("NFC", out)


def test_nfd_in_the_configuration_is_normalized_too():
    engine = Engine([prefix("nfd", unicodedata.normalize("NFD", "/Médias"), "/data")])
    assert to_stash(engine, "/Médias/x") == "/data/x"
    assert to_plex(engine, "/data/x") == unicodedata.normalize("NFC", "/Médias/x")


# --- regex rules ------------------------------------------------------------------------


def test_regex_rule_with_named_groups():
    engine = Engine(
        [
            regex(
                "by-year",
                r"^/mnt/(?P<disk>disk\d)/(?P<year>\d{4})/(?P<rest>.+)$",
                "/data/{year}/{disk}/{rest}",
                r"^/data/(?P<year>\d{4})/(?P<disk>disk\d)/(?P<rest>.+)$",
                "/mnt/{disk}/{year}/{rest}",
                samples=["/mnt/disk1/2020/a b/c.mp4"],
            )
        ]
    )
    assert to_stash(engine, "/mnt/disk1/2020/a/b.mp4") == "/data/2020/disk1/a/b.mp4"
    assert to_plex(engine, "/data/2020/disk1/a/b.mp4") == "/mnt/disk1/2020/a/b.mp4"
    assert to_stash(engine, "/mnt/disk1/20x0/a.mp4") is None


def test_regex_rule_windows_to_posix_translates_separators():
    engine = Engine(
        [
            regex(
                "win",
                r"^D:\\Media\\(?P<rest>.+)$",
                "/data/media/{rest}",
                r"^/data/media/(?P<rest>.+)$",
                r"D:\Media\{rest}",
                samples=[r"D:\Media\A\b.mp4"],
            )
        ]
    )
    # Inputs are normalized to the side's style first, so one pattern serves both spellings.
    assert to_stash(engine, "d:/media//A/b.mp4") == "/data/media/A/b.mp4"
    assert to_plex(engine, "/data/media/A/b.mp4") == r"D:\Media\A\b.mp4"


def test_regex_templates_numbered_groups_braces_and_optional_groups():
    engine = Engine(
        [
            regex(
                "n",
                r"/in/(\w+)(?:-(?P<tag>\w+))?/(.*)",
                "/out/{1}/{{{tag}}}/{3}",
                r"/out/(\w+)/\{(\w*)\}/(.*)",
                "/in/{1}-{2}/{3}",
            )
        ]
    )
    assert to_stash(engine, "/in/abc-x/f.mp4") == "/out/abc/{x}/f.mp4"
    assert to_stash(engine, "/in/abc/f.mp4") == "/out/abc/{}/f.mp4"  # unmatched group: ""


def test_regex_must_match_the_whole_path():
    engine = Engine([regex("r", "/a", "/b", "/b", "/a")])
    assert to_stash(engine, "/a") == "/b"
    assert to_stash(engine, "/a/x") is None
    assert to_stash(engine, "/x/a") is None


def test_regex_dot_matches_newlines_in_names():
    engine = Engine([regex("r", "/a/(?P<r>.*)", "/b/{r}", "/b/(?P<r>.*)", "/a/{r}")])
    assert to_stash(engine, "/a/line\nbreak.mp4") == "/b/line\nbreak.mp4"


def test_regex_case_follows_the_plex_template_style():
    engine = Engine(
        [regex("w", r"D:\\Media\\(?P<r>.+)", "/m/{r}", "/m/(?P<r>.+)", r"D:\Media\{r}")]
    )
    assert to_stash(engine, r"d:\MEDIA\x") == "/m/x"
    assert to_plex(engine, "/M/x") is None


def test_template_parser():
    t = Template.parse(r"D:\Media\{year}\{{lit}}\{0}")
    assert t.refs == ("year", 0)
    assert t.shape() == r"D:\Media\x\{lit}\x"
    for bad, message in [
        ("/a/{", "unbalanced '{'"),
        ("/a/}", "unbalanced '}'"),
        ("/a/{x.y}", "not a group reference"),
        ("/a/{x:>3}", "not a group reference"),
        ("/a/{}", "not a group reference"),
    ]:
        with pytest.raises(ValueError, match=message):
            Template.parse(bad)


# --- first match wins, no match ---------------------------------------------------------


def test_first_match_wins_per_direction():
    engine = Engine(
        [
            prefix("specific", "/media/special", "/data/special"),
            prefix("general", "/media", "/data/media"),
        ]
    )
    assert engine.map("/media/special/x", P2S) == Mapping("/data/special/x", "specific")
    assert engine.map("/media/other/x", P2S) == Mapping("/data/media/other/x", "general")
    assert engine.map("/data/media/x", S2P) == Mapping("/media/x", "general")


def test_no_rule_is_none():
    assert Engine([]).map("/anything", P2S) is None
    engine = Engine([prefix("m", "/media", "/data")])
    for path in ("relative/file.mp4", "file.mp4", "", r"C:\other", "/other/x"):
        assert engine.map(path, P2S) is None


def test_direction_accepts_str_enums_and_refuses_nonsense():
    class Direction(enum.StrEnum):
        PLEX_TO_STASH = "plex_to_stash"

    engine = Engine([prefix("m", "/media", "/data")])
    assert to_stash(engine, "/media/x") == engine.map("/media/x", Direction.PLEX_TO_STASH).path
    with pytest.raises(ValueError, match="direction"):
        engine.map("/media/x", "sideways")


# --- logging ----------------------------------------------------------------------------


def test_every_translation_is_logged_at_debug_with_the_rule():
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    with structlog.testing.capture_logs() as logs:
        engine.map(r"D:\Media\x.mp4", P2S)
        engine.map("/elsewhere", S2P)
    assert logs == [
        {
            "event": "path.mapped",
            "log_level": "debug",
            "rule": "nas",
            "direction": "plex_to_stash",
            "source": r"D:\Media\x.mp4",
            "target": "/data/media/x.mp4",
        },
        {
            "event": "path.unmapped",
            "log_level": "debug",
            "direction": "stash_to_plex",
            "source": "/elsewhere",
            "rules": 1,
        },
    ]


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs plex_prefix \\+ stash_prefix"),
        ({"plex_prefix": "/a"}, "missing stash_prefix"),
        ({"plex_prefix": "/a", "stash_prefix": "/b", "plex_pattern": "x"}, "not both"),
        ({"plex_pattern": "/a", "stash_template": "/b"}, "missing stash_pattern, plex_template"),
        ({"plex_prefix": "media", "stash_prefix": "/b"}, "plex_prefix 'media' is not an absolute"),
        ({"plex_prefix": "/a", "stash_prefix": "\\\\"}, "stash_prefix .* is not an absolute"),
        ({"plex_prefix": "/a", "stash_prefix": "D:rel"}, "is not an absolute"),
        (
            {
                "plex_pattern": "(",
                "stash_template": "/b",
                "stash_pattern": "/b",
                "plex_template": "/a",
            },
            "plex_pattern does not compile",
        ),
        (
            {
                "plex_pattern": "/a",
                "stash_template": "/b",
                "stash_pattern": "[",
                "plex_template": "/a",
            },
            "stash_pattern does not compile",
        ),
        (
            {
                "plex_pattern": "/(?P<a>.*)",
                "stash_template": "/{b}",
                "stash_pattern": "/(.*)",
                "plex_template": "/{2}",
            },
            r"template \{b\} is not a group of plex_pattern \(it has: a\); template \{2\} refers "
            r"to group 2, but stash_pattern has 1 group",
        ),
        (
            {
                "plex_pattern": "/a",
                "stash_template": "/{",
                "stash_pattern": "/b",
                "plex_template": "/a",
            },
            "stash_template: unbalanced",
        ),
    ],
)
def test_bad_rules_name_the_rule_and_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=f"^rule 'r': .*{message}"):
        Rule(name="r", **kwargs)


def test_empty_name_is_refused():
    with pytest.raises(ValueError, match="name must not be empty"):
        Rule(name=" ", plex_prefix="/a", stash_prefix="/b")


def test_sample_that_does_not_round_trip_shows_all_three_paths():
    with pytest.raises(ValueError) as err:
        regex(
            "lossy",
            "/media/(?P<studio>[^/]+)/(?P<file>[^/]+)",
            "/data/{file}",
            "/data/(?P<file>[^/]+)",
            "/media/unknown/{file}",
            samples=["/media/Studio/x.mp4"],
        )
    assert str(err.value) == (
        "rule 'lossy': sample does not round-trip: '/media/Studio/x.mp4' -> '/data/x.mp4' -> "
        "'/media/unknown/x.mp4'"
    )


def test_sample_not_mapped_back_says_why():
    with pytest.raises(ValueError, match=r"-> no mapping back \(stash_pattern '/nope/"):
        regex("r", "/a/(?P<x>.*)", "/b/{x}", "/nope/(?P<x>.*)", "/a/{x}", samples=["/a/q"])


def test_sample_not_matched_by_its_rule():
    with pytest.raises(ValueError) as err:
        prefix("nas", r"D:\Media", "/data/media", case_insensitive=False, samples=[r"d:\media\x"])
    assert str(err.value) == (
        r"rule 'nas': sample 'd:\media\x' is not mapped by this rule: expects prefix 'D:\Media' "
        r"(case-sensitive); path starts with 'd:\media'"
    )


def test_samples_round_trip_modulo_normalization():
    rule = prefix("nas", r"D:\Media", "/data/media", samples=[r"d:/media//A/b.mp4/"])
    assert rule.samples == [r"d:/media//A/b.mp4/"]


def test_config_checks_the_rules_together():
    general = prefix("general", "/media", "/data", samples=["/media/x"])
    special = prefix("special", "/media/special", "/data/special", samples=["/media/special/y"])
    with pytest.raises(ValueError, match="rule 'special': sample '/media/special/y' is taken by"):
        PathRegexConfig(rules=[general, special])
    assert PathRegexConfig(rules=[special, general]).rules == [special, general]
    with pytest.raises(ValueError, match=r"rule 'general': name used by rules\[0\] and rules\[1\]"):
        PathRegexConfig(rules=[general, general])


def test_config_detects_a_sample_mapped_back_by_another_rule():
    # Two Plex folders feed one Stash folder: Plex -> Stash works for both, but the way
    # back always goes through the first rule, so "b"'s samples come back elsewhere.
    a = prefix("a", "/plex/a", "/stash")
    b = prefix("b", "/plex/b", "/stash", samples=["/plex/b/x"])
    problems = validate_rules([a, b])
    assert problems == [
        "rule 'b': sample does not round-trip through the rule list: '/plex/b/x' -> "
        "'/stash/x' -> '/plex/a/x' (back via rule 'a')"
    ]


def test_validate_rules_is_empty_for_a_good_list():
    assert validate_rules([prefix("a", "/a", "/b", samples=["/a/x"])]) == []
    assert validate_rules([]) == []


# --- explain ----------------------------------------------------------------------------


def test_explain_a_mapped_path():
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    assert engine.explain(r"D:\Media\A\b.mp4", P2S) == (
        "/data/media/A/b.mp4\n"
        "  rule 'nas' (rules[0]): prefix 'D:\\Media' <-> '/data/media' "
        "(Plex side case-insensitive, Stash side case-sensitive)"
    )


def test_explain_names_the_nearest_rule_first():
    engine = Engine(
        [
            prefix("docker", "/mnt/media", "/data/media"),
            prefix("nas", r"D:\Media", "/data/media", case_insensitive=False),
        ]
    )
    text = engine.explain(r"d:\media\A\b.mp4", P2S)
    assert text.splitlines() == [
        r"no rule maps 'd:\media\A\b.mp4' to Stash",
        r"  nearest: rule 'nas' (rules[1]) expects prefix 'D:\Media' (case-sensitive); "
        r"path starts with 'd:\media'",
        "  rule 'docker' (rules[0]) expects a POSIX path under '/mnt/media'; "
        "got a Windows drive path",
    ]


def test_explain_whole_component_hint_and_backslash():
    engine = Engine([prefix("nas", r"D:\Media", "/data/media")])
    assert "a prefix matches whole folder names only" in engine.explain("/data/media2/x", S2P)
    assert "holds '\\'" in engine.explain(r"/data/media/a\b", S2P)
    assert "is above it" in engine.explain("/data", S2P)


def test_explain_regex_reasons():
    engine = Engine([regex("r", "/a/(?P<x>.*)", "/b/{x}", "/b/(?P<x>.*)", "/a/{x}")])
    assert "plex_pattern '/a/(?P<x>.*)' does not match '/c/d'" in engine.explain("/c/d", P2S)
    assert "only when case is ignored" in engine.explain("/A/d", P2S)


def test_explain_without_rules():
    assert Engine([]).explain("/x", S2P) == (
        "no rule maps '/x' to Plex\n  no rules are configured ([[path_regex.rules]] is empty)"
    )


# --- helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "style"),
    [
        ("/data", Style.POSIX),
        ("D:", Style.DRIVE),
        ("d:/x", Style.DRIVE),
        (r"\\nas\share", Style.UNC),
        ("//nas/share", Style.UNC),
        (r"\\?\C:\x", Style.DRIVE),
        (r"\\?\UNC\nas\x", Style.UNC),
        ("D:relative", Style.OTHER),
        (r"\rooted", Style.OTHER),
        ("relative/x", Style.OTHER),
        ("", Style.OTHER),
    ],
)
def test_detect_style(path, style):
    assert detect_style(path) is style


def test_canonical():
    assert canonical("d:/a//b/", Style.DRIVE) == r"d:\a\b"
    assert canonical("//a//b/", Style.POSIX) == "/a/b"
    assert canonical("relative//x", Style.POSIX) == "relative//x"  # not one of its paths


def _regex_rule(stash_template: str, plex_template: str = "/media/{rest}") -> Rule:
    return Rule(
        name="r",
        plex_pattern=r"/media/(?P<rest>.*)",
        stash_template=stash_template,
        stash_pattern=r"/data/(?P<rest>.*)",
        plex_template=plex_template,
    )


@pytest.mark.parametrize(
    ("template", "shown", "fixed"),
    [
        (r"/data/\g<rest>", r"\g<rest>", "/data/{rest}"),
        (r"D:\Media\g<rest>", r"\g<rest>", r"D:\Media\{rest}"),  # the \ was a separator too
        (r"/data/\g<1>", r"\g<1>", "/data/{1}"),
        ("/data/${rest}", "${rest}", "/data/{rest}"),
        ("/data/$1", "$1", "/data/{1}"),
        ("/data/$rest", "$rest", "/data/{rest}"),
        (r"/data/\1", r"\1", "/data/{1}"),
        (r"D:\Media\1", r"\1", r"D:\Media\{1}"),
    ],
)
def test_templates_in_another_dialect_are_refused_showing_ours(template, shown, fixed):
    with pytest.raises(ValueError) as err:
        _regex_rule(template)
    message = str(err.value)
    assert message.startswith(f"rule 'r': stash_template {quote(template)} uses {shown},")
    assert f"write {quote(fixed)}" in message
    assert "{name} or {1}" in message
    _regex_rule(fixed)  # and the suggestion is a valid rule


def test_both_templates_in_another_dialect_are_reported_together():
    with pytest.raises(ValueError, match=r"stash_template .* uses \$1,.*; plex_template .* \\1,"):
        _regex_rule("/data/$1", r"/media/\1")


@pytest.mark.parametrize(
    "template",
    [
        r"D:\Media\2019\{rest}",  # a folder named 2019 beside a reference of ours
        r"D:\Archive\2019\a.mp4",  # no such group: literal
        "/data/$money/{rest}",  # not a group name: literal
        "/data/{{1}}/{rest}",  # literal braces
    ],
)
def test_look_alikes_that_are_paths_stay_literal(template):
    _regex_rule(template)
