"""Fixtures for plex_push unit tests: an in-memory Plex library and an in-memory source,
both plain plugins behind the real hooks, and a started app served over loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import stash2plex_plex_push.plugin as push_plugin
from stash2plex import (
    CatalogScene,
    Image,
    Metadata,
    PathDirection,
    PlexAgentKind,
    PlexEdit,
    PlexImageKind,
    PlexItem,
    PlexPermanent,
    PlexSection,
    PlexState,
    PlexTransient,
    Role,
    Tag,
    Unavailable,
    hookimpl,
)

IDENTIFIER = "tv.plex.agents.custom.stash2plex"


class MemoryPlex:
    """A PlexLibrary kept in memory: items, what was written to each, every request.

    ``fail`` holds exceptions raised by the next requests (edit/refresh/upload), one each;
    ``down`` makes every request fail with a 503 until cleared."""

    def __init__(self) -> None:
        self.items: dict[str, PlexItem] = {}
        self.values: dict[str, dict[str, Any]] = {}
        self.locked: dict[str, set[str]] = {}
        self.images: dict[str, dict[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail: list[Exception] = []
        self.down = False
        self.indexed = True  # False: the item index was never read yet

    def add(self, rating_key: str, files: tuple[str, ...], *, provider_key: str | None = None):
        guid = f"{IDENTIFIER}://movie/{provider_key}" if provider_key else f"local://{rating_key}"
        self.items[rating_key] = PlexItem(
            rating_key=rating_key,
            section_key="1",
            title=files[0].rsplit("/", 1)[-1],
            guid=guid,
            agent=PlexAgentKind.OURS if provider_key else PlexAgentKind.NONE,
            provider_key=provider_key,
            files=files,
        )
        self.values[rating_key] = {}
        self.locked[rating_key] = set()
        self.images[rating_key] = {}

    def state(self) -> PlexState:
        return PlexState(
            configured=True,
            reachable=not self.down,
            items=len(self.items),
            index_age_s=1.0 if self.indexed else None,
        )

    async def sections(self) -> list[PlexSection]:
        return [PlexSection(key="1", title="Movies", type="movie")]

    async def read_items(self) -> AsyncIterator[PlexItem]:  # pragma: no cover - unused
        for item in list(self.items.values()):
            yield item

    async def find_by_path(self, path: str) -> PlexItem | None:
        return next((i for i in self.items.values() if path in i.files), None)

    async def find_by_guid(self, guid: str) -> list[PlexItem]:
        return [i for i in self.items.values() if i.guid == guid]

    def _request(self, kind: str, rating_key: str) -> None:
        self.requests.append((kind, rating_key))
        if self.down:
            raise PlexTransient("Plex answered 503", status=503)
        if self.fail:
            raise self.fail.pop(0)
        if rating_key not in self.items:
            raise PlexPermanent(f"no item {rating_key}", status=404)

    async def edit(self, rating_key: str, edit: PlexEdit) -> None:
        self._request("edit", rating_key)
        values = self.values[rating_key]
        unlocked = set(edit.unlocked)
        for name, value in edit.fields.items():
            if not value and name in edit.clear_if and values.get(name) != edit.clear_if[name]:
                unlocked.discard(name)  # someone else's value since: kept, as PMS's plugin does
                continue
            values[name] = value
        for kind, tags in edit.tags.items():
            values[kind] = list(tags)
        self.locked[rating_key] |= set(edit.locked)
        self.locked[rating_key] -= unlocked

    async def refresh(self, rating_key: str) -> None:
        self._request("refresh", rating_key)

    async def upload_image(self, rating_key: str, kind: PlexImageKind, data: bytes) -> None:
        self._request("upload", rating_key)
        self.images[rating_key][kind.value] = data

    def count(self, kind: str | None = None) -> int:
        return sum(1 for k, _ in self.requests if kind is None or k == kind)


class MemorySource:
    """A source plugin: scenes as Metadata, a catalog, artwork under /images, path rules."""

    def __init__(self, plex: MemoryPlex) -> None:
        self.plex = plex
        self.scenes: dict[str, Metadata] = {}
        self.files: dict[str, tuple[str, ...]] = {}
        self.updated: dict[str, datetime] = {}
        self.artwork: dict[str, bytes] = {}
        self.unavailable = False
        self.ready = True

    def scene(self, n: int, **fields: Any) -> Metadata:
        key = f"stash-{n}"
        fields.setdefault("title", f"Scene {n}")
        fields.setdefault("genres", [Tag(tag="Outdoor"), Tag(tag="Kissing")])
        fields.setdefault("roles", [Role(tag="Ann")])
        fields.setdefault("collections", [Tag(tag="Studio A")])
        fields.setdefault("user_rating", 8.0)
        version = fields.pop("version", 1)
        self.artwork.setdefault(f"/images/scene/{n}/cover/{version}", b"poster-%d" % n)
        self.artwork.setdefault(f"/images/scene/{n}/screenshot/{version}", b"shot-%d" % n)
        fields.setdefault(
            "images",
            [
                Image(
                    type="coverPoster",
                    url=f"http://public.example/images/scene/{n}/cover/{version}?sig=x",
                ),
                Image(type="background", url=f"/images/scene/{n}/screenshot/{version}?sig=y"),
            ],
        )
        self.scenes[key] = Metadata(rating_key=key, **fields)
        self.files[key] = (f"/stash/scene{n}.mp4",)
        self.updated[key] = datetime.now(UTC)
        return self.scenes[key]

    def metadata(self, rating_key: str) -> Metadata | None:
        if self.unavailable:
            raise Unavailable("Stash is down")
        return self.scenes.get(rating_key)

    def catalog_scene(self, rating_key: str) -> CatalogScene | None:
        if rating_key not in self.scenes:
            return None
        return CatalogScene(
            rating_key=rating_key,
            title=self.scenes[rating_key].title,
            files=self.files[rating_key],
            updated_at=self.updated[rating_key],
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def plex() -> MemoryPlex:
    return MemoryPlex()


@pytest.fixture
def source(plex: MemoryPlex) -> MemorySource:
    return MemorySource(plex)


@pytest.fixture
def push_app(make_app, source: MemorySource) -> Callable[..., web.Application]:
    def build(push: dict[str, Any] | None = None, **raw: Any) -> web.Application:
        port = free_port()
        config = {
            "server": {"host": "127.0.0.1", "port": port, **raw.pop("server", {})},
            "push": {
                "webhook_token": "s3cret",
                "backoff_s": 0.01,
                "max_backoff_s": 0.05,
                "poll_s": 0.02,
                "rate_per_s": 0,
                "ramp_s": 0.05,
                "breaker_cooldown_s": 0.2,
                **(push or {}),
            },
            **raw,
        }
        return make_app(config, plugins=[("plex_push", push_plugin), ("memory", _Catalog(source))])

    return build


class _Catalog:
    """The in-memory source and Plex as a plugin, behind the real hooks."""

    def __init__(self, source: MemorySource) -> None:
        self.source = source
        self.catalog = _CatalogView(source)

    @hookimpl
    def build_metadata(self, rating_key: str) -> Metadata | None:
        return self.source.metadata(rating_key)

    @hookimpl
    def plex_library(self) -> MemoryPlex:
        return self.source.plex

    @hookimpl
    def scene_catalog(self) -> _CatalogView:
        return self.catalog

    @hookimpl
    def map_path(self, path: str, direction: PathDirection) -> str | None:
        if direction is PathDirection.STASH_TO_PLEX and path.startswith("/stash/"):
            return "/plex/" + path[len("/stash/") :]
        return None

    @hookimpl
    def routes(self) -> list[web.AbstractRouteDef]:
        artwork = self.source.artwork

        async def image(request: web.Request) -> web.Response:
            body = artwork.get(request.path)
            if body is None:
                return web.json_response({"error": "no image"}, status=404)
            return web.Response(body=body, content_type="image/jpeg")

        return [web.get("/images/{tail:.*}", image)]


class _CatalogView:
    """The SceneCatalog protocol over the in-memory source."""

    def __init__(self, source: MemorySource) -> None:
        self.source = source

    @property
    def ready(self) -> bool:
        return self.source.ready

    async def scenes(self) -> AsyncIterator[CatalogScene]:
        for key in list(self.source.scenes):
            scene = self.source.catalog_scene(key)
            if scene is not None:
                yield scene

    async def scene(self, rating_key: str) -> CatalogScene | None:
        return self.source.catalog_scene(rating_key)


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """``client = await serve(app)``: the app on its configured port, over loopback."""
    clients: list[TestClient] = []

    async def start(app: web.Application) -> TestClient:
        from stash2plex import CONFIG

        server = TestServer(app, host="127.0.0.1", port=app[CONFIG].server.port)
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


async def until(check: Callable[[], Any], within_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await _value(check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition never became true")
        await asyncio.sleep(0.01)


async def _value(value: Any) -> Any:
    if asyncio.iscoroutine(value):
        return await value
    return value
