"""The real-time log: every unmatched match request recorded in batches, after Plex has
its answer, without a Stash request; each record says what Stash might have."""

from __future__ import annotations

import asyncio
import sqlite3
import time

from gapfakes import Sides

import stash2plex_gap_scheduler.plugin as gaps_plugin
import stash2plex_stash_source.plugin as stash_plugin
from stash2plex import Candidate, MatchRequest, Metadata, started
from stash2plex_gap_scheduler.detector import STATE
from stash2plex_gap_scheduler.store import FILE_NAME
from stash2plex_stash_source.source import get_source

IDENT = "tv.plex.agents.custom.stash2plex"


def rows(data_dir) -> list[tuple]:
    with sqlite3.connect(data_dir / FILE_NAME) as db:
        return db.execute(
            "SELECT filename, count, verdict, best_key, best_score FROM unmatched ORDER BY key"
        ).fetchall()


def cand(key: str, score: int) -> Candidate:
    return Candidate(metadata=Metadata(rating_key=key, title=key), score=score, reason="title")


async def test_records_are_merged_per_file_and_written_in_batches(gaps_app, tmp_path):
    data_dir = tmp_path / "data"
    app = gaps_app(Sides(), gaps={"flush_every_s": 60, "flush_events": 3})
    async with started(app):
        recorder = app[STATE].detector.recorder
        recorder.record(MatchRequest(filename="a/x.mp4", title="X"), [])
        recorder.record(MatchRequest(filename="a\\x.mp4", title="X"), [])  # the same file
        recorder.record(MatchRequest(filename="b.mp4"), [cand("stash-1", 60)])
        await asyncio.sleep(0.05)
        assert rows(data_dir) == []  # two files waiting: below flush_events, timer far off
        recorder.record(MatchRequest(filename="c.mp4"), [cand("stash-2", 70), cand("stash-3", 65)])
        recorder.record(MatchRequest(title="no file name"), [])
        await until(lambda: len(rows(data_dir)) == 4)
        assert recorder.flushes == 1
        recorder.record(MatchRequest(filename="b.mp4"), [cand("stash-1", 61)])
    # shutdown flushes what is left
    assert rows(data_dir) == [
        ("a/x.mp4", 2, "none", None, None),
        ("b.mp4", 2, "below_threshold", "stash-1", 61),
        ("c.mp4", 1, "ambiguous", "stash-2", 70),
        (None, 1, "none", None, None),
    ]


async def test_an_unmatched_scan_request_is_logged_after_plex_has_its_answer(
    make_app, aiohttp_client, fake_stash, library
):
    app = make_app(
        {
            "stash": {"url": fake_stash.url, "timeout_s": 2.0},
            "gaps": {"interval": "0", "flush_every_s": 0.05},
        },
        plugins=[("stash_source", stash_plugin), ("gap_scheduler", gaps_plugin)],
    )
    client = await aiohttp_client(app)
    deadline = time.monotonic() + 20
    # ready, and the source's first upkeep round (build, related poll) over: what Stash
    # is asked from here on is the match path's business alone
    while (await client.get("/healthz")).status != 200 or get_source(app).rounds < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)

    dup = next(f for f in library.plex_files(relative=True) if f.note == "dup-basename")
    name = dup.plex_path.rsplit("/", 1)[-1]
    before = fake_stash.graphql_requests
    for filename in ("Nothing/Like/This 9f3a1c.mkv", name, "Nothing/Like/This 9f3a1c.mkv"):
        resp = await client.post(
            "/library/metadata/matches", json={"type": 1, "filename": filename}
        )
        assert resp.status == 200
        assert (await resp.json())["MediaContainer"]["Metadata"] == []

    async def logged() -> dict:
        return await (await client.get("/gaps/unmatched")).json()

    def counts(body: dict) -> list[int]:
        return sorted(e["count"] for e in body["unmatched"])

    # flushes run every 50 ms: the three requests may be written in one or in several
    deadline = time.monotonic() + 5
    while counts(body := await logged()) != [1, 2]:
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)
    assert fake_stash.graphql_requests == before  # the log costs Stash nothing
    by_name = {e["filename"]: e for e in body["unmatched"]}
    nothing = by_name["Nothing/Like/This 9f3a1c.mkv"]
    assert nothing["count"] == 2 and nothing["verdict"] == "none"
    assert nothing["likely_scene"] is False and nothing["candidates"] == []
    twins = by_name[name]
    assert twins["verdict"] == "ambiguous" and twins["likely_scene"] is True
    assert len(twins["candidates"]) >= 2
    assert {"rating_key", "score", "reason"} <= set(twins["candidates"][0])
    assert twins["first_seen"].endswith("Z")


async def until(condition, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.02)
