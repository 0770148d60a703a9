"""The report over HTTP and its life: resolved gaps leave, recurring ones come back, a
scan that dies midway leaves the previous report whole."""

from __future__ import annotations

import asyncio
import json

from gapfakes import MemoryCatalog, MemoryPlex, MemoryPush, Sides, at, item, scene

from stash2plex import GapKind, PlexAgentKind
from stash2plex_gap_scheduler.detector import STATE


def sides() -> Sides:
    plex = MemoryPlex(
        [
            item("1", "/media/videos/a.mp4"),
            item("2", "/media/videos/b.mp4", agent=PlexAgentKind.OTHER, agent_detail="plex"),
            *(item(str(n), f"/media/videos/p{n}.mp4") for n in range(10, 15)),
        ]
    )
    catalog = MemoryCatalog(
        [
            scene(1, "/data/videos/a.mp4", updated=at(1)),
            scene(2, "/data/videos/b.mp4", updated=at(1)),
            scene(3, "/data/videos/c.mp4", updated=at(1)),
        ]
    )
    # stash-3 was pushed once (to an item since deleted from Plex)
    pushed = {"stash-1": at(2), "stash-2": at(2), "stash-3": at(2)}
    return Sides(plex, catalog, MemoryPush(pushed))


async def test_get_gaps_pages_and_filters(gaps_app, aiohttp_client):
    app = gaps_app(sides())
    client = await aiohttp_client(app)
    empty = await (await client.get("/gaps")).json()
    assert empty["total"] == 0 and empty["last_scan"] is None and empty["gaps"] == []

    await app[STATE].detector.scan("test")
    body = await (await client.get("/gaps")).json()
    assert body["total"] == 7
    assert body["counts"] == {
        "unmatched": 0,
        "plex_only": 5,
        "stash_only": 1,
        "other_agent": 1,
        "stale": 0,
        "unmappable": 0,
    }
    assert body["last_scan"]["status"] == "ok" and body["last_scan"]["trigger"] == "test"
    assert body["last_scan"]["at"].endswith("Z") and body["last_scan"]["duration_s"] >= 0
    assert body["last_scan"]["plex_items"] == 7 and body["last_scan"]["scenes"] == 3
    gap = next(g for g in body["gaps"] if g["kind"] == "other_agent")
    assert set(gap) == {
        "kind",
        "plex_path",
        "stash_path",
        "scene_id",
        "rating_key",
        "plex_rating_key",
        "title",
        "detail",
        "first_seen",
        "last_seen",
    }
    assert gap["rating_key"] == "stash-2" and gap["plex_rating_key"] == "2"

    page = await (await client.get("/gaps?kind=plex_only&offset=3&limit=10")).json()
    assert page["total"] == 5 and len(page["gaps"]) == 2
    assert {g["kind"] for g in page["gaps"]} == {"plex_only"}
    one = await (await client.get("/gaps?limit=1")).json()
    assert len(one["gaps"]) == 1 and one["total"] == 7


async def test_post_gaps_scan_starts_one_scan_with_the_token(gaps_app, aiohttp_client):
    off = await aiohttp_client(gaps_app(sides()))
    resp = await off.post("/gaps/scan")
    assert resp.status == 403 and "scan_token" in (await resp.json())["message"]

    app = gaps_app(sides(), gaps={"scan_token": "t0ken"})
    client = await aiohttp_client(app)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "t0ken"}):
        resp = await client.post("/gaps/scan", headers=headers)
        assert resp.status == 401 and "Bearer" in (await resp.json())["message"]
    assert (await (await client.get("/gaps")).json())["last_scan"] is None

    resp = await client.post("/gaps/scan", headers={"Authorization": "Bearer t0ken"})
    assert resp.status == 202 and (await resp.json())["scan"] == "started"
    for _ in range(200):
        body = await (await client.get("/gaps")).json()
        if body["last_scan"] is not None:
            break
        await asyncio.sleep(0.02)
    assert body["last_scan"]["trigger"] == "route" and body["total"] == 7

    app[STATE].detector.running = 1.0  # as while a scan runs
    resp = await client.post("/gaps/scan", headers={"Authorization": "Bearer t0ken"})
    assert resp.status == 409 and "already running" in (await resp.json())["message"]
    app[STATE].detector.running = None


async def test_bad_query_values_get_400_json(gaps_app, aiohttp_client):
    client = await aiohttp_client(gaps_app(sides()))
    for query, word in [
        ("kind=nope", "kind must be one of"),
        ("offset=-1", "offset must be a whole number"),
        ("limit=0", "limit must be between 1 and 1000"),
        ("limit=5000", "limit must be at most 1000"),
        ("limit=ten", "limit must be a whole number"),
    ]:
        resp = await client.get(f"/gaps?{query}")
        assert resp.status == 400, query
        body = await resp.json()
        assert word in body["message"], body
        assert body["error"] == "Bad Request"


async def test_resolved_gap_leaves_and_a_recurring_one_returns_as_new(gaps_app):
    fixture = sides()
    app = gaps_app(fixture)
    async with app_started(app) as detector:
        await detector.scan("test")
        first, _ = await detector.store.report(kind="stash_only")
        assert [g.gap.rating_key for g in first] == ["stash-3"]
        announced = len(fixture.broadcast)
        assert announced == 7

        # Plex gets stash-3: the gap is resolved and leaves
        fixture.plex.items.append(item("3", "/media/videos/c.mp4"))
        row = await detector.scan("test")
        assert row.stats["resolved"] == 1 and row.stats["new"] == 0
        assert (await detector.store.counts())["stash_only"] == 0
        assert len(fixture.broadcast) == announced  # nothing new: nothing broadcast

        # ...a gap seen again keeps its first_seen
        again, _ = await detector.store.report(kind="other_agent")
        before, _ = await detector.store.report(kind="other_agent")
        assert again[0].first_seen == before[0].first_seen

        # and it leaves Plex again: the gap recurs, as new, broadcast once more
        fixture.plex.items.pop()
        await asyncio.sleep(0.01)
        row = await detector.scan("test")
        assert row.stats["new"] == 1
        back, _ = await detector.store.report(kind="stash_only")
        assert back[0].first_seen > first[0].first_seen
        assert fixture.broadcast[-1].kind is GapKind.STASH_ONLY
        assert len(fixture.broadcast) == announced + 1


async def test_a_scan_interrupted_midway_leaves_the_previous_report(gaps_app, aiohttp_client):
    fixture = sides()
    app = gaps_app(fixture)
    client = await aiohttp_client(app)
    detector = app[STATE].detector
    await detector.scan("test")
    before = await (await client.get("/gaps")).json()

    fixture.plex.items.append(item("3", "/media/videos/c.mp4"))  # would resolve stash_only
    fixture.plex.fail_after = 4  # Plex fails while its listing is read
    row = await detector.scan("test")
    assert row.status == "failed" and "Plex went away" in row.error
    after = await (await client.get("/gaps")).json()
    assert after["gaps"] == before["gaps"] and after["counts"] == before["counts"]
    assert after["last_scan"]["status"] == "failed"
    assert after["last_good_scan"]["at"] == before["last_scan"]["at"]

    # a scan cancelled midway (the server stopping) changes nothing either
    fixture.plex.fail_after = None
    gate = asyncio.Event()
    original = fixture.catalog.scenes

    async def slow_scenes():
        async for one in original():
            await gate.wait()
            yield one

    fixture.catalog.scenes = slow_scenes
    task = asyncio.create_task(detector.scan("test"))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    fixture.catalog.scenes = original
    assert (await (await client.get("/gaps")).json())["gaps"] == before["gaps"]

    row = await detector.scan("test")  # the lock was released, the staging table emptied
    assert row.status == "ok"
    assert (await (await client.get("/gaps")).json())["counts"]["stash_only"] == 0


async def test_gaps_fix_and_auto_push_hand_stale_scenes_to_push_sync(gaps_app):
    fixture = sides()
    fixture.plex.items.append(item("3", "/media/videos/c.mp4"))
    del fixture.push.ledger["stash-3"]  # never pushed
    fixture.catalog.scenes_[0] = scene(1, "/data/videos/a.mp4", updated=at(5))  # changed
    app = gaps_app(fixture, gaps={"auto_push": True})
    async with app_started(app) as detector:
        await detector.scan("test")
    assert fixture.push.queued == [(["stash-1", "stash-3"], "gaps: auto_push after a scan")]

    without = Sides(fixture.plex, fixture.catalog, None)
    app = gaps_app(without)
    async with app_started(app) as detector:
        assert await detector.push_stale("test") is None


def app_started(app):
    from contextlib import asynccontextmanager

    from stash2plex import started

    @asynccontextmanager
    async def run():
        async with started(app):
            yield app[STATE].detector

    return run()


async def test_before_start_up_the_report_is_a_503_json(gaps_app):
    from aiohttp.test_utils import make_mocked_request

    app = gaps_app(sides())  # built, not started: no detector yet
    route = next(r for r in app.router.routes() if r.resource.canonical == "/gaps")
    response = await route.handler(make_mocked_request("GET", "/gaps", app=app))
    assert response.status == 503 and response.content_type == "application/json"
    assert json.loads(response.body)["message"] == "gaps not started"
