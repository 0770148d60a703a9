"""The Stash side's contract with the other plugins: the scene catalog (``scene_catalog``)
served from the index, and ``on_scenes_changed`` after a refresh or a rebuild found
changed scenes, their cached metadata already dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import stash2plex_stash_source.plugin as stash_plugin
from stash2plex import HOOKS, CatalogScene, SceneCatalog, cli_command, hookimpl, started
from stash2plex.state import RUNTIME
from stash2plex_stash_source import catalog as catalog_mod
from stash2plex_stash_source.catalog import StashCatalog, utc
from stash2plex_stash_source.client import StashClient
from stash2plex_stash_source.fake import FakeStash, Library
from stash2plex_stash_source.index import SceneIndex
from stash2plex_stash_source.source import get_source

FAST: dict[str, Any] = {"timeout_s": 2, "retries": 1, "backoff_s": 0.005}


class Recorder:
    """A plugin that records every on_scenes_changed call, and what build_metadata answered
    for each key at that moment."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.titles: dict[str, str] = {}

    @hookimpl
    async def on_scenes_changed(self, rating_keys: Sequence[str], app: web.Application) -> None:
        for key in rating_keys:
            found = await app[HOOKS].build_metadata(key)
            if found is not None:
                self.titles[key] = found[1].title
        self.calls.append(list(rating_keys))  # last: the test waits for this


def _expected(library: Library, scene_id: int) -> CatalogScene:
    scene = library.scenes[scene_id]
    files = scene["files"]
    title = scene["title"] or (files[0]["basename"].rsplit(".", 1)[0] if files else "")
    return CatalogScene(
        rating_key=f"stash-{scene_id}",
        title=title or f"Scene {scene_id}",
        files=tuple(f["path"] for f in files),
        updated_at=datetime.fromisoformat(scene["updated_at"]).astimezone(UTC),
    )


async def _catalog(app: web.Application) -> SceneCatalog:
    found = await app[HOOKS].scene_catalog()
    assert isinstance(found, SceneCatalog)
    return found


# --- the catalog ---------------------------------------------------------------------------


async def test_catalog_lists_every_scene_from_the_index(
    provider, small_stash: FakeStash, small_library: Library, eventually
) -> None:
    client = await provider(small_stash.url)
    catalog = await _catalog(client.app)
    assert catalog.ready

    async def upkeep_done() -> bool:  # the first round's last request (next in 300 s)
        return "Stash2PlexRelatedUpdatedSince" in small_stash.operations

    await eventually(upkeep_done, what="the first upkeep round")
    asked = list(small_stash.operations)
    got = [scene async for scene in catalog.scenes()]
    assert small_stash.operations == asked  # served from local state: no Stash request
    assert [s.rating_key for s in got] == [f"stash-{i}" for i in sorted(small_library.scenes)]
    assert got == [_expected(small_library, i) for i in sorted(small_library.scenes)]
    assert all(s.updated_at is not None and s.updated_at.tzinfo is UTC for s in got)
    multi = next(s for s in got if len(s.files) > 1)  # the generator makes some
    assert await catalog.scene(multi.rating_key) == multi
    assert await catalog.scene("stash-999999") is None
    assert await catalog.scene("other-1") is None


async def test_catalog_batches_keep_scenes_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch boundary never splits a scene's files; untitled scenes show their file."""
    monkeypatch.setattr(catalog_mod, "BATCH", 3)
    scenes = [
        {
            "id": i,
            "title": None if i % 4 == 0 else f"T{i}",
            "updated_at": f"2024-01-0{1 + i % 9}T10:00:00+02:00",
            "files": [
                {"path": f"/s/{i}/part{k}.mp4", "basename": f"part{k}.mp4"} for k in range(i % 3)
            ],
        }
        for i in range(1, 13)
    ]
    with SceneIndex(tmp_path / "i.sqlite3") as index:
        await index.load(scenes)
        got = [s async for s in StashCatalog(index, ready=lambda: True).scenes()]
    assert [s.rating_key for s in got] == [f"stash-{i}" for i in range(1, 13)]
    assert [len(s.files) for s in got] == [i % 3 for i in range(1, 13)]
    assert [s.files for s in got][4] == ("/s/5/part0.mp4", "/s/5/part1.mp4")
    assert got[3].title == "part0" and got[11].title == "Scene 12"  # untitled
    assert got[0].updated_at == datetime(2024, 1, 2, 8, 0, tzinfo=UTC)


def test_utc_stamps() -> None:
    assert utc("2024-03-01T12:00:00Z") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert utc("2024-03-01T12:00:00-05:00") == datetime(2024, 3, 1, 17, tzinfo=UTC)
    assert utc("2024-03-01T12:00:00") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert utc("") is None and utc(None) is None and utc("yesterday") is None


async def test_catalog_in_a_cli_app(
    make_app, small_stash: FakeStash, small_library: Library
) -> None:
    """A CLI command's app (no port) gets the catalog once started, and loses it after."""
    app = make_app(
        {"stash": {"url": small_stash.url, "timeout_s": 2.0}},
        plugins=[("stash_source", stash_plugin)],
    )
    assert await app[HOOKS].scene_catalog() is None  # not started: no index open
    async with started(app):
        catalog = await _catalog(app)
        for _ in range(400):
            if catalog.ready:
                break
            await asyncio.sleep(0.05)
        assert catalog.ready
        assert len([s async for s in catalog.scenes()]) == len(small_library.scenes)


async def test_a_cli_command_leaves_the_periodic_refresh_to_the_server(
    make_app, small_stash: FakeStash
) -> None:
    """Built (or refreshed) once for the command, then no upkeep loop beside a server's."""
    app = make_app(
        {"stash": {"url": small_stash.url, "timeout_s": 2.0, "index_refresh_s": 0.05}},
        plugins=[("stash_source", stash_plugin)],
    )
    app[RUNTIME].command = "gaps"  # as the CLI sets it before a command runs
    assert cli_command(app) == "gaps"
    async with started(app):
        source = get_source(app)
        assert source is not None
        for _ in range(400):
            if source._task is not None and source._task.done():
                break
            await asyncio.sleep(0.05)
        assert source._task is not None and source._task.done()
        assert source.rounds == 1 and (await _catalog(app)).ready


# --- on_scenes_changed ---------------------------------------------------------------------


async def test_refresh_reports_changed_scenes_after_dropping_their_metadata(
    aiohttp_client, make_app, small_stash: FakeStash, small_library: Library, eventually
) -> None:
    recorder = Recorder()
    app = make_app(
        {"stash": {"url": small_stash.url, "timeout_s": 2.0, "index_refresh_s": 0.1}},
        plugins=[("stash_source", stash_plugin), ("recorder", recorder)],
    )
    client = await aiohttp_client(app)

    async def healthy() -> bool:
        return (await client.get("/healthz")).status == 200

    await eventually(healthy, what="the first build")
    await asyncio.sleep(0.3)  # a few refreshes after the first build
    assert recorder.calls == []  # the first build is not a change: nothing reported
    before = await client.get("/library/metadata/stash-7")
    assert before.status == 200  # now cached
    small_library.touch(7, title="Renamed In Stash")
    added = small_library.add_scene(title="Brand New")

    async def reported() -> bool:
        return any(call for call in recorder.calls)

    await eventually(reported, what="on_scenes_changed")
    assert recorder.calls == [["stash-7", f"stash-{added}"]]
    # Inside the hook, build_metadata already answered with Stash's new title.
    assert recorder.titles["stash-7"] == "Renamed In Stash"
    assert recorder.titles[f"stash-{added}"] == "Brand New"
    body = await (await client.get("/library/metadata/stash-7")).json()
    assert body["MediaContainer"]["Metadata"][0]["title"] == "Renamed In Stash"
    await asyncio.sleep(0.3)  # more refreshes: nothing new, nothing reported again
    assert len(recorder.calls) == 1


@pytest.fixture
async def index_client(small_stash: FakeStash) -> AsyncIterator[StashClient]:
    async with aiohttp.ClientSession() as session:
        yield StashClient(small_stash.url, session=session, **FAST)


async def test_rebuild_reports_what_the_refresh_missed(
    tmp_path: Path, index_client: StashClient, small_library: Library
) -> None:
    with SceneIndex(tmp_path / "i.sqlite3") as index:
        await index.build(index_client)
        assert index.pending_changes() == []  # a first build is not a change
        small_library.touch(3, code="EDITED")
        added = small_library.add_scene(title="Missed")
        await index.build(index_client)
        assert index.pending_changes() == [3, added]
        await index.forget_changes([3, added])
        await index.build(index_client)
        assert index.pending_changes() == []  # nothing changed since


async def test_pending_changes_survive_a_restart(
    tmp_path: Path, index_client: StashClient, small_library: Library
) -> None:
    path = tmp_path / "i.sqlite3"
    with SceneIndex(path) as index:
        await index.build(index_client)
        small_library.touch(4, title="Changed")
        small_library.touch(9, title="Changed too")
        assert await index.refresh(index_client) == 2
    # Not reported before the process ended: still pending when the index is reopened.
    with SceneIndex(path) as index:
        assert index.pending_changes() == [4, 9]
        await index.forget_changes([4])
        assert index.pending_changes() == [9]
        small_library.delete(9)
        assert await index.sweep(index_client) == 1
        assert index.pending_changes() == []  # a deleted scene is no longer pending


async def test_build_from_another_stash_drops_pending_changes(
    tmp_path: Path, index_client: StashClient, small_library: Library
) -> None:
    with SceneIndex(tmp_path / "i.sqlite3") as index:
        await index.build(index_client)
        small_library.touch(2, title="x")
        await index.refresh(index_client)
        assert index.pending_changes() == [2]
        await index.load([{"id": 2, "title": "other", "files": []}], source="elsewhere")
        assert index.pending_changes() == []
