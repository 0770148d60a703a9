"""No 5xx for anything a client sends: raw HTTP to a real server on loopback."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote_from_bytes

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stash2plex import AccessLogger, Candidate, Image, Metadata, hookimpl
from stash2plex.server import JsonErrorRunner

MATCHES = "/library/metadata/matches"


class Source:
    @hookimpl
    def resolve_match(self, request):
        return [Candidate(metadata=Metadata(rating_key="stash-1", title="A"), score=95)]

    @hookimpl
    def build_metadata(self, rating_key):
        if rating_key != "stash-1":
            return None
        return Metadata(
            rating_key="stash-1", title="A", images=[Image(type="coverPoster", url="u")]
        )


@pytest.fixture
async def server(make_app):
    """The app served as ``stash2plex serve`` serves it (the host's access log, handlers
    left to finish when their client goes), on a free loopback port."""
    runner = JsonErrorRunner(make_app(plugins=[("src", Source())]), access_log_class=AccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield SimpleNamespace(port=runner.addresses[0][1])
    finally:
        await runner.cleanup()


async def send(
    port: int, head: bytes, body: bytes = b"", *, half_close: bool = False
) -> tuple[int, dict[str, str], bytes] | None:
    """One request on its own connection; the answer, or None if the server (rightly)
    gave none because the client stopped sending before the body was whole."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        if half_close:
            await asyncio.sleep(0.05)  # let the handler start reading the body
            writer.write_eof()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    if not raw:
        return None
    top, _, rest = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", len(rest)))
    return int(lines[0].split()[1]), headers, rest[:length]


def request_head(method: str, target: str, headers: dict[str, str], length: int | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def log_lines(capsys) -> list[dict[str, Any]]:
    out = []
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def assert_json_answer(answer: tuple[int, dict[str, str], bytes], method: str) -> None:
    status, headers, body = answer
    assert status < 500, (status, body)
    if method == "HEAD" or status in (204, 304):
        return
    assert headers.get("content-type", "").startswith("application/json"), (headers, body)
    assert b"Traceback" not in body and b"<html" not in body.lower()
    orjson.loads(body)


def assert_no_server_error(lines: list[dict[str, Any]]) -> None:
    assert not [e for e in lines if e.get("level") == "error"], lines
    assert not [e for e in lines if e.get("event") == "request" and e["status"] >= 500]


# --- the cases found so far -----------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 40,  # TLS to an HTTP port
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /he\x00althz HTTP/1.1\r\n\r\n",
        b"POST /library/metadata/matches HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ],
    ids=["tls", "version", "header-too-long", "nul", "negative-length"],
)
async def test_bytes_that_are_not_http_get_a_json_400(server, capsys, raw):
    answer = await send(server.port, raw)
    assert answer is not None
    status, headers, body = answer
    assert status == 400 and headers["content-type"].startswith("application/json"), answer
    assert json.loads(body)["message"].startswith("not a valid HTTP request: ")
    lines = log_lines(capsys)
    assert_no_server_error(lines)
    assert "request.bad_http" in [e["event"] for e in lines]


async def test_what_follows_a_content_length_that_claimed_less_is_answered_in_json(server):
    # keep-alive: the extra bytes are read as the next request, and refused as such
    head = (
        f"POST {MATCHES} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + BODY + b"garbage that is no request line\r\n\r\n")
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    # aiohttp's parser may refuse the whole chunk (one 400) or answer the first request
    # and then refuse the rest: either way every answer is JSON and the last a 400
    answers = [a for a in raw.split(b"HTTP/1.") if a]
    assert answers and answers[-1][2:5] == b"400", raw
    for answer in answers:
        assert b"application/json" in answer and b"Traceback" not in answer, raw
    assert b"not a valid HTTP request" in answers[-1]


BODY = b'{"type": 1, "title": "A"}'


@pytest.mark.parametrize(
    ("encoding", "body", "named"),
    [
        ("gzip", BODY, "gzip"),
        ("deflate", BODY, "deflate"),
        ("br", BODY, "'br'"),
        ("zstd", BODY, "'zstd'"),
        ("gzip", gzip.compress(BODY)[:-6], "gzip"),  # cut short
        ("compress", BODY, "'compress'"),
    ],
)
async def test_a_body_not_in_its_content_encoding_is_a_400_naming_it(
    server, capsys, encoding, body, named
):
    head = request_head("POST", MATCHES, {"Content-Encoding": encoding}, len(body))
    answer = await send(server.port, head, body)
    assert answer is not None
    assert_json_answer(answer, "POST")
    status, _headers, raw = answer
    message = orjson.loads(raw)["message"]
    assert status == 400 and "Content-Encoding" in message and named in message, message
    assert_no_server_error(log_lines(capsys))


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, as some clients send
        ("identity", lambda b: b),
    ],
)
async def test_compressed_match_bodies_are_read(server, encoding, encode):
    body = encode(BODY)
    head = request_head("POST", MATCHES, {"Content-Encoding": encoding}, len(body))
    answer = await send(server.port, head, body)
    assert answer is not None and answer[0] == 200, answer
    assert orjson.loads(answer[2])["MediaContainer"]["Metadata"][0]["ratingKey"] == "stash-1"


async def test_a_compressed_body_is_held_to_the_body_limit(server):
    bomb = gzip.compress(b'{"title": "' + b"x" * (2 * 1024**2) + b'"}')
    head = request_head("POST", MATCHES, {"Content-Encoding": "gzip"}, len(bomb))
    answer = await send(server.port, head, bomb)
    assert answer is not None and answer[0] == 413
    assert orjson.loads(answer[2])["error"] == "Request Entity Too Large"


async def test_a_client_gone_mid_body_is_a_disconnect_not_a_server_error(server, capsys):
    head = request_head("POST", MATCHES, {"Content-Type": "application/json"}, 500)
    assert await send(server.port, head, b'{"type": 1, "ti', half_close=True) is None
    lines: list[dict[str, Any]] = []
    for _ in range(100):  # the server learns it when the connection is gone
        lines += log_lines(capsys)
        if any(e.get("event") == "request" for e in lines):
            break
        await asyncio.sleep(0.02)
    assert_no_server_error(lines)
    (gone,) = [e for e in lines if e.get("event") == "request.client_disconnected"]
    assert gone["level"] == "info" and gone["path"] == MATCHES
    (access,) = [e for e in lines if e.get("event") == "request"]
    assert access["status"] == 499


@pytest.mark.parametrize(
    ("field", "limit"), [("title", 1024), ("guid", 1024), ("ohash", 1024), ("filename", 32767)]
)
async def test_match_text_longer_than_plex_sends_is_a_400_naming_the_field(server, field, limit):
    for size, status in ((limit, 200), (limit + 1, 400), (800_000, 400)):
        # Characters, not bytes, are counted: "é" is two bytes of UTF-8.
        body = orjson.dumps({"type": 1, field: ("é" if size < 100_000 else "x") * size})
        head = request_head("POST", MATCHES, {"Content-Type": "application/json"}, len(body))
        answer = await send(server.port, head, body)
        assert answer is not None and answer[0] == status, (size, answer[2][:200])
        if status == 400:
            (problem,) = orjson.loads(answer[2])["problems"]
            assert problem.startswith(f"{field}: longer than {limit} characters ({size})")


async def test_a_long_field_in_a_compressed_body_is_still_refused(server):
    body = gzip.compress(orjson.dumps({"type": 1, "title": "x" * 5000}))
    assert len(body) < 1024  # short on the wire, long once decoded
    head = request_head("POST", MATCHES, {"Content-Encoding": "gzip"}, len(body))
    answer = await send(server.port, head, body)
    assert answer is not None and answer[0] == 400


# --- anything at all ------------------------------------------------------------------

segments = st.one_of(
    st.sampled_from(["stash-1", "stash-2", "matches", "images", "extras", "..", ""]),
    st.binary(max_size=24).map(lambda b: quote_from_bytes(b, safe="")),
    st.sampled_from(["%C3%A9", "%FF", "%00", "a%2Fb", "%E2%82", "stash-1%20"]),
)
paths = st.one_of(
    st.sampled_from(["/", "/healthz", MATCHES, "//library//metadata/matches/", "/images/x"]),
    st.builds("/library/metadata/{}".format, segments),
    st.builds("/library/metadata/{}/images".format, segments),
    st.builds("/library/metadata/{}/{}".format, segments, segments),
    st.builds("/images/{}/{}".format, segments, segments),
    st.builds("/{}".format, segments),
)
queries = st.lists(
    st.tuples(
        st.sampled_from(["manual", "sig", "X-Plex-Token", "w", "x"]),
        st.one_of(
            st.sampled_from(["1", "0", "%C3%A9", "%FF", "", "true"]),
            st.binary(max_size=12).map(lambda b: quote_from_bytes(b, safe="")),
        ),
    ),
    max_size=3,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
MATCH_KEYS = ["type", "title", "year", "guid", "filename", "manual", "includeAdult", "ohash"]


def _dumps(value: Any) -> bytes:
    # The standard library's encoder: any integer, Infinity (not JSON: fuzz), surrogates.
    return json.dumps(value).encode()


bodies = st.one_of(
    st.just(b""),
    st.dictionaries(st.sampled_from(MATCH_KEYS) | st.text(max_size=8), json_values, max_size=5).map(
        _dumps
    ),
    json_values.map(_dumps),
    st.binary(max_size=64),  # not UTF-8, not JSON
    st.sampled_from(
        [
            b"[" * 5000 + b"]" * 5000,  # deeper than any parser's limit
            b'{"title": "' + b"x" * (1024**2) + b'"}',  # over the body limit
            b'{"title": "' + b"\xff\xfe" * 40 + b'"}',
            b'{"type": "1"}',
            b'{"type": 1, "manual": 2.5, "year": "2024"}',
        ]
    ),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(
            [
                "application/json",
                "text/plain",
                "text/html",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
                "application/json; charset=latin-1",
                "}{",
            ]
        ),
        "Content-Encoding": st.sampled_from(
            ["gzip", "deflate", "br", "zstd", "identity", "gzip, deflate", "", "x"]
        ),
        "Accept": st.sampled_from(["text/html", "application/json", "*/*"]),
        "X-Request-ID": st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=80),
    },
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=paths,
    query=queries,
    head=headers,
    body=bodies,
    compress=st.booleans(),
    lie=st.sampled_from([0, 0, 0, 7]),
)
async def test_anything_a_client_sends_gets_json_and_never_a_5xx(
    server, capsys, method, path, query, head, body, compress, lie
):
    if compress and head.get("Content-Encoding") == "gzip":
        body = gzip.compress(body)
    target = f"{path}?{query}" if query else path
    # A Content-Length that claims more than is sent: the client then stops sending.
    message = request_head(method, target, head, len(body) + lie)
    answer = await send(server.port, message, body, half_close=bool(lie))
    if answer is not None:
        assert_json_answer(answer, method)
    else:
        assert lie, "no answer to a whole request"
    assert_no_server_error(log_lines(capsys))
