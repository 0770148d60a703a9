"""The hooks between the two sides: first-result hand-outs typed by core's protocols, and
the scenes-changed broadcast; a CLI command's app started without a port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

from stash2plex import (
    HOOKS,
    CatalogScene,
    PlexEdit,
    PlexImageKind,
    PlexItem,
    PlexLibrary,
    PlexPermanent,
    PlexSection,
    PlexState,
    PlexTransient,
    PushSync,
    SceneCatalog,
    SyncRecord,
    hookimpl,
    path_key,
    started,
)


class MemoryPlex:
    """The smallest object that satisfies the PlexLibrary protocol."""

    def __init__(self) -> None:
        self.items = [PlexItem(rating_key="1", section_key="1", title="A", files=("/a.mp4",))]
        self.edits: list[tuple[str, PlexEdit]] = []

    def state(self) -> PlexState:
        return PlexState(configured=True, reachable=True, items=len(self.items))

    async def sections(self) -> Sequence[PlexSection]:
        return [PlexSection(key="1", title="Movies", type="movie")]

    async def read_items(self) -> AsyncIterator[PlexItem]:
        for item in self.items:
            yield item

    async def find_by_path(self, path: str) -> PlexItem | None:
        return next((i for i in self.items if path in i.files), None)

    async def find_by_guid(self, guid: str) -> Sequence[PlexItem]:
        return [i for i in self.items if i.guid == guid]

    async def edit(self, rating_key: str, edit: PlexEdit) -> None:
        self.edits.append((rating_key, edit))

    async def refresh(self, rating_key: str) -> None:
        return None

    async def upload_image(self, rating_key: str, kind: PlexImageKind, data: bytes) -> None:
        return None


class MemoryCatalog:
    ready = True

    async def scenes(self) -> AsyncIterator[CatalogScene]:
        yield CatalogScene(rating_key="stash-1", title="A", files=("/a.mp4",))

    async def scene(self, rating_key: str) -> CatalogScene | None:
        return None


class MemoryPush:
    def __init__(self) -> None:
        self.queued: list[str] = []

    async def records(self) -> Mapping[str, SyncRecord]:
        now = datetime.now(UTC)
        return {
            "stash-1": SyncRecord(
                rating_key="stash-1", plex_rating_key="1", pushed_at=now, digest="x"
            )
        }

    async def enqueue(self, rating_keys: Sequence[str], reason: str) -> int:
        self.queued += rating_keys
        return len(rating_keys)


def test_memory_objects_satisfy_the_protocols():
    assert isinstance(MemoryPlex(), PlexLibrary)
    assert isinstance(MemoryCatalog(), SceneCatalog)
    assert isinstance(MemoryPush(), PushSync)


async def test_hook_plex_library_first_object_of_the_protocol_wins(make_app, capsys):
    plex = MemoryPlex()

    class Wrong:
        @hookimpl(tryfirst=True)
        def plex_library(self):
            return "not a library"  # logged and skipped, never handed out

    class Absent:
        @hookimpl(tryfirst=True)
        async def plex_library(self, app):
            return None

    class Real:
        @hookimpl
        async def plex_library(self, app):
            return plex

    app = make_app(plugins=[("real", Real()), ("absent", Absent()), ("wrong", Wrong())])
    found = await app[HOOKS].plex_library()
    assert found is plex
    await found.edit("1", PlexEdit(fields={"title": "B"}, locked=frozenset({"title"})))
    assert plex.edits[0][1].fields == {"title": "B"}
    assert [i.title async for i in found.read_items()] == ["A"]
    assert "plugin.bad_result" in capsys.readouterr().out


async def test_hook_plex_library_none_without_a_plugin(make_app):
    assert await make_app()[HOOKS].plex_library() is None


async def test_hook_scene_catalog_hands_out_the_index(make_app):
    class Source:
        @hookimpl
        def scene_catalog(self, app):
            return MemoryCatalog()

    catalog = await make_app(plugins=[("source", Source())])[HOOKS].scene_catalog()
    assert catalog is not None and catalog.ready
    assert [s.rating_key async for s in catalog.scenes()] == ["stash-1"]


async def test_hook_push_sync_hands_out_ledger_and_queue(make_app):
    push = MemoryPush()

    class Push:
        @hookimpl
        def push_sync(self):
            return push

    found = await make_app(plugins=[("push", Push())])[HOOKS].push_sync()
    assert found is push
    assert (await found.records())["stash-1"].plex_rating_key == "1"
    assert await found.enqueue(["stash-2"], "gap") == 1 and push.queued == ["stash-2"]


async def test_hook_on_scenes_changed_is_broadcast_and_survives_a_crash(make_app):
    seen: list[list[str]] = []

    class Crash:
        @hookimpl(tryfirst=True)
        def on_scenes_changed(self, rating_keys):
            raise RuntimeError("boom")

    class Push:
        @hookimpl
        async def on_scenes_changed(self, rating_keys, app):
            seen.append(rating_keys)

    app = make_app(plugins=[("push", Push()), ("crash", Crash())])
    await app[HOOKS].on_scenes_changed(("stash-1", "stash-2"))
    assert seen == [["stash-1", "stash-2"]]


def test_plex_errors_carry_what_a_retry_needs():
    busy = PlexTransient("429 from Plex", status=429, retry_after=30.0)
    assert busy.retry_after == 30.0 and busy.status == 429
    gone = PlexPermanent("no such item", status=404)
    assert gone.status == 404
    assert PlexEdit().is_empty() and not PlexEdit(tags={"genre": ()}).is_empty()


async def test_started_runs_cleanup_contexts_without_a_port(make_app):
    events: list[str] = []

    class Lifetime:
        @hookimpl
        def cleanup_ctx(self, app):
            async def ctx(app):
                events.append("start")
                yield
                events.append("stop")

            return ctx

    app = make_app(plugins=[("life", Lifetime())])
    async with started(app):
        assert events == ["start"]
    assert events == ["start", "stop"]


def test_path_key_normalizes_separators_and_unicode_but_not_case():
    nfd = "/media/Cafe\u0301/A.mp4"
    assert path_key(nfd) == "/media/Caf\u00e9/A.mp4"
    assert path_key("D:\\Videos\\a.mp4") == "D:/Videos/a.mp4"
    assert path_key("//nas/share//x/") == "//nas/share/x"
    assert path_key("/a//b") == "/a/b" and path_key("/") == "/"
    assert path_key("/A.mp4") != path_key("/a.mp4")
