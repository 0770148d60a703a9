"""``stash2plex gaps`` in-process: the table, --kind, --json, scan, fix with push sync."""

from __future__ import annotations

import argparse
import json

from gapfakes import MemoryCatalog, MemoryPlex, MemoryPush, Sides, at, item, scene

from stash2plex_gap_scheduler import report


def args(action: str = "report", **kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    argv = [action]
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return parser.parse_args(argv)


def sides() -> Sides:
    plex = MemoryPlex(
        [
            item("1", "/media/videos/a.mp4"),
            *(item(str(n), f"/media/videos/p{n}.mp4") for n in range(10, 18)),
        ]
    )
    catalog = MemoryCatalog(
        [scene(1, "/data/videos/a.mp4", updated=at(9)), scene(2, "/data/videos/b.mp4")]
    )
    return Sides(plex, catalog, MemoryPush({"stash-1": at(2)}))


async def test_report_before_and_after_a_scan(gaps_app, capsys):
    fixture = sides()
    assert await report.run(args(), gaps_app(fixture)) == 0
    assert "no gap scan yet" in capsys.readouterr().out

    assert await report.run(args("scan"), gaps_app(fixture)) == 0
    out = capsys.readouterr().out
    assert "scanned 9 Plex item(s) against 2 scene(s)" in out
    assert "plex_only 8, stash_only 1, stale 1" in out

    assert await report.run(args(), gaps_app(fixture)) == 0
    table = capsys.readouterr().out
    assert "): ok" in table and "plex_only          8" in table
    assert "stash-2" in table and "/media/videos/b.mp4" in table
    assert "... 3 more (--kind plex_only --rows N, or --json)" in table

    assert await report.run(args(kind="stale", rows=1), gaps_app(fixture)) == 0
    only = capsys.readouterr().out
    assert "stale" in only and "plex_only" not in only and "2026-01-09" in only

    assert await report.run(args(json=True, rows=3), gaps_app(fixture)) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["total"] == 10 and len(body["gaps"]) == 3
    assert body["counts"]["plex_only"] == 8 and body["last_scan"]["trigger"] == "cli"


async def test_fix_hands_stale_scenes_to_push_sync(gaps_app, capsys):
    fixture = sides()
    assert await report.run(args("fix", scan=True), gaps_app(fixture)) == 0
    assert "queued 1 stale or never-pushed scene(s)" in capsys.readouterr().out
    assert fixture.push.queued == [(["stash-1"], "gaps fix (CLI)")]

    without = Sides(fixture.plex, fixture.catalog, None)
    assert await report.run(args("fix"), gaps_app(without)) == 1
    assert "push sync is not installed" in capsys.readouterr().err
