"""One mapping from Metadata to the edit: fields, replaced lists, locks, careful clears."""

from __future__ import annotations

from stash2plex import Image, Metadata, Role, Tag
from stash2plex_plex_push.config import PushConfig
from stash2plex_plex_push.mapping import plan, wanted


def _scene(**fields) -> Metadata:
    base = dict(
        rating_key="stash-1",
        title="A Title",
        title_sort="Title, A",
        summary="About",
        originally_available_at="2024-05-06",
        studio="Studio A",
        content_rating="XXX",
        tagline="SA-001",
        genres=[Tag(tag="Outdoor"), Tag(tag="Kissing"), Tag(tag="outdoor")],
        roles=[Role(tag="Ann"), Role(tag="Bea")],
        directors=[Tag(tag="Dee")],
        collections=[Tag(tag="Studio A"), Tag(tag="Network")],
        user_rating=8.5,
        images=[Image(type="coverPoster", url="/images/p"), Image(type="background", url="/b")],
    )
    base.update(fields)
    return Metadata(**base)


def test_every_field_and_list_from_one_mapping() -> None:
    want = wanted(_scene(), PushConfig(collection_tags=["kissing"]))
    assert want.fields == {
        "title": "A Title",
        "titleSort": "Title, A",
        "summary": "About",
        "originallyAvailableAt": "2024-05-06",
        "studio": "Studio A",
        "contentRating": "XXX",
        "tagline": "SA-001",
        "userRating": "8.5",
    }
    assert want.tags == {
        "genre": ("Outdoor", "Kissing"),  # case-insensitive duplicates folded
        "actor": ("Ann", "Bea"),
        "director": ("Dee",),
        "collection": ("Studio A", "Network", "Kissing"),
    }
    assert want.images == {"poster": "/images/p", "background": "/b"}
    edit = plan(want, None, ours=False, lock=True).edit
    assert edit.fields == want.fields
    assert edit.tags == want.tags
    # every written field and list is locked (a rating has no lock in Plex)
    assert edit.locked == {
        "title",
        "titleSort",
        "summary",
        "originallyAvailableAt",
        "studio",
        "contentRating",
        "tagline",
        "genre",
        "actor",
        "director",
        "collection",
        "thumb",
        "art",
    }


def test_switches_and_the_tag_cap() -> None:
    config = PushConfig(fields=["title", "genres"], max_tags=1)
    want = wanted(_scene(), config)
    assert want.fields == {"title": "A Title"}
    assert want.tags == {"genre": ("Outdoor",)}
    assert want.images == {}


def test_an_item_our_provider_matched_gets_only_what_a_provider_cannot_express() -> None:
    want = wanted(_scene(), PushConfig())
    edit = plan(want, None, ours=True, lock=True).edit
    assert edit.fields == {"userRating": "8.5"}
    assert set(edit.tags) == {"collection"}
    assert edit.locked == {"collection", "thumb", "art"}


def test_a_value_is_cleared_only_where_push_wrote_it() -> None:
    config = PushConfig()
    first = plan(wanted(_scene(), config), None, ours=False, lock=True)
    # The summary and every genre are gone in Stash.
    later = wanted(_scene(summary=None, genres=[]), config)
    edit = plan(later, first.owned, ours=False, lock=True).edit
    assert edit.fields["summary"] == ""
    assert edit.clear_if == {"summary": first.owned["fields"]["summary"]}  # if still ours
    assert edit.tags["genre"] == ()
    assert {"summary", "genre"} <= edit.unlocked
    # Nothing is cleared that push never wrote: a fresh item keeps its own values.
    fresh = plan(later, None, ours=False, lock=True).edit
    assert "summary" not in fresh.fields
    assert "genre" not in fresh.tags
