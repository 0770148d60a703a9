"""Whatever the item holds and whatever is wanted, an edit leaves each list exactly as
given, in one PUT: whether PMS replaces on an indexed list or only adds to it."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from stash2plex import PlexEdit
from stash2plex_plex.config import PlexConfig
from stash2plex_plex.connection import PlexConnection
from stash2plex_plex.fake import FakePMS
from stash2plex_plex.library import PlexLibraryService

# Commas, percent signs, plus signs, spaces, brackets and non-ASCII: everything quoting
# could get wrong. (No control characters: XML cannot carry them, so PMS cannot either.)
tag = st.text(
    alphabet=st.sampled_from(list("ab ,%+&=[]/é中'\""))
    | st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")),
    min_size=1,
    max_size=10,
).filter(lambda t: t.strip() == t)
tags = st.lists(tag, max_size=6, unique=True)
kinds = st.sampled_from(["genre", "collection", "actor", "label"])


async def scenario(held: dict[str, list[str]], wanted: dict[str, list[str]], replace: bool) -> None:
    async with FakePMS(indexed_tags_replace=replace) as pms:
        pms.add_section("1", "Stash")
        pms.add_item("1", "x", rating_key="101", files=["/a.mp4"], tags=held)
        conn = PlexConnection(pms.url, pms.token or "", client_id="t", timeout_s=5)
        library = PlexLibraryService(PlexConfig(url=pms.url), conn, identifier="i")
        try:
            await library.edit("101", PlexEdit(tags={k: tuple(v) for k, v in wanted.items()}))
        finally:
            await library.close()
            conn.close()
        assert len([w for w in pms.writes if w.method == "PUT"]) == 1
        for kind, values in wanted.items():
            assert pms.items["101"].tags.get(kind, []) == values
        for kind, values in held.items():
            if kind not in wanted:
                assert pms.items["101"].tags[kind] == values


@settings(max_examples=25, deadline=None)
@given(
    held=st.dictionaries(kinds, tags, max_size=3),
    wanted=st.dictionaries(kinds, tags, min_size=1, max_size=3),
    replace=st.booleans(),
)
def test_lists_end_exactly_as_given(held, wanted, replace):
    asyncio.run(scenario(held, wanted, replace))
