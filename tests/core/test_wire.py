"""Wire format: any Metadata we build serializes to what Plex's protocol allows."""

from __future__ import annotations

import attrs
import orjson
from hypothesis import given
from hypothesis import strategies as st

from stash2plex.models import (
    IMAGE_TYPES,
    ExternalGuid,
    Image,
    MatchRequest,
    MediaContainer,
    Metadata,
    Role,
    Tag,
)
from stash2plex.wire import dumps, structure, unstructure

rating_keys = st.from_regex(r"\A[A-Za-z0-9_-]{1,40}\Z")
text = st.text(max_size=40)
maybe = lambda s: st.none() | s  # noqa: E731
tags = st.lists(st.builds(Tag, tag=text), max_size=3)
images = st.lists(
    st.builds(Image, type=st.sampled_from(sorted(IMAGE_TYPES)), url=text, alt=maybe(text)),
    max_size=3,
)
metadata = st.builds(
    Metadata,
    rating_key=rating_keys,
    title=text,
    originally_available_at=maybe(st.dates().map(str)),
    year=maybe(st.integers(1900, 2100)),
    summary=maybe(text),
    is_adult=maybe(st.booleans()),
    duration=maybe(st.integers(0, 10**8)),
    images=images,
    genres=tags,
    studios=tags,
    roles=st.lists(
        st.builds(
            Role, tag=text, role=maybe(text), thumb=maybe(text), order=maybe(st.integers(1, 99))
        ),
        max_size=3,
    ),
    guids=st.lists(st.builds(ExternalGuid, id=text), max_size=2),
)

PLEX_KEYS = {
    "ratingKey", "title", "type", "guid", "key", "originallyAvailableAt", "year", "summary",
    "tagline", "studio", "contentRating", "isAdult", "duration", "titleSort", "originalTitle",
    "thumb", "art", "addedAt", "score", "Image", "Genre", "Role", "Director", "Studio",
    "Country", "Guid",
}  # fmt: skip


@given(metadata)
def test_metadata_round_trips_through_the_wire(item):
    data = orjson.loads(dumps(item))
    assert structure(data, Metadata) == item


@given(metadata)
def test_metadata_uses_only_plex_spelling_and_no_nulls(item):
    data = unstructure(item)
    assert set(data) <= PLEX_KEYS
    assert None not in data.values()
    assert all(i["type"] in IMAGE_TYPES for i in data.get("Image", []))
    assert [] not in data.values()
    assert {"ratingKey", "title", "type"} <= set(data)


@given(st.lists(metadata, max_size=3))
def test_container_shape(items):
    c = MediaContainer(identifier="tv.plex.agents.custom.x", size=len(items), metadata=items)
    data = unstructure(c)
    assert {"identifier", "offset", "totalSize", "size", "Metadata"} <= set(data)
    assert "Image" not in data  # absent, not null


def test_match_request_reads_plex_names():
    req = structure(
        {"type": 1, "openSubtitlesHash": "ABCDEF0123456789", "includeAdult": 1, "manual": 1},
        MatchRequest,
    )
    assert req.oshash == "abcdef0123456789"
    assert req.is_manual and req.include_adult == 1


@given(st.lists(metadata, max_size=3), st.booleans())
def test_container_body_gives_items_the_shapes_plex_requires(items, scored):
    from stash2plex.provider import container_body

    ident = "tv.plex.agents.custom.x"
    before = [attrs.evolve(item) for item in items]
    scores = list(range(90, 90 - len(items), -1)) if scored else None
    got = orjson.loads(orjson.dumps(container_body(ident, metadata=items, scores=scores)))
    mc = got["MediaContainer"]
    assert (mc["identifier"], mc["offset"], mc["size"], mc["totalSize"]) == (
        ident, 0, len(items), len(items)
    )  # fmt: skip
    assert "Image" not in mc
    for n, (entry, item) in enumerate(zip(mc["Metadata"], items, strict=True)):
        assert entry["guid"] == f"{ident}://movie/{item.rating_key}"
        assert entry["key"] == f"/library/metadata/{item.rating_key}"
        assert entry["type"] == "movie"
        assert entry.get("score") == (scores[n] if scores else item.score)
        assert set(entry) <= PLEX_KEYS and None not in entry.values()
    assert items == before  # the plugin's objects are never modified
    images = [i for item in items for i in item.images]
    mc = container_body(ident, images=images)["MediaContainer"]
    assert mc["size"] == mc["totalSize"] == len(images) and "Metadata" not in mc
    assert mc["Image"] == [unstructure(i) for i in images]


def test_push_only_fields_never_reach_the_wire():
    item = Metadata(
        rating_key="stash-1", title="A", collections=[Tag(tag="Studio")], user_rating=8.0
    )
    data = unstructure(item)
    assert "collections" not in data and "Collection" not in data
    assert "userRating" not in data and "user_rating" not in data
