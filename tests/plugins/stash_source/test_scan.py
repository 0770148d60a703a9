"""A Plex-like scan over HTTP: every file of a generated library, each hard case included.

Plex and Stash see the library under different roots. For every file Plex would post a
match; the answer must be the right scene, or nothing: never a wrong scene.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from stash2plex_stash_source.fake import PlexFile

SCAN_CONCURRENCY = 32


async def scan(client, files: list[PlexFile], *, send_hash: bool) -> dict[str, list]:
    """Post every file like a scan burst; classify each answer."""
    sem = asyncio.Semaphore(SCAN_CONCURRENCY)
    outcome: dict[str, list] = {"right": [], "wrong": [], "missed": [], "declined": []}

    async def one(f: PlexFile) -> None:
        body = {"type": 1, "filename": f.plex_path, "includeAdult": 1}
        if send_hash and f.oshash:
            body["ohash"] = f.oshash
        async with sem:
            resp = await client.post("/library/metadata/matches", json=body)
        assert resp.status == 200
        items = (await resp.json())["MediaContainer"]["Metadata"]
        got = int(items[0]["ratingKey"].removeprefix("stash-")) if items else None
        if got is None:
            resolvable = f.expected_scene_id is not None and not f.ambiguous
            outcome["missed" if resolvable else "declined"].append(f)
        elif got in (f.candidates or (f.expected_scene_id,)) and f.expected_scene_id is not None:
            outcome["right"].append(f)
        else:
            outcome["wrong"].append((f, got))

    await asyncio.gather(*(one(f) for f in files))
    return outcome


def _report(outcome) -> str:
    wrong = [(f.note, f.plex_path, f.expected_scene_id, got) for f, got in outcome["wrong"]]
    missed = Counter(f.note or "ordinary" for f in outcome["missed"])
    sample = [f.plex_path for f in outcome["missed"][:3]]
    return f"wrong={wrong[:5]} missed={dict(missed)} sample={sample}"


@pytest.mark.parametrize(
    ("style", "root", "relative", "send_hash"),
    [
        ("posix", "/media/plex", True, False),  # Plex's documented relative filename
        ("posix", "/media/plex", False, False),  # absolute, another root, no rules
        ("windows", r"D:\Media\Stash", False, True),  # Windows Plex, hash sent
        ("unc", r"\\nas\media\stash", False, False),
    ],
)
async def test_scan_matches_right_or_not_at_all(client, library, style, root, relative, send_hash):
    files = library.plex_files(root=root, style=style, relative=relative)
    outcome = await scan(client, files, send_hash=send_hash)
    assert outcome["wrong"] == [], _report(outcome)
    assert outcome["missed"] == [], _report(outcome)
    notes = Counter(f.note for f in files)
    # the library really contains the traps this test is about
    for note in ("dup-basename", "unicode-nfd", "like-wildcard", "plex-only", "remuxed"):
        assert notes[note] > 0, note
    assert len(outcome["right"]) > 0.9 * sum(1 for f in files if f.expected_scene_id)


async def test_scan_with_path_rule_uses_exact_paths(provider, fake_stash, library):
    client = await provider(
        fake_stash.url,
        rules=[
            {"name": "nas", "plex_prefix": r"D:\Media\Stash", "stash_prefix": library.stash_root}
        ],
    )
    files = library.plex_files(root=r"D:\Media\Stash", style="windows")
    outcome = await scan(client, files, send_hash=False)
    assert outcome["wrong"] == [] and outcome["missed"] == [], _report(outcome)


async def test_scan_costs_stash_nothing(client, fake_stash, library):
    before = fake_stash.graphql_requests
    files = library.plex_files(relative=True)[:150]
    await scan(client, files, send_hash=True)
    assert fake_stash.graphql_requests == before  # zero Stash requests per match


async def test_matching_works_while_stash_is_down(client, fake_stash, library):
    fake_stash.fault = "down"
    files = [f for f in library.plex_files(relative=True) if f.note == ""][:30]
    outcome = await scan(client, files, send_hash=False)
    assert len(outcome["right"]) == len(files), _report(outcome)
