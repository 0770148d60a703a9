"""The comparison: each kind found where it is, and nothing found where nothing is."""

from __future__ import annotations

import unicodedata

from gapfakes import MemoryCatalog, MemoryPlex, MemoryPush, Sides, at, item, scene

from stash2plex import Candidate, GapKind, MatchRequest, Metadata, PlexAgentKind, PlexSection
from stash2plex import started as started_app
from stash2plex_gap_scheduler.detector import STATE


def library() -> tuple[MemoryPlex, MemoryCatalog, MemoryPush]:
    nfd = unicodedata.normalize("NFD", "Café")
    scenes = [
        scene(1, "/data/videos/A/one.mp4", updated=at(1)),
        scene(2, "/data/videos/B/two.mp4", updated=at(1)),
        scene(3, "/data/videos/three.mp4", updated=at(1)),
        scene(4, f"/data/videos/{nfd}/four.mp4", updated=at(1)),  # Stash on macOS: NFD
        scene(5, "/data/videos/five.mp4", updated=at(9)),
        scene(6, "/data/elsewhere/x/six.mp4"),
        scene(7, "/data/elsewhere/y/seven.mp4"),
        scene(8, "/data/elsewhere/eight.mp4"),
        scene(9, "/data/videos/nine.mp4", updated=at(1)),
        scene(10),  # no file: nothing to compare
    ]
    items = [
        item("101", "/media/videos/A/one.mp4"),
        item("102", "/media/videos/B/two.mp4", agent=PlexAgentKind.OTHER, agent_detail="plex"),
        item("104", "/media/videos/Café/four.mp4"),
        item("105", "/media/videos/five.mp4"),
        item("109", "/media/videos/nine.mp4", agent=PlexAgentKind.NONE, agent_detail="local"),
        item("201", "/media/videos/only_plex.mp4"),
        item("301", "/media/videos/new/unm.mp4", agent=PlexAgentKind.NONE),
    ]
    push = MemoryPush({"stash-1": at(5), "stash-2": at(5), "stash-5": at(5), "stash-9": at(5)})
    return MemoryPlex(items), MemoryCatalog(scenes), push


def candidate(key: str, score: int) -> Candidate:
    return Candidate(metadata=Metadata(rating_key=key, title=key), score=score, reason="basename")


async def test_every_kind_found_and_none_invented(gaps_app):
    plex, catalog, push = library()
    sides = Sides(plex, catalog, push)
    app = gaps_app(sides)
    async with started_app(app):
        detector = app[STATE].detector
        detector.recorder.record(
            MatchRequest(filename="new/unm.mp4", title="Unm"), [candidate("stash-3", 60)]
        )
        detector.recorder.record(MatchRequest(filename="A/one.mp4", title="One"), [])
        row = await detector.scan("test")
        assert row.status == "ok", row.error
        gaps, total = await detector.store.report(limit=100)
    found = {(g.gap.kind, g.gap.rating_key or g.gap.plex_rating_key or g.gap.title) for g in gaps}
    assert found == {
        (GapKind.OTHER_AGENT, "stash-2"),
        (GapKind.OTHER_AGENT, "stash-9"),
        (GapKind.STASH_ONLY, "stash-3"),
        (GapKind.STALE, "stash-4"),  # never pushed
        (GapKind.STALE, "stash-5"),  # changed after its push
        (GapKind.PLEX_ONLY, "201"),
        (GapKind.PLEX_ONLY, "301"),
        (GapKind.UNMAPPABLE, "/data/elsewhere"),  # three scenes, one gap
        (GapKind.UNMATCHED, "301"),
    }, found
    assert total == 9
    by = {
        (g.gap.kind, g.gap.rating_key or g.gap.plex_rating_key or g.gap.title): g.gap for g in gaps
    }
    assert "another agent (plex)" in by[GapKind.OTHER_AGENT, "stash-2"].detail
    assert "no agent (local)" in by[GapKind.OTHER_AGENT, "stash-9"].detail
    assert by[GapKind.STASH_ONLY, "stash-3"].plex_path == "/media/videos/three.mp4"
    assert by[GapKind.STASH_ONLY, "stash-3"].scene_id == "3"
    assert by[GapKind.STALE, "stash-4"].detail.startswith("never pushed")
    assert by[GapKind.STALE, "stash-5"].plex_rating_key == "105"
    assert "2026-01-09" in by[GapKind.STALE, "stash-5"].detail
    unmappable = by[GapKind.UNMAPPABLE, "/data/elsewhere"]
    assert unmappable.stash_path == "/data/elsewhere"
    assert unmappable.detail.startswith("3 Stash scene(s) under /data/elsewhere")
    assert "[[path_regex.rules]]" in unmappable.detail
    unmatched = by[GapKind.UNMATCHED, "301"]
    assert "below the bar" in unmatched.detail and "stash-3 (60)" in unmatched.detail
    assert unmatched.plex_path == "/media/videos/new/unm.mp4"
    assert row.stats["found"]["unmappable"] == 1 and row.stats["unmatched_resolved"] == 1
    assert row.stats["scenes"] == 10 and row.stats["plex_items"] == 7
    # every new gap broadcast once
    assert sorted((g.kind, g.title) for g in sides.broadcast) == sorted(
        (g.gap.kind, g.gap.title) for g in gaps
    )


async def test_nothing_is_stale_without_push_sync(gaps_app):
    plex, catalog, _push = library()
    app = gaps_app(Sides(plex, catalog, None))
    async with started_app(app):
        row = await app[STATE].detector.scan("test")
    assert row.status == "ok" and row.stats["found"]["stale"] == 0
    assert row.stats["push_sync"] is False


async def test_roots_case_and_windows_paths_map_without_gaps(gaps_app):
    rules = [
        {
            "name": "win",
            "plex_prefix": "D:\\Media",
            "stash_prefix": "/volume1/media",
            "case_insensitive": True,
        }
    ]
    sections = [PlexSection(key="7", title="Scenes", type="movie", locations=("D:\\Media",))]
    plex = MemoryPlex(
        [
            item("1", "d:\\MEDIA\\Studio\\One.mp4", section="7"),
            item("2", "D:\\Media\\Two.mp4", section="7"),
        ],
        sections,
    )
    catalog = MemoryCatalog(
        [scene(1, "/volume1/media/Studio/One.mp4"), scene(2, "/volume1/media/Two.mp4")]
    )
    app = gaps_app(Sides(plex, catalog), rules=rules)
    async with started_app(app):
        row = await app[STATE].detector.scan("test")
        gaps, total = await app[STATE].detector.store.report()
    assert row.status == "ok", row.error
    assert total == 0, [g.gap for g in gaps]


async def test_same_paths_without_rules_and_a_foreign_plex_folder(gaps_app):
    # No rules: both sides spell paths alike. A Plex library folder Stash does not index
    # at all is one unmappable gap, not a plex_only per file.
    sections = [
        PlexSection(key="1", title="Movies", type="movie", locations=("/media/adult",)),
        PlexSection(key="2", title="Films", type="movie", locations=("/films",)),
    ]
    items = [item("1", "/media/adult/a.mp4"), item("2", "/media/adult/b.mp4")]
    items += [item(str(n), f"/films/f{n}.mkv", section="2") for n in range(10, 20)]
    plex = MemoryPlex(items, sections)
    catalog = MemoryCatalog([scene(1, "/media/adult/a.mp4"), scene(3, "/media/adult/c.mp4")])
    app = gaps_app(Sides(plex, catalog), rules=[])
    async with started_app(app):
        await app[STATE].detector.scan("test")
        gaps, _total = await app[STATE].detector.store.report()
    kinds = sorted((g.gap.kind.value, g.gap.plex_rating_key or g.gap.title) for g in gaps)
    assert kinds == [("plex_only", "2"), ("stash_only", "scene 3"), ("unmappable", "/films")]
    assert "10 Plex item(s) under /films" in gaps[-1].gap.detail

    # [gaps] libraries = ["Movies"]: the Films library is not read at all
    app = gaps_app(Sides(plex, catalog), rules=[], gaps={"libraries": ["movies"]})
    async with started_app(app):
        row = await app[STATE].detector.scan("test")
        gaps, _total = await app[STATE].detector.store.report()
    assert row.stats["libraries"] == ["Movies"] and row.stats["plex_items"] == 2
    assert sorted(g.gap.kind.value for g in gaps) == ["plex_only", "stash_only"]


async def test_a_rule_mapping_outside_the_libraries_is_unmappable_once(gaps_app):
    rules = [{"name": "other", "plex_prefix": "/media/other", "stash_prefix": "/data/other"}]
    plex = MemoryPlex([item("1", "/media/videos/a.mp4")])
    catalog = MemoryCatalog(
        [scene(1, "/media/videos/a.mp4")]
        + [scene(n, f"/data/other/s{n}.mp4") for n in range(2, 50)]
    )
    app = gaps_app(Sides(plex, catalog), rules=rules)
    async with started_app(app):
        await app[STATE].detector.scan("test")
        gaps, total = await app[STATE].detector.store.report()
    assert total == 1
    assert gaps[0].gap.kind is GapKind.UNMAPPABLE
    assert "48 Stash scene(s) under /data/other" in gaps[0].gap.detail
    assert "outside Plex's scanned libraries (/media/videos)" in gaps[0].gap.detail


async def test_unknown_library_fails_the_scan_naming_it(gaps_app):
    plex, catalog, _ = library()
    app = gaps_app(Sides(plex, catalog), gaps={"libraries": ["Nope"]})
    async with started_app(app):
        row = await app[STATE].detector.scan("test")
    assert row.status == "failed"
    assert "'Nope'" in row.error and "'Movies'" in row.error


async def test_an_unmappable_folder_stays_one_gap_as_its_files_change(gaps_app):
    plex = MemoryPlex([item("1", "/media/videos/a.mp4")])
    catalog = MemoryCatalog([scene(1, "/data/videos/a.mp4"), scene(2, "/data/elsewhere/x/b.mp4")])
    app = gaps_app(Sides(plex, catalog))
    async with started_app(app):
        detector = app[STATE].detector
        await detector.scan("test")
        first, _ = await detector.store.report(kind="unmappable")
        catalog.scenes_.append(scene(3, "/data/elsewhere/y/z/c.mp4"))
        row = await detector.scan("test")
        again, total = await detector.store.report(kind="unmappable")
    assert row.stats["new"] == 0 and row.stats["resolved"] == 0 and total == 1
    assert again[0].first_seen == first[0].first_seen
    assert first[0].gap.title == "/data/elsewhere/x"  # the folder its one scene is in
    assert again[0].gap.detail.startswith("2 Stash scene(s) under /data/elsewhere:")
