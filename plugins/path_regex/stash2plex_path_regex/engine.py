r"""The path mapping engine: Plex's spelling of a file path <-> Stash's spelling.

Pure logic: nothing here imports the host, so the engine can be used and tested alone::

    engine = Engine([Rule(name="nas", plex_prefix=r"D:\Media", stash_prefix="/data/media")])
    engine.map(r"D:\Media\A\b.mp4", "plex_to_stash")
    # Mapping(path='/data/media/A/b.mp4', rule='nas')

Rules are tried in order and the first one that matches wins. A rule is either a prefix
pair (reversible by construction) or two explicit regex + template pairs, one per
direction; a reverse regex is never derived from a forward one.

Normalization, applied to every input before matching:

* Unicode NFC (macOS hands out NFD, Linux filesystems usually hold NFC); outputs are NFC.
* Separators, for a side whose style is known: a Windows path (``D:\...`` or UNC
  ``\\server\share``) accepts ``\`` and ``/`` and is written with ``\``; a POSIX path
  uses ``/`` only (``\`` is an ordinary character there). Repeated separators collapse
  and a trailing separator is dropped (except on a root such as ``D:\`` or ``/``).
* Windows' long-path spellings ``\\?\D:\...`` and ``\\?\UNC\server\...`` read as
  ``D:\...`` and ``\\server\...``.
* ``.`` and ``..`` are left alone: resolving them lexically is wrong under symlinks, and
  neither Plex nor Stash sends them.

Case: each side is compared the way its filesystem usually compares names (a Windows
side case-insensitively, a POSIX side case-sensitively) unless the rule says
``case_insensitive = true`` or ``false``, which then holds for both sides.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import structlog
from attrs import define, field, frozen

log = structlog.get_logger("stash2plex.path_regex")

PLEX_TO_STASH: Final = "plex_to_stash"
STASH_TO_PLEX: Final = "stash_to_plex"
DIRECTIONS: Final = (PLEX_TO_STASH, STASH_TO_PLEX)
_DIRECTION_OF: Final = {d: d for d in DIRECTIONS}
_SIDES: Final = {PLEX_TO_STASH: ("plex", "stash"), STASH_TO_PLEX: ("stash", "plex")}


def quote(text: str) -> str:
    """A path for a message: single-quoted, backslashes as written (``repr`` doubles
    them); ``repr`` only for text with control characters or lone surrogates."""
    return f"'{text}'" if text.isprintable() else repr(text)


# --- path styles ----------------------------------------------------------------------


class Style(enum.Enum):
    """How a side spells absolute paths."""

    POSIX = "POSIX"  # /data/media
    DRIVE = "Windows drive"  # D:\Media
    UNC = "UNC"  # \\nas\media
    OTHER = "relative or unrecognized"  # regex sides only; never normalized

    @property
    def windows(self) -> bool:
        return self in (Style.DRIVE, Style.UNC)


_DRIVE_RE = re.compile(r"[A-Za-z]:(?:[\\/]|\Z)")
_WIN_SPLIT = re.compile(r"[\\/]+")


def _is_sep(char: str) -> bool:
    return char in ("\\", "/")


def _strip_long_prefix(path: str) -> str:
    r"""``\\?\D:\x`` -> ``D:\x``; ``\\?\UNC\srv\x`` -> ``\\srv\x`` (same for ``\\.\``)."""
    if len(path) < 4 or path[2] not in "?." or not all(map(_is_sep, path[:2] + path[3])):
        return path
    rest = path[4:]
    if rest[:3].upper() == "UNC" and _is_sep(rest[3:4]):
        return "\\\\" + rest[4:]
    return rest


def detect_style(path: str) -> Style:
    """The style a path is written in, judged by its start."""
    path = _strip_long_prefix(path)
    if _DRIVE_RE.match(path):
        return Style.DRIVE
    if _is_sep(path[:1]) and _is_sep(path[1:2]):
        return Style.UNC
    if path.startswith("/"):
        return Style.POSIX
    return Style.OTHER


@frozen
class Parsed:
    """An absolute path split into an anchor (drive ``D:``, else empty) and components."""

    style: Style
    anchor: str
    parts: tuple[str, ...]

    def render(self, parts: Sequence[str] | None = None) -> str:
        return render(self.style, self.anchor, self.parts if parts is None else parts)


def parse(path: str, style: Style) -> Parsed | None:
    """Split ``path`` as a path of ``style``; None when it is not written in that style.

    A POSIX reading accepts any path starting with ``/`` (Linux reads ``//x`` as ``/x``);
    a Windows reading accepts either separator.
    """
    if style is Style.POSIX:
        if not path.startswith("/"):
            return None
        return Parsed(style, "", tuple(p for p in path.split("/") if p))
    if not style.windows:
        return None
    path = _strip_long_prefix(path)
    if detect_style(path) is not style:
        return None
    anchor, rest = (path[:2], path[2:]) if style is Style.DRIVE else ("", path)
    parts = tuple(p for p in _WIN_SPLIT.split(rest) if p)
    if style is Style.UNC and not parts:
        return None  # "\\" alone names no server
    return Parsed(style, anchor, parts)


def render(style: Style, anchor: str, parts: Sequence[str]) -> str:
    if style is Style.POSIX:
        return "/" + "/".join(parts)
    if style is Style.DRIVE:
        return anchor + "\\" + "\\".join(parts)
    if style is Style.UNC:
        return "\\\\" + "\\".join(parts)
    raise ValueError(f"cannot render a {style.value} path")


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def canonical(path: str, style: Style) -> str:
    """``path`` in NFC, written the way ``style`` writes it when it is one of its paths."""
    path = nfc(path)
    parsed = parse(path, style)
    return path if parsed is None else parsed.render()


def _fold(text: str) -> str:
    # Unicode's canonical caseless match: NFC(casefold(NFC(x))); inputs are NFC already.
    return unicodedata.normalize("NFC", text.casefold())


def _identity(text: str) -> str:
    return text


def _key(case_insensitive: bool) -> Callable[[str], str]:
    return _fold if case_insensitive else _identity


def same_path(a: str, b: str, style: Style, case_insensitive: bool) -> bool:
    """Whether two spellings name the same path on a side of ``style``."""
    key = _key(case_insensitive)
    return key(canonical(a, style)) == key(canonical(b, style))


# --- templates ------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_REF_RE = re.compile(r"[^\W\d]\w*|\d+")


@frozen
class Template:
    r"""A replacement template: literal text with ``{name}`` / ``{1}`` group references.

    ``{{`` and ``}}`` are literal braces. Backslashes are literal, so Windows paths need
    no escaping (``\g<name>`` is deliberately not supported: it turns ``D:\Media`` into a
    bad escape). ``{0}`` is the whole match; a group that did not take part is empty.
    """

    text: str
    #: Alternating: literal text, group reference, literal text, ..., literal text.
    parts: tuple[str | int, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str | int] = []
        literal: list[str] = []
        pos = 0
        for m in _TOKEN_RE.finditer(text):
            literal.append(text[pos : m.start()])
            pos = m.end()
            token = m.group(0)
            if token in ("{{", "}}"):
                literal.append(token[0])
                continue
            if token in ("{", "}"):
                raise ValueError(
                    f"unbalanced {token!r} at position {m.start()} "
                    f"(write {token * 2} for a literal brace)"
                )
            ref = m.group(1).strip()
            if not _REF_RE.fullmatch(ref):
                raise ValueError(f"{token!r} is not a group reference (use {{name}} or {{1}})")
            parts.append(nfc("".join(literal)))
            parts.append(int(ref) if ref.isdigit() else ref)
            literal = []
        literal.append(text[pos:])
        parts.append(nfc("".join(literal)))
        return cls(text, tuple(parts))

    @property
    def refs(self) -> tuple[str | int, ...]:
        return self.parts[1::2]

    def expand(self, match: re.Match[str]) -> str:
        out = list(self.parts)
        for i in range(1, len(out), 2):
            out[i] = match.group(out[i]) or ""  # a group that did not take part is ""
        return "".join(out)  # type: ignore[arg-type]

    def shape(self) -> str:
        """The template with every group replaced by ``x``: enough to judge its style."""
        return "".join("x" if i % 2 else str(p) for i, p in enumerate(self.parts))

    def group_problems(self, pattern: re.Pattern[str], pattern_key: str) -> list[str]:
        """References to groups that ``pattern`` does not have."""
        problems = []
        for ref in self.refs:
            if isinstance(ref, int):
                if ref > pattern.groups:
                    problems.append(
                        f"{{{ref}}} refers to group {ref}, but {pattern_key} has "
                        f"{pattern.groups} group(s)"
                    )
            elif ref not in pattern.groupindex:
                has = ", ".join(sorted(pattern.groupindex)) or "no named groups"
                problems.append(f"{{{ref}}} is not a group of {pattern_key} (it has: {has})")
        return problems


#: Group references of other dialects: re.sub's \g<name> and \1, JavaScript's and
#: .NET's $1, ${name} and $name.
_DIALECT_RE = re.compile(r"\\g<(\w+)>|\$\{(\w+)\}|\$(\d+|[^\W\d]\w*)|\\(\d+)")


def dialect_problem(text: str, pattern: re.Pattern[str]) -> str | None:
    r"""A message when ``text`` names groups the way another regex dialect does.

    ``\g<x>`` and ``${x}`` are refused wherever they appear (neither can be part of a
    path). ``\1``, ``$1`` and ``$name`` can (``D:\Media\2019``): they are refused only in
    a template that has no ``{...}`` reference and only when ``pattern`` has that group.
    """
    plain = _DIALECT_RE.sub("", text)
    uses_ours = any(m.group(1) is not None for m in _TOKEN_RE.finditer(plain))
    found: list[tuple[re.Match[str], str]] = []
    for m in _DIALECT_RE.finditer(text):
        strong = m.group(1) or m.group(2)
        weak = m.group(3) or m.group(4)
        if strong:
            found.append((m, strong))
        elif weak and not uses_ours:
            known = int(weak) <= pattern.groups if weak.isdigit() else weak in pattern.groupindex
            if known and weak != "0":
                found.append((m, weak))
    if not found:
        return None
    # In a Windows path the backslash before \g<x> or \1 was also a separator: keep it.
    keep = "\\" if detect_style(text).windows else ""
    fixed, pos = [], 0
    for m, ref in found:
        lead = keep if m.group(0).startswith("\\") else ""
        fixed += [text[pos : m.start()], lead + "{" + ref + "}"]
        pos = m.end()
    fixed.append(text[pos:])
    shown = ", ".join(m.group(0) for m, _ref in found)
    return (
        f"{quote(text)} uses {shown}, another regex dialect's group reference: write "
        f"{quote(''.join(fixed))} (templates name groups as {{name}} or {{1}}; {{{{ and }}}} "
        f"are literal braces)"
    )


# --- configuration --------------------------------------------------------------------


@define(kw_only=True, frozen=True)
class Rule:
    """One ``[[path_regex.rules]]`` entry. Constructing it validates it (ValueError).

    Either ``plex_prefix`` + ``stash_prefix``, or all four of ``plex_pattern`` +
    ``stash_template`` (Plex -> Stash) and ``stash_pattern`` + ``plex_template``
    (Stash -> Plex). An empty string means "not set" (TOML has no null).
    """

    name: str
    plex_prefix: str = ""
    stash_prefix: str = ""
    plex_pattern: str = ""
    stash_template: str = ""
    stash_pattern: str = ""
    plex_template: str = ""
    #: None: each side as its filesystem compares (Windows: ignore case; POSIX: exact).
    case_insensitive: bool | None = None
    #: Plex-side paths that must survive Plex -> Stash -> Plex through this rule.
    samples: list[str] = field(factory=list)

    def __attrs_post_init__(self) -> None:
        problems = rule_problems(self)
        if problems:
            raise ValueError(f"rule {self.name!r}: " + "; ".join(problems))

    @property
    def is_prefix(self) -> bool:
        return bool(self.plex_prefix or self.stash_prefix)


@define(kw_only=True)
class PathRegexConfig:
    """``[path_regex]``: the ordered rules; for each direction the first match wins."""

    rules: list[Rule] = field(factory=list)

    def __attrs_post_init__(self) -> None:
        problems = cross_rule_problems(self.rules)
        if problems:
            raise ValueError("; ".join(problems))


_PREFIX_KEYS = ("plex_prefix", "stash_prefix")
_REGEX_KEYS = ("plex_pattern", "stash_template", "stash_pattern", "plex_template")


def rule_problems(rule: Rule) -> list[str]:
    """What is wrong with one rule on its own: shape, regexes, templates, samples."""
    problems: list[str] = []
    if not rule.name.strip():
        problems.append("name must not be empty")
    prefix_set = [k for k in _PREFIX_KEYS if getattr(rule, k)]
    regex_set = [k for k in _REGEX_KEYS if getattr(rule, k)]
    if prefix_set and regex_set:
        found = ", ".join(prefix_set + regex_set)
        return [*problems, f"set either the prefix keys or the regex keys, not both ({found})"]
    if not prefix_set and not regex_set:
        return [
            *problems,
            "needs plex_prefix + stash_prefix, or plex_pattern + stash_template and "
            "stash_pattern + plex_template",
        ]
    missing = [k for k in (_PREFIX_KEYS if prefix_set else _REGEX_KEYS) if not getattr(rule, k)]
    if missing:
        why = "" if prefix_set else " (a regex rule needs both directions; none is derived)"
        return [*problems, f"missing {', '.join(missing)}{why}"]
    try:
        compiled = compile_rule(rule)
    except ValueError as exc:
        return [*problems, str(exc)]
    for sample in rule.samples:
        problem = compiled.round_trip_problem(sample)
        if problem:
            problems.append(problem)
    return problems


def cross_rule_problems(rules: Sequence[Rule]) -> list[str]:
    """What is wrong with rules together: a name used twice, a sample another rule takes."""
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, rule in enumerate(rules):
        if rule.name in seen:
            problems.append(
                f"rule {rule.name!r}: name used by rules[{seen[rule.name]}] and rules[{i}]"
            )
        seen.setdefault(rule.name, i)
    engine = Engine(rules)
    for index, (rule, compiled) in enumerate(zip(rules, engine.compiled, strict=True)):
        for sample in rule.samples:
            forward = engine.first(sample, PLEX_TO_STASH)
            if forward is None:
                continue  # the rule itself reports it
            if forward[0] != index:
                problems.append(
                    f"rule {rule.name!r}: sample {quote(sample)} is taken by the earlier rule "
                    f"{engine.compiled[forward[0]].name!r} (first match wins: reorder or "
                    f"narrow the rules)"
                )
                continue
            back = engine.first(forward[1], STASH_TO_PLEX)
            if back is None or not compiled.same_path("plex", back[1], sample):
                via = "no rule" if back is None else f"rule {engine.compiled[back[0]].name!r}"
                shown = "nothing" if back is None else quote(back[1])
                problems.append(
                    f"rule {rule.name!r}: sample does not round-trip through the rule list: "
                    f"{quote(sample)} -> {quote(forward[1])} -> {shown} (back via {via})"
                )
    return problems


def validate_rules(rules: Iterable[Rule]) -> list[str]:
    """Every problem of a rule list, one message each, starting with ``rule '<name>':``.

    :class:`Rule` objects validate themselves when built, so for them this finds what only
    the list shows (duplicate names, samples taken or mapped back by another rule).
    """
    rules = list(rules)
    problems = []
    for rule in rules:
        problems.extend(f"rule {rule.name!r}: {p}" for p in rule_problems(rule))
    return problems + cross_rule_problems(rules)


# --- compiled rules -------------------------------------------------------------------


@frozen
class Mapping:
    """A translated path and the name of the rule that produced it."""

    path: str
    rule: str


@frozen
class _Diagnosis:
    """Why a rule did not map a path, and how close it came (higher is nearer)."""

    score: float
    reason: str


class _Input:
    """One path being mapped: NFC once, parsed at most once per style."""

    __slots__ = ("_parsed", "text")

    def __init__(self, path: str) -> None:
        self.text = nfc(path)
        self._parsed: dict[Style, Parsed | None] = {}

    def parsed(self, style: Style) -> Parsed | None:
        if style not in self._parsed:
            self._parsed[style] = parse(self.text, style)
        return self._parsed[style]

    def canonical(self, style: Style) -> str:
        parsed = self.parsed(style)
        return self.text if parsed is None else parsed.render()


class _Compiled:
    """A validated rule, ready to map in either direction."""

    name: str
    style: dict[str, Style]  # per side: "plex", "stash"
    ci: dict[str, bool]  # per side: compare names ignoring case

    def _init_case(self, setting: bool | None) -> None:
        self.ci = {
            side: style.windows if setting is None else setting
            for side, style in self.style.items()
        }

    def apply(self, src: _Input, direction: str) -> str | None:
        raise NotImplementedError

    def diagnose(self, src: _Input, direction: str) -> _Diagnosis:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def same_path(self, side: str, a: str, b: str) -> bool:
        return same_path(a, b, self.style[side], self.ci[side])

    def case_word(self, side: str) -> str:
        return "case-insensitive" if self.ci[side] else "case-sensitive"

    def case_summary(self) -> str:
        if self.ci["plex"] == self.ci["stash"]:
            return self.case_word("plex")
        return f"Plex side {self.case_word('plex')}, Stash side {self.case_word('stash')}"

    def round_trip_problem(self, sample: str) -> str | None:
        src = _Input(sample)
        forward = self.apply(src, PLEX_TO_STASH)
        if forward is None:
            reason = self.diagnose(src, PLEX_TO_STASH).reason
            return f"sample {quote(sample)} is not mapped by this rule: {reason}"
        back_src = _Input(forward)
        back = self.apply(back_src, STASH_TO_PLEX)
        if back is None:
            reason = self.diagnose(back_src, STASH_TO_PLEX).reason
            return (
                f"sample does not round-trip: {quote(sample)} -> {quote(forward)} -> "
                f"no mapping back ({reason})"
            )
        if not self.same_path("plex", back, sample):
            return (
                f"sample does not round-trip: {quote(sample)} -> {quote(forward)} -> {quote(back)}"
            )
        return None


def _lost_backslash(source: Style, target: Style, parts: Iterable[str]) -> str | None:
    r"""A POSIX name holding ``\`` cannot exist on a Windows side (it would split in two):
    the name, or None when every name survives."""
    if target.windows and not source.windows:
        for part in parts:
            if "\\" in part:
                return part
    return None


class _PrefixRule(_Compiled):
    def __init__(self, rule: Rule) -> None:
        self.name = rule.name
        self.prefix: dict[str, Parsed] = {}
        for side in ("plex", "stash"):
            key = f"{side}_prefix"
            text = nfc(getattr(rule, key))
            parsed = parse(text, detect_style(text))
            if parsed is None:
                raise ValueError(
                    f"{key} {quote(text)} is not an absolute path "
                    f"(expected /..., X:\\... or \\\\server\\share)"
                )
            self.prefix[side] = parsed
        self.style = {side: p.style for side, p in self.prefix.items()}
        self._init_case(rule.case_insensitive)
        self._folded = {
            side: (
                _key(self.ci[side])(p.anchor),
                tuple(_key(self.ci[side])(x) for x in p.parts),
            )
            for side, p in self.prefix.items()
        }

    def apply(self, src: _Input, direction: str) -> str | None:
        source, target = _SIDES[direction]
        parsed = src.parsed(self.style[source])
        if parsed is None:
            return None
        anchor, parts = self._folded[source]
        n = len(parts)
        if len(parsed.parts) < n:
            return None
        key = _key(self.ci[source])
        if key(parsed.anchor) != anchor:
            return None
        for i in range(n):
            if key(parsed.parts[i]) != parts[i]:
                return None
        rest = parsed.parts[n:]
        if _lost_backslash(self.style[source], self.style[target], rest) is not None:
            return None
        out = self.prefix[target]
        return out.render(out.parts + rest)

    def diagnose(self, src: _Input, direction: str) -> _Diagnosis:
        source, target = _SIDES[direction]
        prefix = self.prefix[source]
        shown = quote(prefix.render())
        parsed = src.parsed(prefix.style)
        if parsed is None:
            got = detect_style(src.text).value
            return _Diagnosis(
                -1, f"expects a {prefix.style.value} path under {shown}; got a {got} path"
            )
        key = _key(self.ci[source])
        n = len(prefix.parts)
        head = parsed.render(parsed.parts[:n])
        matched = 0
        if key(parsed.anchor) == key(prefix.anchor):
            matched = 1
            for have, want in zip(parsed.parts, prefix.parts, strict=False):
                if key(have) != key(want):
                    break
                matched += 1
        if matched == min(n, len(parsed.parts)) + 1:
            if len(parsed.parts) < n:
                return _Diagnosis(
                    matched, f"expects prefix {shown}; path {quote(head)} is above it"
                )
            bad = _lost_backslash(prefix.style, self.style[target], parsed.parts[n:])
            return _Diagnosis(
                n + 3,
                f"matches prefix {shown}, but the name {quote(str(bad))} holds '\\', which a "
                f"{self.style[target].value} path cannot",
            )
        if len(parsed.parts) >= n and _fold(head) == _fold(prefix.render()):
            return _Diagnosis(
                n + 2,
                f"expects prefix {shown} ({self.case_word(source)}); "
                f"path starts with {quote(head)}",
            )
        hint = ""
        if len(parsed.parts) >= n and _fold(head).startswith(_fold(prefix.render())):
            hint = " (a prefix matches whole folder names only)"
        return _Diagnosis(matched, f"expects prefix {shown}; path starts with {quote(head)}{hint}")

    def describe(self) -> str:
        plex, stash = (quote(self.prefix[s].render()) for s in ("plex", "stash"))
        return f"prefix {plex} <-> {stash} ({self.case_summary()})"


class _RegexRule(_Compiled):
    def __init__(self, rule: Rule) -> None:
        self.name = rule.name
        self.template: dict[str, Template] = {}  # keyed by the side it produces
        for side in ("stash", "plex"):
            key = f"{side}_template"
            try:
                self.template[side] = Template.parse(getattr(rule, key))
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        # A side's style shows in the template that writes its paths.
        self.style = {side: detect_style(t.shape()) for side, t in self.template.items()}
        self._init_case(rule.case_insensitive)
        self.source_text = {"plex": rule.plex_pattern, "stash": rule.stash_pattern}
        self.pattern: dict[str, re.Pattern[str]] = {}  # keyed by the side it reads
        for side in ("plex", "stash"):
            # DOTALL: a path may hold any character, and "(?P<rest>.*)" should take it all.
            flags = re.DOTALL | (re.IGNORECASE if self.ci[side] else 0)
            try:
                self.pattern[side] = re.compile(nfc(self.source_text[side]), flags)
            except re.error as exc:
                raise ValueError(f"{side}_pattern does not compile: {exc}") from None
        dialects = [
            f"{side}_template {problem}"
            for side, read in (("stash", "plex"), ("plex", "stash"))
            if (problem := dialect_problem(self.template[side].text, self.pattern[read]))
        ]
        if dialects:
            raise ValueError("; ".join(dialects))
        problems = self.template["stash"].group_problems(self.pattern["plex"], "plex_pattern")
        problems += self.template["plex"].group_problems(self.pattern["stash"], "stash_pattern")
        if problems:
            raise ValueError("; ".join(f"template {p}" for p in problems))

    def apply(self, src: _Input, direction: str) -> str | None:
        source, target = _SIDES[direction]
        source_style, target_style = self.style[source], self.style[target]
        text = src.canonical(source_style)
        m = self.pattern[source].fullmatch(text)
        if m is None:
            return None
        if target_style.windows and not source_style.windows and "\\" in text:
            return None  # see _lost_backslash
        out = self.template[target].expand(m)
        if target_style.windows:
            out = out.replace("/", "\\")
        elif target_style is Style.POSIX and source_style.windows:
            out = out.replace("\\", "/")  # the groups carry the source's separators
        return canonical(out, target_style)

    def diagnose(self, src: _Input, direction: str) -> _Diagnosis:
        source, target = _SIDES[direction]
        text = src.canonical(self.style[source])
        key = f"{source}_pattern {quote(self.source_text[source])}"
        pattern = self.pattern[source]
        if pattern.fullmatch(text) is not None:
            return _Diagnosis(
                1001,
                f"{key} matches, but the path holds '\\', which a "
                f"{self.style[target].value} path cannot",
            )
        if not self.ci[source] and re.fullmatch(
            pattern.pattern, text, pattern.flags | re.IGNORECASE
        ):
            return _Diagnosis(
                1000,
                f"{key} (case-sensitive) matches {quote(text)} only when case is ignored "
                f"(set case_insensitive = true)",
            )
        return _Diagnosis(0, f"{key} does not match {quote(text)} (it must match all of it)")

    def describe(self) -> str:
        return (
            f"regex {quote(self.source_text['plex'])} -> {quote(self.template['stash'].text)}, "
            f"{quote(self.source_text['stash'])} -> {quote(self.template['plex'].text)} "
            f"({self.case_summary()})"
        )


def compile_rule(rule: Rule) -> _Compiled:
    """The rule ready to use; ValueError (without the rule's name) when it cannot be."""
    return _PrefixRule(rule) if rule.is_prefix else _RegexRule(rule)


def describe_rule(rule: Rule) -> str:
    """One line saying what a rule maps, for ``stash2plex check`` and ``explain``."""
    return compile_rule(rule).describe()


# --- the engine -----------------------------------------------------------------------


def _direction(direction: str) -> str:
    # A PathDirection is a str enum: it finds its plain value here, by hash and equality.
    known = _DIRECTION_OF.get(direction)
    if known is not None:
        return known
    value = str(getattr(direction, "value", direction))
    if value not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return value


_TARGET_NAME: Final = {PLEX_TO_STASH: "Stash", STASH_TO_PLEX: "Plex"}


class Engine:
    """An ordered rule list. :meth:`map` is the hot path; :meth:`explain` is for people."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.compiled: tuple[_Compiled, ...] = tuple(compile_rule(r) for r in self.rules)

    def first(self, path: str, direction: str) -> tuple[int, str] | None:
        """The index of the first rule that maps ``path`` and its result; no log line."""
        direction = _direction(direction)
        src = _Input(path)
        for index, rule in enumerate(self.compiled):
            out = rule.apply(src, direction)
            if out is not None:
                return index, out
        return None

    def map(self, path: str, direction: str) -> Mapping | None:
        """Translate ``path``, as the source side of ``direction`` spells it, for the other.

        :param direction: ``"plex_to_stash"`` or ``"stash_to_plex"`` (or a ``PathDirection``).
        :returns: the first matching rule's result, or None when no rule applies.
        """
        direction = _direction(direction)
        found = self.translate(path, direction)
        self.log_result(path, direction, found)
        return None if found is None else Mapping(path=found[1], rule=found[0])

    def translate(self, path: str, direction: str) -> tuple[str, str] | None:
        """:meth:`map` as a plain (rule name, path) pair, and without its debug line: the
        ``map_path`` hook's path, which runs for every file of a scan (the hook writes
        the line only when debug lines are written at all)."""
        found = self.first(path, direction)
        return None if found is None else (self.compiled[found[0]].name, found[1])

    def log_result(self, path: str, direction: str, found: tuple[str, str] | None) -> None:
        """The debug line of a :meth:`translate`."""
        if found is None:
            log.debug("path.unmapped", direction=direction, source=path, rules=len(self.rules))
        else:
            rule, target = found
            log.debug("path.mapped", rule=rule, direction=direction, source=path, target=target)

    def explain(self, path: str, direction: str) -> str:
        """What :meth:`map` does with ``path`` and why, in a few lines of text.

        Mapped: the first line is the mapped path, the next names the rule. Not mapped: says
        so, then each rule's reason, the nearest rule first.
        """
        direction = _direction(direction)
        found = self.first(path, direction)
        if found is not None:
            index, out = found
            rule = self.compiled[index]
            return f"{out}\n  rule {rule.name!r} (rules[{index}]): {rule.describe()}"
        head = f"no rule maps {quote(path)} to {_TARGET_NAME[direction]}"
        if not self.compiled:
            return head + "\n  no rules are configured ([[path_regex.rules]] is empty)"
        src = _Input(path)
        diagnoses = [rule.diagnose(src, direction) for rule in self.compiled]
        order = sorted(range(len(diagnoses)), key=lambda i: -diagnoses[i].score)
        lines = [head]
        for rank, i in enumerate(order):
            label = "nearest: " if rank == 0 and len(order) > 1 else ""
            name = self.compiled[i].name
            lines.append(f"  {label}rule {name!r} (rules[{i}]) {diagnoses[i].reason}")
        return "\n".join(lines)


__all__ = [
    "DIRECTIONS",
    "PLEX_TO_STASH",
    "STASH_TO_PLEX",
    "Engine",
    "Mapping",
    "PathRegexConfig",
    "Rule",
    "Style",
    "Template",
    "canonical",
    "describe_rule",
    "detect_style",
    "dialect_problem",
    "parse",
    "quote",
    "same_path",
    "validate_rules",
]
