"""The schedule: once per interval across restarts, never two scans at once, a bad
interval stops start-up naming the key."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from gapfakes import MemoryCatalog, MemoryPlex, Sides, item, scene

from stash2plex import ConfigError, started
from stash2plex_gap_scheduler.config import parse_interval
from stash2plex_gap_scheduler.detector import STATE, ScanBusy
from stash2plex_gap_scheduler.store import FILE_NAME, ScanLock


def fixture() -> Sides:
    return Sides(
        MemoryPlex([item("1", "/media/videos/a.mp4")]),
        MemoryCatalog([scene(1, "/data/videos/a.mp4")]),
    )


async def until(condition, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not await condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)


def scans(data_dir) -> list[tuple[float, str]]:
    with sqlite3.connect(data_dir / FILE_NAME) as db:
        return db.execute("SELECT started_at, trigger FROM scans ORDER BY id").fetchall()


async def test_the_schedule_runs_once_per_interval_across_restarts(gaps_app, tmp_path):
    sides = fixture()
    data_dir = tmp_path / "data"

    async with started(gaps_app(sides, gaps={"interval": "1h"})) as app:
        store = app[STATE].detector.store
        await until(lambda: _has_scan(store))
    assert len(scans(data_dir)) == 1 and sides.plex.reads == 1

    # a restart within the hour: no second scan, the next one is due an hour after the first
    async with started(gaps_app(sides, gaps={"interval": "1h"})) as app:
        detector = app[STATE].detector
        await until(lambda: _is_set(detector))
        await asyncio.sleep(0.2)
        first = scans(data_dir)[0][0]
        assert detector.next_scan_at == pytest.approx(first + 3600)
    assert len(scans(data_dir)) == 1 and sides.plex.reads == 1

    # the hour has passed while the server was down: one scan at start, and only one
    with sqlite3.connect(data_dir / FILE_NAME) as db:
        db.execute("UPDATE scans SET started_at = started_at - 3700")
    async with started(gaps_app(sides, gaps={"interval": "1h"})) as app:
        await until(_count(data_dir, 2))
        await asyncio.sleep(0.2)
    assert [t for _at, t in scans(data_dir)] == ["schedule", "schedule"]
    assert sides.plex.reads == 2


async def test_interval_zero_turns_the_schedule_off(gaps_app, tmp_path):
    sides = fixture()
    async with started(gaps_app(sides, gaps={"interval": "0"})) as app:
        await asyncio.sleep(0.2)
        assert app[STATE].detector.next_scan_at is None
    assert sides.plex.reads == 0


async def test_without_plex_the_schedule_idles_instead_of_failing(gaps_app, tmp_path, capsys):
    sides = Sides(None, MemoryCatalog([scene(1, "/data/videos/a.mp4")]))
    async with started(gaps_app(sides, gaps={"interval": "1h"})) as app:
        await asyncio.sleep(0.3)
        assert app[STATE].detector.next_scan_at is None  # no scan is promised while idle
        sides.plex = MemoryPlex([item("1", "/media/videos/a.mp4")])  # Plex comes up
        await until(lambda: _has_scan(app[STATE].detector.store), within_s=10)
    assert [t for _at, t in scans(tmp_path / "data")] == ["schedule"]  # no failed ones
    assert capsys.readouterr().out.count('"gaps.schedule_idle"') == 1


async def test_never_two_scans_at_once(gaps_app, tmp_path):
    sides = fixture()
    async with started(gaps_app(sides)) as app:
        detector = app[STATE].detector
        other = ScanLock(tmp_path / "data")  # what a CLI `gaps scan` holds meanwhile
        assert other.acquire()
        with pytest.raises(ScanBusy, match="already running"):
            await detector.scan("test")
        other.release()
        assert (await detector.scan("test")).status == "ok"

        gate = asyncio.Event()
        original = sides.catalog.scenes

        async def slow():
            await gate.wait()
            async for one in original():
                yield one

        sides.catalog.scenes = slow
        running = asyncio.create_task(detector.scan("first"))
        await asyncio.sleep(0.05)
        with pytest.raises(ScanBusy):
            await detector.scan("second")
        gate.set()
        assert (await running).status == "ok"


@pytest.mark.parametrize(
    ("text", "seconds"), [("24h", 86400), ("30m", 1800), ("90s", 90), ("7d", 604800), ("0", 0)]
)
def test_interval_forms(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["24", "1.5h", "h", "0h", "-1h", "1w", "24 hours"])
def test_a_bad_interval_stops_start_up_naming_the_key(gaps_app, text):
    with pytest.raises(ConfigError) as exc:
        gaps_app(fixture(), gaps={"interval": text})
    assert "gaps.interval" in str(exc.value) and "'24h'" in str(exc.value)


async def _has_scan(store) -> bool:
    return await store.last_scan() is not None


async def _is_set(detector) -> bool:
    return detector.next_scan_at is not None


def _count(data_dir, n: int):
    async def check() -> bool:
        return len(scans(data_dir)) >= n

    return check
