"""SceneIndex: build / refresh / sweep against the fake Stash, persistence, and lookups that
must never confuse files (LIKE wildcards, Unicode normal forms, case)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from stash2plex_stash_source import index as index_mod
from stash2plex_stash_source.client import StashClient, StashError, StashUnavailable
from stash2plex_stash_source.fake import FakeStash, generate_library
from stash2plex_stash_source.index import (
    SCHEMA_VERSION,
    IndexedFile,
    IndexedScene,
    SceneCard,
    SceneIndex,
    TailFile,
    fold,
    shift_timestamp,
)
from stash2plex_stash_source.matcher import Matcher

FAST: dict[str, Any] = {"timeout_s": 2, "retries": 2, "backoff_s": 0.005}


@pytest.fixture
async def client(stash: FakeStash) -> AsyncIterator[StashClient]:
    async with aiohttp.ClientSession() as session:
        yield StashClient(stash.url, session=session, **FAST)


@pytest.fixture
def index(tmp_path: Path) -> Any:
    idx = SceneIndex(tmp_path / "index.sqlite3")
    yield idx
    idx.close()


def oshash_of(f: dict[str, Any]) -> str | None:
    return next((fp["value"] for fp in f["fingerprints"] if fp["type"] == "oshash"), None)


def assert_same(idx: SceneIndex, lib: Any) -> None:
    """The index holds exactly the library's scenes, field by field."""
    assert idx.stats()["scenes"] == len(lib.scenes)
    assert idx.stats()["files"] == sum(len(s["files"]) for s in lib.scenes.values())
    for sid, scene in lib.scenes.items():
        got = idx.get(sid)
        assert got is not None, sid
        assert got.title == (scene["title"] or None)
        assert got.date == (scene["date"] or None)
        assert got.code == (scene["code"] or None)
        assert got.studio == (scene["studio"]["name"] if scene["studio"] else None)
        assert got.organized is bool(scene["organized"])
        assert got.has_stash_id is bool(scene["stash_ids"])
        assert got.updated_at == scene["updated_at"]
        assert [f.path for f in got.files] == [f["path"] for f in scene["files"]]
        assert [f.position for f in got.files] == list(range(len(scene["files"])))
        assert [f.oshash for f in got.files] == [oshash_of(f) for f in scene["files"]]
        assert [f.size for f in got.files] == [f["size"] for f in scene["files"]]


# --- build ---------------------------------------------------------------------------------


async def test_build_mirrors_stash(index: SceneIndex, client: StashClient, lib, stash) -> None:
    assert not index.ready
    progress: list[tuple[int, int | None]] = []
    with capture_logs() as logs:
        n = await index.build(client, page_size=10, progress=lambda d, t: progress.append((d, t)))
    assert n == len(lib.scenes)
    assert index.ready
    assert_same(index, lib)
    pages = -(-len(lib.scenes) // 10)
    assert stash.operations.count("Stash2PlexScenePage") == pages + (len(lib.scenes) % 10 == 0)
    assert progress[-1] == (len(lib.scenes), len(lib.scenes))
    events = [e for e in logs if e["event"] == "index.build.progress"]
    assert events and {"done", "total", "rate"} <= set(events[0])
    stats = index.stats()
    assert stats["built_at"] and stats["refreshed_at"] and stats["age_s"] < 5
    assert index.watermark == max(s["updated_at"] for s in lib.scenes.values())


async def test_async_progress_callback(index: SceneIndex, client: StashClient) -> None:
    seen: list[int] = []

    async def progress(done: int, _total: int | None) -> None:
        await asyncio.sleep(0)
        seen.append(done)

    await index.build(client, page_size=50, progress=progress)
    assert seen == sorted(seen) and seen[-1] == 200


async def test_readers_see_old_index_until_build_commits(
    index: SceneIndex, client: StashClient, lib
) -> None:
    await index.build(client, page_size=25)
    before = index.stats()["scenes"]
    new_id = lib.add_scene(title="Brand New", files=["/data/stash/New/brand-new.mp4"])
    mid_build: list[tuple[int, bool]] = []

    def progress(_done: int, _total: int | None) -> None:
        mid_build.append((index.stats()["scenes"], index.get(new_id) is not None))

    await index.build(client, page_size=25, progress=progress)
    assert mid_build and all(m == (before, False) for m in mid_build)
    assert index.get(new_id) is not None
    assert index.stats()["scenes"] == before + 1


async def test_failed_build_keeps_old_index(
    index: SceneIndex, client: StashClient, stash: FakeStash, lib
) -> None:
    await index.build(client, page_size=20)
    lib.touch(1, title="Changed Meanwhile")

    def break_stash(done: int, _total: int | None) -> None:
        if done >= 60:
            stash.fault = "500"

    snapshot = index._suffix
    with pytest.raises(StashUnavailable):
        await index.build(client, page_size=20, progress=break_stash)
    stash.fault = None
    assert index.get(1).title != "Changed Meanwhile"
    assert index.stats()["scenes"] == len(lib.scenes)
    # The in-memory snapshot was never touched by the abandoned build: it still answers,
    # and is not read again (for 100k scenes that read costs seconds of CPU, after every
    # rebuild that fails while Stash is away).
    assert index._suffix is snapshot
    some = next(f for s in lib.scenes.values() for f in s["files"])
    assert index.suffix_matches(some["path"].split("/")), "the snapshot is trusted"
    # The writer is not left inside a transaction: the next build works.
    await index.build(client, page_size=20)
    assert index.get(1).title == "Changed Meanwhile"


async def test_build_touches_nothing_until_stash_answers(
    index: SceneIndex, client: StashClient, stash: FakeStash, lib
) -> None:
    await index.build(client, page_size=20)
    changes = index._w.total_changes
    stash.fault = "500"
    with pytest.raises(StashUnavailable):
        await index.build(client, page_size=20)
    # Not one row deleted and restored: with 100k scenes that is seconds of work and tens
    # of megabytes written, at every retry while Stash is away.
    assert index._w.total_changes == changes
    assert not index._w.in_transaction
    stash.fault = None
    assert index.stats()["scenes"] == len(lib.scenes)
    assert await index.build(client, page_size=20) == len(lib.scenes)


async def test_cancelled_build_rolls_back(index: SceneIndex, client: StashClient, stash) -> None:
    await index.build(client, page_size=20)
    stash.fault = "slow"
    stash.slow_seconds = 5
    task = asyncio.ensure_future(index.build(client, page_size=20))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stash.fault = None
    assert index.stats()["scenes"] == 200
    assert await index.refresh(client) == 0  # lock released, writer usable


async def test_empty_library(tmp_path: Path) -> None:
    async with FakeStash(generate_library(scenes=0)) as stash, aiohttp.ClientSession() as s:
        client = StashClient(stash.url, session=s, **FAST)
        idx = SceneIndex(tmp_path / "empty.sqlite3")
        try:
            assert await idx.build(client) == 0
            assert idx.ready and idx.stats()["scenes"] == 0
            assert idx.by_basename("x.mp4") == []
        finally:
            idx.close()


# --- refresh -------------------------------------------------------------------------------


async def test_refresh_picks_up_touched_and_added(
    index: SceneIndex, client: StashClient, lib, stash
) -> None:
    await index.build(client, page_size=50)
    old_mark = index.watermark
    stamp = lib.touch(5, title="Renamed In Stash", organized=True)
    added = lib.add_scene(title="Added Later", files=["/data/stash/Added/later.mp4"])
    stash.operations.clear()
    changed = await index.refresh(client, page_size=7)
    assert changed == 2
    assert stash.operations and set(stash.operations) == {"Stash2PlexScenesUpdatedSince"}
    got = index.get(5)
    assert got.title == "Renamed In Stash" and got.organized
    assert index.get(added).files[0].path == "/data/stash/Added/later.mp4"
    assert index.by_basename("later.mp4")[0][0].id == added
    assert index.watermark >= stamp > old_mark
    assert_same(index, lib)


async def test_refresh_dedupes_overlap(index: SceneIndex, client: StashClient, lib) -> None:
    await index.build(client)
    lib.touch(3, title="Once")
    assert await index.refresh(client) == 1
    # The overlap margin re-delivers scene 3 (and anything within the margin): no rewrite.
    assert await index.refresh(client) == 0
    assert index.get(3).title == "Once"


async def test_refresh_pages_through_equal_timestamps(
    index: SceneIndex, client: StashClient, lib
) -> None:
    await index.build(client)
    # A bulk edit: many scenes share one updated_at second; pages must not skip any.
    ids = sorted(lib.scenes)[:40]
    stamps = [lib.touch(sid, code=f"BULK-{sid}") for sid in ids]
    for sid in ids:
        lib.scenes[sid]["updated_at"] = stamps[-1]
    assert await index.refresh(client, page_size=9) == 40
    assert all(index.get(sid).code == f"BULK-{sid}" for sid in ids)


async def test_refresh_without_watermark_builds(index: SceneIndex, client: StashClient, stash):
    changed = await index.refresh(client)
    assert changed == 200 and index.ready
    assert "Stash2PlexScenePage" in stash.operations


async def test_refresh_from_another_stash_rebuilds(tmp_path: Path, index, client, lib) -> None:
    await index.build(client)
    other_lib = generate_library(scenes=12, seed=99)
    async with FakeStash(other_lib) as other, aiohttp.ClientSession() as s:
        other_client = StashClient(other.url, session=s, **FAST)
        assert await index.sweep(other_client) == 0  # refuses to sweep against a stranger
        await index.refresh(other_client)
        assert index.stats()["scenes"] == 12
        assert_same(index, other_lib)


# --- sweep ---------------------------------------------------------------------------------


async def test_sweep_removes_deleted(index: SceneIndex, client: StashClient, lib, stash) -> None:
    await index.build(client)
    victim = lib.scenes[17]
    victim_hash = oshash_of(victim["files"][0])
    lib.delete(17)
    lib.delete(18)
    stash.operations.clear()
    assert await index.sweep(client, page_size=30) == 2
    assert set(stash.operations) == {"Stash2PlexSceneIdsPage"}
    assert index.get(17) is None and index.get(18) is None
    assert all(s.id != 17 for s in index.by_oshash(victim_hash))
    assert index.stats()["scenes"] == len(lib.scenes)
    assert index.stats()["swept_at"] is not None
    assert index.search(title=victim["title"]) == [] or all(
        s.id != 17 for s in index.search(title=victim["title"])
    )
    assert await index.sweep(client) == 0


async def test_sweep_spares_scenes_newer_than_listing(index: SceneIndex, client, lib) -> None:
    await index.build(client)
    # A scene indexed by refresh whose id is above everything the listing returned
    # (created after the sweep's last page): not a deletion.
    await index.load([*_as_index_rows(lib), _scene(10_000, "/x/new.mp4")], source=client.url)
    assert await index.sweep(client) == 0
    assert index.get(10_000) is not None


# --- persistence ---------------------------------------------------------------------------


async def test_survives_reopen(tmp_path: Path, client: StashClient, lib) -> None:
    path = tmp_path / "persist.sqlite3"
    first = SceneIndex(path)
    await first.build(client)
    stats = first.stats()
    first.close()
    asked = client.requests
    second = SceneIndex(path)
    try:
        # Ready from the file alone: nothing is asked of Stash to open it.
        assert second.get(1) is not None
        assert second.ready
        assert client.requests == asked
        assert second.stats()["scenes"] == stats["scenes"]
        assert second.watermark == stats["watermark"]
        assert_same(second, lib)
        lib.touch(2, title="After Restart")
        assert await second.refresh(client) == 1
    finally:
        second.close()


def test_schema_version_change_resets(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    idx = SceneIndex(path)
    asyncio.run(idx.load([_scene(1, "/a/b.mp4")]))
    idx.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    idx = SceneIndex(path)
    try:
        assert not idx.ready and idx.get(1) is None
    finally:
        idx.close()


def test_corrupt_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    idx = SceneIndex(path)
    try:
        assert not idx.ready
        asyncio.run(idx.load([_scene(1, "/a/b.mp4")]))
        assert idx.get(1) is not None
    finally:
        idx.close()


def test_wal_mode(index: SceneIndex) -> None:
    conn = sqlite3.connect(index.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


# --- lookups -------------------------------------------------------------------------------


def _scene(sid: int, *paths: str, **fields: Any) -> dict[str, Any]:
    files = [
        {
            "path": p,
            "basename": p.replace("\\", "/").rsplit("/", 1)[-1],
            "size": 1000 + sid,
            "duration": 60.0,
            "oshash": fields.pop(f"oshash{i}", f"{sid * 16 + i:016x}"),
        }
        for i, p in enumerate(paths)
    ]
    return {
        "id": str(sid),
        "title": fields.get("title"),
        "date": fields.get("date"),
        "code": fields.get("code"),
        "organized": fields.get("organized", False),
        "updated_at": fields.get("updated_at", "2025-01-01T00:00:00Z"),
        "studio": fields.get("studio"),
        "stash_ids": fields.get("stash_ids", []),
        "files": files,
    }


def _as_index_rows(lib: Any) -> list[dict[str, Any]]:
    return [
        {
            **s,
            "id": str(s["id"]),
            "files": [{**f, "oshash": oshash_of(f)} for f in s["files"]],
        }
        for s in lib.scenes.values()
    ]


NFC_NAME = unicodedata.normalize("NFC", "Café Crème.mp4")
NFD_NAME = unicodedata.normalize("NFD", "Café Crème.mp4")


@pytest.fixture
async def tricky(index: SceneIndex) -> SceneIndex:
    await index.load(
        [
            _scene(1, "/data/Studio/a_b.mp4"),
            _scene(2, "/data/Studio/aXb.mp4"),
            _scene(3, "/data/Studio/100%.mp4"),
            _scene(4, "/data/Studio/100 percent.mp4"),
            _scene(5, f"/data/Studio/{NFC_NAME}"),
            _scene(6, f"/data/Other/{NFD_NAME}"),
            _scene(7, "/data/Studio/Scene.MP4"),
            _scene(8, "/data/Studio/scene.mp4"),
            _scene(9, "/data/A/Show/Pt. I/clip.mp4", "/data/A/Show/Pt. I/clip-extra.mp4"),
            _scene(10, "/data/B/Show/Pt. II/clip.mp4", oshash0="00000000000000aa"),
            _scene(11, "/data/C/copy.mp4", oshash0="00000000000000aa"),
            _scene(12, r"D:\Media\Show\Pt. I\clip.mp4"),
            _scene(13, "/data/x/[weird] #1 'q'.mp4"),
            {**_scene(14), "title": "No Files"},
        ]
    )
    return index


def ids(scenes: list[IndexedScene]) -> list[int]:
    return [s.id for s in scenes]


def test_get(tricky: SceneIndex) -> None:
    s = tricky.get(9)
    assert isinstance(s, IndexedScene)
    assert [f.position for f in s.files] == [0, 1]
    assert s.primary == s.files[0]
    assert isinstance(s.files[0], IndexedFile)
    assert tricky.get(14).files == [] and tricky.get(14).title == "No Files"
    assert tricky.get(999) is None


def test_like_wildcards_do_not_match(tricky: SceneIndex) -> None:
    assert ids(tricky.by_path("/data/Studio/a_b.mp4")) == [1]
    assert ids(tricky.by_path("/data/Studio/aXb.mp4")) == [2]
    assert ids(tricky.by_path("/data/Studio/a%.mp4")) == []
    assert ids(tricky.by_path("/data/Studio/100%.mp4")) == [3]
    assert ids(tricky.by_path("/data/Studio/A_B.mp4", case_sensitive=False)) == [1]
    assert [s.id for s, _f in tricky.by_basename("a_b.mp4")] == [1]
    assert [s.id for s, _f in tricky.by_basename("100%.mp4")] == [3]
    assert [s.id for s, _f in tricky.by_basename("%")] == []


def test_unicode_normal_forms(tricky: SceneIndex) -> None:
    # Stored NFC, asked NFD (a macOS client) and the reverse: the same file.
    assert ids(tricky.by_path(f"/data/Studio/{NFD_NAME}")) == [5]
    assert ids(tricky.by_path(f"/data/Other/{NFC_NAME}")) == [6]
    assert ids(tricky.by_path(f"/data/Other/{NFD_NAME}")) == [6]
    assert sorted(s.id for s, _f in tricky.by_basename(NFD_NAME)) == [5, 6]
    assert sorted(s.id for s, _f in tricky.by_basename(NFC_NAME.upper())) == [5, 6]
    # The path Stash reported is returned as it was, not normalised.
    assert tricky.get(6).files[0].path == f"/data/Other/{NFD_NAME}"


def test_case(tricky: SceneIndex) -> None:
    assert ids(tricky.by_path("/data/Studio/Scene.MP4")) == [7]
    assert ids(tricky.by_path("/data/Studio/scene.mp4")) == [8]
    assert ids(tricky.by_path("/data/studio/SCENE.mp4")) == []
    assert ids(tricky.by_path("/data/studio/SCENE.mp4", case_sensitive=False)) == [7, 8]
    assert sorted(s.id for s, _f in tricky.by_basename("SCENE.mp4")) == [7, 8]


def test_by_oshash(tricky: SceneIndex) -> None:
    assert ids(tricky.by_oshash("00000000000000AA")) == [10, 11]  # duplicates: all of them
    assert ids(tricky.by_oshash(f"{9 * 16 + 1:016x}")) == [9]  # a secondary file
    assert tricky.by_oshash("ffffffffffffffff") == []


def test_oshash_name_confirmation_folds_case_and_normal_form(tricky: SceneIndex) -> None:
    # Scene 6's file is named in NFD (macOS); Plex may send NFC, in another case.
    matcher, oshash = Matcher(tricky), f"{6 * 16:016x}"
    shouted = unicodedata.normalize("NFC", NFC_NAME.upper())
    assert [(h.scene.id, h.score) for h in matcher.by_oshash(oshash, shouted, None)] == [(6, 100)]
    assert [(h.scene.id, h.score) for h in matcher.by_oshash(oshash, "other.mp4", None)] == [
        (6, 97)
    ]


def test_by_basename_returns_the_hit_file(tricky: SceneIndex) -> None:
    hits = tricky.by_basename("clip-extra.mp4")
    assert [(s.id, f.position) for s, f in hits] == [(9, 1)]
    assert len(hits[0][0].files) == 2


def test_special_characters(tricky: SceneIndex) -> None:
    assert ids(tricky.by_path("/data/x/[weird] #1 'q'.mp4")) == [13]


def test_suffix_candidates(tricky: SceneIndex) -> None:
    got = tricky.suffix_candidates(["Show", "Pt. I", "clip.mp4"])
    assert [(s.id, n) for s, _f, n in got] == [(9, 3), (12, 3), (10, 1)]
    # Windows-style stored path, POSIX-style request; case and separators do not matter.
    got = tricky.suffix_candidates(["media", "SHOW", "pt. i", "CLIP.mp4"])
    assert [(s.id, n) for s, _f, n in got][:2] == [(12, 4), (9, 3)]
    assert tricky.suffix_candidates([]) == []
    assert tricky.suffix_candidates(["nothing.mp4"]) == []


def from_memory(idx: SceneIndex, components: list[str]) -> list[tuple[SceneCard, TailFile, int]]:
    got = idx.suffix_matches(components)
    assert got is not None, "the in-memory tails should be current"
    return got


def same_answer(idx: SceneIndex, components: list[str]) -> list[tuple[SceneCard, TailFile, int]]:
    """suffix_matches (memory alone) and suffix_candidates (read back from the database)
    name the same files, in the same order, with the same fields."""
    whole = idx.suffix_candidates(components)
    cards = from_memory(idx, components)
    assert [(s.id, f.position, k) for s, f, k in whole] == [
        (c.id, t.position, k) for c, t, k in cards
    ], components
    for (scene, file, _k), (card, tail, _k2) in zip(whole, cards, strict=True):
        assert (card.title, card.date, card.studio, card.organized, card.has_stash_id) == (
            scene.title or None,
            scene.date,
            scene.studio,
            scene.organized,
            scene.has_stash_id,
        )
        assert card.primary_basename == (None if scene.title else scene.primary_basename)
        assert (tail.duration, tail.name_len) == (file.duration, len(file.basename))
    return cards


def test_suffix_matches_answer_from_memory(tricky: SceneIndex) -> None:
    for components in (
        ["Show", "Pt. I", "clip.mp4"],
        ["media", "SHOW", "pt. i", "CLIP.mp4"],
        ["clip-extra.mp4"],
        [NFD_NAME],
        ["Other", NFC_NAME.upper()],
        ["Studio", "Scene.MP4"],
        ["scene.mp4"],
        ["x", "[weird] #1 'q'.mp4"],
        ["nothing.mp4"],
        [],
    ):
        same_answer(tricky, components)
    # Untitled, found by its second file: the fallback title is the primary file's name.
    ((card, tail, shared),) = from_memory(tricky, ["Pt. I", "clip-extra.mp4"])
    assert (card.id, card.title, card.primary_basename) == (9, None, "clip.mp4")
    assert (tail.position, tail.duration, tail.name_len, shared) == (1, 60.0, 14, 2)


async def test_suffix_matches_over_a_library(index: SceneIndex, lib: Any) -> None:
    await index.load(_as_index_rows(lib))
    for scene in lib.scenes.values():
        for f in scene["files"]:
            parts = f["path"].split("/")
            for depth in (1, 2, 3, len(parts)):
                same_answer(index, parts[-depth:])
            same_answer(index, [p.upper() for p in parts[-2:]])


def same_path_answer(idx: SceneIndex, path: str) -> None:
    """path_matches (memory alone) names the scenes by_path reads from the database, in
    the same order, with the same fields, both with and without case."""
    for case_sensitive in (True, False):
        whole = idx.by_path(path, case_sensitive=case_sensitive)
        cards = idx.path_matches(path, case_sensitive=case_sensitive)
        assert cards is not None, "the in-memory tails should be current"
        assert [c.id for c in cards] == ids(whole), (path, case_sensitive)
        for card, scene in zip(cards, whole, strict=True):
            assert (card.title, card.date, card.studio, card.organized) == (
                scene.title or None,
                scene.date,
                scene.studio,
                scene.organized,
            )


@pytest.mark.parametrize(
    "path",
    [
        "/data/a/b.mp4",
        "/data/a/b.mp4/",
        "D:\\Media\\x\\y.mkv",
        "\\\\nas\\share/z.avi",
        "/a\\b.mp4",
        "//x//y//",
        "plain.mp4",
        "/",
        "",
        "\\",
    ],
)
def test_last_component_is_the_last_of_the_components(path: str) -> None:
    assert index_mod._last_component(path) == (index_mod._components(path)[-1:] or [""])[0]


def test_path_matches_answer_from_memory(tricky: SceneIndex) -> None:
    for path in (
        "/data/Studio/a_b.mp4",
        "/data/Studio/A_B.mp4",
        "/data/Studio/aXb.mp4",
        "/data/Studio/a%.mp4",
        "/data/Studio/100%.mp4",
        f"/data/Studio/{NFD_NAME}",
        f"/data/Other/{NFC_NAME}",
        f"/data/Other/{NFD_NAME}",
        "/data/Studio/Scene.MP4",
        "/data/studio/SCENE.mp4",
        "/data/A/Show/Pt. I/clip-extra.mp4",
        r"D:\Media\Show\Pt. I\clip.mp4",
        r"d:\media\show\pt. i\CLIP.mp4",
        "/data/x/[weird] #1 'q'.mp4",
        "/data/nothing.mp4",
        "clip.mp4",
        "",
    ):
        same_path_answer(tricky, path)


async def test_path_matches_shared_paths_and_normal_form_twins(index: SceneIndex) -> None:
    await index.load(
        [
            _scene(1, f"/data/Twin/{NFC_NAME}"),
            _scene(2, f"/data/Twin/{NFD_NAME}"),  # the same name to Plex, stored NFD
            _scene(3, "/data/Shared/one.mp4"),
            _scene(4, "/data/Shared/one.mp4"),  # one file in two scenes
            _scene(5, f"/data/Solo/{NFD_NAME}"),
        ]
    )
    for path in (
        f"/data/Twin/{NFC_NAME}",
        f"/data/Twin/{NFD_NAME}",
        "/data/Shared/one.mp4",
        f"/data/Solo/{NFC_NAME}",
        f"/data/solo/{NFC_NAME.upper()}",
    ):
        same_path_answer(index, path)
    assert [c.id for c in index.path_matches("/data/Shared/one.mp4") or []] == [3, 4]


async def test_path_matches_over_a_library(index: SceneIndex, lib: Any) -> None:
    await index.load(_as_index_rows(lib))
    for scene in lib.scenes.values():
        for f in scene["files"]:
            same_path_answer(index, f["path"])
            same_path_answer(index, f["path"].upper())


async def test_name_only_quota_follows_the_folded_paths(index: SceneIndex) -> None:
    # Ten files named alike, and nothing else shared: eight are listed, the first by
    # folded path (here the reverse of the id order), as the tails always listed them.
    folders = "zyxwvutsrq"
    await index.load([_scene(n + 1, f"/data/{d}/clip.mp4") for n, d in enumerate(folders)])
    want = [(sid, 1) for sid in range(3, 11)]
    assert [(s.id, k) for s, _f, k in index.suffix_candidates(["other", "clip.mp4"])] == want
    assert [(c.id, k) for c, _t, k in from_memory(index, ["other", "clip.mp4"])] == want
    assert index.suffix_candidates(["other", "clip.mp4"], name_only_limit=0) == []
    assert index.suffix_matches(["other", "clip.mp4"], name_only_limit=0) == []


async def test_matcher_answers_the_same_from_memory(tricky: SceneIndex, lib: Any) -> None:
    matcher = Matcher(tricky)

    def both(parts: list[str], duration_s: float | None = None) -> list[tuple[int, int, str]]:
        fast = matcher.by_suffix(parts, duration_s)
        slow = matcher.by_suffix(parts, duration_s, cards=False)
        assert [(h.scene.id, h.score, h.reason) for h in fast] == [
            (h.scene.id, h.score, h.reason) for h in slow
        ]
        assert all(isinstance(h.scene, IndexedScene) for h in slow)
        return [(h.scene.id, h.score, h.reason) for h in fast]

    assert both(["Show", "Pt. I", "clip.mp4"]) == [
        (9, 70, "suffix-3-shared"),
        (12, 70, "suffix-3-shared"),
        (10, 55, "suffix-1"),
    ]
    # Case twins tie on the folded path; their paths' case decides (read from the
    # database: the tails keep no paths).
    assert both(["Studio", "Scene.MP4"]) == [(7, 88, "suffix-2"), (8, 60, "suffix-2")]
    assert both(["Studio", "scene.mp4"]) == [(8, 88, "suffix-2"), (7, 60, "suffix-2")]
    assert both(["clip-extra.mp4"]) == [(9, 86, "suffix-1")]
    assert both(["clip-extra.mp4"], 61.0) == [(9, 86, "suffix-1")]
    assert both(["clip-extra.mp4"], 90.0) == []  # another file: the durations disagree
    assert both(["a_b.mp4"]) == [(1, 75, "suffix-1")]  # too short a name to trust alone

    def both_paths(path: str) -> list[tuple[int, int, str]]:
        fast = matcher.by_path(path)
        slow = matcher.by_path(path, cards=False)
        assert [(h.scene.id, h.score, h.reason) for h in fast] == [
            (h.scene.id, h.score, h.reason) for h in slow
        ]
        assert all(isinstance(h.scene, SceneCard) for h in fast)
        return [(h.scene.id, h.score, h.reason) for h in fast]

    assert both_paths("/data/Studio/Scene.MP4") == [(7, 98, "path")]
    assert both_paths("/data/studio/scene.MP4") == [
        (7, 70, "path-case-shared"),
        (8, 70, "path-case-shared"),
    ]
    assert both_paths("/data/studio/CLIP.mp4") == []
    assert both_paths(f"/data/studio/{NFD_NAME.upper()}") == [(5, 92, "path-case")]


async def test_tails_trailing_a_refresh_in_progress(tmp_path: Path, lib: Any) -> None:
    """A refresh commits page by page and reads the tails again once, at its end: until
    then the database is ahead of them. Meanwhile nothing is answered from the stale
    tails: a renamed file is not found under its old name, an edited title is shown as
    edited. A refresh that fails half-way still brings the tails up to what it applied."""
    idx = SceneIndex(tmp_path / "index.sqlite3", overlap_s=0)
    matcher = Matcher(idx)
    refresh: asyncio.Future[int] | None = None
    try:
        async with FakeStash(lib) as stash, aiohttp.ClientSession() as session:
            client = StashClient(stash.url, session=session, **FAST)
            await idx.build(client)
            edited, bystander = 21, 22
            old = lib.scenes[edited]["files"][0]["path"].split("/")[-2:]
            kept = lib.scenes[bystander]["files"][0]["path"].split("/")[-2:]
            new = ["Moved Away", "a brand new name.mp4"]
            assert [h.scene.id for h in matcher.by_suffix(old, None)][:1] == [edited]
            lib.touch(edited, title="Edited Title", files=[f"{lib.stash_root}/{new[0]}/{new[1]}"])

            # One scene a page; Stash stalls once the edited scene's page is applied. The
            # checks below run before the refresh can go on (nothing in them awaits).
            applied = asyncio.Event()
            loop = asyncio.get_running_loop()
            apply_page = idx._upsert_page

            def apply_then_stall(scenes: list[dict[str, Any]]) -> tuple[int, str | None]:
                done = apply_page(scenes)
                if done[0]:
                    stash.fault = "slow"
                    loop.call_soon_threadsafe(applied.set)
                return done

            idx._upsert_page = apply_then_stall  # type: ignore[method-assign]
            refresh = asyncio.ensure_future(idx.refresh(client, page_size=1))
            await applied.wait()
            assert idx.get(edited).files[0].path.endswith("/a brand new name.mp4")
            assert idx.suffix_matches(old) is None  # the tails trail the database
            assert edited not in [h.scene.id for h in matcher.by_suffix(old, None)]
            assert edited not in [s.id for s, _f, _k in idx.suffix_candidates(old)]
            assert [h.scene.id for h in matcher.by_suffix(kept, None)][:1] == [bystander]
            assert all(h.scene.id == edited for h in matcher.by_suffix(new, None))

            stash.fault = "500"  # the refresh fails: what it applied stays
            with pytest.raises(StashError):
                await refresh
            del idx._upsert_page
            assert [c.id for c, _t, _k in from_memory(idx, old)] == []
            ((card, _tail, shared),) = from_memory(idx, new)
            assert (card.id, card.title, shared) == (edited, "Edited Title", 2)
            hits = matcher.by_suffix(new, None)
            assert [(h.scene.id, h.scene.title, h.score) for h in hits] == [
                (edited, "Edited Title", 88)
            ]
            same_answer(idx, kept)

            stash.fault = None
            lib.touch(bystander, organized=True)
            assert await idx.refresh(client) >= 1
            assert from_memory(idx, kept)[0][0].organized
            # A sweep deletes and reads the tails again before it commits: never stale.
            lib.delete(bystander)
            assert await idx.sweep(client) == 1
            assert bystander not in [c.id for c, _t, _k in from_memory(idx, kept)]
            assert bystander not in [h.scene.id for h in matcher.by_suffix(kept, None)]
    finally:
        if refresh is not None and not refresh.done():
            refresh.cancel()  # a failed check above must not leave it running
            with contextlib.suppress(BaseException):
                await refresh
        idx.close()


async def test_tails_follow_a_rebuild(index: SceneIndex, client: StashClient, lib: Any) -> None:
    # A rebuild is the safety net for file moves refresh cannot see.
    await index.build(client)
    old = lib.scenes[30]["files"][0]["path"].split("/")[-2:]
    scene = lib.scenes[30]
    scene["files"][0]["path"] = f"{lib.stash_root}/Moved/moved by hand.mp4"
    scene["files"][0]["basename"] = "moved by hand.mp4"
    await index.build(client)
    assert 30 not in [c.id for c, _t, _k in from_memory(index, old)]
    assert [c.id for c, _t, _k in from_memory(index, ["Moved", "moved by hand.mp4"])] == [30]
    same_answer(index, ["Moved", "moved by hand.mp4"])


def test_search_needs_something(tricky: SceneIndex) -> None:
    assert tricky.search(title=None) == []
    assert tricky.search(title="  ...  ") == []


async def test_search_ranks_title_date_studio(index: SceneIndex) -> None:
    studio = {"id": "1", "name": "Velvet Harbor"}
    await index.load(
        [
            _scene(1, "/a/1.mp4", title="Midnight Rendezvous", date="2021-05-01", studio=studio),
            _scene(2, "/a/2.mp4", title="Midnight Rendezvous", date="2019-02-03"),
            _scene(3, "/a/3.mp4", title="Sunny Picnic", date="2021-05-01"),
            _scene(4, "/a/4.mp4", title='Rendezvous (AND) "NOT" *', date="2020"),
            _scene(5, "/a/5.mp4", title="Café Crème", date="2020-07"),
        ]
    )
    assert ids(index.search("midnight rendezvous"))[:2] in ([1, 2], [2, 1])
    assert ids(index.search("Midnight Rendezvous", date="2019-02-03"))[0] == 2
    assert ids(index.search("Midnight Rendezvous", studio="velvet harbor"))[0] == 1
    assert ids(index.search("Midnight Rendezvous", year=2019))[0] == 2
    assert ids(index.search("rendezvous AND NOT *"))[0] == 4  # FTS syntax is just text
    assert ids(index.search("cafe creme")) == [5]  # diacritics folded
    assert ids(index.search(None, date="2021-05-01")) == [1, 3]
    assert sorted(ids(index.search(None, year=2020))) == [4, 5]
    assert ids(index.search(None, studio="Velvet Harbor")) == [1]
    assert len(index.search("Midnight", limit=1)) == 1
    assert index.search("zzzz nothing") == []


async def test_lookups_use_indexes_and_a_scan_uses_no_sql(index: SceneIndex, lib: Any) -> None:
    """Speed without timing anything: every lookup is an index search (never a scan of
    a table), and a scan's suffix and path matches run no SQL at all."""
    await index.load(_as_index_rows(lib))
    conn = index._r
    for name in ("GET", "BY_OSHASH", "BY_BASENAME", "BY_PATH", "BY_PATH_FOLD", "BY_IDS"):
        sql = getattr(index_mod, f"_SQL_{name}")
        params = ("[1, 2]",) if name == "BY_IDS" else (1,) * sql.count("?")
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]
        scans = [step for step in plan if step.startswith("SCAN") and "json_each" not in step]
        assert not scans, (name, plan)

    scene = lib.scenes[100]
    path = scene["files"][0]["path"]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        found = index.suffix_matches(path.split("/")[-3:])
        assert found and found[0][0].id == 100
        assert [c.id for c in index.path_matches(path) or []] == [100]
        assert index.path_matches(path.upper(), case_sensitive=False)
        assert statements == []
        assert index.suffix_candidates(path.split("/")[-3:])[0][0].id == 100
        assert statements  # the database-checked answer does read
    finally:
        conn.set_trace_callback(None)


# --- properties ----------------------------------------------------------------------------

# Pieces rather than characters, so NFD sequences ("e" + combining acute) and case-fold
# expansions ("ß" ~ "ss") occur often.
_PIECES = ["a", "b", "A", "B", "_", "%", ".", " ", "é", "É", "e\u0301", "ß", "ss", "Ǆ"]
_component = (
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=4)
    .map("".join)
    .filter(lambda c: c.strip() == c and c not in (".", ".."))
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stash_prefix=st.lists(_component, min_size=0, max_size=3),
    plex_prefix=st.lists(_component, min_size=0, max_size=3),
    shared=st.lists(_component, min_size=1, max_size=4),
    windows=st.booleans(),
)
def test_suffix_count_is_shared_trailing_components(
    tmp_path_factory: pytest.TempPathFactory,
    stash_prefix: list[str],
    plex_prefix: list[str],
    shared: list[str],
    windows: bool,
) -> None:
    sep = "\\" if windows else "/"
    stash_parts = ["data", *stash_prefix, *shared]
    stash_path = sep + sep.join(stash_parts)
    request = ["media", *plex_prefix, *shared]
    # Oracle: compare folded, NFC components from the end.
    expected = 0
    for a, b in zip(reversed(stash_parts), reversed(request), strict=False):
        if fold(a) != fold(b):
            break
        expected += 1
    idx = SceneIndex(tmp_path_factory.mktemp("suffix") / "i.sqlite3")
    try:
        asyncio.run(idx.load([_scene(1, stash_path), _scene(2, "/elsewhere/other.bin")]))
        got = idx.suffix_candidates(request)
        assert [(s.id, n) for s, _f, n in got] == [(1, expected)]
        assert got[0][1].path == stash_path
    finally:
        idx.close()


@pytest.mark.parametrize(
    ("stamp", "seconds", "expected"),
    [
        ("2025-01-05T18:48:16-06:00", -300, "2025-01-05T18:43:16-06:00"),
        ("2025-01-05T00:02:00Z", -300, "2025-01-04T23:57:00Z"),
        ("2025-01-05T00:02:00+00:00", -60, "2025-01-05T00:01:00+00:00"),
        ("2025-01-05T00:02:00.123Z", -1, "2025-01-05T00:01:59.123Z"),
        ("not a time", -60, "not a time"),
    ],
)
def test_shift_timestamp_keeps_stash_format(stamp: str, seconds: float, expected: str) -> None:
    assert shift_timestamp(stamp, seconds) == expected


async def test_iter_scenes_in_batches(index: SceneIndex, client: StashClient, lib) -> None:
    await index.build(client)
    got = list(index.iter_scenes(batch=7))
    assert [s.id for s in got] == sorted(lib.scenes)
    assert [len(s.files) for s in got] == [len(lib.scenes[s.id]["files"]) for s in got]


async def test_lookups_from_worker_threads(index: SceneIndex, lib: Any) -> None:
    await index.load(_as_index_rows(lib))
    paths = {sid: s["files"][0]["path"] for sid, s in lib.scenes.items() if s["files"]}

    def worker() -> int:
        return sum(sid in ids(index.by_path(p)) for sid, p in paths.items())

    results = await asyncio.gather(*(asyncio.to_thread(worker) for _ in range(4)))
    assert results == [len(paths)] * 4
    assert sum(sid in ids(index.by_path(p)) for sid, p in paths.items()) == len(paths)
