"""The match ladder over HTTP, one rung at a time, against the fake Stash on loopback.

Each test isolates one kind of evidence (the request carries nothing else) and checks the
score it earns on the wire: proof (100), strong evidence (85+, auto-matched) or a Fix Match
suggestion (below the threshold, listed only with ``manual=1``).
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stash2plex import HOOKS, MatchRequest
from stash2plex_stash_source.fake import FakeStash, Library, PlexFile, generate_library
from stash2plex_stash_source.oshash import oshash_file

IDENT = "tv.plex.agents.custom.stash2plex"
THRESHOLD = 85  # the default provider.match_threshold


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def distinct_files(library: Library) -> list[PlexFile]:
    """Ordinary files whose basename no other Stash file has and is long enough to trust."""
    names = Counter(
        _fold(f["basename"]) for scene in library.scenes.values() for f in scene["files"]
    )
    out = []
    for f in library.plex_files(relative=True):
        name = f.plex_path.rsplit("/", 1)[-1]
        if f.note == "" and names[_fold(name)] == 1 and len(name) >= 12:
            out.append(f)
    return out


def by_note(library: Library, note: str) -> list[PlexFile]:
    return [f for f in library.plex_files(relative=True) if f.note == note]


def basename(f: PlexFile) -> str:
    return f.plex_path.rsplit("/", 1)[-1]


def scores(items: list[dict[str, Any]]) -> dict[int, int]:
    return {int(i["ratingKey"].removeprefix("stash-")): i["score"] for i in items}


# --- step 1: our own guid, or stash-<id> typed into Fix Match --------------------------------


async def test_own_guid_is_proof(client, library, match, ids):
    f = distinct_files(library)[3]
    sid = f.expected_scene_id
    # A re-match: Plex sends the guid we gave it, and a filename that says nothing.
    items = await match(client, guid=f"{IDENT}://movie/stash-{sid}", filename="x/clip.mp4")
    assert ids(items) == [sid]
    assert items[0]["score"] == 100
    assert items[0]["guid"] == f"{IDENT}://movie/stash-{sid}"
    assert items[0]["ratingKey"] == f"stash-{sid}"


async def test_someone_elses_guid_is_not_a_hint(client, library, match):
    # Another provider's keys may look like ours and name scenes of another Stash.
    sid = distinct_files(library)[3].expected_scene_id
    for guid in (
        f"tv.plex.agents.custom.otherstash://movie/stash-{sid}",
        f"com.plexapp.agents.none://stash-{sid}",
    ):
        assert await match(client, guid=guid) == []


async def test_guid_of_unknown_scene_matches_nothing(client, match):
    assert await match(client, guid=f"{IDENT}://movie/stash-987654") == []


async def test_stash_id_typed_as_title_in_fix_match(client, library, match, ids):
    sid = distinct_files(library)[5].expected_scene_id
    items = await match(client, title=f"stash-{sid}", manual=1)
    assert ids(items)[0] == sid
    assert items[0]["score"] == 100
    # A scan's title comes from the file name: a file called "stash-12.mp4" is no proof.
    assert sid not in ids(await match(client, title=f"stash-{sid}"))


# --- step 2: oshash -------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["ohash", "openSubtitlesHash"])
async def test_oshash_in_the_request(client, library, match, ids, key):
    f = distinct_files(library)[7]
    # No filename at all: only the hash can find the scene.
    items = await match(client, **{key: f.oshash})
    assert ids(items) == [f.expected_scene_id]
    assert items[0]["score"] >= 97
    # Plex may print it in upper case.
    assert ids(await match(client, **{key: f.oshash.upper()})) == [f.expected_scene_id]


async def test_oshash_computed_from_a_readable_file(provider, match, ids, tmp_path):
    lib = generate_library(scenes=30, seed=3)
    root = tmp_path / "media"
    (root / "Inbox").mkdir(parents=True)
    inside = root / "Inbox" / "downloaded clip.mp4"
    inside.write_bytes(os.urandom(200_000))
    outside = tmp_path / "outside.mp4"  # next to the media root, never to be read
    outside.write_bytes(os.urandom(150_000))
    # Stash knows both files under names and folders that share nothing with Plex's.
    sid = lib.add_scene(
        title="Hashed",
        files=[
            {
                "path": f"{lib.stash_root}/Elsewhere/renamed by stash.mp4",
                "oshash": oshash_file(inside),
                "size": inside.stat().st_size,
            }
        ],
    )
    secret = lib.add_scene(
        files=[
            {
                "path": f"{lib.stash_root}/Other/outside.mp4",
                "oshash": oshash_file(outside),
                "size": outside.stat().st_size,
            }
        ]
    )
    async with FakeStash(lib) as stash:
        client = await provider(stash.url, stash={"media_roots": [str(root)]})
        before = stash.graphql_requests
        # Relative (Plex's documented form) and absolute under Plex's own root.
        for filename in ("Inbox/downloaded clip.mp4", "/plex/movies/Inbox/downloaded clip.mp4"):
            items = await match(client, filename=filename)
            assert ids(items) == [sid], filename
            assert items[0]["score"] >= 97
        # Escaping the root by any spelling: the outside file's hash would match `secret`
        # if it were read (its basename is in Stash too, so allow only a weak suggestion).
        for filename in (
            "../outside.mp4",
            "Inbox/../../outside.mp4",
            "../../../../../../" + str(outside).lstrip("/"),
            "../../etc/passwd",
            "/etc/passwd",
        ):
            items = await match(client, filename=filename, manual=1)
            assert all(i["score"] < THRESHOLD for i in items), (filename, items)
            assert scores(items).get(secret, 0) < 97, filename
        assert stash.graphql_requests == before


# --- steps 3-5: paths -----------------------------------------------------------------------


async def test_full_path_through_a_path_rule(provider, fake_stash, library, match, ids):
    rule = {"name": "nas", "plex_prefix": "/mnt/plex", "stash_prefix": library.stash_root}
    client = await provider(fake_stash.url, rules=[rule])
    for f in by_note(library, "dup-basename") + by_note(library, "like-wildcard"):
        items = await match(client, filename=f"/mnt/plex/{f.plex_path}")
        assert ids(items) == [f.expected_scene_id], f.plex_path
        assert items[0]["score"] == 98  # the exact-path rung, above any suffix score


async def test_exact_mapped_path_wins_over_a_longer_suffix(
    provider, small_stash, small_library, match, ids, tmp_path
):
    """DESIGN "Decisions": the rule renames a folder (Plex's Videos is Stash's Clips), and
    a look-alike under another root shares a longer suffix with Plex's path. The scene
    the rule finds exactly is the match, not an ambiguity."""
    mine = small_library.add_scene(
        title="Beach Trip", files=["/data/stash/Clips/Beach/beach-trip-2021.mp4"]
    )
    other = small_library.add_scene(
        title="Beach Trip (archive)", files=["/archive/Videos/Beach/beach-trip-2021.mp4"]
    )
    plex_path = "/mnt/plex/Videos/Beach/beach-trip-2021.mp4"
    rule = {"name": "nas", "plex_prefix": "/mnt/plex/Videos", "stash_prefix": "/data/stash/Clips"}
    plain = await provider(small_stash.url, server={"data_dir": str(tmp_path / "plain")})
    # Without the rule the look-alike's longer suffix wins (no folder was renamed there).
    assert ids(await match(plain, filename=plex_path)) == [other]
    client = await provider(small_stash.url, rules=[rule])
    items = await match(client, filename=plex_path)
    assert ids(items) == [mine] and items[0]["score"] == 98
    listed = await match(client, filename=plex_path, manual=1)
    assert ids(listed)[0] == mine and listed[0]["score"] == 98


async def test_path_suffix_needs_no_configuration(client, library, match, ids):
    # "scene.mp4" is in two studio folders: the folders decide.
    for f in by_note(library, "dup-basename"):
        for filename in (
            f.plex_path,
            f"/volume1/plex/{f.plex_path}",
            "\\".join(["D:", "Plex", *f.plex_path.split("/")]),
        ):
            items = await match(client, filename=filename)
            assert ids(items) == [f.expected_scene_id], filename
            assert 88 <= items[0]["score"] <= 95


async def test_unique_basename(client, library, match, ids):
    for f in distinct_files(library)[:5]:
        items = await match(client, filename=basename(f))
        assert ids(items) == [f.expected_scene_id]
        assert THRESHOLD <= items[0]["score"] < 88


async def test_ambiguous_basename_is_never_guessed(client, library, match, ids):
    files = by_note(library, "dup-basename")
    for name in {basename(f) for f in files}:
        expected = {f.expected_scene_id for f in files if basename(f) == name}
        assert len(expected) == 2
        assert await match(client, filename=name) == []
        listed = await match(client, filename=name, manual=1)
        assert expected <= set(ids(listed))
        assert all(scores(listed)[s] < THRESHOLD for s in expected)


async def test_sibling_prefix_names_match_their_own_scene(client, library, match, ids):
    # "Pt. I" must never take "Pt. II" (or the reverse).
    files = by_note(library, "sibling-prefix")
    for f in files:
        (other,) = {g.expected_scene_id for g in files} - {f.expected_scene_id}
        assert ids(await match(client, filename=f.plex_path)) == [f.expected_scene_id]
        # A name this short ("Pt. I.mp4") is too generic to auto-match alone; it is
        # suggested, and the sibling is never preferred.
        assert ids(await match(client, filename=basename(f))) in ([], [f.expected_scene_id])
        listed = await match(client, filename=basename(f), manual=1)
        assert ids(listed)[0] == f.expected_scene_id
        assert scores(listed).get(other, 0) < listed[0]["score"]


async def test_duration_mismatch_sinks_a_basename_candidate(client, library, match, ids):
    f = distinct_files(library)[9]
    seconds = library.scenes[f.expected_scene_id]["files"][0]["duration"]
    name = basename(f)
    assert ids(await match(client, filename=name, duration=round(seconds * 1000))) == [
        f.expected_scene_id
    ]
    # A few seconds of difference is rounding; a minute is another file.
    near = round((seconds + 2) * 1000)
    assert ids(await match(client, filename=name, duration=near)) == [f.expected_scene_id]
    far = round((seconds + 60) * 1000)
    assert await match(client, filename=name, duration=far) == []
    listed = await match(client, filename=name, duration=far, manual=1)
    assert scores(listed).get(f.expected_scene_id, 0) < THRESHOLD


# --- step 6: title similarity ---------------------------------------------------------------


async def test_title_similarity_is_fix_match_material_only(client, library, match, ids):
    f = next(
        f
        for f in distinct_files(library)
        if library.scenes[f.expected_scene_id]["title"]
        and library.scenes[f.expected_scene_id]["date"]
        and len(library.scenes[f.expected_scene_id]["date"]) == 10
    )
    scene = library.scenes[f.expected_scene_id]
    body = {"title": scene["title"], "year": int(scene["date"][:4]), "date": scene["date"]}
    assert await match(client, **body) == []
    listed = await match(client, **body, manual=1)
    assert f.expected_scene_id in ids(listed)
    assert all(item["score"] < THRESHOLD for item in listed)
    assert 1 <= len(listed) <= 10  # provider.max_manual_results


# --- gates and traps ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gate", "passes"),
    [
        ("require_organized", lambda s: s["organized"]),
        ("require_stash_id", lambda s: bool(s["stash_ids"])),
    ],
)
async def test_gates_keep_scenes_out_of_auto_matching(
    provider, fake_stash, library, match, ids, gate, passes
):
    client = await provider(fake_stash.url, stash={gate: True})
    files = distinct_files(library)
    failing = next(f for f in files if not passes(library.scenes[f.expected_scene_id]))
    passing = next(f for f in files if passes(library.scenes[f.expected_scene_id]))
    assert await match(client, filename=failing.plex_path) == []
    # Not even proof overrides the gate automatically ...
    assert await match(client, filename=failing.plex_path, ohash=failing.oshash) == []
    # ... but the user may still pick the scene by hand.
    listed = await match(client, filename=failing.plex_path, manual=1)
    assert ids(listed)[0] == failing.expected_scene_id
    assert listed[0]["score"] < THRESHOLD
    assert ids(await match(client, filename=passing.plex_path)) == [passing.expected_scene_id]


async def test_like_wildcards_never_match_a_sibling(provider, fake_stash, library, match, ids):
    # "Part_1.mp4" is a LIKE pattern for "Part-1.mp4" too, and "100% Natural.mp4" for
    # "100 - 100% Natural.mp4": Stash's own path filter would return both.
    rule = {"name": "nas", "plex_prefix": "/mnt/plex", "stash_prefix": library.stash_root}
    client = await provider(fake_stash.url, rules=[rule])
    files = by_note(library, "like-wildcard")
    assert len(files) == 4
    for f in files:
        others = {g.expected_scene_id for g in files} - {f.expected_scene_id}
        for filename in (f.plex_path, basename(f), f"/mnt/plex/{f.plex_path}"):
            assert ids(await match(client, filename=filename)) == [f.expected_scene_id]
            listed = await match(client, filename=filename, manual=1)
            assert ids(listed)[0] == f.expected_scene_id
            assert all(scores(listed).get(o, 0) < THRESHOLD for o in others), filename


async def test_matching_costs_stash_nothing(client, fake_stash, library, match):
    f = distinct_files(library)[11]
    sid = f.expected_scene_id
    title = library.scenes[sid]["title"] or "Midnight Getaway"
    before = fake_stash.graphql_requests, fake_stash.image_requests
    bodies: list[dict[str, Any]] = [
        {"guid": f"{IDENT}://movie/stash-{sid}"},
        {"title": f"stash-{sid}", "manual": 1},
        {"ohash": f.oshash},
        {"filename": f.plex_path},
        {"filename": basename(f), "duration": 1000},
        {"filename": "Nothing/Like/This.mp4"},
        {"title": title, "manual": 1},
        {"title": title, "year": 2020},
    ]
    for body in bodies:
        await match(client, **body)
    assert (fake_stash.graphql_requests, fake_stash.image_requests) == before


async def test_match_answers_are_complete_candidates(client, library, match):
    """What Plex (and Fix Match) shows comes from the index; Fix Match gets a signed
    thumb versioned like Stash's screenshot, a scan's automatic match none (Plex fetches
    the full item next)."""
    f = distinct_files(library)[2]
    (item,) = await match(client, filename=f.plex_path)
    scene = library.scenes[f.expected_scene_id]
    assert item["type"] == "movie"
    assert item["key"] == f"/library/metadata/stash-{scene['id']}"
    expected_title = scene["title"] or Path(basename(f)).stem
    assert item["title"] == expected_title
    assert "thumb" not in item
    manual = await match(client, filename=f.plex_path, manual=1)
    thumb = manual[0]["thumb"]
    assert thumb.startswith("http") and "sig=" in thumb
    assert "/screenshot/0?" not in thumb  # versioned, so an edited screenshot gets a new URL


async def test_unreadable_names_under_media_roots_are_just_not_hashed(
    provider, fake_stash, library, match, ids, log_events, tmp_path
):
    """A name no filesystem accepts (NUL byte, a component over 255 bytes) must not cost
    the request its other evidence, nor log a crash."""
    client = await provider(fake_stash.url, stash={"media_roots": [str(tmp_path)]})
    f = distinct_files(library)[4]
    sid = f.expected_scene_id
    log_events()
    for filename in ("Inbox/bad\x00name.mp4", "Inbox/" + "x" * 300 + ".mp4", "a/" * 3000 + "b"):
        items = await match(client, filename=filename, guid=f"{IDENT}://movie/stash-{sid}")
        assert ids(items) == [sid], filename[:40]
    assert not [e for e in log_events() if e["event"] == "plugin.hook_failed"]


async def test_the_host_alone_applies_threshold_and_margin(client, library, match, ids):
    """stash_source reports every scene its ladder found, each once per step; the host
    merges them per scene, ranks them and applies the threshold and the margin (one rule
    for every source): a runner-up far behind leaves the scan's match alone, a tie
    leaves it unmatched, Fix Match lists both."""
    hooks = client.app[HOOKS]
    f = next(f for f in by_note(library, "dup-basename") if "/" in f.plex_path)
    found = await hooks.resolve_match(MatchRequest(filename=f.plex_path))
    keys = {c.metadata.rating_key for c in found}
    assert f"stash-{f.expected_scene_id}" in keys and len(keys) >= 2  # the runner-up too
    assert ids(await match(client, filename=f.plex_path)) == [f.expected_scene_id]
    fix = await match(client, filename=f.plex_path, manual=1)
    assert ids(fix)[0] == f.expected_scene_id and len(fix) >= 2
    assert fix[0]["score"] - fix[1]["score"] >= 10

    tied = await hooks.resolve_match(MatchRequest(filename=basename(f)))
    assert len(tied) == 2 and tied[0].score == tied[1].score  # ambiguous: both sent
    assert await match(client, filename=basename(f)) == []
