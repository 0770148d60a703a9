"""The PlexLibrary the plex_library hook hands out, against the fake PMS."""

from __future__ import annotations

import contextlib
import gc
import unicodedata

import pytest

from stash2plex import (
    HOOKS,
    PlexAgentKind,
    PlexEdit,
    PlexImageKind,
    PlexLibrary,
    PlexPermanent,
    PlexTransient,
)
from stash2plex_plex.fake import FakePMS

OURS = "tv.plex.agents.custom.stash2plex://movie/stash-22"


async def library_of(plex_app, **kwargs) -> PlexLibrary:
    app = await plex_app(**kwargs)
    library = await app[HOOKS].plex_library()
    assert isinstance(library, PlexLibrary)
    return library


async def test_the_index_finds_items_by_any_file_and_by_guid_without_a_request(
    plex_app, fake_pms: FakePMS
):
    library = await library_of(plex_app)
    fake_pms.requests.clear()
    part2 = await library.find_by_path("/data/stash/Studio B/scene-three - part2.mkv")
    part1 = await library.find_by_path("\\data\\stash\\Studio B\\scene-three - part1.mkv")
    assert part1 is not None and part1 == part2
    assert part1.rating_key == "103" and len(part1.files) == 2
    ours = await library.find_by_guid(OURS)
    assert [(i.rating_key, i.agent, i.provider_key) for i in ours] == [
        ("102", PlexAgentKind.OURS, "stash-22")
    ]
    assert ours[0].section_key == "1" and ours[0].updated_at is not None
    assert await library.find_by_path("/data/stash/nowhere.mp4") is None
    assert fake_pms.requests == []  # lookups are local
    assert library.state().items == 4 and library.state().reachable is True


async def test_paths_match_after_unicode_normalization(plex_app, fake_pms: FakePMS):
    nfd = unicodedata.normalize("NFD", "/data/stash/Café/scène.mp4")
    fake_pms.add_item("1", "accented", files=[nfd])
    library = await library_of(plex_app)
    found = await library.find_by_path(unicodedata.normalize("NFC", "/data/stash/Café/scène.mp4"))
    assert found is not None and found.title == "accented"


async def test_agents_are_read_from_the_guid(plex_app):
    library = await library_of(plex_app)
    agents = {i.rating_key: (i.agent, i.agent_detail) async for i in library.read_items()}
    assert agents == {
        "101": (PlexAgentKind.NONE, "local"),
        "102": (PlexAgentKind.OURS, "tv.plex.agents.custom.stash2plex"),
        "103": (PlexAgentKind.NONE, "local"),
        "201": (PlexAgentKind.OTHER, "plex"),
    }


async def test_read_is_paged_and_light(plex_app, fake_pms: FakePMS):
    for n in range(25):
        fake_pms.add_item("1", f"extra {n}", files=[f"/data/stash/extra/{n}.mp4"])
    library = await library_of(plex_app, plex={"page_size": 10})
    fake_pms.requests.clear()
    items = [i async for i in library.read_items()]
    assert len(items) == 29
    listings = [r for r in fake_pms.requests if r.path.endswith("/all")]
    assert [(r.path, r.container_start) for r in listings] == [
        ("/library/sections/1/all", "0"),
        ("/library/sections/1/all", "10"),
        ("/library/sections/1/all", "20"),
        ("/library/sections/2/all", "0"),
    ]
    # no request per item: sections, then the listings, nothing else
    assert {r.path for r in fake_pms.requests} - {r.path for r in listings} == {"/library/sections"}


async def test_configured_libraries_only(plex_app):
    library = await library_of(plex_app, plex={"libraries": ["Movies"]})
    assert [s.title for s in await library.sections()] == ["Movies"]
    assert library.state().items == 1


async def test_edit_leaves_lists_exactly_as_given_in_one_put(plex_app, fake_pms: FakePMS):
    library = await library_of(plex_app)
    fake_pms.writes.clear()
    edit = PlexEdit(
        fields={"title": "Scene Two, again", "summary": ""},
        tags={"genre": ("Tag Four", "New, with comma"), "actor": ("Performer B",), "label": ()},
        locked=frozenset({"title", "genre", "actor"}),
        unlocked=frozenset({"summary"}),
    )
    await library.edit("102", edit)
    assert len(fake_pms.writes) == 1
    item = fake_pms.items["102"]
    assert item.title == "Scene Two, again"
    assert item.fields["summary"] == ""
    assert item.tags["genre"] == ["Tag Four", "New, with comma"]
    assert item.tags["actor"] == ["Performer B"]
    assert item.tags["label"] == []
    assert item.tags["collection"] == ["Studio A"]  # a kind not named is left alone
    assert {"title", "genre", "actor"} <= item.locked and "summary" not in item.locked
    names = [name for name, _value in fake_pms.writes[0].params]
    assert "genre[0].tag.tag" in names and "genre[].tag.tag-" in names


async def test_a_careful_clear_spares_a_value_someone_else_set(plex_app, fake_pms: FakePMS):
    library = await library_of(plex_app)
    fake_pms.items["102"].locked.add("summary")
    fake_pms.writes.clear()
    # summary: Plex holds another value than push wrote (a user edited it): kept, locked.
    # studio: Plex still holds what push wrote: cleared, lock released.
    edit = PlexEdit(
        fields={"summary": "", "studio": ""},
        unlocked=frozenset({"summary", "studio"}),
        clear_if={"summary": "What push wrote once.", "studio": "Studio A"},
    )
    await library.edit("102", edit)
    item = fake_pms.items["102"]
    assert item.fields["summary"] == "Synopsis pushed from Stash." and "summary" in item.locked
    assert item.fields["studio"] == ""
    assert len(fake_pms.writes) == 1  # the item was read anyway (its values), one PUT

    fake_pms.writes.clear()  # nothing left to clear: no PUT at all
    await library.edit(
        "102", PlexEdit(fields={"summary": ""}, clear_if={"summary": "What push wrote once."})
    )
    assert fake_pms.writes == []


async def test_edit_is_exact_when_indexed_lists_only_add(plex_app, tmp_path):
    async with FakePMS(indexed_tags_replace=False) as pms:
        pms.seed_example()
        app = await plex_app(plex={"url": pms.url})
        library = await app[HOOKS].plex_library()
        await library.edit("102", PlexEdit(tags={"genre": ("Tag Two", "Brand New")}))
        assert pms.items["102"].tags["genre"] == ["Tag Two", "Brand New"]


async def test_written_items_are_read_again(plex_app, fake_pms: FakePMS):
    library = await library_of(plex_app)
    library.reread_delay_s = 0  # type: ignore[attr-defined]
    before = await library.find_by_path("/data/stash/Studio A/scene-one.mp4")
    await library.edit("101", PlexEdit(fields={"title": "Scene One"}, locked=frozenset({"title"})))
    await library._reread  # type: ignore[attr-defined]
    after = await library.find_by_path("/data/stash/Studio A/scene-one.mp4")
    assert before is not None and after is not None
    assert (before.title, after.title) == ("scene-one", "Scene One")
    assert after.updated_at is not None and after.updated_at > before.updated_at


async def test_refresh_and_upload(plex_app, fake_pms: FakePMS):
    library = await library_of(plex_app)
    await library.refresh("101")
    await library.upload_image("101", PlexImageKind.POSTER, b"poster-bytes")
    await library.upload_image("101", PlexImageKind.BACKGROUND, b"art-bytes")
    item = fake_pms.items["101"]
    assert item.refreshed == 1
    assert [(a.kind, a.size, a.selected) for a in item.artwork] == [
        ("posters", 12, True),
        ("arts", 9, True),
    ]


async def test_errors_are_typed(plex_app, fake_pms: FakePMS):
    library = await library_of(plex_app)
    with pytest.raises(PlexPermanent) as gone:
        await library.edit("999", PlexEdit(tags={"genre": ("x",)}))
    assert gone.value.status == 404
    with pytest.raises(PlexPermanent) as bad:
        await library.edit("102", PlexEdit(fields={"nonsense": "1"}))
    assert bad.value.status == 400

    fake_pms.fault, fake_pms.retry_after_s = "429", 9
    with pytest.raises(PlexTransient) as limited:
        await library.refresh("101")
    assert (limited.value.status, limited.value.retry_after) == (429, 9.0)
    fake_pms.fault = "503"
    with pytest.raises(PlexTransient) as busy:
        await library.refresh("101")
    assert busy.value.status == 503
    assert library.state().reachable is False
    fake_pms.fault = "401"
    with pytest.raises(PlexPermanent) as token:
        await library.refresh("101")
    assert token.value.status == 401 and "token" in str(token.value)
    fake_pms.fault = "down"
    with pytest.raises(PlexTransient) as down:
        await library.refresh("101")
    assert down.value.status is None
    fake_pms.fault = None
    await library.refresh("101")
    assert library.state().reachable is True and library.state().error == ""


async def test_a_refused_connection_and_a_slow_plex_are_transient(plex_app, fake_pms: FakePMS):
    library = await library_of(plex_app, plex={"timeout_s": 0.3})
    fake_pms.fault, fake_pms.slow_seconds = "slow", 2.0
    with pytest.raises(PlexTransient, match="timed out"):
        await library.refresh("101")
    fake_pms.fault = None
    await fake_pms.close()
    with pytest.raises(PlexTransient, match="cannot reach Plex"):
        await library.refresh("101")


async def test_a_read_stopped_early_restores_the_gc_once_closed(plex_app):
    library = await library_of(plex_app)
    before = library.index
    async with contextlib.aclosing(library.read_items()) as items:
        async for _item in items:
            assert not gc.isenabled()  # paused while the read runs
            break
    assert gc.isenabled()
    assert library.index is before  # a partial read never replaces the index
