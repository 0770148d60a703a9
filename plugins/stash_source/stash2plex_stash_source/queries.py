"""Every GraphQL document stash_source sends to Stash, as constants.

Rules these follow (see the tests, which validate each one against the schema):

* Text is fixed at import time. User data (ids, paths, watermarks) only ever travels in
  GraphQL variables, never interpolated into a document.
* Each document is one named operation, so Stash's logs and our ``stash.*`` log events can
  say which query ran.
* Paging scans sort by ``id`` (keyset) or ``updated_at`` explicitly: without a sort Stash
  emits no ``ORDER BY`` and offset paging is not deterministic.
* Only non-deprecated fields, all present since Stash v0.27 (``groups``); ``urls`` needs
  v0.22. ``paths.stream`` is never selected: Stash embeds its API key in that URL.
* ``count`` is only selected where it is used: Stash computes it only when asked.
"""

from __future__ import annotations

__all__ = [
    "ALL",
    "FIND_SCENE",
    "RELATED_NEWEST",
    "RELATED_UPDATED_SINCE",
    "SCENES_UPDATED_SINCE",
    "SCENES_WITH",
    "SCENE_IDS_PAGE",
    "SCENE_PAGE",
    "SERVER",
    "VERSION",
]

#: What the local scene index stores per scene. Kept as one string so the build, the
#: refresh and the index's row mapping cannot drift apart. ``oshash`` is aliased from
#: ``fingerprint(type:)`` so only the one fingerprint the index uses is transferred.
_INDEX_SCENE_FIELDS = """
      id
      title
      date
      code
      organized
      updated_at
      studio { id name }
      stash_ids { stash_id }
      files { path basename size duration oshash: fingerprint(type: "oshash") }
"""

#: Health probe and minimum-version check: ``version`` (``"v0.30.1"``; may be null on dev
#: builds) and ``systemStatus.status`` (``OK`` / ``NEEDS_MIGRATION`` / ``SETUP``).
VERSION = """
query Stash2PlexVersion {
  version { version hash build_time }
  systemStatus { status databaseSchema appSchema }
}
"""

#: Which Stash installation answers: its database and configuration files. The index
#: records them, so an index built from another Stash behind the same URL is never served.
SERVER = """
query Stash2PlexServer {
  systemStatus { databasePath configPath }
}
"""

#: Keyset page of the full scan: scenes with ``id > $after``, ascending. Stable under
#: concurrent inserts and deletes, unlike offset paging. ``count`` (the scenes still ahead)
#: feeds the build's progress log; it is a cheap indexed count on Stash's side.
SCENE_PAGE = f"""
query Stash2PlexScenePage($after: Int!, $n: Int!) {{
  findScenes(
    scene_filter: {{id: {{value: $after, modifier: GREATER_THAN}}}}
    filter: {{per_page: $n, sort: "id", direction: ASC}}
  ) {{
    count
    scenes {{{_INDEX_SCENE_FIELDS}    }}
  }}
}}
"""

#: Scenes whose ``updated_at`` is later than ``$since``. Stash compares the stored RFC 3339
#: text as a *string*, so ``$since`` must be a value Stash itself returned (same offset
#: format), moved back by the caller's overlap margin.
SCENES_UPDATED_SINCE = f"""
query Stash2PlexScenesUpdatedSince($since: String!, $page: Int!, $n: Int!) {{
  findScenes(
    scene_filter: {{updated_at: {{value: $since, modifier: GREATER_THAN}}}}
    filter: {{page: $page, per_page: $n, sort: "updated_at", direction: ASC}}
  ) {{
    scenes {{{_INDEX_SCENE_FIELDS}    }}
  }}
}}
"""

#: Performers, studios and tags changed since each kind's ``$since`` (compared as text,
#: like scenes), one page of each: their names, photos, logos and parents appear in
#: scenes' metadata, yet editing them does not change the scenes' ``updated_at``. One
#: request per page for the three kinds (a kind already exhausted answers an empty list).
RELATED_UPDATED_SINCE = """
query Stash2PlexRelatedUpdatedSince(
  $performers: String!, $studios: String!, $tags: String!, $page: Int!, $n: Int!
) {
  findPerformers(
    performer_filter: {updated_at: {value: $performers, modifier: GREATER_THAN}}
    filter: {page: $page, per_page: $n, sort: "updated_at", direction: ASC}
  ) {
    performers { id updated_at }
  }
  findStudios(
    studio_filter: {updated_at: {value: $studios, modifier: GREATER_THAN}}
    filter: {page: $page, per_page: $n, sort: "updated_at", direction: ASC}
  ) {
    studios { id updated_at }
  }
  findTags(
    tag_filter: {updated_at: {value: $tags, modifier: GREATER_THAN}}
    filter: {page: $page, per_page: $n, sort: "updated_at", direction: ASC}
  ) {
    tags { id updated_at }
  }
}
"""
#: Keyset page of the scenes showing any of ``$ids`` (of one kind), with the fields the
#: index stores. A studio's scenes and its child studios' scenes (which show it as their
#: parent): depth 1. A tag's own scenes only: Stash's metadata lists direct tags.
_SCENES_WITH = (
    """
query Stash2PlexScenesWithKINDS($ids: [ID!], $after: Int!, $n: Int!) {
  findScenes(
    scene_filter: {
      id: {value: $after, modifier: GREATER_THAN}
      KINDs: {value: $ids, modifier: INCLUDESDEPTH}
    }
    filter: {per_page: $n, sort: "id", direction: ASC}
  ) {
    scenes {"""
    + _INDEX_SCENE_FIELDS
    + """    }
  }
}
"""
)
_DEPTH = {"performer": "", "studio": ", depth: 1", "tag": ", depth: 0"}


def _for(template: str, kind: str) -> str:
    # Placeholders replaced, not str.format: the selections are full of braces.
    text = template.replace("KINDS", f"{kind.title()}s").replace("DEPTH", _DEPTH[kind])
    return text.replace("KIND", kind)


#: Per related kind (``performers``, ``studios``, ``tags``): the scenes that show one.
SCENES_WITH: dict[str, str] = {
    f"{kind}s": _for(_SCENES_WITH, kind) for kind in ("performer", "studio", "tag")
}

#: Where each kind's poll starts after a first build: the newest change of each kind.
RELATED_NEWEST = """
query Stash2PlexRelatedNewest {
  findPerformers(filter: {per_page: 1, sort: "updated_at", direction: DESC}) {
    performers { updated_at }
  }
  findStudios(filter: {per_page: 1, sort: "updated_at", direction: DESC}) {
    studios { updated_at }
  }
  findTags(filter: {per_page: 1, sort: "updated_at", direction: DESC}) {
    tags { updated_at }
  }
}
"""

#: Keyset page of ids only, for the deletion sweep (deletions never show in updated_at).
SCENE_IDS_PAGE = """
query Stash2PlexSceneIdsPage($after: Int!, $n: Int!) {
  findScenes(
    scene_filter: {id: {value: $after, modifier: GREATER_THAN}}
    filter: {per_page: $n, sort: "id", direction: ASC}
  ) {
    scenes { id }
  }
}
"""

#: Everything the metadata route renders for one scene. ``findScene`` returns null for an
#: unknown numeric id. Deliberately absent: ``paths.stream`` (carries the API key),
#: ``sceneStreams`` (expensive), deprecated ``movies``/``url``.
FIND_SCENE = """
query Stash2PlexFindScene($id: ID!) {
  findScene(id: $id) {
    id
    title
    code
    details
    director
    urls
    date
    rating100
    organized
    created_at
    updated_at
    files {
      path
      basename
      size
      duration
      width
      height
      video_codec
      frame_rate
      fingerprints { type value }
    }
    paths { screenshot preview }
    studio {
      id
      name
      image_path
      parent_studio { id name image_path }
    }
    performers { id name disambiguation gender image_path }
    tags { id name }
    groups {
      scene_index
      group { id name front_image_path }
    }
    stash_ids { endpoint stash_id }
  }
}
"""

#: Every document by constant name, for tests and schema checks.
ALL: dict[str, str] = {
    "VERSION": VERSION,
    "SERVER": SERVER,
    "SCENE_PAGE": SCENE_PAGE,
    "SCENES_UPDATED_SINCE": SCENES_UPDATED_SINCE,
    "SCENE_IDS_PAGE": SCENE_IDS_PAGE,
    "FIND_SCENE": FIND_SCENE,
    "RELATED_NEWEST": RELATED_NEWEST,
    "RELATED_UPDATED_SINCE": RELATED_UPDATED_SINCE,
    **{f"SCENES_WITH_{kind.upper()}": doc for kind, doc in SCENES_WITH.items()},
}
