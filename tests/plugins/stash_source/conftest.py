"""Fixtures for stash_source: a fake Stash over loopback and a provider app pointed at it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import stash2plex_path_regex.plugin as path_plugin
import stash2plex_stash_source.plugin as stash_plugin
from stash2plex_stash_source.fake import FakeStash, Library, generate_library


@pytest.fixture(scope="session")
def library() -> Library:
    """One generated library for the read-only tests (generation is the slow part)."""
    return generate_library(scenes=400, seed=11)


@pytest.fixture
async def fake_stash(library: Library) -> AsyncIterator[FakeStash]:
    async with FakeStash(library) as stash:
        yield stash


async def wait_ready(client: TestClient, within_s: float = 20.0) -> dict[str, Any]:
    """Until /healthz says ready (the first index build has finished)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        resp = await client.get("/healthz")
        body = await resp.json()
        if resp.status == 200:
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"provider never became ready: {body}")
        await asyncio.sleep(0.05)


@pytest.fixture
def provider(aiohttp_client, make_app) -> Callable[..., Any]:
    """``await provider(stash_url, stash={...}, rules=[...])``: a started, indexed provider."""

    async def start(
        url: str,
        *,
        stash: dict[str, Any] | None = None,
        rules: list[dict[str, Any]] | None = None,
        provider: dict[str, Any] | None = None,
        ready: bool = True,
    ) -> TestClient:
        raw: dict[str, Any] = {"stash": {"url": url, "timeout_s": 2.0, **(stash or {})}}
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


def pick(library: Library, note: str = "", **kw: Any):
    """The first Plex file with this note (\"\" = an ordinary one)."""
    for f in library.plex_files(**kw):
        if f.note == note:
            return f
    raise LookupError(note)


__all__ = ["generate_library", "pick", "wait_ready"]
