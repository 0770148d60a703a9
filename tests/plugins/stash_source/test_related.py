"""Performers, studios and tags edited in Stash reach the served metadata within one index
refresh (their scenes' updated_at does not change), and their scenes are reported through
on_scenes_changed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import stash2plex_stash_source.plugin as stash_plugin
from stash2plex import hookimpl
from stash2plex_stash_source.client import StashClient
from stash2plex_stash_source.fake import FakeStash, Library
from stash2plex_stash_source.index import SceneIndex


class Recorder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @hookimpl
    def on_scenes_changed(self, rating_keys: Sequence[str], app: web.Application) -> None:
        self.calls.append(list(rating_keys))


def _scene_of(lib: Library, **where: Any) -> int:
    for sid, scene in sorted(lib.scenes.items()):
        if all(test(scene) for test in where.values()):
            return sid
    raise LookupError(where)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def served(aiohttp_client, make_app, small_stash: FakeStash, recorder, eventually):
    app = make_app(
        {"stash": {"url": small_stash.url, "timeout_s": 2.0, "index_refresh_s": 0.05}},
        plugins=[("stash_source", stash_plugin), ("recorder", recorder)],
    )
    client = await aiohttp_client(app)

    async def healthy() -> bool:
        return (await client.get("/healthz")).status == 200

    await eventually(healthy, what="the first build")
    return client


async def _item(client: Any, sid: int) -> dict[str, Any]:
    resp = await client.get(f"/library/metadata/stash-{sid}")
    assert resp.status == 200
    return (await resp.json())["MediaContainer"]["Metadata"][0]


async def test_related_edits_reach_metadata_within_one_refresh(
    served, small_library: Library, recorder: Recorder, eventually
) -> None:
    lib = small_library
    sid = _scene_of(
        lib,
        performers=lambda s: s["performers"],
        tags=lambda s: s["tags"],
        studio=lambda s: s["studio"] and s["studio"]["parent_studio"],
    )
    scene = lib.scenes[sid]
    performer, studio, tag = scene["performers"][0], scene["studio"], scene["tags"][0]
    parent = studio["parent_studio"]
    # Cached now: without the report's cache drop, the old values would be served for
    # metadata_ttl_s (600 s).
    before = await _item(served, sid)
    assert recorder.calls == []  # the first build and the polls after it: no change

    async def reported(n: int) -> None:
        async def check() -> bool:
            return len(recorder.calls) >= n and f"stash-{sid}" in recorder.calls[n - 1]

        await eventually(check, what=f"report {n}")

    lib.touch_related("performers", performer["id"], name="Renamed Performer")
    await reported(1)
    item = await _item(served, sid)
    assert item["Role"][0]["tag"].startswith("Renamed Performer")  # + (disambiguation)
    renamed_role = item["Role"][0]

    # A new photo: Stash's image URL (its ?t= change stamp) moves on.
    lib.touch_related("performers", performer["id"], _has_image=True)
    await reported(2)
    role = (await _item(served, sid))["Role"][0]
    assert role.get("thumb") and role.get("thumb") != renamed_role.get("thumb")
    assert before["Role"][0]["tag"] != role["tag"]

    lib.touch_related("tags", tag["id"], name="Renamed Tag")
    await reported(3)
    assert "Renamed Tag" in [g["tag"] for g in (await _item(served, sid))["Genre"]]

    lib.touch_related("studios", studio["id"], name="Renamed Studio", _has_image=True)
    await reported(4)
    item = await _item(served, sid)
    assert item["studio"] == "Renamed Studio"
    assert any(i["type"] == "clearLogo" for i in item["Image"])
    # The index's copy of the studio name (what a scan's candidates show) follows too.
    resp = await served.post(
        "/library/metadata/matches",
        json={"type": 1, "filename": scene["files"][0]["path"], "manual": 1},
    )
    listed = (await resp.json())["MediaContainer"]["Metadata"]
    assert next(m for m in listed if m["ratingKey"] == f"stash-{sid}")["studio"] == (
        "Renamed Studio"
    )

    # The parent studio appears in its children's scenes.
    lib.touch_related("studios", parent["id"], name="Renamed Network")
    await reported(5)
    assert "Renamed Network" in [s["tag"] for s in (await _item(served, sid))["Studio"]]
    others = {f"stash-{i}" for i, s in lib.scenes.items() if s["studio"] is studio}
    assert others <= set(recorder.calls[4])
    assert len(recorder.calls) == 5


@pytest.fixture
async def stash_client(small_stash: FakeStash) -> AsyncIterator[StashClient]:
    async with aiohttp.ClientSession() as session:
        yield StashClient(small_stash.url, session=session, timeout_s=2, retries=1)


async def test_related_poll_dedupes_and_starts_after_the_build(
    tmp_path: Path, stash_client: StashClient, small_stash: FakeStash, small_library: Library
) -> None:
    lib = small_library
    with SceneIndex(tmp_path / "i.sqlite3") as index:
        await index.build(stash_client)
        assert await index.refresh_related(stash_client) == 0  # where to start: no change
        assert index.pending_changes() == []
        performer = next(iter(lib.performers.values()))
        lib.touch_related("performers", performer["id"], disambiguation="the second")
        showing = sorted(i for i, s in lib.scenes.items() if performer in s["performers"])
        assert showing
        small_stash.operations.clear()
        assert await index.refresh_related(stash_client) == len(showing)
        assert index.pending_changes() == showing
        assert "Stash2PlexScenesWithPerformers" in small_stash.operations
        await index.forget_changes(showing)
        # Delivered again by the overlap margin, unchanged: not a change.
        small_stash.operations.clear()
        assert await index.refresh_related(stash_client) == 0
        assert index.pending_changes() == []
        assert "Stash2PlexScenesWithPerformers" not in small_stash.operations


async def test_related_poll_pages_through_every_kind(
    tmp_path: Path, stash_client: StashClient, small_library: Library
) -> None:
    lib = small_library
    with SceneIndex(tmp_path / "i.sqlite3") as index:
        await index.build(stash_client)
        await index.refresh_related(stash_client)
        performers = list(lib.performers.values())[:5]
        for p in performers:
            lib.touch_related("performers", p["id"], name=p["name"] + " II")
        tag = next(iter(lib.tags.values()))
        lib.touch_related("tags", tag["id"], name="Paged Tag")
        want = sorted(
            i
            for i, s in lib.scenes.items()
            if any(p in s["performers"] for p in performers) or tag in s["tags"]
        )
        # Pages of 2: performers need three, tags one, studios none.
        assert await index.refresh_related(stash_client, page_size=2) == len(want)
        assert index.pending_changes() == want
