"""The worker against an in-memory Plex, behind the real hooks and a served app."""

from __future__ import annotations

from stash2plex import PlexPermanent, PlexTransient, Tag
from stash2plex_plex_push.service import get_service

from .conftest import until


async def _drained(app) -> bool:
    counts = await get_service(app).store.call(get_service(app).store.store.counts)
    return counts.pending == 0 and counts.retrying == 0 and counts.sweeps == 0


async def test_found_by_mapped_path_written_locked_and_replaced(push_app, serve, plex, source):
    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1, genres=[Tag(tag="Outdoor"), Tag(tag="Kissing")])
    app = push_app()
    await serve(app)
    service = get_service(app)
    await service.enqueue(["stash-1"], "test")
    await until(lambda: _drained(app))
    values = plex.values["101"]
    assert values["title"] == "Scene 1"
    assert values["genre"] == ["Outdoor", "Kissing"]
    assert values["collection"] == ["Studio A"]
    assert values["userRating"] == "8"
    assert {"title", "genre", "actor", "collection", "thumb", "art"} <= plex.locked["101"]
    assert plex.images["101"] == {"poster": b"poster-1", "background": b"shot-1"}
    assert plex.count("edit") == 1 and plex.count("upload") == 2

    # A tag removed in Stash disappears from Plex: the list is replaced, in one edit.
    plex.requests.clear()
    source.scene(1, genres=[Tag(tag="Outdoor")])
    await service.enqueue(["stash-1"], "test")
    await until(lambda: _drained(app))
    assert plex.values["101"]["genre"] == ["Outdoor"]
    assert plex.requests == [("edit", "101")]  # artwork unchanged: no upload

    # Unchanged: zero requests.
    plex.requests.clear()
    await service.enqueue(["stash-1"], "test")
    await until(lambda: _drained(app))
    assert plex.requests == []
    [record] = (await service.records()).values()
    assert record.plex_rating_key == "101"


async def test_new_artwork_url_with_the_same_bytes_is_not_uploaded(push_app, serve, plex, source):
    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1)
    app = push_app()
    await serve(app)
    service = get_service(app)
    await service.enqueue(["stash-1"], "test")
    await until(lambda: _drained(app))
    plex.requests.clear()
    source.artwork["/images/scene/1/cover/2"] = b"poster-1"  # same bytes, new stamp
    source.artwork["/images/scene/1/screenshot/2"] = b"a new screenshot"
    source.scene(1, version=2, summary="edited")
    await service.enqueue(["stash-1"], "test")
    await until(lambda: _drained(app))
    assert sorted(plex.requests) == [("edit", "101"), ("upload", "101")]
    assert plex.images["101"]["background"] == b"a new screenshot"


async def test_item_our_provider_matched_is_refreshed_then_gets_push_only_fields(
    push_app, serve, plex, source
):
    plex.add("202", ("/plex/elsewhere.mp4",), provider_key="stash-2")
    source.scene(2)
    app = push_app()
    await serve(app)
    await get_service(app).enqueue(["stash-2"], "test")
    await until(lambda: _drained(app))
    assert plex.requests[:2] == [("refresh", "202"), ("edit", "202")]
    assert plex.values["202"] == {"userRating": "8", "collection": ["Studio A"]}


async def test_503_storm_opens_the_breaker_and_drains_after(push_app, serve, plex, source):
    for n in range(1, 11):
        plex.add(str(100 + n), (f"/plex/scene{n}.mp4",))
        source.scene(n)
    plex.down = True
    app = push_app({"breaker_threshold": 3, "breaker_cooldown_s": 0.1})
    await serve(app)
    service = get_service(app)
    await service.enqueue([f"stash-{n}" for n in range(1, 11)], "test")
    await until(lambda: service.worker.breaker.state in ("open", "half_open"))
    failed_while_open = plex.count()
    status = await service.status()
    assert status["breaker"]["state"] in ("open", "half_open")
    assert status["dead"] == 0
    assert failed_while_open < 10  # the breaker held most jobs back
    plex.down = False
    await until(lambda: _drained(app))
    status = await service.status()
    assert status["breaker"]["state"] == "closed"
    assert status["dead"] == 0
    assert all(plex.values[str(100 + n)]["title"] == f"Scene {n}" for n in range(1, 11))
    [outage] = status["outages"]
    assert outage["end"] is not None


async def test_401_goes_to_the_dead_letters_at_once(push_app, serve, plex, source):
    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1)
    plex.fail.append(PlexPermanent("Plex rejected the token", status=401))
    app = push_app()
    await serve(app)
    service = get_service(app)
    await service.enqueue(["stash-1"], "test")
    await until(lambda: service.store.call(lambda: service.store.store.counts().dead == 1))
    [dead] = await service.store.call(service.store.store.dead_letters)
    assert "401" in dead.error or "token" in dead.error
    assert dead.attempts == 1
    assert plex.count() == 1


async def test_429_retry_after_is_honoured(push_app, serve, plex, source):
    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1)
    plex.fail.append(PlexTransient("slow down", status=429, retry_after=0.3))
    app = push_app()
    await serve(app)
    service = get_service(app)
    loop_time = __import__("time").monotonic
    started = loop_time()
    await service.enqueue(["stash-1"], "test")
    await until(lambda: plex.count("edit") == 2)
    assert loop_time() - started >= 0.3  # not before Plex said
    await until(lambda: _drained(app))
    assert service.worker.breaker.state == "closed"  # a 429 is not an outage


async def test_not_in_plex_is_retried_then_parked_not_dead(push_app, serve, plex, source):
    source.scene(3)
    app = push_app({"not_found_for_s": 0.2})
    await serve(app)
    service = get_service(app)
    await service.enqueue(["stash-3"], "test")
    await until(lambda: service.store.call(lambda: service.store.store.counts().not_in_plex == 1))
    counts = await service.store.call(service.store.store.counts)
    assert counts.dead == 0
    # Plex scans the file later; the next change pushes it.
    plex.add("303", ("/plex/scene3.mp4",))
    await service.enqueue(["stash-3"], "test")
    await until(lambda: _drained(app))
    assert plex.values["303"]["title"] == "Scene 3"


async def test_stash_down_retries_without_touching_the_breaker(push_app, serve, plex, source):
    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1)
    source.unavailable = True
    app = push_app({"breaker_threshold": 1})
    await serve(app)
    service = get_service(app)
    await service.enqueue(["stash-1"], "test")
    await until(lambda: service.store.call(lambda: service.store.store.counts().retrying == 1))
    assert service.worker.breaker.state == "closed"
    source.unavailable = False
    await until(lambda: _drained(app))
    assert plex.values["101"]["title"] == "Scene 1"


async def test_push_all_sweep_and_destroyed_scene(push_app, serve, plex, source):
    for n in (1, 2):
        plex.add(str(100 + n), (f"/plex/scene{n}.mp4",))
        source.scene(n)
    app = push_app()
    await serve(app)
    service = get_service(app)
    await service.sweep(None, "test")
    await until(lambda: _drained(app))
    assert set((await service.records()).keys()) == {"stash-1", "stash-2"}
    await service.enqueue(["stash-2"], "Scene.Destroy.Post", destroyed=True)
    await until(lambda: _drained(app))
    assert set((await service.records()).keys()) == {"stash-1"}


async def test_hooks_push_sync_on_gap_and_on_scenes_changed(push_app, serve, plex, source):
    from stash2plex import HOOKS, Gap, GapKind, PushSync

    plex.add("101", ("/plex/scene1.mp4",))
    plex.add("102", ("/plex/scene2.mp4",))
    source.scene(1)
    source.scene(2)
    app = push_app({"on_gaps": ["stale"]})
    await serve(app)
    hooks = app[HOOKS]
    sync = await hooks.push_sync()
    assert isinstance(sync, PushSync)
    await hooks.on_gap(Gap(kind=GapKind.STASH_ONLY, rating_key="stash-2"))  # not configured
    await hooks.on_gap(Gap(kind=GapKind.STALE, rating_key="stash-1"))
    await until(lambda: _drained(app))
    records = await sync.records()
    assert set(records) == {"stash-1"}
    assert records["stash-1"].pushed_at.tzinfo is not None
    await hooks.on_scenes_changed(["stash-2"])
    await until(lambda: _drained(app))
    assert set(await sync.records()) == {"stash-1", "stash-2"}
    assert await sync.enqueue(["stash-1", "stash-2"], "gaps fix") == 2


async def test_one_worker_per_queue_across_apps(push_app, serve, plex, source):
    """A second app on the same data directory (a CLI command's started app) stands by."""
    first = push_app()
    await serve(first)
    await until(lambda: get_service(first).worker.state == "idle")
    second = push_app()
    await serve(second)
    await until(lambda: get_service(second).worker.state.startswith("standby"))
    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1)
    await get_service(second).enqueue(["stash-1"], "cli")
    await until(lambda: _drained(first))
    assert get_service(first).worker.pushed == 1
    assert get_service(second).worker.pushed == 0


async def test_an_open_breaker_survives_a_restart(push_app, serve, plex, source, tmp_path):
    import time

    from stash2plex_plex_push.store import Breaker, Store

    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1)
    store = Store(tmp_path / "data" / "push-queue.sqlite3")
    now = time.time()
    store.save_breaker(
        Breaker(state="open", failures=5, opened_at=now - 10, retry_at=now + 2,
                cooldown_s=0.5, error="Plex: 503"),
        outage="start",
    )  # fmt: skip
    store.enqueue(["stash-1"], "before the restart")
    app = push_app()
    await serve(app)
    service = get_service(app)
    await until(lambda: service.worker.state == "breaker open")
    assert plex.requests == []  # nothing sent while it is open
    await until(lambda: _drained(app))  # then one job probes, Plex answers, it closes
    status = await service.status()
    assert status["breaker"]["state"] == "closed"
    assert status["outages"][0]["end"] is not None
    assert plex.values["101"]["title"] == "Scene 1"


async def test_a_scene_the_source_does_not_have_is_a_dead_letter(push_app, serve, plex, source):
    app = push_app()
    await serve(app)
    service = get_service(app)
    await service.enqueue(["stash-404"], "typo")
    await until(lambda: service.store.call(lambda: service.store.store.counts().dead == 1))
    [dead] = await service.store.call(service.store.store.dead_letters)
    assert "no scene stash-404" in dead.error


async def test_an_app_started_without_serving_never_pushes(push_app, plex, source):
    """A CLI command of another plugin starts the app for its resources: no worker runs
    there (its artwork route is not served, and the server is the one worker)."""
    import asyncio

    from stash2plex import started

    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1)
    app = push_app()
    async with started(app):
        service = get_service(app)
        assert await service.enqueue(["stash-1"], "gaps fix") == 1
        await until(lambda: service.worker.state.startswith("standby (not serving"))
        await asyncio.sleep(0.2)
        assert plex.requests == []
        counts = await service.store.call(service.store.store.counts)
        assert counts.pending == 1  # left for the server's worker


async def test_jobs_wait_for_plex_item_index_without_spending_attempts(
    push_app, serve, plex, source
):
    import asyncio

    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1)
    plex.indexed = False
    app = push_app()
    await serve(app)
    service = get_service(app)
    await service.enqueue(["stash-1"], "test")
    await until(lambda: service.worker.state == "waiting for Plex's item index")
    await asyncio.sleep(0.1)
    job = await service.store.call(service.store.store.job, "stash-1")
    assert job is not None and job.attempts == 0
    plex.indexed = True
    await until(lambda: _drained(app))
    assert plex.values["101"]["title"] == "Scene 1"


async def test_a_value_dropped_in_stash_is_cleared_only_if_plex_still_holds_ours(
    push_app, serve, plex, source
):
    plex.add("101", ("/plex/scene1.mp4",))
    source.scene(1, summary="Pushed synopsis.", tagline="Pushed tagline.")
    app = push_app()
    await serve(app)
    service = get_service(app)
    await service.enqueue(["stash-1"], "test")
    await until(lambda: _drained(app))
    plex.values["101"]["summary"] = "A user's own synopsis."  # edited in Plex since

    source.scene(1, version=2)  # both dropped in Stash
    await service.enqueue(["stash-1"], "test")
    await until(lambda: _drained(app))
    assert plex.values["101"]["summary"] == "A user's own synopsis."  # spared, still locked
    assert "summary" in plex.locked["101"]
    assert plex.values["101"]["tagline"] == ""  # still ours: cleared, lock released
    assert "tagline" not in plex.locked["101"]
