"""Push sync end to end over loopback: the real stash_source against the fake Stash, the
real plex plugin against the fake PMS, path_regex between them, the webhook in front."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import stash2plex_path_regex.plugin as path_plugin
import stash2plex_plex.plugin as plex_plugin
import stash2plex_plex_push.plugin as push_plugin
import stash2plex_stash_source.plugin as stash_plugin
from stash2plex import HOOKS
from stash2plex_plex.fake import FakePMS, plex_section
from stash2plex_stash_source.fake import FakeStash, Library, generate_library

from .conftest import free_port, until

AUTH = {"Authorization": "Bearer s3cret"}
STASH_ROOT = "/data/stash"
PLEX_ROOT = "/media/plex"


def _chosen(library: Library, count: int) -> list[dict[str, Any]]:
    """Plain scenes: one file under the root, a studio, two tags or more."""
    out = []
    for scene in library.scenes.values():
        files = scene["files"]
        if (
            len(files) == 1
            and files[0]["path"].startswith(STASH_ROOT + "/")
            and scene.get("studio")
            and len(scene.get("tags") or []) >= 2
            and "Release" not in files[0]["path"]
        ):
            out.append(scene)
        if len(out) == count:
            break
    return out


def _plex_path(scene: dict[str, Any]) -> str:
    return PLEX_ROOT + scene["files"][0]["path"][len(STASH_ROOT) :]


def _tags(scene: dict[str, Any]) -> list[str]:
    return list({t["name"].casefold(): t["name"] for t in scene["tags"]}.values())


class World:
    def __init__(self, library: Library, stash: FakeStash, pms: FakePMS) -> None:
        self.library, self.stash, self.pms = library, stash, pms
        self.scenes = _chosen(library, 6)
        self.item: dict[int, str] = {}  # scene id -> Plex ratingKey
        pms.add_section("1", "Stash", locations=[PLEX_ROOT])
        for scene in self.scenes:
            added = pms.add_item("1", f"file {scene['id']}", files=[_plex_path(scene)])
            self.item[scene["id"]] = added.rating_key
        self.client: TestClient | None = None

    async def start(self, serve, make_app, **push: Any) -> TestClient:
        port = free_port()
        raw = {
            "server": {"host": "127.0.0.1", "port": port},
            "stash": {"url": self.stash.url, "timeout_s": 2.0, "index_refresh_s": 0.3},
            "path_regex": {
                "rules": [{"name": "nas", "plex_prefix": PLEX_ROOT, "stash_prefix": STASH_ROOT}]
            },
            "plex": plex_section(self.pms),
            "push": {
                "webhook_token": "s3cret",
                "backoff_s": 0.05,
                "max_backoff_s": 0.2,
                "poll_s": 0.05,
                "rate_per_s": 0,
                "ramp_s": 0.05,
                "breaker_cooldown_s": 0.3,
                **push,
            },
        }
        app = make_app(
            raw,
            plugins=[
                ("stash_source", stash_plugin),
                ("path_regex", path_plugin),
                ("plex", plex_plugin),
                ("plex_push", push_plugin),
            ],
        )
        self.client = client = await serve(app)
        library = await app[HOOKS].plex_library()
        assert library is not None
        await until(lambda: library.state().items >= len(self.scenes), within_s=20)
        catalog = await app[HOOKS].scene_catalog()
        assert catalog is not None
        await until(lambda: catalog.ready, within_s=20)
        return client

    async def hook(self, scene_id: int, event: str = "Scene.Update.Post") -> None:
        assert self.client is not None
        resp = await self.client.post(
            "/push/webhook", json={"event": event, "id": scene_id}, headers=AUTH
        )
        assert resp.status == 202, await resp.text()

    async def status(self) -> dict[str, Any]:
        assert self.client is not None
        return await (await self.client.get("/push/status")).json()

    async def drained(self) -> bool:
        s = await self.status()
        return s["pending"] == 0 and s["retrying"] == 0 and s["sweeps"] == 0

    def plex_item(self, scene_id: int):
        return self.pms.items[self.item[scene_id]]

    def writes(self) -> int:
        return len(self.pms.writes)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    library = generate_library(scenes=60, seed=5)
    async with FakeStash(library) as stash, FakePMS() as pms:
        pms.token = "fake-plex-token"
        yield World(library, stash, pms)


async def test_push_writes_locks_and_replaces_lists(world, serve, make_app):
    await world.start(serve, make_app)
    scene = world.scenes[0]
    sid = scene["id"]
    await world.hook(sid)
    await until(world.drained, within_s=20)
    item = world.plex_item(sid)
    assert item.tags["genre"] == _tags(scene)
    assert scene["studio"]["name"] in item.tags["collection"]
    assert item.fields["studio"] == scene["studio"]["name"]
    assert item.fields["contentRating"] == "XXX"
    assert {"title", "genre", "collection", "studio"} <= item.locked
    uploads = [w for w in world.pms.writes_to(item.rating_key) if w.method == "POST"]
    assert len(uploads) == 2  # poster and background, as bytes

    # A tag removed in Stash disappears from Plex; the source's refresh is the trigger
    # (on_scenes_changed), no webhook needed.
    keep = scene["tags"][0]
    world.library.touch(sid, tags=[keep["id"]])
    await until(lambda: world.plex_item(sid).tags.get("genre") == [keep["name"]], within_s=20)
    await until(world.drained, within_s=20)

    # Idempotence: pushing an unchanged scene again sends nothing.
    before = world.writes()
    for _ in range(3):
        await world.hook(sid)
    await until(world.drained, within_s=20)
    assert world.writes() == before
    status = await world.status()
    assert status["dead"] == 0


async def test_503_storm_breaker_opens_then_everything_drains(world, serve, make_app):
    await world.start(serve, make_app, breaker_threshold=3)
    world.pms.fault = "503"  # every request fails until cleared
    for scene in world.scenes:
        await world.hook(scene["id"])
    await until(lambda: _breaker(world, "open"), within_s=20)
    status = await world.status()
    assert status["dead"] == 0
    assert status["outages"] and status["outages"][0]["end"] is None
    # Plex down delays pushes; it never makes the provider unhealthy.
    assert world.client is not None
    health = await world.client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["plugins"]["plex_push"]["breaker"] == "open"
    world.pms.fault = None
    await until(world.drained, within_s=30)
    status = await world.status()
    assert status["breaker"]["state"] == "closed"
    assert status["dead"] == 0
    assert status["outages"][0]["end"] is not None
    for scene in world.scenes:  # nothing lost
        assert world.plex_item(scene["id"]).tags["genre"] == _tags(scene)


async def _breaker(world: World, state: str) -> bool:
    return (await world.status())["breaker"]["state"] == state


async def test_401_goes_to_the_dead_letters(world, serve, make_app):
    await world.start(serve, make_app)
    world.pms.fault = "401"
    sid = world.scenes[1]["id"]
    await world.hook(sid)
    await until(lambda: _dead(world, 1), within_s=20)
    world.pms.fault = None
    status = await world.status()
    assert status["breaker"]["state"] == "closed"


async def _dead(world: World, count: int) -> bool:
    return (await world.status())["dead"] == count


async def test_429_retry_after_is_honoured(world, serve, make_app):
    await world.start(serve, make_app)
    world.pms.retry_after_s = 1
    world.pms.fault, world.pms.fault_count = "429", 1
    sid = world.scenes[2]["id"]
    started = time.monotonic()
    await world.hook(sid)
    await until(lambda: world.plex_item(sid).tags.get("genre") == _tags(world.scenes[2]))
    assert time.monotonic() - started >= 1.0
    await until(world.drained)
    assert (await world.status())["dead"] == 0


async def test_item_our_provider_matched_is_refreshed_and_gets_push_only_fields(
    world, serve, make_app
):
    scene = world.scenes[3]
    sid = scene["id"]
    # Plex matched this file with our provider: its guid names the scene.
    ours = world.pms.add_item(
        "1",
        "Matched",
        files=[f"{PLEX_ROOT}/elsewhere/matched-{sid}.mp4"],
        guid=f"tv.plex.agents.custom.stash2plex://movie/stash-{sid}",
    )
    await world.start(serve, make_app)
    await world.hook(sid)
    await until(world.drained, within_s=20)
    assert ours.refreshed == 1  # the provider brings title, tags, performers...
    assert scene["studio"]["name"] in ours.tags["collection"]  # ...push what it cannot
    assert "genre" not in ours.tags
    assert "collection" in ours.locked
    # When our provider matched an item, that item is the target: another item holding
    # the scene's file under a local guid is not written as well.
    assert world.plex_item(sid).tags.get("genre") is None
