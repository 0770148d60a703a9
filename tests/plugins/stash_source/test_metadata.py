"""Metadata over HTTP: one Stash scene as Plex receives it, the metadata cache, and how
quickly the index and the cache follow edits and deletions in Stash."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import stash2plex_path_regex.plugin as path_plugin
import stash2plex_stash_source.plugin as stash_plugin
from stash2plex import HOOKS, ConfigError
from stash2plex_stash_source.client import MAX_BACKOFF_S, StashClient, StashUnavailable
from stash2plex_stash_source.fake import STASHDB_ENDPOINT, FakeStash, Library
from stash2plex_stash_source.fake.library import utc_epoch
from stash2plex_stash_source.metadata import SceneCache

IDENT = "tv.plex.agents.custom.stash2plex"
STASH_ID = "6f1e4b8a-6a4b-4c57-9a57-0d3c4f7f2a11"
API_KEY = "sekrit-api-key-4f9a1c"
FIND_SCENE = "Stash2PlexFindScene"


def _studio_with_parent(lib: Library) -> dict[str, Any]:
    return next(s for s in lib.studios.values() if s["parent_studio"] and s["_has_image"])


@pytest.fixture
def rich(small_library: Library) -> dict[str, Any]:
    """A scene with every field Plex can show, plus its expected rendering."""
    lib = small_library
    studio = _studio_with_parent(lib)
    tags = [lib.tags[i] for i in (1, 2, 3, 4)]
    sid = lib.add_scene(
        title="The Rich Scene",
        details="Everything a scene can have, set.",
        date="2021-03-04",
        code="RCH-042",
        director="Dana Director",
        studio=studio["id"],
        # 1 and 2 are namesakes ("Alex Rivers"); 2 has only Stash's placeholder image.
        performers=[1, 2, 5],
        tags=[t["id"] for t in tags],
        stash_ids=[{"endpoint": STASHDB_ENDPOINT, "stash_id": STASH_ID, "updated_at": lib.tick()}],
        organized=True,
        files=[{"path": f"{lib.stash_root}/Rich/rich scene file.mp4", "duration": 1234.567}],
    )
    return {"id": sid, "scene": lib.scenes[sid], "studio": studio, "tags": tags}


async def get_item(client: TestClient, key: str) -> dict[str, Any]:
    resp = await client.get(f"/library/metadata/{key}")
    assert resp.status == 200, await resp.text()
    container = (await resp.json())["MediaContainer"]
    assert container["size"] == 1 and container["identifier"] == IDENT
    return container["Metadata"][0]


def finds(stash: FakeStash) -> int:
    return stash.operations.count(FIND_SCENE)


# --- the fields -----------------------------------------------------------------------------


async def test_a_scene_with_everything(provider, small_stash, rich):
    ignored = rich["tags"][1]["name"]
    client = await provider(small_stash.url, stash={"ignore_tags": [ignored.upper()]})
    sid, scene, studio = rich["id"], rich["scene"], rich["studio"]
    item = await get_item(client, f"stash-{sid}")

    assert item["ratingKey"] == f"stash-{sid}"
    assert item["guid"] == f"{IDENT}://movie/stash-{sid}"
    assert item["key"] == f"/library/metadata/stash-{sid}"
    assert item["type"] == "movie"
    assert item["title"] == "The Rich Scene"
    assert item["summary"] == "Everything a scene can have, set."
    assert item["originallyAvailableAt"] == "2021-03-04"
    assert item["year"] == 2021
    assert item["studio"] == studio["name"]
    assert item["Studio"] == [{"tag": studio["name"]}, {"tag": studio["parent_studio"]["name"]}]
    assert item["tagline"] == "RCH-042"
    assert item["Director"] == [{"tag": "Dana Director"}]
    assert item["contentRating"] == "XXX"
    assert item["isAdult"] is True
    assert item["duration"] == 1234567
    assert item["addedAt"] == utc_epoch(scene["created_at"])
    assert item["Guid"] == [{"id": f"stashdb://{STASH_ID}"}]
    # Tags minus the ignore list, compared case-insensitively.
    assert [g["tag"] for g in item["Genre"]] == [
        t["name"] for t in rich["tags"] if t["name"] != ignored
    ]

    roles = item["Role"]
    assert [r["tag"] for r in roles] == ["Alex Rivers (2019)", "Alex Rivers (EU)", "Bella Quill"]
    assert [r["order"] for r in roles] == [1, 2, 3]
    assert "/images/performer/1/" in roles[0]["thumb"] and "sig=" in roles[0]["thumb"]
    assert "thumb" not in roles[1]  # Stash's silhouette is no photo

    images = {i["type"]: i["url"] for i in item["Image"]}
    assert set(images) == {"coverPoster", "background", "clearLogo"}
    assert f"/images/scene/{sid}/screenshot/" in images["background"]
    assert f"/images/scene/{sid}/screenshot/" in images["coverPoster"]
    assert f"/images/studio/{studio['id']}/" in images["clearLogo"]
    assert all(u.startswith("http") and "sig=" in u for u in images.values())
    assert not any("preview" in u for u in images.values())  # a video is no background
    assert item["thumb"] == images["coverPoster"] and item["art"] == images["background"]

    listed = await client.get(f"/library/metadata/stash-{sid}/images")
    assert listed.status == 200
    container = (await listed.json())["MediaContainer"]
    assert container["Image"] == item["Image"]
    assert container["size"] == len(item["Image"])


async def test_partial_dates_give_only_the_year(provider, small_stash, small_library):
    year_only = small_library.add_scene(title="Year", date="2019")
    month_only = small_library.add_scene(title="Month", date="2019-07")
    undated = small_library.add_scene(title="Undated", date=None)
    client = await provider(small_stash.url)
    for sid in (year_only, month_only):
        item = await get_item(client, f"stash-{sid}")
        assert item["year"] == 2019
        assert "originallyAvailableAt" not in item
    item = await get_item(client, f"stash-{undated}")
    assert "year" not in item and "originallyAvailableAt" not in item


async def test_content_rating_and_sparse_scene(provider, small_stash, small_library):
    # No studio image, no performers, no tags, no stash-box id: nothing invented.
    studio = next(s for s in small_library.studios.values() if not s["parent_studio"])
    studio["_has_image"] = False
    sid = small_library.add_scene(title="Sparse", studio=studio["id"])
    client = await provider(small_stash.url, stash={"content_rating": "R18+"})
    item = await get_item(client, f"stash-{sid}")
    assert item["contentRating"] == "R18+"
    assert {i["type"] for i in item["Image"]} == {"coverPoster", "background"}
    assert item["Studio"] == [{"tag": studio["name"]}]
    for absent in ("Role", "Genre", "Guid", "Director", "tagline", "summary"):
        assert absent not in item, absent


# --- titles ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected", "untitled"),
    [
        ("{title}", "The Rich Scene", "untitled file name"),
        ("{studio} - {title}", "{studio} - The Rich Scene", "untitled file name"),
        ("{title} ({date})", "The Rich Scene (2021-03-04)", "untitled file name"),
        ("[{code}] {title}", "[RCH-042] The Rich Scene", "untitled file name"),
        (
            "{studio} - {date} - {title}",
            "{studio} - 2021-03-04 - The Rich Scene",
            "untitled file name",
        ),
        (
            "{title} - {performers}",
            "The Rich Scene - Alex Rivers, Alex Rivers, Bella Quill",
            "untitled file name",
        ),
    ],
)
async def test_title_template(
    provider, small_stash, small_library, rich, template, expected, untitled
):
    # An untitled scene without studio, date, code or performers: the template's other
    # fields are empty and their separators must not be left dangling.
    bare = small_library.add_scene(
        title=None, files=[f"{small_library.stash_root}/Loose/untitled file name.mp4"]
    )
    client = await provider(small_stash.url, stash={"title_template": template})
    item = await get_item(client, f"stash-{rich['id']}")
    assert item["title"] == expected.format(studio=rich["studio"]["name"])
    if untitled is not None:
        assert (await get_item(client, f"stash-{bare}"))["title"] == untitled


async def test_the_scene_title_itself_is_never_trimmed(provider, small_stash, small_library):
    sid = small_library.add_scene(title="- Intro, Part 2 -")
    client = await provider(small_stash.url)
    assert (await get_item(client, f"stash-{sid}"))["title"] == "- Intro, Part 2 -"


@pytest.mark.parametrize(
    "template", ["{nope}", "{title", "{}", "{0}", "{title.upper}", "{title!x}", "{title:d}"]
)
def test_bad_title_template_stops_start_up(make_app, template):
    with pytest.raises(ConfigError) as caught:
        make_app(
            {"stash": {"url": "http://127.0.0.1:9", "title_template": template}},
            plugins=[("stash_source", stash_plugin), ("path_regex", path_plugin)],
        )
    (problem,) = caught.value.problems
    # The host prefixes the section ("stash: ..."); the message names the key and value.
    assert problem.startswith("stash")
    assert "title_template" in problem and repr(template) in problem


# --- what is not ours -----------------------------------------------------------------------


async def test_unknown_and_foreign_keys(provider, small_stash):
    client = await provider(small_stash.url)
    resp = await client.get("/library/metadata/stash-987654")
    assert resp.status == 404
    assert resp.content_type == "application/json"
    assert "stash-987654" in (await resp.json())["message"]
    for key in ("stash-abc", "other-1", "stash-", "stash-12x", "Stash-1"):
        resp = await client.get(f"/library/metadata/{key}")
        assert resp.status == 404, key
        assert resp.content_type == "application/json"
    # Outside Plex's ratingKey alphabet: a client error, not a lookup.
    resp = await client.get("/library/metadata/stash-1.5")
    assert resp.status == 400 and resp.content_type == "application/json"


async def test_api_key_never_leaves_the_provider(provider, small_library, rich, match):
    async with FakeStash(small_library, api_key=API_KEY) as stash:
        client = await provider(stash.url, stash={"api_key": API_KEY, "retries": 0})
        sid = rich["id"]
        bodies = []
        for path in (
            "/",
            "/healthz",
            f"/library/metadata/stash-{sid}",
            f"/library/metadata/stash-{sid}/images",
            "/library/metadata/stash-987654",
        ):
            resp = await client.get(path)
            bodies.append(await resp.text())
        items = await match(client, filename="Rich/rich scene file.mp4", manual=1)
        assert items and items[0]["ratingKey"] == f"stash-{sid}"
        bodies.append(str(items))
        stash.fault = "down"
        resp = await client.get("/library/metadata/stash-3")  # uncached: a 503 with a reason
        assert resp.status == 503
        bodies.append(await resp.text())
        for body in bodies:
            assert API_KEY not in body


# --- the cache ------------------------------------------------------------------------------


async def test_second_request_is_served_from_the_cache(provider, small_stash, rich):
    client = await provider(small_stash.url)
    sid = rich["id"]
    first = await get_item(client, f"stash-{sid}")
    before = finds(small_stash)
    assert before >= 1
    again = await get_item(client, f"stash-{sid}")
    images = await client.get(f"/library/metadata/stash-{sid}/images")
    assert images.status == 200
    assert finds(small_stash) == before
    assert again == first


async def test_concurrent_requests_share_one_fetch(provider, small_stash, rich):
    client = await provider(small_stash.url)
    # Slow Stash down a little so all 20 requests overlap the single fetch.
    small_stash.slow_seconds = 0.3
    small_stash.fault, small_stash.fault_count = "slow", 1
    before = finds(small_stash)
    results = await asyncio.gather(
        *(client.get(f"/library/metadata/stash-{rich['id']}") for _ in range(20))
    )
    assert [r.status for r in results] == [200] * 20
    titles = {(await r.json())["MediaContainer"]["Metadata"][0]["title"] for r in results}
    assert titles == {"The Rich Scene"}
    assert finds(small_stash) - before == 1


async def test_stale_metadata_is_served_while_stash_is_down(provider, small_stash, rich):
    ttl = 0.2
    client = await provider(
        small_stash.url, stash={"metadata_ttl_s": ttl, "retries": 0, "timeout_s": 0.5}
    )
    key = f"stash-{rich['id']}"
    fresh = await get_item(client, key)
    await asyncio.sleep(ttl * 1.5)
    small_stash.fault = "down"
    stale = await get_item(client, key)
    assert stale == fresh
    health = await client.get("/healthz")
    assert health.status == 200  # the index is there: still ready
    assert (await health.json())["plugins"]["stash_source"]["metadata_stale_served"] >= 1


@pytest.mark.parametrize("fault", ["down", "slow"])
async def test_uncached_scene_with_stash_down_is_a_clear_503(provider, small_stash, rich, fault):
    timeout_s, retries = 0.4, 1
    client = await provider(small_stash.url, stash={"timeout_s": timeout_s, "retries": retries})
    small_stash.slow_seconds = timeout_s * 5
    small_stash.fault = fault
    started = time.monotonic()
    resp = await client.get(f"/library/metadata/stash-{rich['id']}")
    elapsed = time.monotonic() - started
    assert resp.status == 503
    assert resp.content_type == "application/json"
    message = (await resp.json())["message"]
    assert f"scene {rich['id']}" in message and "unavailable" in message
    cause = "cannot connect" if fault == "down" else f"no answer within {timeout_s:g} s"
    assert cause in message and small_stash.url in message
    # Every attempt is bounded by timeout_s, each back-off by the client's own formula
    # (base delay doubling per attempt, capped, +50 % jitter). One timeout_s of slack for
    # scheduling on a busy machine.
    base = inspect.signature(StashClient).parameters["backoff_s"].default
    backoff = sum(min(base * 2**a, MAX_BACKOFF_S) * 1.5 for a in range(retries))
    budget = (retries + 1) * timeout_s + backoff + timeout_s
    assert elapsed <= budget


# --- index freshness ------------------------------------------------------------------------


@pytest.fixture
async def fresh_provider(provider, small_stash) -> AsyncIterator[TestClient]:
    yield await provider(small_stash.url, stash={"index_refresh_s": 0.2, "sweep_every_s": 0.2})


async def test_edits_reach_metadata_and_matching(
    fresh_provider, small_library, match, ids, eventually
):
    client = fresh_provider
    scene = next(s for s in small_library.scenes.values() if s["title"] and s["files"])
    sid = scene["id"]
    old_relative = scene["files"][0]["path"].removeprefix(small_library.stash_root + "/")
    assert ids(await match(client, filename=old_relative)) == [sid]
    await get_item(client, f"stash-{sid}")  # cached before the edit
    new_path = f"{small_library.stash_root}/Moved Here/renamed after the edit.mp4"
    small_library.touch(sid, title="New Title", files=[new_path])

    async def title_changed() -> bool:
        return (await get_item(client, f"stash-{sid}"))["title"] == "New Title"

    await eventually(title_changed, 10, "the new title in metadata")

    async def new_path_matches() -> bool:
        return ids(await match(client, filename="Moved Here/renamed after the edit.mp4")) == [sid]

    await eventually(new_path_matches, 10, "a match by the new path")
    assert sid not in ids(await match(client, filename=old_relative))  # the file moved


async def test_deleted_scene_disappears(fresh_provider, small_library, match, ids, eventually):
    client = fresh_provider
    scene = next(s for s in small_library.scenes.values() if s["files"] and len(s["files"]) == 1)
    sid = scene["id"]
    relative = scene["files"][0]["path"].removeprefix(small_library.stash_root + "/")
    assert ids(await match(client, filename=relative)) == [sid]
    await get_item(client, f"stash-{sid}")  # cached before the deletion
    small_library.delete(sid)

    async def gone() -> bool:
        resp = await client.get(f"/library/metadata/stash-{sid}")
        return resp.status == 404 and await match(client, filename=relative) == []

    await eventually(gone, 10, "the deleted scene to disappear")


async def test_index_survives_a_restart(provider, small_stash, small_library, match, ids, tmp_path):
    data_dir = str(tmp_path / "kept")
    first = await provider(small_stash.url, server={"data_dir": data_dir})
    scene = next(s for s in small_library.scenes.values() if s["files"])
    relative = scene["files"][0]["path"].removeprefix(small_library.stash_root + "/")
    assert ids(await match(first, filename=relative)) == [scene["id"]]
    await first.close()

    small_stash.fault = "down"
    second = await provider(small_stash.url, server={"data_dir": data_dir}, ready=False)
    health = await second.get("/healthz")
    assert health.status == 200  # ready at once: the persisted index is enough
    report = (await health.json())["plugins"]["stash_source"]
    assert report["index_scenes"] == len(small_library.scenes)
    assert ids(await match(second, filename=relative)) == [scene["id"]]


# --- the cache alone: what HTTP cannot easily provoke ---------------------------------------


async def test_a_cancelled_first_caller_does_not_strand_the_others():
    """The request that started a fetch may be cancelled (client gone, shutdown); the
    requests waiting on the same scene must still get an answer."""
    release = asyncio.Event()
    calls = 0

    async def fetch(scene_id: int) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await release.wait()
        return {"id": scene_id}

    cache = SceneCache(fetch, ttl_s=60)
    first = asyncio.create_task(cache.get(1))
    await asyncio.sleep(0)
    waiters = [asyncio.create_task(cache.get(1)) for _ in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=2)
    assert results == [{"id": 1}] * 3
    assert calls == 1
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await cache.get(1) == {"id": 1} and calls == 1  # and it was kept


async def test_stale_answers_are_counted_per_request():
    fail = False

    async def fetch(scene_id: int) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        if fail:
            raise StashUnavailable("Stash at http://stash is unavailable: test")
        return {"id": scene_id}

    cache = SceneCache(fetch, ttl_s=60)
    assert await cache.get(1) == {"id": 1}
    cache.expire_all()
    fail = True
    assert await asyncio.gather(*(cache.get(1) for _ in range(4))) == [{"id": 1}] * 4
    assert cache.stale_served == 4
    with pytest.raises(StashUnavailable):
        await cache.get(2)  # nothing to fall back on


async def test_push_only_fields_collections_and_user_rating(provider, small_stash, small_library):
    """Push sync writes what build_metadata returns: collections (studio, parent studio,
    the scene's groups, one per name) and the user rating (rating100 / 10), which never
    travel on the provider's wire."""
    lib = small_library
    studio = _studio_with_parent(lib)
    groups = list(lib.groups.values())[:2]
    sid = lib.add_scene(
        title="Grouped",
        studio=studio["id"],
        groups=[{"group": g["id"], "scene_index": n} for n, g in enumerate(groups, start=1)]
        # A group named like the studio: one collection of that name, not two.
        + [{"group": {**groups[0], "id": 99_999, "name": studio["name"]}}],
        rating100=85,
    )
    unrated = lib.add_scene(title="Unrated")
    client = await provider(small_stash.url)
    _plugin, item = await client.app[HOOKS].build_metadata(f"stash-{sid}")
    assert [c.tag for c in item.collections] == [
        studio["name"],
        studio["parent_studio"]["name"],
        *(g["name"] for g in groups),
    ]
    assert item.user_rating == 8.5
    _plugin, bare = await client.app[HOOKS].build_metadata(f"stash-{unrated}")
    assert bare.collections == [] and bare.user_rating is None
    wire = await get_item(client, f"stash-{sid}")
    assert "collections" not in str(wire).lower() and "userRating" not in wire
