"""Plex's custom metadata provider protocol: the routes Plex Media Server calls.

``GET /`` describes the provider; ``POST /library/metadata/matches`` answers a scan;
``GET /library/metadata/{ratingKey}`` (and ``/images``, and any other sub-resource) serve
the item. Sources answer through hooks; this module only speaks the protocol.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import Any

import attrs
import orjson
from aiohttp import hdrs, web

from . import __version__
from .errors import Unavailable, error_response
from .logs import LOG_FIELDS, current_request_id, get_logger, milliseconds
from .models import (
    RATING_KEY_RE,
    Candidate,
    Feature,
    Image,
    MatchRequest,
    MediaContainer,
    MediaProvider,
    MediaType,
    Metadata,
    Scheme,
)
from .state import CONFIG, HOOKS, PLUGINS, RUNTIME, run_in_background
from .wire import WireError, dumps, structurer, unstructurer, wire_name

log = get_logger("stash2plex.provider")
METADATA_PREFIX = "/library/metadata"
#: The largest request body read (aiohttp's default; the app is built with it).
MAX_BODY = 1024**2
MATCH_KEY = f"{METADATA_PREFIX}/matches"
_MATCH_FIELDS = frozenset(wire_name(a, MatchRequest) for a in attrs.fields(MatchRequest))
_structure_match = structurer(MatchRequest)
_unstructure_container = unstructurer(MediaContainer)


def core_routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/", provider_root),
        web.get("/healthz", healthz),
        web.post(MATCH_KEY, matches),
        web.get(MATCH_KEY, _match_needs_post),
        web.get(METADATA_PREFIX + "/{rating_key}", metadata),
        web.get(METADATA_PREFIX + "/{rating_key}/images", images),
        web.get(METADATA_PREFIX + "/{rating_key}/{sub}", sub_resource),
    ]


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(obj), status=status, content_type="application/json")


def _container(
    app: web.Application,
    *,
    metadata: list[Metadata] | None = None,
    images: list[Image] | None = None,
    scores: list[int] | None = None,
) -> web.Response:
    """A ``MediaContainer`` answer (see :func:`container_body`)."""
    body = container_body(
        app[CONFIG].provider.identifier, metadata=metadata, images=images, scores=scores
    )
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def container_body(
    identifier: str,
    *,
    metadata: list[Metadata] | None = None,
    images: list[Image] | None = None,
    scores: list[int] | None = None,
) -> dict[str, Any]:
    """``{"MediaContainer": ...}`` holding ``metadata`` (with each item's ``scores``) or
    ``images``. Items get the guid and key shapes Plex requires (anything else makes Plex
    fail refreshes silently) on the wire only: the plugin's objects are never modified."""
    size = len(metadata) if metadata is not None else len(images or ())
    container = MediaContainer(
        identifier=identifier, total_size=size, size=size, metadata=metadata, images=images
    )
    data = _unstructure_container(container)
    for n, entry in enumerate(data.get("Metadata", ())):
        rating_key = entry["ratingKey"]
        entry["type"] = "movie"
        entry["guid"] = f"{identifier}://movie/{rating_key}"
        entry["key"] = f"{METADATA_PREFIX}/{rating_key}"
        if scores is not None:
            entry["score"] = scores[n]
    return {"MediaContainer": data}


async def provider_root(request: web.Request) -> web.Response:
    provider = request.app[CONFIG].provider
    root = MediaProvider(
        identifier=provider.identifier,
        title=provider.title,
        version=__version__,
        # Type 1 only: one parent type per provider, as Plex recommends. No "images"
        # feature: declaring it makes Plex stop falling back to other image sources.
        types=[MediaType(type=1, schemes=[Scheme(scheme=provider.identifier)])],
        features=[
            Feature(type="metadata", key=METADATA_PREFIX),
            Feature(type="match", key=MATCH_KEY),
        ],
    )
    return _json({"MediaProvider": root})


async def _read_object(request: web.Request) -> tuple[dict[str, Any], int]:
    """The body's JSON object, and the body's size once decoded."""
    content = request.content
    if content.is_eof():
        # The whole body is already buffered (a match request arrives in one packet):
        # take it at once instead of through read()'s chunk loop, with read()'s limit.
        body = content.read_nowait()
        if len(body) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY, len(body))
    else:
        body = await request.read()
    encoding = request.headers.get(hdrs.CONTENT_ENCODING)
    if encoding is not None:
        body = _decoded(body, encoding)
    if not body.strip():
        raise WireError(["body: empty; expected a JSON object"])
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WireError([f"body: not valid JSON ({exc})"]) from None
    if not isinstance(data, dict):
        raise WireError([f"body: expected a JSON object, got {type(data).__name__}"])
    return data, len(body)


#: Content codings a request body may use (the app is built with aiohttp's automatic
#: decompression off, so that every coding, known or not, gets the same JSON answer).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _decoded(body: bytes, encoding: str) -> bytes:
    """``body`` without its ``Content-Encoding``, never larger than :data:`MAX_BODY`."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    wbits = _WBITS.get(coding)
    if wbits is None:
        raise WireError(
            [
                f"Content-Encoding: {encoding!r} is not supported; send the body "
                "uncompressed, or compressed with gzip or deflate"
            ]
        )
    # "deflate" is zlib-wrapped by the standard, raw from some clients: both are taken.
    for bits in (wbits, -zlib.MAX_WBITS) if coding == "deflate" else (wbits,):
        decoder = zlib.decompressobj(bits)
        try:
            out = decoder.decompress(body, MAX_BODY + 1)
        except zlib.error:
            continue
        if len(out) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY, len(out))
        if decoder.eof:
            return out
    raise WireError([f"Content-Encoding: {coding}, but the body is not complete {coding} data"])


#: The longest text a match field may hold. Plex's values are short (a title, a guid, a
#: hash); a file path gets the longest path Windows allows. Anything longer is a 400, so
#: no source ever spends its similarity search on a megabyte of title.
MATCH_TEXT_LIMIT = 1024
MATCH_PATH_LIMIT = 32767
_TEXT_LIMITS = {"filename": MATCH_PATH_LIMIT}


def _too_long(data: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in data.items():
        if type(value) is str:
            limit = _TEXT_LIMITS.get(key, MATCH_TEXT_LIMIT)
            if len(value) > limit:
                problems.append(
                    f"{key}: longer than {limit} characters ({len(value)}); "
                    "Plex sends titles, guids and paths far shorter"
                )
    return problems


def _parse_match(
    data: dict[str, Any], request: web.Request, size: int | None = None
) -> MatchRequest:
    """What Plex sends, as a :class:`MatchRequest`, through the converter's strict path,
    which names every problem. Keys Plex adds that the model does not know are dropped
    (logged at debug)."""
    known = data
    if not data.keys() <= _MATCH_FIELDS:
        log.debug("match.unknown_keys", keys=sorted(data.keys() - _MATCH_FIELDS))
        known = {k: v for k, v in data.items() if k in _MATCH_FIELDS}
    # Plex sends 0/1 flags; tolerate true/false too, nothing looser.
    for flag in _FLAGS:
        if type(known.get(flag)) is bool:
            known = {**known, flag: int(known[flag])}
    if "manual" not in known and (manual := _manual_in_query(request)) is not None:
        known = {**known, "manual": manual}
    match = _structure_match(known)  # types first: a length means something only for text
    # No text in a JSON body of ``size`` bytes is longer than ``size`` characters.
    if (size is None or size > MATCH_TEXT_LIMIT) and (problems := _too_long(known)):
        raise WireError(problems)
    return match


_FLAGS = ("manual", "includeAdult", "includeChildren")


def _manual_in_query(request: web.Request) -> int | None:
    """``manual`` from the URL (``?manual=1``), for a body that does not say; 0 and 1 only."""
    if not request.query_string:
        return None
    manual = request.query.get("manual")
    return int(manual) if manual in ("0", "1") else None


def rank(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Merge sources (one entry per ratingKey, highest score) and sort best first."""
    if len(candidates) < 2:
        return list(candidates)  # a scan's usual answer: nothing to merge or order
    best: dict[str, Candidate] = {}
    for c in candidates:
        key = c.metadata.rating_key
        if key not in best or c.score > best[key].score:
            best[key] = c
    return sorted(best.values(), key=lambda c: -c.score)


def choose(
    ranked: Sequence[Candidate], *, manual: bool, threshold: int, margin: int, limit: int
) -> list[Candidate]:
    """Fix Match gets a ranked list; a scan gets one candidate, and only a clear winner."""
    if manual:
        return list(ranked[:limit])
    if not ranked or ranked[0].score < threshold:
        return []
    if len(ranked) > 1 and ranked[0].score - ranked[1].score < margin:
        return []  # two plausible scenes: never guess
    return [ranked[0]]


async def matches(request: web.Request) -> web.StreamResponse:
    app = request.app
    try:
        data, size = await _read_object(request)
        match = _parse_match(data, request, size)
    except WireError as exc:
        return error_response(400, "; ".join(exc.problems), problems=exc.problems)
    provider = app[CONFIG].provider
    if match.type != 1:
        # Only movies (type 1) are advertised; a show/season/episode request gets no
        # movie pretending to be one.
        log.debug("match.unsupported_type", type=match.type)
        return _container(app, metadata=[])
    manual = match.is_manual
    started = time.perf_counter()
    ranked = rank(await app[HOOKS].resolve_match(match))
    chosen = choose(
        ranked,
        manual=manual,
        threshold=provider.match_threshold,
        margin=provider.match_margin,
        limit=provider.max_manual_results,
    )
    items = [c.metadata for c in chosen]
    # One canonical line per request: the outcome rides on the access line.
    request[LOG_FIELDS] = {
        "match_filename": match.filename,
        "match_title": match.title,
        "manual": manual,
        "candidates": len(ranked),
        "matched": items[0].rating_key if items and not manual else None,
        "best_score": ranked[0].score if ranked else None,
        "best_reason": ranked[0].reason if ranked else None,
        "plugin": ranked[0].source if ranked else None,
        "match_ms": milliseconds(time.perf_counter() - started),
    }
    response = _container(app, metadata=items, scores=[c.score for c in chosen])
    if items or manual or not app[HOOKS].implemented("on_unmatched"):
        return response
    # Unmatched: answer Plex first, then tell the plugins.
    response.headers["X-Request-ID"] = current_request_id() or ""
    await response.prepare(request)
    await response.write_eof()
    run_in_background(app, app[HOOKS].on_unmatched(match, ranked), name="on_unmatched")
    return response


async def _match_needs_post(request: web.Request) -> web.Response:
    return error_response(405, f"use POST on {MATCH_KEY} with a JSON body")


def _bad_key(rating_key: str) -> web.Response:
    return error_response(
        400, f"ratingKey {rating_key!r} is outside the allowed characters [A-Za-z0-9_-]"
    )


async def _item(request: web.Request) -> tuple[Metadata | None, web.Response | None]:
    rating_key = request.match_info["rating_key"]
    if not RATING_KEY_RE.match(rating_key):
        return None, _bad_key(rating_key)
    try:
        found = await request.app[HOOKS].build_metadata(rating_key)
    except Unavailable as exc:
        return None, error_response(503, str(exc))
    if found is None:
        return None, error_response(404, f"no item with ratingKey {rating_key!r}")
    _plugin, item = found
    return item, None


async def metadata(request: web.Request) -> web.Response:
    item, error = await _item(request)
    if error is not None:
        return error
    return _container(request.app, metadata=[item])


async def images(request: web.Request) -> web.Response:
    item, error = await _item(request)
    if error is not None:
        return error
    assert item is not None
    return _container(request.app, images=item.images)


async def sub_resource(request: web.Request) -> web.Response:
    """``/extras`` and anything else Plex asks for: an empty container keeps it happy."""
    rating_key = request.match_info["rating_key"]
    if not RATING_KEY_RE.match(rating_key):
        return _bad_key(rating_key)
    return _container(request.app, metadata=[])


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    started = app[RUNTIME].started_at is not None
    reports = await app[HOOKS].health()
    ready = started and all(report.ready for _name, report in reports)
    failed = [i.name for i in app[PLUGINS].describe() if i.status == "failed"]
    body = {
        "status": "ok" if ready else ("starting" if not started else "degraded"),
        "version": __version__,
        "identifier": app[CONFIG].provider.identifier,
        "plugins": {name: {"ready": r.ready, **r.details} for name, r in reports},
        "failed_plugins": failed,
    }
    return web.json_response(
        body, status=200 if ready else 503, dumps=lambda o: orjson.dumps(o, default=str).decode()
    )
