"""The fake PMS driven by python-plexapi's own objects: a fake of Plex, not of this project.

plexapi is synchronous, so each use runs in a thread while the fake serves on the loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable
from typing import Any

import pytest
import requests
from plexapi.exceptions import BadRequest, NotFound, Unauthorized
from plexapi.server import PlexServer

from stash2plex_plex.fake import FakePMS


async def run(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


async def connect(pms: FakePMS, token: str | None = None) -> PlexServer:
    return await run(lambda: PlexServer(pms.url, token or pms.token, timeout=5))


async def test_plexapi_connects_lists_sections_and_pages_through_a_library(fake_pms: FakePMS):
    plex = await connect(fake_pms)
    assert plex.friendlyName == "fake-pms"
    sections = await run(lambda: plex.library.sections())
    assert [(s.key, s.title, s.type, s.agent) for s in sections] == [
        (1, "Stash", "movie", "tv.plex.agents.none"),
        (2, "Movies", "movie", "tv.plex.agents.movie"),
    ]
    assert sections[0].locations == ["/data/stash"]

    fake_pms.requests.clear()
    items = await run(lambda: sections[0].all(container_size=2))
    assert [i.ratingKey for i in items] == [101, 102, 103]
    # the window travels in headers, as plexapi sends it; totalSize makes it ask for page 2
    pages = [(r.container_start, r.container_size) for r in fake_pms.requests]
    assert pages == [("0", "2"), ("2", "2")]
    stacked = items[2]
    assert stacked.locations == [
        "/data/stash/Studio B/scene-three - part1.mkv",
        "/data/stash/Studio B/scene-three - part2.mkv",
    ]
    assert items[1].guid == "tv.plex.agents.custom.stash2plex://movie/stash-22"
    # a list item is partial: two genres of four, as PMS truncates them
    assert [g.get("tag") for g in items[1]._data.iterfind("Genre")] == ["Tag One", "Tag Two"]
    assert await run(lambda: sections[0].totalSize) == 3
    movies = await run(lambda: sections[1].all())
    assert [g.id for g in movies[0].guids] == ["imdb://tt0000001", "tmdb://1001"]


async def test_plexapi_edits_fields_tags_and_locks_in_one_put(fake_pms: FakePMS):
    plex = await connect(fake_pms)
    item = await run(lambda: plex.fetchItem(102))
    assert [g.tag for g in item.genres] == ["Tag One", "Tag Two", "Tag Three", "Tag Four"]
    fake_pms.writes.clear()

    def edit() -> None:
        item.batchEdits()
        item.editTitle("Renamed").editSummary("New summary")
        item.addGenre("Tag Five")  # plexapi sends the current list plus the new tag
        item.saveEdits()

    await run(edit)
    assert len(fake_pms.writes) == 1
    stored = fake_pms.items["102"]
    assert stored.title == "Renamed"
    assert stored.fields["summary"] == "New summary"
    assert stored.tags["genre"] == ["Tag One", "Tag Two", "Tag Three", "Tag Four", "Tag Five"]
    assert {"title", "summary", "genre"} <= stored.locked

    await run(lambda: item.removeGenre(["Tag One", "Tag Two"]))  # `genre[].tag.tag-`
    assert stored.tags["genre"] == ["Tag Three", "Tag Four", "Tag Five"]
    await run(lambda: item.edit(**{"actor[0].tag.tag": "Performer E", "actor.locked": 1}))
    assert stored.tags["actor"] == ["Performer E"]  # an indexed list replaces

    await run(item.reload)
    assert item.title == "Renamed"
    assert item.isLocked("title")
    assert [g.tag for g in item.genres] == ["Tag Three", "Tag Four", "Tag Five"]
    assert [r.tag for r in item.roles] == ["Performer E"]


async def test_indexed_lists_can_be_made_additive_to_prove_removals_carry_the_load():
    async with FakePMS(indexed_tags_replace=False) as pms:
        pms.seed_example()
        plex = await connect(pms)
        item = await run(lambda: plex.fetchItem(102))
        await run(lambda: item.edit(**{"genre[0].tag.tag": "Only"}))
        assert pms.items["102"].tags["genre"][-1] == "Only"
        assert len(pms.items["102"].tags["genre"]) == 5


async def test_plexapi_uploads_artwork_and_refreshes(fake_pms: FakePMS):
    plex = await connect(fake_pms)
    item = await run(lambda: plex.fetchItem(101))
    poster = b"\x89PNG fake poster bytes"
    await run(lambda: item.uploadPoster(filepath=io.BytesIO(poster)))
    await run(lambda: item.uploadArt(filepath=io.BytesIO(b"background")))
    upload = fake_pms.writes_to("101")[0]
    assert (upload.path, upload.size) == ("/library/metadata/101/posters", len(poster))
    assert upload.sha256 == hashlib.sha256(poster).hexdigest()
    posters = await run(item.posters)
    assert [p.selected for p in posters] == [True]
    assert [a.kind for a in fake_pms.items["101"].artwork] == ["posters", "arts"]

    await run(item.refresh)
    assert fake_pms.items["101"].refreshed == 1
    section = await run(lambda: plex.library.sectionByID(1))
    await run(lambda: section.update(path="/data/stash/Studio A"))
    assert fake_pms.scans == [("1", "/data/stash/Studio A")]


async def test_errors_are_what_plexapi_expects(fake_pms: FakePMS):
    with pytest.raises(Unauthorized):
        await connect(fake_pms, token="wrong")
    plex = await connect(fake_pms)
    with pytest.raises(NotFound):
        await run(lambda: plex.fetchItem(999))
    fake_pms.fault, fake_pms.fault_count = "503", 2
    for _ in range(2):
        with pytest.raises(BadRequest, match="503"):
            await run(lambda: plex.query("/library/sections"))
    assert fake_pms.fault is None  # the storm is over
    headers = {"X-Plex-Token": fake_pms.token or ""}
    fake_pms.fault, fake_pms.retry_after_s = "429", 12
    answer = await run(lambda: requests.get(f"{fake_pms.url}/library/sections", headers=headers))
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "12")
    fake_pms.fault = "down"
    with pytest.raises(requests.ConnectionError):
        await run(lambda: requests.get(f"{fake_pms.url}/", headers=headers, timeout=5))
    # identity needs no token, as on PMS
    fake_pms.fault = None
    answer = await run(lambda: requests.get(f"{fake_pms.url}/identity", timeout=5))
    assert answer.status_code == 200
    with pytest.raises(ValueError, match="unknown fault"):
        fake_pms.fault = "teapot"


async def test_bad_edits_are_refused_like_pms(fake_pms: FakePMS):
    headers = {"X-Plex-Token": fake_pms.token or ""}
    base = f"{fake_pms.url}/library/sections"

    def put(section: str, query: str) -> int:
        return requests.put(f"{base}/{section}/all?{query}", headers=headers, timeout=5).status_code

    assert await run(lambda: put("1", "id=102&type=1&nonsense.value=1")) == 400
    assert await run(lambda: put("2", "id=102&type=1&title.value=x")) == 404  # wrong section
    assert await run(lambda: put("1", "type=1&title.value=x")) == 400
    assert fake_pms.items["102"].title == "Scene Two"
