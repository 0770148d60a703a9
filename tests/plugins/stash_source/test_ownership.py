"""An index belongs to one Stash: it records the Stash it came from (URL, and the
installation's identity when reachable) and an index from another source is never served."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from stash2plex import HOOKS
from stash2plex_stash_source.fake import FakeStash, Library, generate_library
from stash2plex_stash_source.source import INDEX_FILE, SAMPLE_INDEX_FILE


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_sample_index_is_never_served_for_a_real_stash(
    provider, match, ids, tmp_path: Path
) -> None:
    """The quick start (sample library), then the same data directory pointed at a real
    Stash that cannot be reached: 503 and no match, never the sample's scenes."""
    sample = generate_library(scenes=20, seed=7)  # what the provider generates
    some = next(f for f in sample.plex_files(relative=True) if f.expected_scene_id)
    first = await provider("", stash={"sample_scenes": 20})
    assert ids(await match(first, filename=some.plex_path)) == [some.expected_scene_id]
    await first.close()
    data = tmp_path / "data"
    assert (data / SAMPLE_INDEX_FILE).exists() and not (data / INDEX_FILE).exists()

    real = await provider(
        f"http://127.0.0.1:{closed_port()}", stash={"retries": 0, "timeout_s": 0.5}, ready=False
    )
    for _ in range(3):
        resp = await real.get("/healthz")
        assert resp.status == 503
        details = (await resp.json())["plugins"]["stash_source"]
        assert details["index_scenes"] == 0 and details["sample_library"] is False
        assert await match(real, filename=some.plex_path) == []
        catalog = await real.app[HOOKS].scene_catalog()
        assert catalog is not None and not catalog.ready
        assert [s async for s in catalog.scenes()] == []
        await asyncio.sleep(0.2)


async def test_another_stash_behind_the_same_url_is_rebuilt(
    provider, small_stash: FakeStash, small_library: Library, match, ids, eventually, log_events
) -> None:
    first = await provider(small_stash.url)
    mine = next(f for f in small_library.plex_files(relative=True) if f.expected_scene_id)
    assert ids(await match(first, filename=mine.plex_path)) == [mine.expected_scene_id]
    await first.close()

    # Another installation now answers at that URL (a container swapped, a restore).
    other = generate_library(scenes=15, seed=42, stash_root="/volume2/other")
    small_stash.library = other
    small_stash.database_path = "/volume2/stash/stash-go.sqlite"
    log_events()
    second = await provider(small_stash.url, stash={"index_refresh_s": 0.1}, ready=False)
    # Asked before serving: the first answer is already not the other installation's
    # index (empty and 503, or, on a fast machine, already rebuilt).
    resp = await second.get("/healthz")
    scenes = (await resp.json())["plugins"]["stash_source"]["index_scenes"]
    assert (resp.status, scenes) in ((503, 0), (200, len(other.scenes)))

    async def rebuilt() -> bool:
        resp = await second.get("/healthz")
        body = await resp.json()
        return resp.status == 200 and body["plugins"]["stash_source"]["index_scenes"] == len(
            other.scenes
        )

    await eventually(rebuilt, what="the rebuild from the other Stash")
    foreign = [e for e in log_events() if e["event"] == "index.foreign"]
    assert foreign and foreign[0]["action"] == "rebuild"
    theirs = next(f for f in other.plex_files(relative=True) if f.expected_scene_id)
    assert ids(await match(second, filename=theirs.plex_path)) == [theirs.expected_scene_id]
    catalog = await second.app[HOOKS].scene_catalog()
    assert len([s async for s in catalog.scenes()]) == len(other.scenes)


async def test_a_changed_url_is_another_source(
    provider, small_stash: FakeStash, small_library: Library, match, ids, eventually
) -> None:
    first = await provider(small_stash.url)
    await first.close()
    # The same Stash under a new address is rebuilt too: the URL is part of the identity.
    other = generate_library(scenes=10, seed=3)
    async with FakeStash(other) as moved:
        second = await provider(moved.url)
        body = await (await second.get("/healthz")).json()
        assert body["plugins"]["stash_source"]["index_scenes"] == len(other.scenes)
    await second.close()
    # ... and so is an unreachable one: nothing of the last index is served meanwhile.
    gone = await provider(
        f"http://127.0.0.1:{closed_port()}", stash={"retries": 0, "timeout_s": 0.5}, ready=False
    )
    resp = await gone.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["plugins"]["stash_source"]["index_scenes"] == 0
