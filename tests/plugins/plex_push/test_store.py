"""The queue file: merging, outcomes, dead letters, the breaker, across connections."""

from __future__ import annotations

from pathlib import Path

from stash2plex_plex_push.store import Breaker, LedgerLine, Store, scene_key


def test_second_event_merges_into_the_queued_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "q.sqlite3")
    assert store.enqueue(["stash-1", "stash-2", "stash-1"], "hook") == 2
    store.enqueue(["stash-1"], "again")
    jobs = {j.rating_key: j for j in store.jobs()}
    assert set(jobs) == {"stash-1", "stash-2"}
    assert jobs["stash-1"].seq == 2
    assert jobs["stash-1"].reason == "again"
    assert store.counts().pending == 2


def test_done_keeps_a_job_an_event_merged_into_meanwhile(tmp_path: Path) -> None:
    store = Store(tmp_path / "q.sqlite3")
    store.enqueue(["stash-1"], "hook")
    job = store.next_job(now=1e12)
    assert job is not None
    store.enqueue(["stash-1"], "hook")  # a new edit arrives while the push is under way
    line = LedgerLine(
        rating_key="stash-1", plex_rating_key="7", pushed_at=1.0, digest="d", written="{}"
    )
    assert store.done(job, line) is False
    assert store.job("stash-1") is not None  # pushed again, with the newer edit
    assert store.ledger_line("stash-1") == line
    again = store.next_job(now=1e12)
    assert again is not None
    assert store.done(again, line) is True
    assert store.job("stash-1") is None


def test_a_second_connection_sees_rows_at_once(tmp_path: Path) -> None:
    """The CLI and the server hold the file together: a committed row is visible."""
    server = Store(tmp_path / "q.sqlite3")
    cli = Store(tmp_path / "q.sqlite3")
    cli.enqueue(["stash-5"], "cli")
    assert server.next_job(now=1e12) is not None
    assert server.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_dead_letters_retry_and_purge(tmp_path: Path) -> None:
    store = Store(tmp_path / "q.sqlite3")
    store.enqueue(["stash-1", "stash-2"], "hook")
    for job in store.jobs():
        store.kill(job, "Plex refused: 401")
    assert store.counts().dead == 2
    assert [d.error for d in store.dead_letters()] == ["Plex refused: 401"] * 2
    assert store.revive(["stash-1", "stash-9"]) == 1
    assert store.counts().dead == 1
    assert store.counts().pending == 1
    assert store.purge_dead() == 1
    assert store.counts().dead == 0


def test_parked_job_wakes_up_on_a_new_event(tmp_path: Path) -> None:
    store = Store(tmp_path / "q.sqlite3")
    store.enqueue(["stash-1"], "hook")
    job = store.next_job(now=1e12)
    assert job is not None
    store.park(job, "not in Plex")
    assert store.next_job(now=1e12) is None
    assert store.counts().not_in_plex == 1
    store.enqueue(["stash-1"], "hook")
    woken = store.next_job(now=1e12)
    assert woken is not None
    assert woken.attempts == 0


def test_breaker_and_outages_survive_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path / "q.sqlite3")
    store.save_breaker(
        Breaker(
            state="open", failures=5, opened_at=100.0, retry_at=130.0, cooldown_s=30.0, error="503"
        ),
        outage="start",
    )
    store.close()
    again = Store(tmp_path / "q.sqlite3")
    assert again.breaker().state == "open"
    again.save_breaker(Breaker(state="closed", closed_at=160.0), outage="end")
    [outage] = again.outages()
    assert (outage.started_at, outage.ended_at, outage.error) == (100.0, 160.0, "503")


def test_scene_key() -> None:
    assert scene_key("12") == "stash-12"
    assert scene_key("stash-12") == "stash-12"
