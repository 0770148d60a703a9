"""The Plex provider protocol, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from stash2plex import Candidate, Image, Metadata, Unavailable, hookimpl

IDENT = "tv.plex.agents.custom.stash2plex"


class Source:
    """An inline match source with a fixed catalog."""

    def __init__(self, scores: dict[str, int]) -> None:
        self.scores = scores
        self.unmatched: list[Any] = []

    @hookimpl
    def resolve_match(self, request):
        return [
            Candidate(metadata=Metadata(rating_key=k, title=f"Scene {k}", year=2024), score=s)
            for k, s in self.scores.items()
        ]

    @hookimpl
    async def build_metadata(self, rating_key):
        if rating_key == "down-1":
            raise Unavailable("Stash is unreachable and down-1 is not cached")
        if rating_key not in self.scores:
            return None
        return Metadata(
            rating_key=rating_key,
            title=f"Scene {rating_key}",
            images=[Image(type="coverPoster", url="https://img.example/p.jpg", alt="poster")],
        )

    @hookimpl
    async def on_unmatched(self, request, candidates):
        self.unmatched.append((request.filename, [c.metadata.rating_key for c in candidates]))


@pytest.fixture
async def client(aiohttp_client, make_app):
    source = Source({"stash-1": 95, "stash-2": 60})
    app = make_app(plugins=[("src", source)])
    c = await aiohttp_client(app)
    c.source = source
    return c


async def test_root_advertises_movie_type_and_two_features(client):
    resp = await client.get("/")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    root = (await resp.json())["MediaProvider"]
    assert root["identifier"] == IDENT
    assert root["Types"] == [{"type": 1, "Scheme": [{"scheme": IDENT}]}]
    assert root["Feature"] == [
        {"type": "metadata", "key": "/library/metadata"},
        {"type": "match", "key": "/library/metadata/matches"},
    ]
    assert "images" not in {f["type"] for f in root["Feature"]}


async def test_auto_match_returns_only_the_best_with_exact_guid(client):
    resp = await client.post("/library/metadata/matches", json={"type": 1, "title": "x"})
    assert resp.status == 200
    mc = (await resp.json())["MediaContainer"]
    assert mc["identifier"] == IDENT and mc["offset"] == 0
    assert mc["size"] == mc["totalSize"] == 1
    (item,) = mc["Metadata"]
    assert item["ratingKey"] == "stash-1"
    assert item["guid"] == f"{IDENT}://movie/stash-1"
    assert item["key"] == "/library/metadata/stash-1"
    assert item["type"] == "movie"


async def test_manual_match_returns_ranked_candidates(client):
    resp = await client.post(
        "/library/metadata/matches", json={"type": 1, "title": "x", "manual": 1}
    )
    items = (await resp.json())["MediaContainer"]["Metadata"]
    assert [i["ratingKey"] for i in items] == ["stash-1", "stash-2"]
    assert [i["score"] for i in items] == [95, 60]


async def test_manual_match_is_capped_at_ten(aiohttp_client, make_app):
    source = Source({f"k{i}": 50 + i for i in range(15)})
    client = await aiohttp_client(make_app(plugins=[("src", source)]))
    resp = await client.post("/library/metadata/matches", json={"manual": True})
    items = (await resp.json())["MediaContainer"]["Metadata"]
    assert len(items) == 10
    assert items[0]["ratingKey"] == "k14"


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"a": 84}, []),  # below the default threshold of 85
        ({"a": 85}, ["a"]),
        ({"a": 95, "b": 90}, []),  # too close to the runner-up: never guess
        ({"a": 100, "b": 90}, ["a"]),
        ({}, []),
    ],
)
async def test_threshold_and_margin(aiohttp_client, make_app, scores, expected):
    client = await aiohttp_client(make_app(plugins=[("src", Source(scores))]))
    resp = await client.post("/library/metadata/matches", json={"type": 1})
    assert resp.status == 200
    mc = (await resp.json())["MediaContainer"]
    assert [i["ratingKey"] for i in mc["Metadata"]] == expected
    assert mc["size"] == len(expected)


async def test_unmatched_is_reported_after_the_response(client):
    client.source.scores = {"stash-9": 40}
    resp = await client.post(
        "/library/metadata/matches", json={"filename": "a/b.mp4"}, headers={"X-Request-ID": "r1"}
    )
    assert (await resp.json())["MediaContainer"]["Metadata"] == []
    assert resp.headers["X-Request-ID"] == "r1"
    for _ in range(50):
        if client.source.unmatched:
            break
        await asyncio.sleep(0.01)
    assert client.source.unmatched == [("a/b.mp4", ["stash-9"])]


async def test_unknown_match_keys_are_tolerated(client):
    body = {"type": 1, "title": "x", "someFutureKey": {"a": 1}, "duration": 1000, "ohash": "AB"}
    resp = await client.post("/library/metadata/matches", json=body)
    assert resp.status == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[1, 2]", "body"),
        (b'"text"', "body"),
        (b'{"type": "movie"}', "type"),
        (b'{"year": "2024"}', "year"),
        (b'{"title": 5}', "title"),
        (b'{"manual": "yes"}', "manual"),
        (b'{"includeAdult": 1.5}', "includeAdult"),
        (b'{"parentIndex": true}', "parentIndex"),
    ],
)
async def test_malformed_match_bodies_get_400_naming_the_field(client, body, field):
    resp = await client.post(
        "/library/metadata/matches", data=body, headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert resp.content_type == "application/json"
    err = await resp.json()
    assert err["error"] == "Bad Request"
    assert re.search(rf"\b{field}\b", err["message"]), err
    assert "Traceback" not in err["message"]


async def test_an_oversized_body_is_413_json(aiohttp_client, make_app, monkeypatch):
    from stash2plex import provider

    monkeypatch.setattr(provider, "MAX_BODY", 100)
    client = await aiohttp_client(make_app(plugins=[("src", Source({"stash-1": 95}))]))
    big = b'{"filename": "' + b"x" * 200 + b'"}'
    # Whole in the buffer when the handler starts, then arriving in pieces: both read
    # paths keep the same limit and answer alike.

    async def pieces():
        for start in range(0, len(big), 50):
            yield big[start : start + 50]
            await asyncio.sleep(0.01)

    for data in (big, pieces()):
        resp = await client.post("/library/metadata/matches", data=data)
        assert resp.status == 413
        assert (await resp.json())["error"] == "Request Entity Too Large"
    resp = await client.post("/library/metadata/matches", data=big[:90] + b'"}')
    assert resp.status == 200


async def test_get_on_match_route_is_405_json(client):
    resp = await client.get("/library/metadata/matches")
    assert resp.status == 405
    assert "POST" in (await resp.json())["message"]


async def test_metadata_known_unknown_and_bad_keys(client):
    resp = await client.get("/library/metadata/stash-1")
    assert resp.status == 200
    mc = (await resp.json())["MediaContainer"]
    assert mc["size"] == 1 and mc["Metadata"][0]["guid"] == f"{IDENT}://movie/stash-1"

    resp = await client.get("/library/metadata/stash-404")
    assert resp.status == 404
    assert "stash-404" in (await resp.json())["message"]

    for bad in ("stash.1", "stash%3A1", "a%20b", "%C3%A9"):
        resp = await client.get(f"/library/metadata/{bad}")
        assert resp.status == 400, bad
        assert "[A-Za-z0-9_-]" in (await resp.json())["message"]


async def test_unavailable_source_gives_503_json(client):
    resp = await client.get("/library/metadata/down-1")
    assert resp.status == 503
    assert "not cached" in (await resp.json())["message"]


async def test_images_and_unknown_sub_resources(client):
    resp = await client.get("/library/metadata/stash-1/images")
    mc = (await resp.json())["MediaContainer"]
    assert mc["Image"] == [
        {"type": "coverPoster", "url": "https://img.example/p.jpg", "alt": "poster"}
    ]
    assert mc["size"] == mc["totalSize"] == 1
    assert "Metadata" not in mc
    resp = await client.get("/library/metadata/stash-1/extras")
    assert resp.status == 200
    mc = (await resp.json())["MediaContainer"]
    assert mc == {"identifier": IDENT, "offset": 0, "totalSize": 0, "size": 0, "Metadata": []}
    resp = await client.get("/library/metadata/bad.key/extras")
    assert resp.status == 400


async def test_unknown_route_is_json_404(client):
    resp = await client.get("/nothing/here")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert (await resp.json())["error"] == "Not Found"


async def test_wrong_method_is_json_405_with_allow(client):
    resp = await client.post("/healthz", json={})
    assert resp.status == 405
    assert resp.content_type == "application/json"
    assert "GET" in resp.headers["Allow"]
    assert "POST is not allowed on /healthz" in (await resp.json())["message"]
    assert resp.headers["X-Request-ID"]


async def test_plugin_routes_get_request_ids_and_json_errors(aiohttp_client, make_app):
    from aiohttp import web

    class Routes:
        @hookimpl
        def routes(self, app):
            class Thing(web.View):
                async def get(self):
                    return web.json_response({"thing": self.request.match_info["n"]})

            async def gone(request):
                raise web.HTTPGone()

            def plain(request):  # not async: aiohttp takes these still
                return web.json_response({"plain": True})

            return [
                web.view("/thing/{n}", Thing),
                web.get("/gone", gone),
                web.get("/plain", plain),
            ]

    client = await aiohttp_client(make_app(plugins=[("routes", Routes())]))
    resp = await client.get("/thing/7", headers={"X-Request-ID": "r-7"})
    assert (resp.status, await resp.json()) == (200, {"thing": "7"})
    assert resp.headers["X-Request-ID"] == "r-7"
    resp = await client.delete("/thing/7")
    assert resp.status == 405 and (await resp.json())["error"] == "Method Not Allowed"
    resp = await client.get("/gone")
    assert resp.status == 410 and (await resp.json())["error"] == "Gone"
    assert resp.headers["X-Request-ID"]
    resp = await client.get("/plain")
    assert (resp.status, await resp.json()) == (200, {"plain": True})
    assert resp.headers["X-Request-ID"]


async def test_crashing_handler_never_leaks_a_traceback(aiohttp_client, make_app):
    class Broken:
        @hookimpl
        def routes(self, app):
            from aiohttp import web

            async def boom(request):
                raise RuntimeError("secret internals")

            return [web.get("/boom", boom)]

    client = await aiohttp_client(make_app(plugins=[("broken", Broken())]))
    resp = await client.get("/boom")
    assert resp.status == 500
    body = await resp.text()
    assert "secret internals" not in body and "Traceback" not in body
    assert (await resp.json())["error"] == "Internal Server Error"


async def test_healthz_reports_plugins_and_readiness(aiohttp_client, make_app):
    from stash2plex import HealthReport

    class Health:
        ready = True

        @hookimpl
        def health(self, app):
            return HealthReport(ready=self.ready, details={"index_size": 3})

    plugin = Health()
    client = await aiohttp_client(make_app(plugins=[("h", plugin)]))
    resp = await client.get("/healthz")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "ok"
    assert body["plugins"]["h"] == {"ready": True, "index_size": 3}
    plugin.ready = False
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["status"] == "degraded"


async def test_configured_identifier_is_used_everywhere(aiohttp_client, make_app):
    ident = "tv.plex.agents.custom.my.stash"
    app = make_app({"provider": {"identifier": ident}}, plugins=[("s", Source({"k": 100}))])
    client = await aiohttp_client(app)
    root = (await (await client.get("/")).json())["MediaProvider"]
    assert root["Types"][0]["Scheme"][0]["scheme"] == ident
    mc = (await (await client.post("/library/metadata/matches", json={})).json())["MediaContainer"]
    assert mc["identifier"] == ident
    assert mc["Metadata"][0]["guid"] == f"{ident}://movie/k"


async def _raw(client, request_line: str, body: bytes = b"") -> tuple[int, dict[str, str]]:
    """Send a request line as written (an HTTP client would normalise "//...")."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(
        f"{request_line} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    head = (await reader.read()).split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    writer.close()
    headers = dict(line.split(": ", 1) for line in head[1:])
    return int(head[0].split()[1]), headers


async def test_doubled_or_trailing_slashes_reach_the_route(client):
    # A provider registered as "http://host:8787/" gets "//library/..." from Plex:
    # redirected with 308, which keeps a POST a POST, body included.
    status, headers = await _raw(client, "POST //library/metadata/matches", b'{"type": 1}')
    assert (status, headers["Location"]) == (308, "/library/metadata/matches")
    status, headers = await _raw(client, "GET /library/metadata/stash-1/")
    assert (status, headers["Location"]) == (308, "/library/metadata/stash-1")
    resp = await client.get("/library//metadata/stash-1")  # followed: the item itself
    assert resp.status == 200
    assert (await resp.json())["MediaContainer"]["Metadata"][0]["ratingKey"] == "stash-1"


async def test_only_movie_matches_are_answered(client):
    for plex_type in (2, 3, 4):
        resp = await client.post("/library/metadata/matches", json={"type": plex_type})
        assert resp.status == 200
        assert (await resp.json())["MediaContainer"]["Metadata"] == []


@pytest.mark.parametrize(
    ("body", "query", "want"),
    [
        (
            {"type": 1, "filename": "a/b.mp4", "includeAdult": 1},
            "",
            {"filename": "a/b.mp4", "include_adult": 1},
        ),
        (
            {"type": 1, "title": "Über", "year": 2024, "guid": None, "manual": 1},
            "",
            {"title": "Über", "year": 2024, "manual": 1},
        ),
        # Flags as booleans are taken as 0/1; the body's manual wins over the URL's.
        (
            {"filename": "x.mkv", "manual": True, "includeAdult": False},
            "",
            {"filename": "x.mkv", "manual": 1, "include_adult": 0},
        ),
        ({"filename": "x.mkv"}, "manual=1", {"filename": "x.mkv", "manual": 1}),
        ({"filename": "x.mkv", "manual": 0}, "manual=1", {"filename": "x.mkv"}),
        (
            {"title": "t", "ohash": "AB", "duration": 1000, "date": "2024-01-02"},
            "manual=x",
            {"title": "t", "ohash": "AB", "duration": 1000, "date": "2024-01-02"},
        ),
        (
            {"type": 4, "index": 3, "parentIndex": 1, "episodeOrder": "aired"},
            "",
            {"type": 4, "index": 3, "parent_index": 1, "episode_order": "aired"},
        ),
        ({}, "", {}),
        # A key Plex may add later is dropped, not refused.
        ({"filename": "x.mkv", "someFutureKey": {"a": 1}}, "", {"filename": "x.mkv"}),
        ({"type": 1, "year": None, "title": None}, "", {}),
    ],
)
def test_match_bodies_parse_into_the_model(body, query, want):
    from aiohttp.test_utils import make_mocked_request

    from stash2plex import MatchRequest
    from stash2plex.provider import _parse_match

    request = make_mocked_request("POST", "/library/metadata/matches?" + query)
    assert _parse_match(dict(body), request) == MatchRequest(**want)
