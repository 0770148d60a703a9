"""Properties of the engine over generated rules and paths (hypothesis).

Paths are built from awkward names (spaces, quotes, ``%``, ``_``, ``#``, ``[]``, accents
that have an NFD form, CJK, emoji, long names) and spelled the messy ways real servers
send them: either separator on Windows, repeated and trailing separators, NFD, other case.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stash2plex_path_regex.engine import (
    PLEX_TO_STASH,
    STASH_TO_PLEX,
    Engine,
    Rule,
    Style,
    parse,
    same_path,
)

P2S, S2P = PLEX_TO_STASH, STASH_TO_PLEX
SIDES = {P2S: ("plex", "stash"), S2P: ("stash", "plex")}

# Characters a file name may hold on every side; "\" only where it is not a separator.
NAME_CHARS = st.sampled_from(
    [
        *"abcXYZ019 .-_%#[]()'\"&!,;+=~{}@$^",
        *"\u00e9\u00c9\u00df\u00f1\u00c5\u00f6\ufb01\u65e5\u672c\U0001f3ac",  # éÉßñÅöﬁ日本🎬
        "\u0301",  # a lone combining accent: NFC may join it to the letter before
    ]
)
POSIX_NAME_CHARS = st.one_of(NAME_CHARS, st.just("\\"))
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60)  # NUL, lone surrogates


def names(chars: st.SearchStrategy[str] = NAME_CHARS) -> st.SearchStrategy[str]:
    short = st.text(chars, min_size=1, max_size=12)
    long = st.text(chars, min_size=200, max_size=255)
    return st.one_of(short, short, short, long)


@st.composite
def prefix_side(draw: Any, style: Style | None = None) -> tuple[Style, str, tuple[str, ...]]:
    """(style, anchor, parts) of an absolute prefix."""
    style = style or draw(st.sampled_from([Style.POSIX, Style.DRIVE, Style.UNC]))
    anchor = draw(st.sampled_from("CDZcdz")) + ":" if style is Style.DRIVE else ""
    parts = draw(st.lists(names(), min_size=1 if style is Style.UNC else 0, max_size=3))
    # "?" or "." as a UNC server reads as Windows' long-path prefix "\\?\"; not a real name.
    assume(style is not Style.UNC or parts[0] not in ("?", "."))
    return style, anchor, tuple(parts)


@st.composite
def spell(
    draw: Any, style: Style, anchor: str, parts: tuple[str, ...], config: bool = False
) -> str:
    """One of the many ways a server (or, with ``config``, a config file) writes this path.

    A configured POSIX prefix never starts with ``//``: that spelling is read as UNC.
    """
    if style is Style.POSIX:
        seps = [draw(st.sampled_from(["/", "/", "//"])) for _ in range(len(parts) + 1)]
        head = "/" if config else seps[0]
        body = "".join(p + s for p, s in zip(parts, seps[1:], strict=True))
        text = head + (body if draw(st.booleans()) else body.rstrip("/"))
        return text if parts else head
    seps = [draw(st.sampled_from(["\\", "\\", "/", "\\\\", "/\\"])) for _ in range(len(parts) + 1)]
    if style is Style.DRIVE:
        lead = draw(st.sampled_from(["", "", r"\\?" + "\\"]))
        text = (
            lead + anchor + seps[0] + "".join(p + s for p, s in zip(parts, seps[1:], strict=True))
        )
    else:
        lead = draw(st.sampled_from(["\\\\", "//", "\\/", "\\\\?\\UNC\\"]))
        text = lead + "".join(p + s for p, s in zip(parts, seps[1:], strict=True))
    return text if draw(st.booleans()) else text.rstrip("\\/") or text


def recase(draw: Any, text: str) -> str:
    """Flip the case of some ASCII letters (other letters fold in ways regexes do not)."""
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(
        c.swapcase() if c.isascii() and c.isalpha() and f else c
        for c, f in zip(text, flips, strict=True)
    )


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@st.composite
def prefix_rules(draw: Any) -> tuple[Rule, dict[str, tuple[Style, str, tuple[str, ...]]]]:
    sides = {"plex": draw(prefix_side()), "stash": draw(prefix_side())}
    case = draw(st.sampled_from([None, True, False]))
    spelled = {side: draw(spell(*value, config=True)) for side, value in sides.items()}
    if draw(st.booleans()):
        spelled = {k: unicodedata.normalize("NFD", v) for k, v in spelled.items()}
    rule = Rule(
        name="r",
        plex_prefix=spelled["plex"],
        stash_prefix=spelled["stash"],
        case_insensitive=case,
    )
    return rule, sides


def side_ci(rule: Rule, style: Style) -> bool:
    return (
        style in (Style.DRIVE, Style.UNC)
        if rule.case_insensitive is None
        else rule.case_insensitive
    )


def expected(side: tuple[Style, str, tuple[str, ...]], rest: tuple[str, ...]) -> str:
    style, anchor, parts = side
    return nfc(parse(_render(style, anchor, parts + rest), style).render())  # type: ignore[union-attr]


def _render(style: Style, anchor: str, parts: tuple[str, ...]) -> str:
    if style is Style.POSIX:
        return "/" + "/".join(parts)
    if style is Style.DRIVE:
        return anchor + "\\" + "\\".join(parts)
    return "\\\\" + "\\".join(parts)


@st.composite
def path_under(
    draw: Any, rule: Rule, side: tuple[Style, str, tuple[str, ...]]
) -> tuple[str, tuple[str, ...]]:
    """A messy spelling of a path below ``side``'s prefix, and the names below it."""
    style, anchor, parts = side
    chars = POSIX_NAME_CHARS if style is Style.POSIX else NAME_CHARS
    rest = tuple(draw(st.lists(names(chars), max_size=4)))
    head = parts
    if side_ci(rule, style):
        head = tuple(recase(draw, p) for p in parts)
        anchor = recase(draw, anchor)
    text = draw(spell(style, anchor, head + rest))
    if draw(st.booleans()):
        text = unicodedata.normalize("NFD", text)
    return text, rest


def assert_target_style(path: str, style: Style) -> None:
    assert unicodedata.is_normalized("NFC", path)
    if style is Style.POSIX:
        assert path.startswith("/")
        assert "//" not in path
        assert path == "/" or not path.endswith("/")
    else:
        assert "/" not in path
        body = path[2:]  # after "D:" or the UNC's leading "\\"
        assert "\\\\" not in body
        assert not path.endswith("\\") or re.fullmatch(r"[A-Za-z]:\\", path)


# --- prefix rules -----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.data(), prefix_rules(), st.sampled_from([P2S, S2P]))
def test_prefix_rule_maps_and_round_trips(data, built, direction):
    rule, sides = built
    source, target = SIDES[direction]
    path, rest = data.draw(path_under(rule, sides[source]))
    engine = Engine([rule])
    found = engine.map(path, direction)
    lost = sides[target][0] is not Style.POSIX and sides[source][0] is Style.POSIX
    if lost and any("\\" in name for name in rest):
        assert found is None  # a POSIX name with "\" has no Windows spelling
        return
    assert found is not None
    assert found.rule == "r"
    assert found.path == expected(sides[target], tuple(nfc(n) for n in rest))
    assert_target_style(found.path, sides[target][0])

    back = engine.map(found.path, P2S if direction == S2P else S2P)
    assert back is not None
    assert back.path == expected(sides[source], tuple(nfc(n) for n in rest))
    style = sides[source][0]
    assert same_path(back.path, path, style, side_ci(rule, style))


@given(st.data(), prefix_rules(), st.sampled_from([P2S, S2P]))
def test_spellings_of_one_path_map_alike(data, built, direction):
    rule, sides = built
    source, _target = SIDES[direction]
    style, anchor, parts = sides[source]
    rest = tuple(data.draw(st.lists(names(), max_size=3)))
    one = data.draw(spell(style, anchor, parts + rest))
    other = unicodedata.normalize("NFD", data.draw(spell(style, anchor, parts + rest)))
    engine = Engine([rule])
    assert engine.map(one, direction) == engine.map(other, direction)


@given(st.data(), prefix_rules(), st.sampled_from([P2S, S2P]), names())
def test_prefix_matches_whole_components_only(data, built, direction, extra):
    rule, sides = built
    source, _target = SIDES[direction]
    style, anchor, parts = sides[source]
    assume(parts)
    longer = (*parts[:-1], parts[-1] + extra)
    path = data.draw(spell(style, anchor, (*longer, "x.mp4")))
    # Only a name that folds to the prefix's own (e.g. "ß" + "" vs "ss") could match.
    key = (lambda s: nfc(s).casefold()) if side_ci(rule, style) else nfc
    assume(key(longer[-1]) != key(parts[-1]))
    assert Engine([rule]).map(path, direction) is None


# --- rule lists -------------------------------------------------------------------------

# A small alphabet so that prefixes nest and overlap often.
TINY_NAMES = st.sampled_from(["a", "A", "b", "ab", "é"])


@st.composite
def tiny_side(draw: Any) -> str:
    style = draw(st.sampled_from([Style.POSIX, Style.POSIX, Style.DRIVE, Style.UNC]))
    parts = tuple(draw(st.lists(TINY_NAMES, min_size=1 if style is Style.UNC else 0, max_size=2)))
    return _render(style, "D:" if style is Style.DRIVE else "", parts)


@st.composite
def tiny_rules(draw: Any) -> list[Rule]:
    count = draw(st.integers(0, 4))
    return [
        Rule(
            name=f"r{i}",
            plex_prefix=draw(tiny_side()),
            stash_prefix=draw(tiny_side()),
            case_insensitive=draw(st.sampled_from([None, True, False])),
        )
        for i in range(count)
    ]


@st.composite
def tiny_paths(draw: Any) -> str:
    return draw(tiny_side()) + draw(st.sampled_from(["", "/", "\\"])) + draw(TINY_NAMES)


@settings(max_examples=300, deadline=None)
@given(tiny_rules(), tiny_paths(), st.sampled_from([P2S, S2P]))
def test_first_match_wins(rules, path, direction):
    alone = [Engine([r]).map(path, direction) for r in rules]
    matching = [i for i, found in enumerate(alone) if found is not None]
    found = Engine(rules).map(path, direction)
    if not matching:
        assert found is None
    else:
        assert found == alone[matching[0]]
        assert found.rule == f"r{matching[0]}"


@given(tiny_rules(), st.sampled_from([P2S, S2P]), names())
def test_paths_outside_every_prefix_map_to_none(rules, direction, name):
    # "zz..." is none of the tiny names; only the POSIX root "/" holds every POSIX path.
    source = "plex_prefix" if direction == P2S else "stash_prefix"
    rules = [r for r in rules if getattr(r, source) != "/"]
    for path in (f"/zz{name}/x", f"E:\\zz{name}\\x", f"\\\\zz{name}\\x", f"zz{name}"):
        assert Engine(rules).map(path, direction) is None
    assert Engine([]).map(name, direction) is None


# --- regex rules that are true inverses -------------------------------------------------


def _pattern_for(side: tuple[Style, str, tuple[str, ...]]) -> tuple[str, str]:
    """(pattern, template) equivalent to a prefix: "<prefix><sep>(?P<rest>.+)"."""
    style, anchor, parts = side
    text = _render(style, anchor, tuple(nfc(p) for p in parts))
    sep = "/" if style is Style.POSIX else "\\"
    joint = "" if text.endswith(sep) else sep
    pattern = re.escape(text + joint) + "(?P<rest>.+)"
    template = (text + joint).replace("{", "{{").replace("}", "}}") + "{rest}"
    return pattern, template


@settings(max_examples=300, deadline=None)
@given(st.data(), prefix_rules(), st.sampled_from([P2S, S2P]))
def test_regex_rule_built_from_a_prefix_behaves_like_it(data, built, direction):
    prefix_rule, sides = built
    plex_pattern, plex_template = _pattern_for(sides["plex"])
    stash_pattern, stash_template = _pattern_for(sides["stash"])
    rule = Rule(
        name="r",
        plex_pattern=plex_pattern,
        stash_template=stash_template,
        stash_pattern=stash_pattern,
        plex_template=plex_template,
        case_insensitive=prefix_rule.case_insensitive,
    )
    source, _target = SIDES[direction]
    path, rest = data.draw(path_under(prefix_rule, sides[source]))
    assume(rest)  # the prefix itself is not "<prefix>/<something>"
    by_regex = Engine([rule]).map(path, direction)
    assert by_regex == Engine([prefix_rule]).map(path, direction)
    if by_regex is not None:
        back = Engine([rule]).map(by_regex.path, P2S if direction == S2P else S2P)
        assert back is not None
        style = sides[source][0]
        assert same_path(back.path, path, style, side_ci(prefix_rule, style))


@given(st.data(), prefix_rules())
def test_samples_under_a_prefix_always_validate(data, built):
    rule, sides = built
    samples = [data.draw(path_under(rule, sides["plex"])) for _ in range(3)]
    lost = sides["plex"][0] is Style.POSIX and sides["stash"][0] is not Style.POSIX
    bad = lost and any("\\" in n for _path, rest in samples for n in rest)
    kwargs = {
        "name": "r",
        "plex_prefix": rule.plex_prefix,
        "stash_prefix": rule.stash_prefix,
        "case_insensitive": rule.case_insensitive,
        "samples": [path for path, _rest in samples],
    }
    if bad:
        try:
            Rule(**kwargs)
        except ValueError as exc:
            assert "is not mapped by this rule" in str(exc)
        else:
            raise AssertionError("a sample with '\\' going to Windows must be refused")
    else:
        assert Rule(**kwargs).samples == kwargs["samples"]


# --- robustness -------------------------------------------------------------------------

ROBUST_RULES = [
    Rule(name="drive", plex_prefix=r"D:\Media", stash_prefix="/data/media"),
    Rule(name="unc", plex_prefix=r"\\nas\share", stash_prefix=r"E:\x"),
    Rule(name="root", plex_prefix="/", stash_prefix="/", case_insensitive=True),
    Rule(
        name="regex",
        plex_pattern=r"(?P<all>.*)",
        stash_template="{all}",
        stash_pattern=r"(?P<all>.*)",
        plex_template="{all}",
    ),
    Rule(
        name="regex-win",
        plex_pattern=r"(?P<d>\w):(?P<r>.*)",
        stash_template="/{d}{r}",
        stash_pattern=r"/(?P<d>\w)(?P<r>.*)",
        plex_template=r"{d}:\{r}",
    ),
]


@settings(max_examples=500, deadline=None)
@given(ANY_TEXT, st.sampled_from([P2S, S2P]), st.integers(0, len(ROBUST_RULES)))
def test_mapping_and_explaining_never_raise(path, direction, start):
    for rules in (ROBUST_RULES[start:], ROBUST_RULES[:start], []):
        engine = Engine(rules)
        found = engine.map(path, direction)
        assert found is None or isinstance(found.path, str)
        assert isinstance(engine.explain(path, direction), str)


@given(ANY_TEXT, st.sampled_from([P2S, S2P]))
def test_no_rules_means_none(path, direction):
    assert Engine([]).map(path, direction) is None


@pytest.mark.parametrize(
    ("plex", "stash", "path", "direction", "want"),
    [
        ("/", "/data", "/a/b.mp4", S2P, None),
        ("/", "/data", "/data", S2P, "/"),
        ("/media", "/", "/media/a/b.mp4", P2S, "/a/b.mp4"),
        ("/media", "/", "/media", P2S, "/"),
        ("/media", "/data", "/mediax/a.mp4", P2S, None),
        ("/media", "/data", "/", P2S, None),
        (r"D:\Media", "/data", "/data/a b/c.mp4", S2P, r"D:\Media\a b\c.mp4"),
        ("D:\\", "/data", "/data/c.mp4", S2P, r"D:\c.mp4"),
        ("D:\\", "/data", "/data", S2P, "D:\\"),
        (r"\\nas\media", "/data", "/data/x/y.mkv", S2P, r"\\nas\media\x\y.mkv"),
        (r"\\nas\media", "/data", "/data/back\\slash.mkv", S2P, None),
        (r"D:\Media", "/data", "/data/./x.mkv", S2P, r"D:\Media\.\x.mkv"),
        ("/media", "/data", "/media/Café/é.mp4", P2S, "/data/Café/é.mp4"),
    ],
)
def test_prefix_edge_cases(plex, stash, path, direction, want):
    found = Engine([Rule(name="r", plex_prefix=plex, stash_prefix=stash)]).first(path, direction)
    assert (found[1] if found else None) == want
