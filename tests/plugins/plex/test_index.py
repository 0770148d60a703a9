"""The item index: scheduled re-reads, failed reads, early stops, guid classification."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from stash2plex import HOOKS, PlexAgentKind, PlexItem, PlexTransient
from stash2plex_plex.connection import _seconds
from stash2plex_plex.fake import FakePMS
from stash2plex_plex.index import ItemIndex, classify

ID = "tv.plex.agents.custom.stash2plex"
OURS_GUID = f"{ID}://movie/stash-22"


@pytest.mark.parametrize(
    ("guid", "expected"),
    [
        (f"{ID}://movie/stash-7", (PlexAgentKind.OURS, ID, "stash-7")),
        (
            "tv.plex.agents.custom.other://movie/stash-7",
            (PlexAgentKind.OTHER, "tv.plex.agents.custom.other", None),
        ),
        ("plex://movie/5d77", (PlexAgentKind.OTHER, "plex", None)),
        (
            "com.plexapp.agents.imdb://tt01?lang=en",
            (PlexAgentKind.OTHER, "com.plexapp.agents.imdb", None),
        ),
        ("local://101", (PlexAgentKind.NONE, "local", None)),
        ("com.plexapp.agents.none://abc", (PlexAgentKind.NONE, "com.plexapp.agents.none", None)),
        ("", (PlexAgentKind.NONE, "", None)),
        (None, (PlexAgentKind.NONE, "", None)),
    ],
)
def test_agent_from_guid(guid, expected):
    assert classify(guid, ID) == expected


def test_an_item_put_again_drops_its_old_paths_and_guid():
    index = ItemIndex()
    index.put(PlexItem(rating_key="1", section_key="1", title="a", guid="g1", files=("/a", "/b")))
    index.put(PlexItem(rating_key="1", section_key="1", title="a", guid="g2", files=("/c",)))
    assert index.by_path("/a") is None and index.by_path("/c") is not None
    assert index.by_guid("g1") == [] and len(index.by_guid("g2")) == 1
    index.remove("1")
    assert len(index) == 0 and index.by_path("/c") is None


def test_retry_after_in_seconds_or_as_a_date():
    assert _seconds("12") == 12.0
    assert _seconds(None) is None and _seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 50 < (_seconds(later) or 0) <= 60


async def test_the_index_is_read_again_on_schedule(plex_app, fake_pms: FakePMS):
    app = await plex_app(plex={"index_refresh_s": 0.05})
    library = await app[HOOKS].plex_library()
    fake_pms.add_item("1", "late arrival", files=["/data/stash/late.mp4"])
    for _ in range(200):
        if await library.find_by_path("/data/stash/late.mp4") is not None:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the scheduled read never picked the new item up")
    fake_pms.remove_item("101")
    for _ in range(200):
        if await library.find_by_path("/data/stash/Studio A/scene-one.mp4") is None:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("a removed item stayed in the index")


async def test_a_failed_read_keeps_the_index(plex_app, fake_pms: FakePMS):
    app = await plex_app()
    library = await app[HOOKS].plex_library()
    fake_pms.fault = "503"
    with pytest.raises(PlexTransient):
        await library.refresh_index()
    assert library.state().items == 4 and library.state().reachable is False
    assert await library.find_by_path("/data/stash/Studio A/scene-one.mp4") is not None


async def test_a_read_stopped_early_leaves_the_index_and_no_request_behind(
    plex_app, fake_pms: FakePMS
):
    for n in range(40):
        fake_pms.add_item("1", f"x{n}", files=[f"/data/stash/x/{n}.mp4"])
    app = await plex_app(plex={"page_size": 10})
    library = await app[HOOKS].plex_library()
    before = library.index
    async with contextlib.aclosing(library.read_items()) as items:
        async for _item in items:
            break
    await asyncio.sleep(0.05)  # a cancelled read-ahead has nothing left to do
    assert library.index is before and len(before) == 44


async def test_an_item_shifted_onto_the_next_page_is_read_once(plex_app, fake_pms: FakePMS):
    for n in range(12):
        fake_pms.add_item("1", f"x{n}", files=[f"/data/stash/x/{n}.mp4"])
    app = await plex_app(plex={"page_size": 10, "libraries": ["Stash"]})
    library = await app[HOOKS].plex_library()
    before = [item.rating_key async for item in library.read_items()]

    def insert_at_front(section: str, start: int) -> None:
        if section == "1" and start == 0:
            fake_pms.after_listing = None
            fake_pms.add_item("1", "new first", files=["/data/stash/first.mp4"], position=0)

    fake_pms.after_listing = insert_at_front
    keys = [item.rating_key async for item in library.read_items()]
    # the tenth item was shifted onto page 2 and listed twice by Plex; read once
    assert keys == before
    assert len(library.index) == 15


async def test_a_lookup_before_the_first_read_waits_for_it(plex_app, fake_pms: FakePMS):
    fake_pms.fault, fake_pms.fault_count = "503", 1  # the read at start-up fails
    app = await plex_app(indexed=False)
    library = await app[HOOKS].plex_library()
    with contextlib.suppress(PlexTransient):
        await library.refresh_index()
    assert library.state().items == 0 and library.state().reachable is False
    # not "not found": the lookup reads the library first
    found = await library.find_by_path("/data/stash/Studio A/scene-one.mp4")
    assert found is not None and found.rating_key == "101"
    fake_pms.fault = "503"
    assert await library.find_by_guid(OURS_GUID) != []  # read once: no request now


async def test_a_lookup_while_plex_was_never_read_is_transient(plex_app, fake_pms: FakePMS):
    fake_pms.fault = "503"
    app = await plex_app(indexed=False)
    library = await app[HOOKS].plex_library()
    with pytest.raises(PlexTransient):
        await library.find_by_path("/data/stash/Studio A/scene-one.mp4")


def test_add_page_puts_each_item_once_and_finds_it_by_any_file():
    index = ItemIndex()
    a = PlexItem(rating_key="1", section_key="1", title="A", files=("/m/a.mp4", "/m/a2.mp4"))
    again = PlexItem(rating_key="1", section_key="1", title="A later", files=("/m/x.mp4",))
    assert index.add_page([a]) == [a]
    assert index.add_page([again]) == []  # a page that shifted: the first read stands
    assert index.by_path("/m/a2.mp4") is a and index.by_path("/m/x.mp4") is None
