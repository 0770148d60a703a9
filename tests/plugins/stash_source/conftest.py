"""Fixtures for stash_source: a fake Stash over loopback and a provider app pointed at it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import stash2plex_path_regex.plugin as path_plugin
import stash2plex_stash_source.plugin as stash_plugin
from stash2plex_stash_source.fake import FakeStash, Library, generate_library
from stash2plex_stash_source.source import get_source


@pytest.fixture(scope="session")
def library() -> Library:
    """One generated library for the read-only tests (generation is the slow part)."""
    return generate_library(scenes=400, seed=11)


@pytest.fixture
async def fake_stash(library: Library) -> AsyncIterator[FakeStash]:
    async with FakeStash(library) as stash:
        yield stash


async def wait_ready(client: TestClient, within_s: float = 20.0) -> dict[str, Any]:
    """Until /healthz says ready (the first index build has finished) and the first upkeep
    round is over (its requests to Stash done: tests count the requests after it)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        resp = await client.get("/healthz")
        body = await resp.json()
        source = get_source(client.app)
        if resp.status == 200 and source is not None and source.rounds > 0:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"provider never became ready: {body}")
        await asyncio.sleep(0.05)


@pytest.fixture
def provider(aiohttp_client, make_app) -> Callable[..., Any]:
    """``await provider(stash_url, stash={...}, rules=[...])``: a started, indexed provider.

    Every provider of one test shares ``tmp_path/data`` unless ``server={"data_dir": ...}``
    says otherwise (a restart test wants the sharing)."""

    async def start(
        url: str,
        *,
        stash: dict[str, Any] | None = None,
        rules: list[dict[str, Any]] | None = None,
        provider: dict[str, Any] | None = None,
        server: dict[str, Any] | None = None,
        ready: bool = True,
    ) -> TestClient:
        raw: dict[str, Any] = {"stash": {"url": url, "timeout_s": 2.0, **(stash or {})}}
        if server:
            # e.g. {"data_dir": ...}: two providers in one test must not share an index.
            raw["server"] = server
        if rules:
            raw["path_regex"] = {"rules": rules}
        if provider:
            raw["provider"] = provider
        app = make_app(raw, plugins=[("stash_source", stash_plugin), ("path_regex", path_plugin)])
        client = await aiohttp_client(app)
        if ready:
            await wait_ready(client)
        return client

    return start


@pytest.fixture
async def client(provider, fake_stash: FakeStash) -> TestClient:
    return await provider(fake_stash.url)


@pytest.fixture
def small_library() -> Library:
    """A fresh, small library a test may mutate (touch, delete, add scenes)."""
    return generate_library(scenes=60, seed=5)


@pytest.fixture
async def small_stash(small_library: Library) -> AsyncIterator[FakeStash]:
    async with FakeStash(small_library) as stash:
        yield stash


@pytest.fixture
def lib() -> Library:
    """A fresh 200-scene library a test may mutate, for the index and fake Stash tests."""
    return generate_library(scenes=200, seed=1)


@pytest.fixture
async def stash(lib: Library) -> AsyncIterator[FakeStash]:
    async with FakeStash(lib) as fake:
        yield fake


async def _match(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    resp = await client.post("/library/metadata/matches", json={"type": 1, **body})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["MediaContainer"]["Metadata"]


@pytest.fixture
def match() -> Callable[..., Awaitable[list[dict[str, Any]]]]:
    """``await match(client, filename=..., manual=1)``: POST a match request in Plex's
    spelling and return the ``Metadata`` list (asserting a 200)."""
    return _match


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [int(i["ratingKey"].removeprefix("stash-")) for i in items]


@pytest.fixture
def ids() -> Callable[[list[dict[str, Any]]], list[int]]:
    """Scene ids of a ``Metadata`` list, in order."""
    return _ids


async def _eventually(
    check: Callable[[], Awaitable[bool]], within_s: float = 10.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} never happened within {within_s} s")
        await asyncio.sleep(0.05)


@pytest.fixture
def eventually() -> Callable[..., Awaitable[None]]:
    """``await eventually(async_check, within_s, what)``: poll while the provider's
    background loops run."""
    return _eventually


@pytest.fixture
def log_events(capsys: pytest.CaptureFixture[str]) -> Callable[[], list[dict[str, Any]]]:
    """The JSON log lines written to stdout since the last call, parsed. Every stdout line
    must be one JSON object (json.loads fails the test otherwise)."""

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    return read


def pick(library: Library, note: str = "", **kw: Any):
    """The first Plex file with this note (\"\" = an ordinary one)."""
    for f in library.plex_files(**kw):
        if f.note == note:
            return f
    raise LookupError(note)


__all__ = ["generate_library", "pick", "wait_ready"]
