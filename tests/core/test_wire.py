"""Wire format: any Metadata we build serializes to what Plex's protocol allows."""

from __future__ import annotations

import attrs
import orjson
from cattrs.gen import make_dict_unstructure_fn, override
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
from stash2plex.wire import converter, dumps, structure, unstructure, wire_name

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


def _cattrs_generated(cls: type):
    """cattrs' own generated function for a wire model: leave out a field that holds its
    default when that is None or an ``omit_empty`` field's empty list."""

    def omit(a: attrs.Attribute) -> bool:
        return a.default is None or (
            bool(a.metadata.get("omit_empty")) and a.default == attrs.Factory(list)
        )

    names = {
        a.name: override(
            rename=wire_name(a, cls),
            omit_if_default=omit(a),
            omit=bool(a.metadata.get("push_only")),
        )
        for a in attrs.fields(cls)
    }
    return make_dict_unstructure_fn(cls, converter, **names)


_REFERENCE = {cls: _cattrs_generated(cls) for cls in (Metadata, Role, Image, MediaContainer)}


@given(metadata)
def test_generated_unstructure_matches_cattrs(item):
    def same(obj, cls):  # the same keys, values and order
        assert orjson.dumps(unstructure(obj)) == orjson.dumps(_REFERENCE[cls](obj))

    same(item, Metadata)
    for role in item.roles:
        same(role, Role)
    for image in item.images:
        same(image, Image)
    for container in (
        MediaContainer(identifier="i", metadata=[item]),
        MediaContainer(identifier="i", images=item.images, size=len(item.images)),
        MediaContainer(identifier="i", metadata=[]),
    ):
        same(container, MediaContainer)


def test_match_request_reads_plex_names():
    req = structure(
        {"type": 1, "openSubtitlesHash": "ABCDEF0123456789", "includeAdult": 1, "manual": 1},
        MatchRequest,
    )
    assert req.oshash == "abcdef0123456789"
    assert req.is_manual and req.include_adult == 1


@given(st.lists(metadata, max_size=3), st.booleans())
def test_container_body_is_the_media_container_plex_gets(items, scored):
    from stash2plex.provider import container_body

    ident = "tv.plex.agents.custom.x"
    scores = list(range(90, 90 - len(items), -1)) if scored else None
    want = unstructure(
        MediaContainer(identifier=ident, total_size=len(items), size=len(items), metadata=items)
    )
    for n, entry in enumerate(want["Metadata"]):
        entry["type"] = "movie"
        entry["guid"] = f"{ident}://movie/{entry['ratingKey']}"
        entry["key"] = f"/library/metadata/{entry['ratingKey']}"
        if scores is not None:
            entry["score"] = scores[n]
    got = container_body(ident, metadata=items, scores=scores)["MediaContainer"]
    assert orjson.dumps(got) == orjson.dumps(want)  # the same keys in the same order
    images = [i for item in items for i in item.images]
    want = unstructure(
        MediaContainer(identifier=ident, total_size=len(images), size=len(images), images=images)
    )
    assert orjson.dumps(container_body(ident, images=images)["MediaContainer"]) == orjson.dumps(
        want
    )


def test_push_only_fields_never_reach_the_wire():
    item = Metadata(
        rating_key="stash-1", title="A", collections=[Tag(tag="Studio")], user_rating=8.0
    )
    data = unstructure(item)
    assert "collections" not in data and "Collection" not in data
    assert "userRating" not in data and "user_rating" not in data
