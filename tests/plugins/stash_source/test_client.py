"""StashClient: retries, typed errors, the circuit breaker, secrecy of the API key, images.

Fault modes come from the fake Stash (``stash.fault``); a few HTTP shapes the fake does not
produce (redirects, oversized images, 404) use a tiny handler inline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from stash2plex_stash_source import queries
from stash2plex_stash_source.client import (
    MAX_IMAGE_BYTES,
    StashAuthError,
    StashBadResponse,
    StashClient,
    StashError,
    StashGraphQLError,
    StashQueryError,
    StashUnavailable,
)
from stash2plex_stash_source.fake import FakeStash, generate_library

KEY = "eyJhbGciOiJIUzI1NiJ9.c2VrcmV0LWtleS0xMjM0NQ.top-secret-signature"

# Small timings keep the whole module well under a few seconds.
FAST: dict[str, Any] = {"timeout_s": 0.5, "retries": 3, "backoff_s": 0.005}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="module")
def library() -> Any:
    return generate_library(scenes=30, seed=1)


@pytest.fixture
async def stash(library: Any) -> AsyncIterator[FakeStash]:
    async with FakeStash(library, api_key=None) as fake:
        yield fake


@pytest.fixture
async def keyed_stash(library: Any) -> AsyncIterator[FakeStash]:
    async with FakeStash(library, api_key=KEY) as fake:
        yield fake


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def inline() -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """``url = await inline({"/graphql": handler, ...})``: a throwaway loopback server."""
    servers: list[TestServer] = []

    async def start(routes: dict[str, Handler], method: str = "*") -> str:
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_route(method, path, handler)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


def client_for(url: str, session: aiohttp.ClientSession, key: str = "", **kw: Any) -> StashClient:
    return StashClient(url, key, session=session, **{**FAST, **kw})


# --- happy path ---------------------------------------------------------------------------


async def test_execute_returns_data(stash: FakeStash, session: aiohttp.ClientSession) -> None:
    client = client_for(stash.url, session)
    data = await client.execute(queries.VERSION)
    assert data["systemStatus"]["status"] == "OK"
    assert client.last_ok_at is not None and client.last_ok_at <= time.time()
    assert client.requests == 1
    assert client.consecutive_failures == 0 and not client.circuit_open


async def test_variables_and_operation_name(stash: FakeStash, session: aiohttp.ClientSession):
    client = client_for(stash.url, session)
    data = await client.execute(queries.FIND_SCENE, {"id": "1"})
    assert data["findScene"]["id"] == "1"
    assert "Stash2PlexFindScene" in stash.operations


async def test_trailing_graphql_in_url_is_accepted(stash: FakeStash, session) -> None:
    client = client_for(stash.url + "/graphql/", session)
    assert client.url == stash.url
    await client.execute(queries.VERSION)


@pytest.mark.parametrize("bad", ["stash:9999", "ftp://stash", "/graphql", ""])
async def test_rejects_unusable_url(bad: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match=r"http:// or https://"):
        StashClient(bad, session=session)


# --- the API key ---------------------------------------------------------------------------


async def test_no_apikey_header_without_key(inline, session: aiohttp.ClientSession) -> None:
    seen: list[dict[str, str]] = []

    async def graphql(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"data": {"ok": True}})

    url = await inline({"/graphql": graphql})
    await client_for(url, session).execute("query Q { ok }")
    assert seen and not any(k.lower() == "apikey" for k in seen[0])


async def test_apikey_header_with_key(keyed_stash: FakeStash, session) -> None:
    data = await client_for(keyed_stash.url, session, KEY).execute(queries.VERSION)
    assert data["version"]


async def test_wrong_key_is_auth_error_naming_the_setting(keyed_stash: FakeStash, session):
    client = client_for(keyed_stash.url, session, "wrong-" + KEY)
    with pytest.raises(StashAuthError, match=r"stash\.api_key") as caught:
        await client.execute(queries.VERSION)
    assert caught.value.status == 401
    assert KEY not in str(caught.value)
    assert client.requests == 1  # never retried


async def test_missing_key_is_auth_error(keyed_stash: FakeStash, session) -> None:
    with pytest.raises(StashAuthError, match=r"no API key is configured"):
        await client_for(keyed_stash.url, session).execute(queries.VERSION)


async def test_key_never_in_errors_or_logs(
    stash: FakeStash, session: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    client = client_for(stash.url, session, KEY, retries=1, breaker_threshold=3)
    errors: list[str] = [repr(client)]
    for fault in ("401", "403", "422", "500", "html", "garbage", "locked", "down", "down"):
        stash.fault = fault
        with capture_logs() as logs, pytest.raises(StashError) as caught:
            await client.execute(queries.VERSION)
        errors += [str(caught.value), repr(caught.value), repr(logs), str(client.last_error)]
    # The last call found the breaker open: that message must be clean too.
    assert "circuit open" in errors[-4]
    out = capsys.readouterr()
    for text in [*errors, out.out, out.err]:
        assert KEY not in text
        assert "top-secret-signature" not in text


# --- faults: typed errors and retries -------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "retried"),
    [
        ("401", StashAuthError, False),
        ("403", StashAuthError, False),
        ("422", StashQueryError, False),
        ("html", StashBadResponse, False),
        ("garbage", StashBadResponse, False),
        ("500", StashUnavailable, True),
        ("down", StashUnavailable, True),
        ("slow", StashUnavailable, True),
        ("locked", StashGraphQLError, True),
    ],
)
async def test_fault_gives_typed_error(
    stash: FakeStash, session: aiohttp.ClientSession, fault: str, error: type, retried: bool
) -> None:
    stash.fault = fault
    stash.slow_seconds = 5
    client = client_for(stash.url, session, retries=2, timeout_s=0.2, breaker_threshold=10)
    with pytest.raises(error) as caught:
        await client.execute(queries.VERSION)
    assert stash.url in str(caught.value)
    assert client.requests == (3 if retried else 1)
    assert client.last_error


async def test_query_error_carries_stash_message(stash: FakeStash, session) -> None:
    client = client_for(stash.url, session)
    with pytest.raises(StashQueryError) as caught:
        await client.execute("query Bad { findScene(id: 1) { no_such_field } }")
    assert caught.value.messages
    assert "no_such_field" in str(caught.value)


async def test_graphql_error_keeps_messages(inline, session: aiohttp.ClientSession) -> None:
    async def graphql(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "errors": [{"message": "scene with id 9 not found", "path": ["findScene"]}],
                "data": {"findScene": None},
            }
        )

    client = client_for(await inline({"/graphql": graphql}), session)
    with pytest.raises(StashGraphQLError) as caught:
        await client.execute("query Q { findScene(id: 9) { id } }")
    assert caught.value.messages == ["scene with id 9 not found"]
    assert caught.value.data == {"findScene": None}
    assert not caught.value.locked
    assert client.requests == 1


async def test_bad_response_shows_content_type_and_start(stash: FakeStash, session) -> None:
    stash.fault = "html"
    with pytest.raises(StashBadResponse) as caught:
        await client_for(stash.url, session).execute(queries.VERSION)
    assert "text/html" in str(caught.value)
    assert "<" in str(caught.value)


@pytest.mark.parametrize("fault", ["500", "down", "slow", "locked"])
async def test_transient_fault_retried_then_succeeds(
    stash: FakeStash, session: aiohttp.ClientSession, fault: str
) -> None:
    stash.fault = fault
    stash.fault_count = 2
    stash.slow_seconds = 5
    client = client_for(stash.url, session, timeout_s=0.2)
    with capture_logs() as logs:
        data = await client.execute(queries.VERSION)
    assert data["version"]
    assert client.requests == 3
    assert [e["event"] for e in logs if e["event"] == "stash.retry"] == ["stash.retry"] * 2
    assert client.consecutive_failures == 0


async def test_backoff_grows(stash: FakeStash, session: aiohttp.ClientSession) -> None:
    stash.fault = "500"
    client = client_for(stash.url, session, retries=3, backoff_s=0.01, breaker_threshold=10)
    with capture_logs() as logs, pytest.raises(StashUnavailable):
        await client.execute(queries.VERSION)
    delays = [e["delay_s"] for e in logs if e["event"] == "stash.retry"]
    assert len(delays) == 3
    # Jitter is +-50 %: attempt n waits within [0.5, 1.5] * backoff * 2**n.
    for n, d in enumerate(delays):
        assert 0.5 * 0.01 * 2**n <= d <= 1.5 * 0.01 * 2**n + 1e-9


async def test_cancellation_is_not_a_failure(stash: FakeStash, session) -> None:
    stash.fault = "slow"
    stash.slow_seconds = 5
    client = client_for(stash.url, session, timeout_s=2)
    task = asyncio.ensure_future(client.execute(queries.VERSION))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.consecutive_failures == 0


# --- circuit breaker -----------------------------------------------------------------------


async def test_breaker_opens_fails_fast_and_recovers(
    stash: FakeStash, session: aiohttp.ClientSession
) -> None:
    client = client_for(stash.url, session, retries=0, breaker_threshold=3, breaker_cooldown_s=0.2)
    stash.fault = "down"
    with capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(StashUnavailable):
                await client.execute(queries.VERSION)
    assert client.circuit_open
    assert "stash.circuit_open" in [e["event"] for e in logs]
    sent = client.requests

    with pytest.raises(StashUnavailable, match="circuit open") as caught:
        await client.execute(queries.VERSION)
    assert client.requests == sent  # no network while open: a dead Stash costs nothing
    assert stash.url in str(caught.value)

    stash.fault = None
    await asyncio.sleep(0.25)
    data = await client.execute(queries.VERSION)  # the half-open trial
    assert data["version"]
    assert not client.circuit_open
    assert client.consecutive_failures == 0


async def test_failed_trial_reopens(stash: FakeStash, session: aiohttp.ClientSession) -> None:
    client = client_for(stash.url, session, retries=0, breaker_threshold=1, breaker_cooldown_s=0.1)
    stash.fault = "500"
    with pytest.raises(StashUnavailable):
        await client.execute(queries.VERSION)
    assert client.circuit_open
    await asyncio.sleep(0.15)
    with pytest.raises(StashUnavailable, match="HTTP 500"):
        await client.execute(queries.VERSION)  # the trial goes out and fails
    with pytest.raises(StashUnavailable, match="circuit open"):
        await client.execute(queries.VERSION)  # open again at once


async def test_only_one_trial_at_a_time(stash: FakeStash, session) -> None:
    client = client_for(stash.url, session, retries=0, breaker_threshold=1, breaker_cooldown_s=0.05)
    stash.fault = "500"
    with pytest.raises(StashUnavailable):
        await client.execute(queries.VERSION)
    await asyncio.sleep(0.08)
    stash.fault = "slow"
    stash.slow_seconds = 0.2
    stash.fault_count = 1
    results = await asyncio.gather(
        *(client.execute(queries.VERSION) for _ in range(5)), return_exceptions=True
    )
    fast_failures = [r for r in results if isinstance(r, StashUnavailable)]
    assert len(fast_failures) == 4
    assert sum(isinstance(r, dict) for r in results) == 1
    assert not client.circuit_open


@pytest.mark.parametrize("fault", ["401", "403", "422"])
async def test_auth_and_query_errors_do_not_trip(stash: FakeStash, session, fault: str) -> None:
    client = client_for(stash.url, session, retries=0, breaker_threshold=2)
    stash.fault = fault
    for _ in range(4):
        with pytest.raises(StashError):
            await client.execute(queries.VERSION)
    assert not client.circuit_open
    assert client.consecutive_failures == 0
    assert client.requests == 4


# --- images --------------------------------------------------------------------------------


async def test_fetch_image_path_and_absolute_url(keyed_stash: FakeStash, session) -> None:
    client = client_for(keyed_stash.url, session, KEY)
    data = await client.execute(queries.FIND_SCENE, {"id": "1"})
    url = data["findScene"]["paths"]["screenshot"]
    body, ctype = await client.fetch_image(url)
    assert ctype.startswith("image/") and body
    body2, _ = await client.fetch_image("/scene/1/screenshot")
    assert body2 == body
    assert keyed_stash.image_requests


async def test_fetch_image_without_key_is_auth_error(keyed_stash: FakeStash, session) -> None:
    client = client_for(keyed_stash.url, session)
    with pytest.raises(StashAuthError, match=r"stash\.api_key"):
        await client.fetch_image("/scene/1/screenshot")


async def test_image_redirect_not_followed(inline, session: aiohttp.ClientSession) -> None:
    hits: list[str] = []

    async def screenshot(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/login?returnURL=%2Fscene%2F1%2Fscreenshot")

    async def login(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="<html>login</html>", content_type="text/html")

    url = await inline({"/scene/1/screenshot": screenshot, "/login": login})
    with pytest.raises(StashAuthError, match="redirected"):
        await client_for(url, session, KEY).fetch_image("/scene/1/screenshot")
    assert hits == []


async def test_image_must_be_image(inline, session: aiohttp.ClientSession) -> None:
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    url = await inline({"/scene/1/screenshot": page})
    with pytest.raises(StashBadResponse, match="text/html"):
        await client_for(url, session).fetch_image("/scene/1/screenshot")


async def test_image_size_cap(inline, session: aiohttp.ClientSession) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
        await resp.prepare(request)  # chunked: no Content-Length to refuse up front
        chunk = b"\xff" * (1 << 20)
        for _ in range(MAX_IMAGE_BYTES // len(chunk) + 2):
            await resp.write(chunk)
        return resp

    url = await inline({"/scene/1/screenshot": huge})
    with pytest.raises(StashBadResponse, match="larger than"):
        await client_for(url, session, timeout_s=5).fetch_image("/scene/1/screenshot")


async def test_image_404(inline, session: aiohttp.ClientSession) -> None:
    async def other(_request: web.Request) -> web.Response:
        return web.Response()

    url = await inline({"/other": other})
    with pytest.raises(StashBadResponse) as caught:
        await client_for(url, session).fetch_image("/scene/404/screenshot")
    assert caught.value.status == 404


async def test_image_path_keeps_url_prefix(inline, session: aiohttp.ClientSession) -> None:
    seen: list[str] = []

    async def img(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        return web.Response(body=b"\x89PNG", content_type="image/png")

    url = await inline({"/stash/scene/7/screenshot": img})
    client = client_for(url + "/stash", session, KEY)
    assert await client.fetch_image("/scene/7/screenshot?t=123&apikey=leak") == (
        b"\x89PNG",
        "image/png",
    )
    assert seen == ["/stash/scene/7/screenshot?t=123"]  # a key in the URL is never sent on


@pytest.mark.parametrize(
    "target",
    [
        "http://evil.example/scene/1/screenshot",
        "https://{host}/scene/1/screenshot",  # other scheme
        "http://{hostname}:1/scene/1/screenshot",  # other port
        "//evil.example/x.jpg",
        "file:///etc/passwd",
    ],
)
async def test_image_ssrf_guard(stash: FakeStash, session, target: str) -> None:
    client = client_for(stash.url, session, KEY)
    host = stash.url.split("://", 1)[1]
    target = target.format(host=host, hostname=host.rsplit(":", 1)[0])
    with pytest.raises(ValueError, match="not the configured Stash"):
        await client.fetch_image(target)
    assert client.requests == 0


async def test_image_goes_through_breaker(stash: FakeStash, session) -> None:
    client = client_for(stash.url, session, retries=0, breaker_threshold=1, breaker_cooldown_s=5)
    stash.fault = "down"
    with pytest.raises(StashUnavailable):
        await client.execute(queries.VERSION)
    with pytest.raises(StashUnavailable, match="circuit open"):
        await client.fetch_image("/scene/1/screenshot")
    assert client.requests == 1
