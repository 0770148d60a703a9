"""The ``/images/...`` routes: signed, absolute URLs in metadata, artwork streamed from
Stash with the API key (never exposed), cached in memory, optional 2:3 posters."""

from __future__ import annotations

import io
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from stash2plex_stash_source.fake import FakeStash, Library

API_KEY = "img-key-7d1f0b9e"
PUBLIC = "https://art.example.net"
ONE_DAY = 86_400


def first_scene(lib: Library) -> int:
    return next(s["id"] for s in lib.scenes.values() if s["files"])


async def metadata(client: TestClient, sid: int, **headers: str) -> dict[str, Any]:
    resp = await client.get(f"/library/metadata/stash-{sid}", headers=headers)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["MediaContainer"]["Metadata"][0]


def images(item: dict[str, Any]) -> dict[str, str]:
    return {i["type"]: i["url"] for i in item["Image"]}


def local(url: str) -> str:
    """The path and query of an absolute URL, to fetch it from the test server."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def test_urls_are_absolute_signed_and_use_public_url(provider, small_stash, small_library):
    client = await provider(small_stash.url, provider={"public_url": PUBLIC + "/"})
    item = await metadata(client, first_scene(small_library))
    urls = [*images(item).values(), *(r["thumb"] for r in item.get("Role", []) if "thumb" in r)]
    assert urls
    for url in urls:
        assert url.startswith(PUBLIC + "/images/"), url
        assert re.search(r"\?sig=[A-Za-z0-9_-]{16,}$", url), url


async def test_urls_follow_the_request_host_without_public_url(
    provider, small_stash, small_library
):
    client = await provider(small_stash.url)
    sid = first_scene(small_library)
    base = str(client.make_url("")).rstrip("/")
    assert all(
        u.startswith(base + "/images/") for u in images(await metadata(client, sid)).values()
    )
    # Behind a reverse proxy, the forwarded host and scheme are what Plex can reach.
    proxied = await metadata(
        client, sid, **{"X-Forwarded-Host": "plex-provider.lan:8443", "X-Forwarded-Proto": "https"}
    )
    assert all(
        u.startswith("https://plex-provider.lan:8443/images/") for u in images(proxied).values()
    )


async def test_fetching_an_image(provider, small_library):
    async with FakeStash(small_library, api_key=API_KEY) as stash:
        client = await provider(stash.url, stash={"api_key": API_KEY})
        sid = first_scene(small_library)
        resp = await client.get(f"/library/metadata/stash-{sid}")
        text = await resp.text()
        assert API_KEY not in text  # not in any URL, nor anywhere else
        item = (await resp.json())["MediaContainer"]["Metadata"][0]
        url = images(item)["background"]
        assert "apikey" not in url.lower()

        before = stash.image_requests
        got = await client.get(local(url))
        assert got.status == 200
        assert got.content_type.startswith("image/")
        body = await got.read()
        assert body.startswith(b"\x89PNG")
        with Image.open(io.BytesIO(body)) as shot:
            assert shot.size == (320, 180)
        max_age = int(re.search(r"max-age=(\d+)", got.headers["Cache-Control"]).group(1))
        assert max_age >= 7 * ONE_DAY
        # The fake Stash answers an image request without the ApiKey header with a redirect
        # to its login page; a 200 means the key went in the header.
        assert stash.image_requests == before + 1

        # The second fetch comes from memory.
        again = await client.get(local(url))
        assert again.status == 200 and await again.read() == body
        assert stash.image_requests == before + 1


async def test_performer_and_studio_images(provider, small_stash, small_library):
    client = await provider(small_stash.url)
    scene = next(
        s
        for s in small_library.scenes.values()
        if s["studio"]
        and s["studio"]["_has_image"]
        and any(p["_has_image"] for p in s["performers"])
    )
    item = await metadata(client, scene["id"])
    logo = images(item)["clearLogo"]
    photo = next(r["thumb"] for r in item["Role"] if "thumb" in r)
    for url, size in ((logo, (300, 100)), (photo, (200, 300))):
        resp = await client.get(local(url))
        assert resp.status == 200 and resp.content_type == "image/png"
        with Image.open(io.BytesIO(await resp.read())) as picture:
            assert picture.size == size


async def test_unsigned_or_tampered_urls_are_refused(provider, small_stash, small_library):
    client = await provider(small_stash.url)
    sid = first_scene(small_library)
    url = images(await metadata(client, sid))["background"]
    path, sig = local(url).split("?sig=")
    other = next(s for s in small_library.scenes if s != sid)
    before = small_stash.image_requests
    for attempt in (
        path,  # no signature
        f"{path}?sig=",
        f"{path}?sig={sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",  # one character changed
        f"{path.replace(f'/scene/{sid}/', f'/scene/{other}/')}?sig={sig}",  # another scene
        f"{path.replace('/screenshot/', '/poster/')}?sig={sig}",  # another kind
        f"{path}?sig=%C3%A9",  # non-ASCII: compare_digest would raise a TypeError
        f"{path}?sig=%FF%FE",  # not UTF-8 at all
        f"{path}?sig=%00{sig}",
        f"{path}?sig={sig}%E2%80%8B",  # the right one, plus a zero-width space
        f"{path}?sig={'A' * 4000}",
    ):
        resp = await client.get(attempt)
        assert resp.status == 403, attempt
        assert resp.content_type == "application/json"
        assert "signature" in (await resp.json())["message"]
    assert small_stash.image_requests == before  # nothing reached Stash


async def test_missing_api_key_is_a_clear_error(provider, small_stash, small_library):
    client = await provider(small_stash.url, stash={"retries": 0})
    item = await metadata(client, first_scene(small_library))
    # Stash gets a login after the provider started: it redirects keyless image requests.
    small_stash.api_key = API_KEY
    resp = await client.get(local(images(item)["background"]))
    assert resp.status == 502
    assert resp.content_type == "application/json"
    assert "stash.api_key" in (await resp.json())["message"]


async def test_portrait_poster_is_two_by_three(provider, small_stash, small_library):
    client = await provider(small_stash.url, stash={"poster": "portrait"})
    item = await metadata(client, first_scene(small_library))
    poster, background = images(item)["coverPoster"], images(item)["background"]
    assert "/poster/" in poster and "/screenshot/" in background
    resp = await client.get(local(poster))
    assert resp.status == 200
    assert resp.content_type == "image/jpeg"
    with Image.open(io.BytesIO(await resp.read())) as picture:
        assert picture.format == "JPEG"
        width, height = picture.size
        assert width * 3 == height * 2
    # The background stays the 16:9 screenshot.
    resp = await client.get(local(background))
    with Image.open(io.BytesIO(await resp.read())) as shot:
        assert shot.size == (320, 180)


@pytest.mark.parametrize("fault", ["down", "slow"])
async def test_uncached_image_with_stash_down_is_a_503(provider, small_stash, small_library, fault):
    # A timeout long enough for the first, healthy fetch on a busy machine.
    client = await provider(small_stash.url, stash={"retries": 0, "timeout_s": 1.0})
    sid = first_scene(small_library)
    url = images(await metadata(client, sid))["background"]
    small_stash.slow_seconds = 3
    small_stash.fault = fault
    resp = await client.get(local(url))
    assert resp.status == 503
    assert resp.content_type == "application/json"
    assert "unavailable" in (await resp.json())["message"]
