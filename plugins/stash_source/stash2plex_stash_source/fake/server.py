"""A fake Stash server over real HTTP: GraphQL, images, auth and failure modes.

It serves a :class:`~.library.Library` through the schema subset in ``schema.graphql``
with Stash's observable behaviour, traps included (see ``FakeStash`` for the list). Queries
are executed by graphql-core; filtering, sorting and paging happen in Python *before*
graphql-core sees the page, so a 1000-scene page answers quickly even with 100k scenes.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import hashlib
import itertools
import operator
import random
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from typing import Any
from urllib.parse import quote

import attrs
import orjson
from aiohttp import web
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    build_schema,
    execute,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values

from .library import Library, ascii_lower, utc_epoch

__all__ = ["FAULTS", "FakeStash"]

#: Values :attr:`FakeStash.fault` accepts.
FAULTS = ("down", "slow", "401", "403", "422", "500", "html", "garbage", "locked")

Scene = dict[str, Any]
Predicate = Callable[[Any], bool]

_LOGIN_HTML = (
    "<!doctype html><html><head><title>Login | Stash</title></head><body>"
    '<form method="POST" action="/login"><input name="username"><input name="password" '
    'type="password"><button type="submit">Login</button></form></body></html>'
)
_JSON = "application/json"


class StashError(Exception):
    """A resolver failure; graphql-core reports its message as Stash would."""


def _panic(what: str) -> StashError:
    # gqlgen's recover hook turns a Go panic into this message.
    return StashError(f"Internal system error. Error <{what}>")


# --- schema and execution ------------------------------------------------------------------


@functools.cache
def _schema() -> GraphQLSchema:
    sdl = resources.files(__package__).joinpath("schema.graphql").read_text(encoding="utf-8")
    schema = build_schema(sdl)
    for (type_name, field_name), resolver in _RESOLVERS.items():
        schema.get_type(type_name).fields[field_name].resolve = resolver  # type: ignore[union-attr]
    schema.get_type("BaseFile").resolve_type = lambda *_: "VideoFile"  # type: ignore[union-attr]
    return schema


@functools.lru_cache(maxsize=512)
def _prepare(query: str) -> tuple[DocumentNode | None, tuple[GraphQLError, ...], str]:
    """Parse and validate once per distinct query text: clients repeat the same documents."""
    try:
        document = parse(query)
    except GraphQLError as error:
        return None, (error,), "GRAPHQL_PARSE_FAILED"
    errors = validate(_schema(), document)
    return document, tuple(errors), "GRAPHQL_VALIDATION_FAILED"


@attrs.define
class _Context:
    """Per-request state the resolvers need."""

    lib: Library
    base: str
    api_key: str | None
    server: FakeStash


def _default_resolver(source: Any, info: Any, **args: Any) -> Any:
    value = source.get(info.field_name) if isinstance(source, dict) else None
    if value is None:
        return _FIELD_DEFAULTS.get(info.field_name)
    # Callables are computed on demand (``count``-like totals only when selected).
    return value(info, **args) if callable(value) else value


#: Values for non-null fields the records do not store (Stash's defaults for them).
_FIELD_DEFAULTS: dict[str, Any] = {
    "interactive": False,
    "play_history": [],
    "o_history": [],
    "galleries": [],
    "alias_list": [],
    "aliases": [],
    "urls": [],
    "tags": [],
    "stash_ids": [],
    "favorite": False,
    "ignore_auto_tag": False,
    "organized": False,
}


# --- resolvers: object fields --------------------------------------------------------------


def _ctx(info: Any) -> _Context:
    return info.context


def _scene_paths(scene: Scene, info: Any) -> dict[str, str]:
    ctx = _ctx(info)
    base = f"{ctx.base}/scene/{scene['id']}"
    stream = f"{base}/stream"
    if ctx.api_key:
        # Real Stash puts the server's API key into the stream URL.
        stream += f"?apikey={quote(ctx.api_key, safe='')}"
    files = scene["files"]
    checksum = _fp(files[0], "oshash") if files else ""
    return {
        "screenshot": f"{base}/screenshot?t={utc_epoch(scene['updated_at'])}",
        "preview": f"{base}/preview",
        "stream": stream,
        "webp": f"{base}/webp",
        "vtt": f"{ctx.base}/scene/{checksum}_thumbs.vtt",
        "sprite": f"{ctx.base}/scene/{checksum}_sprite.jpg",
        "funscript": f"{base}/funscript",
        "interactive_heatmap": f"{base}/interactive_heatmap",
        "caption": f"{base}/caption",
    }


def _image_url(info: Any, kind: str, record: dict[str, Any], route: str, has: bool) -> str:
    url = f"{_ctx(info).base}/{kind}/{record['id']}/{route}?t={utc_epoch(record['updated_at'])}"
    return url if has else url + "&default=true"


def _fp(f: dict[str, Any], fp_type: str) -> str | None:
    for fp in f["fingerprints"]:
        if fp["type"] == fp_type:
            return fp["value"]
    return None


def _folder_of(path: str, info: Any) -> dict[str, Any]:
    return _ctx(info).lib.folder(path.rsplit("/", 1)[0] or "/")


def _folder_parent(folder: dict[str, Any], info: Any) -> dict[str, Any] | None:
    lib = _ctx(info).lib
    parent = folder["_parent"]
    # Stash only knows folders from the library root down.
    if parent is None or not (parent + "/").startswith(lib.stash_root + "/"):
        return None
    return lib.folder(parent)


def _studio_children(studio: dict[str, Any], info: Any) -> list[dict[str, Any]]:
    return [s for s in _ctx(info).lib.studios.values() if s["parent_studio"] is studio]


def _tag_children(tag: dict[str, Any], info: Any) -> list[dict[str, Any]]:
    return [t for t in _ctx(info).lib.tags.values() if any(p is tag for p in t["parents"])]


def _count(kind: str) -> Callable[..., int]:
    def resolve(record: dict[str, Any], info: Any, **_args: Any) -> int:
        return _ctx(info).lib.scene_counts()[kind][record["id"]]

    return resolve


_RESOLVERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("Scene", "paths"): _scene_paths,
    ("VideoFile", "fingerprint"): lambda f, _info, type: _fp(f, type),
    ("VideoFile", "parent_folder"): lambda f, info: _folder_of(f["path"], info),
    ("Folder", "parent_folder"): _folder_parent,
    ("Performer", "image_path"): lambda p, info: _image_url(
        info, "performer", p, "image", p.get("_has_image", True)
    ),
    ("Performer", "scene_count"): _count("p"),
    ("Studio", "image_path"): lambda s, info: _image_url(
        info, "studio", s, "image", s.get("_has_image", True)
    ),
    ("Studio", "child_studios"): _studio_children,
    ("Studio", "scene_count"): _count("s"),
    ("Tag", "image_path"): lambda t, info: _image_url(
        info, "tag", t, "image", t.get("_has_image", True)
    ),
    ("Tag", "children"): _tag_children,
    ("Tag", "parent_count"): lambda t, _info: len(t["parents"]),
    ("Tag", "child_count"): lambda t, info: len(_tag_children(t, info)),
    ("Tag", "scene_count"): _count("t"),
    ("Group", "front_image_path"): lambda g, info: _image_url(
        info, "group", g, "frontimage", g.get("_has_image", True)
    ),
    ("Group", "back_image_path"): lambda g, info: (
        _image_url(info, "group", g, "backimage", True) if g.get("_has_back_image") else None
    ),
    ("Group", "scene_count"): _count("g"),
}


# --- resolvers: queries --------------------------------------------------------------------


def _atoi(value: Any) -> int:
    """Go's ``strconv.Atoi``, with its error text."""
    text = str(value)
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise StashError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def _find_scene(_root: None, info: Any, id: str | None = None, checksum: str | None = None) -> Any:
    lib = _ctx(info).lib
    if id is not None:
        return lib.scenes.get(_atoi(id))
    if checksum is not None:
        found = lib.scenes_by_fingerprint("md5", checksum)
        return lib.scenes[found[0]] if found else None
    return None


def _find_scene_by_hash(_root: None, info: Any, input: dict[str, Any]) -> Scene | None:
    lib = _ctx(info).lib
    # Stash tries the checksum first, then the oshash; duplicates give the first scene.
    for fp_type, key in (("md5", "checksum"), ("oshash", "oshash")):
        if input.get(key):
            found = lib.scenes_by_fingerprint(fp_type, input[key])
            if found:
                return lib.scenes[found[0]]
    return None


def _find_file(_root: None, info: Any, id: str | None = None, path: str | None = None) -> Any:
    lib = _ctx(info).lib
    if path is not None:
        hit = lib.file_by_path(path)
        if hit:
            return hit[1]
    elif id is not None:
        file_id = _atoi(id)
        for scene in lib.scenes.values():
            for f in scene["files"]:
                if f["id"] == file_id:
                    return f
    raise StashError("file not found")


def _find_scenes(
    _root: None,
    info: Any,
    scene_filter: dict[str, Any] | None = None,
    scene_ids: list[int] | None = None,
    ids: list[str] | None = None,
    filter: dict[str, Any] | None = None,
) -> dict[str, Any]:
    lib = _ctx(info).lib
    wanted = ids or scene_ids
    if wanted:
        # FindMany: input order, no paging, and one unknown id fails the whole query.
        found = []
        for raw in wanted:
            scene = lib.scenes.get(_atoi(raw))
            if scene is None:
                raise StashError(f"scene with id {raw} not found")
            found.append(scene)
        return _scene_result(found, len(found))
    page, count = _query_scenes(lib, scene_filter, filter or {})
    return _scene_result(page, count)


def _find_scenes_by_path_regex(
    _root: None, info: Any, filter: dict[str, Any] | None = None
) -> dict[str, Any]:
    find = dict(filter or {})
    q = find.pop("q", None)
    scene_filter = {"path": {"value": "(?i)" + q, "modifier": "MATCHES_REGEX"}} if q else None
    page, count = _query_scenes(_ctx(info).lib, scene_filter, find)
    return _scene_result(page, count)


def _scene_result(scenes: list[Scene], count: int) -> dict[str, Any]:
    # duration and filesize are callables so they are only summed when selected.
    return {
        "count": count,
        "scenes": scenes,
        "duration": lambda *_a: float(sum(f["duration"] for s in scenes for f in s["files"])),
        "filesize": lambda *_a: float(sum(f["size"] for s in scenes for f in s["files"])),
    }


def _finder(table: str, noun: str, filter_arg: str, ids_arg: str | None) -> Callable[..., Any]:
    """``findPerformers``/``findStudios``/``findTags``/``findGroups``."""

    def resolve(_root: None, info: Any, **args: Any) -> dict[str, Any]:
        records: dict[int, dict[str, Any]] = getattr(_ctx(info).lib, table)
        wanted = args.get("ids") or (args.get(ids_arg) if ids_arg else None)
        if wanted:
            found = []
            for raw in wanted:
                record = records.get(_atoi(raw))
                if record is None:
                    raise StashError(f"{noun} with id {raw} not found")
                found.append(record)
            return {"count": len(found), table: found}
        matches = _filter_related(records.values(), args.get(filter_arg))
        matches = _search_related(matches, (args.get("filter") or {}).get("q"))
        page, count = _sort_and_page(matches, args.get("filter") or {}, _RELATED_SORTS)
        return {"count": count, table: page}

    return resolve


def _find_one(table: str) -> Callable[..., Any]:
    def resolve(_root: None, info: Any, id: str) -> Any:
        return getattr(_ctx(info).lib, table).get(_atoi(id))

    return resolve


def _version(_root: None, info: Any) -> dict[str, Any]:
    return {
        "version": _ctx(info).server.version,
        "hash": "b23b0267",
        "build_time": "2025-12-18 03:57:33",
    }


def _system_status(_root: None, info: Any) -> dict[str, Any]:
    server = _ctx(info).server
    return {
        "databaseSchema": 75,
        "databasePath": server.database_path,
        "configPath": server.config_path,
        "appSchema": 75,
        "status": _ctx(info).server.system_status,
        "os": "linux",
        "workingDir": "/",
        "homeDir": "/root",
        "ffmpegPath": "/usr/bin/ffmpeg",
        "ffprobePath": "/usr/bin/ffprobe",
    }


_QUERY_RESOLVERS: dict[str, Callable[..., Any]] = {
    "version": _version,
    "systemStatus": _system_status,
    "findFile": _find_file,
    "findScene": _find_scene,
    "findSceneByHash": _find_scene_by_hash,
    "findScenes": _find_scenes,
    "findScenesByPathRegex": _find_scenes_by_path_regex,
    "findPerformer": _find_one("performers"),
    "findPerformers": _finder("performers", "performer", "performer_filter", "performer_ids"),
    "findStudio": _find_one("studios"),
    "findStudios": _finder("studios", "studio", "studio_filter", None),
    "findGroup": _find_one("groups"),
    "findGroups": _finder("groups", "group", "group_filter", None),
    "findTag": _find_one("tags"),
    "findTags": _finder("tags", "tag", "tag_filter", None),
}
_RESOLVERS.update({("Query", name): fn for name, fn in _QUERY_RESOLVERS.items()})


# --- criteria ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _like(pattern: str) -> re.Pattern[str]:
    """SQLite ``LIKE`` without an ESCAPE clause, as Stash issues it.

    ``%`` and ``_`` are wildcards wherever they appear (Stash escapes nothing), and only
    ASCII letters compare case-insensitively.
    """
    parts = []
    for char in pattern:
        if char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        elif char.isascii() and char.isalpha():
            parts.append(f"[{char.lower()}{char.upper()}]")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise StashError(f"error parsing regexp: {error}") from error


def _search_words(value: str) -> list[str]:
    """INCLUDES/EXCLUDES: whitespace-split words, unless the whole value is double-quoted."""
    stripped = value.strip()
    trimmed = stripped.strip('"')
    if trimmed != stripped:
        return [trimmed]
    return [w for w in re.split(r"\s+", stripped) if w] or [""]


def _string_test(crit: dict[str, Any]) -> Callable[[str | None], bool]:
    """One row's test for a StringCriterionInput (``None`` is SQL NULL)."""
    modifier, value = crit["modifier"], crit["value"]
    if modifier == "EQUALS":
        rx = _like(value)
        return lambda v: v is not None and rx.fullmatch(v) is not None
    if modifier == "NOT_EQUALS":
        rx = _like(value)
        return lambda v: v is not None and rx.fullmatch(v) is None
    if modifier in ("INCLUDES", "EXCLUDES"):
        rxs = [_like(f"%{w}%") for w in _search_words(value)]
        if modifier == "INCLUDES":
            return lambda v: v is not None and any(rx.fullmatch(v) for rx in rxs)
        return lambda v: v is not None and not any(rx.fullmatch(v) for rx in rxs)
    if modifier in ("MATCHES_REGEX", "NOT_MATCHES_REGEX"):
        rx = _regex(value)
        if modifier == "MATCHES_REGEX":
            return lambda v: v is not None and rx.search(v) is not None
        return lambda v: v is None or rx.search(v) is None
    if modifier == "IS_NULL":
        return lambda v: v is None or not v.strip()
    if modifier == "NOT_NULL":
        return lambda v: v is not None and bool(v.strip())
    raise _panic("unsupported string filter modifier")


def _string_any(crit: dict[str, Any], values: Callable[[Any], Iterable[str | None]]) -> Predicate:
    """Match when any joined row passes, as Stash's LEFT JOIN + GROUP BY does."""
    test = _string_test(crit)
    return lambda record: any(test(v) for v in values(record))


def _compare(modifier: str, value: Any, upper: Any, kind: str) -> Callable[[Any], bool]:
    """EQUALS/…/BETWEEN for ints and for strings compared as strings (dates, timestamps)."""
    tests: dict[str, Callable[[Any], bool]] = {
        "EQUALS": lambda v: v is not None and v == value,
        "NOT_EQUALS": lambda v: v is not None and v != value,
        "GREATER_THAN": lambda v: v is not None and v > value,
        "LESS_THAN": lambda v: v is not None and v < value,
        "BETWEEN": lambda v: v is not None and value <= v <= upper,
        "NOT_BETWEEN": lambda v: v is not None and not value <= v <= upper,
        "IS_NULL": lambda v: v is None,
        "NOT_NULL": lambda v: v is not None,
    }
    if modifier not in tests:
        raise _panic(f"unsupported {kind} modifier type {modifier}")
    return tests[modifier]


def _int_test(crit: dict[str, Any]) -> Callable[[int | None], bool]:
    upper = crit.get("value2")
    return _compare(crit["modifier"], crit["value"], 0 if upper is None else upper, "int")


def _text_test(crit: dict[str, Any], kind: str) -> Callable[[str | None], bool]:
    """Date and timestamp criteria: plain string comparison against the stored text."""
    upper = crit.get("value2")
    if upper is None:
        upper = "9999-12-31T23:59:59Z"  # Stash uses "tomorrow"; nothing here is later
    return _compare(crit["modifier"], crit["value"], upper, kind)


def _multi_test(crit: dict[str, Any], expand: Callable[[set[int]], set[int]]) -> Predicate:
    """(Hierarchical)MultiCriterionInput against a record's set of related ids."""
    modifier = crit["modifier"]
    wanted = expand({_atoi(v) for v in crit.get("value") or ()})
    excluded = {_atoi(v) for v in crit.get("excludes") or ()}

    def test(related: set[int]) -> bool:
        if related & excluded:
            return False
        if modifier == "INCLUDES":
            return bool(related & wanted) or not wanted
        if modifier == "INCLUDES_ALL":
            return wanted <= related
        if modifier == "EXCLUDES":
            return not related & wanted
        if modifier == "IS_NULL":
            return not related
        if modifier == "NOT_NULL":
            return bool(related)
        raise _panic(f"unsupported multi criterion modifier {modifier}")

    return test


def _descendants(
    ids: set[int], depth: int | None, children: Callable[[int], Iterable[int]]
) -> set[int]:
    """``ids`` plus children down ``depth`` levels (-1: all; 0 or None: none)."""
    result, frontier, level = set(ids), set(ids), 0
    while frontier and depth not in (None, 0) and (depth < 0 or level < depth):
        frontier = {c for i in frontier for c in children(i)} - result
        result |= frontier
        level += 1
    return result


def _stash_id_test(crit: dict[str, Any]) -> Predicate:
    endpoint, stash_id, modifier = crit.get("endpoint"), crit.get("stash_id"), crit["modifier"]

    def hits(record: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            s
            for s in record["stash_ids"]
            if (endpoint is None or s["endpoint"] == endpoint)
            and (
                stash_id is None or modifier in ("IS_NULL", "NOT_NULL") or s["stash_id"] == stash_id
            )
        ]

    tests: dict[str, Predicate] = {
        "EQUALS": lambda r: bool(hits(r)),
        "NOT_EQUALS": lambda r: not hits(r),
        "IS_NULL": lambda r: not hits(r),
        "NOT_NULL": lambda r: bool(hits(r)),
    }
    if modifier not in tests:
        raise _panic(f"unsupported stash_id modifier {modifier}")
    return tests[modifier]


def _fingerprints(scene: Scene, fp_type: str) -> list[str | None]:
    return [
        fp["value"] for f in scene["files"] for fp in f["fingerprints"] if fp["type"] == fp_type
    ] or [None]


def _file_rows(scene: Scene, key: str) -> list[Any]:
    return [f[key] for f in scene["files"]] or [None]


_MISSING: dict[str, Predicate] = {
    "date": lambda s: not s["date"],
    "studio": lambda s: s["studio"] is None,
    "performers": lambda s: not s["performers"],
    "tags": lambda s: not s["tags"],
    "url": lambda s: not s["urls"],
    "stash_id": lambda s: not s["stash_ids"],
    "galleries": lambda _s: True,
    "group": lambda s: not s["groups"],
    "movie": lambda s: not s["groups"],
    "cover": lambda s: not s.get("_has_cover", True),
    "phash": lambda s: _fingerprints(s, "phash") == [None],
    "title": lambda s: not (s["title"] or "").strip(),
    "details": lambda s: not (s["details"] or "").strip(),
    "code": lambda s: not (s["code"] or "").strip(),
    "director": lambda s: not (s["director"] or "").strip(),
    "rating": lambda s: s["rating100"] is None,
}


def _is_missing(value: str) -> Predicate:
    if value not in _MISSING:
        raise StashError(f"no such column: scenes.{value}")
    return _MISSING[value]


def _hierarchy(lib: Library, kind: str) -> Callable[[int], Iterable[int]]:
    if kind == "studio":
        return lambda i: [
            s["id"] for s in lib.studios.values() if (s["parent_studio"] or {}).get("id") == i
        ]
    return lambda i: [t["id"] for t in lib.tags.values() if any(p["id"] == i for p in t["parents"])]


def _scene_criterion(lib: Library, key: str, crit: Any) -> Predicate:
    """The predicate for one SceneFilterType field."""
    string_fields = ("title", "code", "details", "director")
    if key in string_fields:
        return _string_any(crit, lambda s: (s[key],))
    if key == "id":
        test = _int_test(crit)
        return lambda s: test(s["id"])
    if key in ("oshash", "checksum"):
        fp_type = "oshash" if key == "oshash" else "md5"
        return _string_any(crit, lambda s: _fingerprints(s, fp_type))
    if key == "path":
        return _string_any(crit, lambda s: _file_rows(s, "path"))
    if key == "url":
        return _string_any(crit, lambda s: s["urls"] or [None])
    if key in ("file_count", "rating100", "duration"):
        test = _int_test(crit)
        getters: dict[str, Callable[[Scene], list[Any]]] = {
            "file_count": lambda s: [len(s["files"])],
            "rating100": lambda s: [s["rating100"]],
            "duration": lambda s: [
                int(d) if d is not None else None for d in _file_rows(s, "duration")
            ],
        }
        get = getters[key]
        return lambda s: any(test(v) for v in get(s))
    if key == "organized":
        return lambda s: s["organized"] is crit
    if key == "is_missing":
        return _is_missing(crit)
    if key in ("date", "created_at", "updated_at"):
        test = _text_test(crit, "date" if key == "date" else "timestamp")
        return lambda s: test(s[key])
    if key == "stash_id_endpoint":
        return _stash_id_test(crit)
    if key == "performers":
        test = _multi_test(crit, lambda ids: ids)
        return lambda s: test({p["id"] for p in s["performers"]})
    if key in ("studios", "tags"):
        kind = "studio" if key == "studios" else "tag"
        children = _hierarchy(lib, kind)
        test = _multi_test(crit, lambda ids: _descendants(ids, crit.get("depth"), children))
        if key == "studios":
            return lambda s: test({s["studio"]["id"]} if s["studio"] else set())
        return lambda s: test({t["id"] for t in s["tags"]})
    if key == "files_filter":
        file_test = _combine(crit, _file_criterion)
        return lambda s: any(file_test(f) for f in s["files"])
    raise _panic(f"unsupported scene filter {key}")


def _file_criterion(key: str, crit: Any) -> Predicate:
    if key in ("path", "basename"):
        test = _string_test(crit)
        return lambda f: test(f[key])
    if key == "dir":
        test = _string_test(crit)
        return lambda f: test(f["path"].rsplit("/", 1)[0])
    if key == "hashes":
        return _hashes_test(crit)
    raise _panic(f"unsupported file filter {key}")


def _hashes_test(hashes: list[dict[str, Any]]) -> Predicate:
    """``files_filter.hashes``: Stash parses every value as a hex integer and compares it
    with the stored integer, so in practice only phash values ever match."""
    wanted = []
    for h in hashes:
        try:
            wanted.append((h["type"], int(h["value"], 16), h.get("distance") or 0))
        except ValueError as error:
            raise StashError(
                f'strconv.ParseUint: parsing "{h["value"]}": invalid syntax'
            ) from error

    def test(f: dict[str, Any]) -> bool:
        for fp_type, value, distance in wanted:
            stored = _fp(f, fp_type)
            if fp_type != "phash" or stored is None:
                continue
            if bin(int(stored, 16) ^ value).count("1") <= distance:
                return True
        return False

    return test


def _combine(
    filt: dict[str, Any], criterion: Callable[[str, Any], Predicate], path: str = ""
) -> Predicate:
    """A whole filter input: its own fields ANDed, then its one AND/OR/NOT sub-filter."""
    subs = [k for k in ("AND", "OR", "NOT") if filt.get(k) is not None]
    if len(subs) > 1:
        raise StashError(f"{subs[0]} and {subs[1]} sub-filters are not supported together")
    checks = [
        criterion(key, value)
        for key, value in filt.items()
        if key not in ("AND", "OR", "NOT") and value is not None
    ]

    def own(record: Any) -> bool:
        return all(check(record) for check in checks)

    if not subs:
        return own
    sub = _combine(filt[subs[0]], criterion)
    if subs[0] == "AND":
        return lambda r: own(r) and sub(r)
    if subs[0] == "OR":
        # Stash ORs the sub-filter with this level's criteria; an empty level adds nothing.
        return lambda r: (bool(checks) and own(r)) or sub(r)
    return lambda r: own(r) and not sub(r)


# --- scene query: narrow, filter, search, sort, page -----------------------------------------


def _query_scenes(
    lib: Library, scene_filter: dict[str, Any] | None, find: dict[str, Any]
) -> tuple[list[Scene], int]:
    scene_filter = scene_filter or {}
    ids, consumed = _narrow(lib, scene_filter)
    rest = {k: v for k, v in scene_filter.items() if k not in consumed}
    filtered = any(v is not None for v in rest.values())
    if not filtered and not find.get("q") and find.get("sort") in (None, "", "id"):
        # Keyset fast path: the candidates are already in id order, so page the ids and
        # only then fetch the records.
        if find.get("sort") and find.get("direction") == "DESC":
            ids = ids[::-1]
        page, count = _sort_and_page(ids, {**find, "sort": None}, _SCENE_SORTS)
        return [lib.scenes[i] for i in page], count
    scenes = [lib.scenes[i] for i in ids]
    if filtered:
        predicate = _combine(rest, functools.partial(_scene_criterion, lib))
        scenes = [s for s in scenes if predicate(s)]
    if find.get("q"):
        scenes = _search_scenes(scenes, find["q"])
    return _sort_and_page(scenes, find, _SCENE_SORTS)


def _narrow(lib: Library, scene_filter: dict[str, Any]) -> tuple[list[int], set[str]]:
    """Candidate ids from the indexes, and the criteria fully answered by them.

    Only for top-level criteria of a filter without OR (an OR sub-filter may add scenes
    the index would have cut). This is what keeps keyset pages and path lookups fast.
    """
    all_ids = lib.scene_ids()
    if scene_filter.get("OR") is not None:
        return all_ids, set()
    consumed: set[str] = set()
    ids = all_ids
    id_crit = scene_filter.get("id")
    if id_crit and id_crit["modifier"] in ("GREATER_THAN", "LESS_THAN", "BETWEEN", "EQUALS"):
        ids = _id_range(all_ids, id_crit)
        consumed.add("id")
    path_crit = scene_filter.get("path")
    if path_crit and path_crit["modifier"] == "EQUALS":
        ids = _intersect(ids, _path_candidates(lib, path_crit["value"]))
    oshash_crit = scene_filter.get("oshash")
    if (
        oshash_crit
        and oshash_crit["modifier"] == "EQUALS"
        and not re.search(r"[%_]", oshash_crit["value"])
    ):
        # LIKE folds ASCII case; stored hashes are lower-case hex.
        value = ascii_lower(oshash_crit["value"])
        ids = _intersect(ids, lib.scenes_by_fingerprint("oshash", value))
        consumed.add("oshash")
    return ids, consumed


def _id_range(all_ids: list[int], crit: dict[str, Any]) -> list[int]:
    value, modifier = crit["value"], crit["modifier"]
    if modifier == "GREATER_THAN":
        return all_ids[bisect.bisect_right(all_ids, value) :]
    if modifier == "LESS_THAN":
        return all_ids[: bisect.bisect_left(all_ids, value)]
    if modifier == "EQUALS":
        i = bisect.bisect_left(all_ids, value)
        return all_ids[i : i + 1] if i < len(all_ids) and all_ids[i] == value else []
    upper = crit.get("value2") or 0
    return all_ids[bisect.bisect_left(all_ids, value) : bisect.bisect_right(all_ids, upper)]


def _path_candidates(lib: Library, pattern: str) -> list[int]:
    """Scenes whose folded path starts with the pattern's literal prefix (before any
    wildcard); the full LIKE test still runs on them afterwards."""
    keys, scene_ids = lib.path_index()
    prefix = ascii_lower(re.split(r"[%_]", pattern, maxsplit=1)[0])
    lo = bisect.bisect_left(keys, prefix)
    hi = bisect.bisect_left(keys, prefix + "\U0010ffff")
    return sorted(set(scene_ids[lo:hi]))


def _intersect(ordered: list[int], other: Sequence[int]) -> list[int]:
    """``ordered`` (ascending ids) restricted to ``other``, still ascending."""
    if len(other) * 8 < len(ordered):
        # Few candidates (an index hit): binary-search each instead of hashing 100k ids.
        found = []
        for i in sorted(set(other)):
            at = bisect.bisect_left(ordered, i)
            if at < len(ordered) and ordered[at] == i:
                found.append(i)
        return found
    wanted = set(other)
    return [i for i in ordered if i in wanted]


def _search_scenes(scenes: list[Scene], q: str) -> list[Scene]:
    """``filter.q``: every word must appear in the title, details, a path or a fingerprint;
    ``-word`` must not."""
    words = re.findall(r'-?"[^"]*"|\S+', q)
    tests = []
    for word in words:
        negate = word.startswith("-") and len(word) > 1
        term = word[1:] if negate else word
        rx = _like(f"%{term.strip(chr(34))}%")
        tests.append((negate, rx))

    def haystack(s: Scene) -> list[str]:
        values = [s["title"] or "", s["details"] or ""]
        for f in s["files"]:
            values.append(f["path"])
            values.extend(fp["value"] for fp in f["fingerprints"])
        return values

    def keep(s: Scene) -> bool:
        hay = haystack(s)
        return all(any(rx.fullmatch(v) for v in hay) != negate for negate, rx in tests)

    return [s for s in scenes if keep(s)]


def _natural(text: str) -> tuple[Any, ...]:
    """Stash's NATURAL_CI collation, near enough: case-folded, digit runs as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text.casefold()))


def _primary(s: Scene, key: str) -> Any:
    return s["files"][0][key] if s["files"] else None


_SCENE_SORTS: dict[str, Callable[[Scene], Any]] = {
    "id": lambda s: s["id"],
    "title": lambda s: _natural(s["title"] or _primary(s, "basename") or ""),
    "date": lambda s: s["date"],
    "created_at": lambda s: s["created_at"],
    "updated_at": lambda s: s["updated_at"],
    "path": lambda s: _primary(s, "path"),
    "filesize": lambda s: _primary(s, "size"),
    "duration": lambda s: _primary(s, "duration"),
    "bitrate": lambda s: _primary(s, "bit_rate"),
    "framerate": lambda s: _primary(s, "frame_rate"),
    "file_mod_time": lambda s: _primary(s, "mod_time"),
    "rating": lambda s: s["rating100"],
    "organized": lambda s: s["organized"],
    "o_counter": lambda s: s.get("o_counter"),
    "play_count": lambda s: s.get("play_count"),
    "file_count": lambda s: len(s["files"]),
    "performer_count": lambda s: len(s["performers"]),
    "tag_count": lambda s: len(s["tags"]),
}
#: Valid in Stash but not modelled here: accepted, and sorted by id.
_SCENE_SORTS_BY_ID = frozenset(
    {
        "code",
        "group_scene_number",
        "interactive",
        "interactive_speed",
        "last_o_at",
        "last_played_at",
        "movie_scene_number",
        "play_duration",
        "resume_time",
        "perceptual_similarity",
        "studio",
        "performer_age",
    }
)
_RELATED_SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "id": lambda r: r["id"],
    "name": lambda r: _natural(r["name"]),
    "created_at": lambda r: r["created_at"],
    "updated_at": lambda r: r["updated_at"],
}


def _sort_and_page(
    records: list[Any], find: dict[str, Any], sorts: dict[str, Callable[[Any], Any]]
) -> tuple[list[Any], int]:
    sort = find.get("sort")
    descending = find.get("direction") == "DESC"
    if sort:
        records = _sorted(records, sort, descending, sorts)
    count = len(records)
    per_page = 25 if find.get("per_page") is None else find["per_page"]
    if per_page < 0:
        return records, count
    page = max(1, find.get("page") or 1)
    start = (page - 1) * per_page
    return records[start : start + per_page], count


def _sorted(
    records: list[Any], sort: str, descending: bool, sorts: dict[str, Callable[[Any], Any]]
) -> list[Any]:
    if sort == "random" or sort.startswith("random_"):
        seed = sort.partition("_")[2]
        if seed and not seed.isdigit():
            raise StashError(f"invalid sort: {sort}")
        shuffled = list(records)
        random.Random(int(seed) if seed else None).shuffle(shuffled)
        return shuffled
    key = sorts.get(sort)
    if key is None:
        if sorts is _SCENE_SORTS and sort in _SCENE_SORTS_BY_ID:
            key = sorts["id"]
        else:
            raise StashError(f"invalid sort: {sort}")
    if sort == "id":
        return sorted(records, key=key, reverse=descending)
    # SQLite puts NULLs first in ascending order.
    keyed = [((value is not None, value), i) for i, value in enumerate(map(key, records))]
    keyed.sort(key=operator.itemgetter(0), reverse=descending)
    out: list[Any] = []
    for _value, run in itertools.groupby(keyed, key=operator.itemgetter(0)):
        tied = [records[i] for _k, i in run]
        if len(tied) > 1:
            # Stash appends COALESCE(title, id) ASC as the tie-breaker, whatever the
            # direction; only equal keys need it, so sort just those runs.
            tied.sort(key=_tiebreak)
        out.extend(tied)
    return out


def _tiebreak(record: dict[str, Any]) -> tuple[Any, ...]:
    return _natural(str(record.get("title") or record.get("name") or record["id"]))


def _filter_related(records: Iterable[dict[str, Any]], filt: dict[str, Any] | None) -> list[Any]:
    records = list(records)
    if not filt:
        return records
    predicate = _combine(filt, _related_criterion)
    return [r for r in records if predicate(r)]


def _related_criterion(key: str, crit: Any) -> Predicate:
    if key in ("name", "disambiguation"):
        return _string_any(crit, lambda r: (r.get(key),))
    if key in ("date", "created_at", "updated_at"):
        test = _text_test(crit, "date" if key == "date" else "timestamp")
        return lambda r: test(r.get(key))
    if key == "stash_id_endpoint":
        return _stash_id_test(crit)
    raise _panic(f"unsupported filter {key}")


def _search_related(records: list[Any], q: str | None) -> list[Any]:
    if not q:
        return records
    rx = _like(f"%{q}%")
    return [
        r
        for r in records
        if rx.fullmatch(r["name"]) or any(rx.fullmatch(a) for a in r.get("alias_list") or ())
    ]


# --- images --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A valid, solid-colour RGB PNG, built without an imaging library."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * width  # filter byte 0, then the pixels
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height, 9))
        + chunk(b"IEND", b"")
    )


def _colour(kind: str, record_id: int) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{kind}:{record_id}".encode()).digest()
    return (40 + digest[0] % 180, 40 + digest[1] % 180, 40 + digest[2] % 180)


#: A tiny MP4 ``ftyp`` box: enough for a client to sniff the type.
_MP4 = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
_GREY = (128, 128, 128)


# --- the server ----------------------------------------------------------------------------


class FakeStash:
    """Serve ``library`` as Stash v0.30.1 would, on 127.0.0.1 and a free port.

    Use as ``async with FakeStash(lib) as stash:`` or ``url = await stash.start()`` …
    ``await stash.close()``. Behaviour copied from Stash:

    * ``POST /graphql``: 422 with ``GRAPHQL_PARSE_FAILED``/``GRAPHQL_VALIDATION_FAILED`` for
      bad documents (and bad variables), 400 for a body that is not JSON, otherwise 200 with
      ``errors[]`` and partial data for resolver errors.
    * Auth when ``api_key`` is set: the ``ApiKey`` header or ``?apikey=``. Missing
      credentials: 401 (``WWW-Authenticate: FormBased``, empty body) on ``/graphql``, 302 to
      ``/login?returnURL=…`` on image routes. A wrong key: 401 everywhere, including any key
      sent to a server without one.
    * Image URLs are built from the request's ``Host`` (plus ``X-Forwarded-Proto`` and
      ``X-Forwarded-Prefix``); ``paths.stream`` carries ``?apikey=``.
    * Path ``EQUALS`` is a LIKE (``_`` and ``%`` are wildcards, ASCII case-insensitive);
      ``INCLUDES`` ORs whitespace-split words; timestamps compare as strings; ``ids`` keeps
      input order and fails on any unknown id; unsupported modifiers give "Internal system
      error".

    Test hooks: ``fault`` (one of :data:`FAULTS`; ``"down"`` and ``"slow"`` also hit image
    routes), ``fault_count`` (``None``: every request; ``N``: the next N faultable requests,
    then ``fault`` resets to ``None``), ``slow_seconds``, ``version`` and ``system_status``
    (what ``version``/``systemStatus`` report), ``database_path`` and ``config_path``
    (``systemStatus``'s: what tells one Stash installation from another). Counters:
    ``graphql_requests`` (every ``POST /graphql``, whatever the outcome), ``operations``
    (each request's ``operationName``, else the document's single operation name, else
    ``"anonymous"``), ``image_requests`` (every request to an image or preview route).
    """

    def __init__(self, library: Library, api_key: str | None = None, *, host: str = "127.0.0.1"):
        self.library = library
        self.api_key = api_key
        self.host = host
        self._fault: str | None = None
        self.fault_count: int | None = None
        self.slow_seconds: float = 30.0
        self.version: str | None = "v0.30.1"
        self.system_status: str = "OK"
        self.database_path: str = "/root/.stash/stash-go.sqlite"
        self.config_path: str = "/root/.stash/config.yml"
        self.graphql_requests = 0
        self.operations: list[str] = []
        self.image_requests = 0
        self.url = ""
        self._runner: web.AppRunner | None = None

    @property
    def fault(self) -> str | None:
        """The injected failure, or ``None`` for a healthy server."""
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value is not None and value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; expected one of {FAULTS}")
        self._fault = value

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> str:
        """Bind and serve; returns :attr:`url`."""
        app = web.Application()
        app.router.add_post("/graphql", self._graphql)
        app.router.add_get("/login", self._login)
        image_routes = {
            "/scene/{id}/screenshot": ("scene", "screenshot"),
            "/scene/{id}/preview": ("scene", "preview"),
            "/performer/{id}/image": ("performer", "image"),
            "/studio/{id}/image": ("studio", "image"),
            "/tag/{id}/image": ("tag", "image"),
            "/group/{id}/frontimage": ("group", "frontimage"),
            "/group/{id}/backimage": ("group", "backimage"),
        }
        for route, (kind, what) in image_routes.items():
            app.router.add_get(route, functools.partial(self._image, kind, what))
        # A short shutdown grace: "slow" handlers must not hold up close() for 30 s.
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.25, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        self.url = f"http://{self.host}:{port}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeStash:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # --- faults and auth ---------------------------------------------------------------

    def _take_fault(self, graphql: bool) -> str | None:
        fault = self.fault
        if fault is None or (not graphql and fault not in ("down", "slow")):
            return None
        if self.fault_count is not None:
            if self.fault_count <= 0:
                self.fault, self.fault_count = None, None
                return None
            self.fault_count -= 1
            if self.fault_count == 0:
                self.fault, self.fault_count = None, None
        return fault

    async def _apply_fault(self, fault: str, request: web.Request) -> web.StreamResponse | None:
        """The faulty answer, or ``None`` to carry on (after a delay, for "slow")."""
        if fault == "down":
            # Hang up without a status line; the client sees a disconnect.
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPInternalServerError()
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
            return None
        if fault == "401":
            return _unauthorized()
        if fault == "403":
            return web.Response(
                status=403,
                text="external access to stash is disabled; see the Stash logs",
                content_type="text/plain",
            )
        if fault == "422":
            error = {
                "message": "fault injected",
                "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"},
            }
            return _json({"errors": [error], "data": None}, status=422)
        if fault == "500":
            return web.Response(status=500, text="Internal Server Error", content_type="text/plain")
        if fault == "html":
            return web.Response(text=_LOGIN_HTML, content_type="text/html")
        if fault == "garbage":
            return web.Response(body=b'{"data": {"findScenes": {"sce', content_type=_JSON)
        # "locked": SQLite's busy timeout ran out under a concurrent write.
        error = {"message": "database is locked", "path": ["findScenes"]}
        return _json({"errors": [error], "data": None})

    def _auth(self, request: web.Request) -> str:
        """``"ok"``, ``"missing"`` (no credentials, key required) or ``"wrong"``."""
        sent = request.headers.get("ApiKey") or request.query.get("apikey") or ""
        if sent:
            return "ok" if sent == self.api_key else "wrong"
        return "missing" if self.api_key else "ok"

    # --- handlers ----------------------------------------------------------------------

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        self.graphql_requests += 1
        body = await request.read()
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        self.operations.append(_operation_label(payload))
        fault = self._take_fault(graphql=True)
        if fault is not None:
            answer = await self._apply_fault(fault, request)
            if answer is not None:
                return answer
        if self._auth(request) != "ok":
            return _unauthorized()
        if not isinstance(payload, dict) or not isinstance(payload.get("variables") or {}, dict):
            message = "json request body could not be decoded"
            return _json({"errors": [{"message": message}], "data": None}, status=400)
        return self._execute(payload, _base_url(request))

    def _execute(self, payload: dict[str, Any], base: str) -> web.Response:
        query = payload.get("query")
        if not isinstance(query, str) or not query.strip():
            return _protocol_error(
                [GraphQLError("no operation provided")], "GRAPHQL_VALIDATION_FAILED"
            )
        document, errors, code = _prepare(query)
        if errors or document is None:
            return _protocol_error(list(errors), code)
        schema = _schema()
        operation_name = payload.get("operationName") or None
        operation = get_operation_ast(document, operation_name)
        if operation is None:
            message = (
                f"operation {operation_name} not found"
                if operation_name
                else "operation name is required"
            )
            return _protocol_error([GraphQLError(message)], "GRAPHQL_VALIDATION_FAILED")
        coerced = get_variable_values(
            schema, operation.variable_definitions or (), payload.get("variables") or {}
        )
        if isinstance(coerced, list):
            return _protocol_error(coerced, "GRAPHQL_VALIDATION_FAILED")
        result = execute(
            schema,
            document,
            context_value=_Context(self.library, base, self.api_key, self),
            variable_values=payload.get("variables") or {},
            operation_name=operation_name,
            field_resolver=_default_resolver,
        )
        out: dict[str, Any] = {}
        if result.errors:
            out["errors"] = [e.formatted for e in result.errors]
        out["data"] = result.data  # type: ignore[union-attr]
        return _json(out)

    async def _login(self, request: web.Request) -> web.Response:
        return web.Response(text=_LOGIN_HTML, content_type="text/html")

    async def _image(self, kind: str, what: str, request: web.Request) -> web.StreamResponse:
        self.image_requests += 1
        fault = self._take_fault(graphql=False)
        if fault is not None:
            await self._apply_fault(fault, request)
        auth = self._auth(request)
        if auth == "wrong":
            return _unauthorized()
        if auth == "missing":
            # Set by hand: aiohttp's HTTPFound would re-normalise Go's QueryEscape output.
            location = "/login?returnURL=" + quote(request.path_qs, safe="")
            return web.Response(status=302, headers={"Location": location})
        try:
            record_id = int(request.match_info["id"])
        except ValueError:
            raise web.HTTPNotFound() from None
        table = {"scene": "scenes", "performer": "performers", "studio": "studios"}.get(
            kind, kind + "s"
        )
        record = getattr(self.library, table).get(record_id)
        if record is None:
            raise web.HTTPNotFound()
        body, content_type = _image_body(kind, what, record)
        if body is None:
            raise web.HTTPNotFound()
        etag = '"' + hashlib.md5(body, usedforsecurity=False).hexdigest() + '"'
        cache = "private, max-age=31536000, immutable" if "t" in request.query else "no-cache"
        headers = {"Cache-Control": cache, "ETag": etag}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=content_type, headers=headers)


def _image_body(kind: str, what: str, record: dict[str, Any]) -> tuple[bytes | None, str]:
    rid = record["id"]
    if what == "preview":
        return _MP4, "video/mp4"
    if what == "screenshot":
        # A scene without a cover still gets an image: Stash's built-in default.
        rgb = _colour(kind, rid) if record.get("_has_cover", True) else _GREY
        return solid_png(320, 180, rgb), "image/png"
    if what == "backimage" and not record.get("_has_back_image"):
        return None, ""
    has = record.get("_has_image", True)
    size = {"performer": (200, 300), "group": (200, 300), "studio": (300, 100)}.get(
        kind, (128, 128)
    )
    return solid_png(*size, _colour(kind, rid) if has else _GREY), "image/png"


def _operation_label(payload: Any) -> str:
    if not isinstance(payload, dict):
        return "anonymous"
    name = payload.get("operationName")
    if isinstance(name, str) and name:
        return name
    query = payload.get("query")
    if isinstance(query, str):
        names = re.findall(r"\b(?:query|mutation|subscription)\s+([_A-Za-z]\w*)", query)
        if len(names) == 1:
            return names[0]
    return "anonymous"


def _base_url(request: web.Request) -> str:
    """``{scheme}://{Host}{X-Forwarded-Prefix}``, as Stash builds its image URLs."""
    proto = request.headers.get("X-Forwarded-Proto")
    scheme = "https" if proto == "https" or request.secure else "http"
    prefix = request.headers.get("X-Forwarded-Prefix", "").rstrip("/")
    return f"{scheme}://{request.host}{prefix}"


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type=_JSON,
        headers={"Cache-Control": "no-store"},
    )


def _protocol_error(errors: list[GraphQLError], code: str) -> web.Response:
    formatted = []
    for error in errors:
        entry = error.formatted
        entry["extensions"] = {**(entry.get("extensions") or {}), "code": code}
        formatted.append(entry)
    return _json({"errors": formatted, "data": None}, status=422)


def _unauthorized() -> web.Response:
    return web.Response(status=401, headers={"WWW-Authenticate": "FormBased"})
