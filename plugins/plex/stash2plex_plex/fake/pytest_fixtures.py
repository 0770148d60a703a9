"""pytest fixtures for the fake PMS, importable by any plugin's tests.

In a ``conftest.py``::

    from stash2plex_plex.fake.pytest_fixtures import fake_pms, plex_app  # noqa: F401

``fake_pms`` is a started :class:`~stash2plex_plex.fake.FakePMS` seeded with
:meth:`~stash2plex_plex.fake.FakePMS.seed_example` (add more with ``add_item``).
``plex_app`` is an async factory: ``app = await plex_app(extra_raw_config, plugins=[...])``
builds a host app with the plex plugin (plus the given ``(name, plugin)`` pairs) pointed at
``fake_pms``, starts it without a port, waits for the first index read, and cleans up after
the test. ``await app[HOOKS].plex_library()`` then returns the live library.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from stash2plex import HOOKS, create_app, started

from . import FakePMS, plex_section


@pytest.fixture
async def fake_pms() -> AsyncIterator[FakePMS]:
    async with FakePMS() as pms:
        pms.seed_example()
        yield pms


@pytest.fixture
async def plex_app(
    fake_pms: FakePMS, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[web.Application]]]:
    async with contextlib.AsyncExitStack() as stack:

        async def build(
            raw: dict[str, Any] | None = None,
            plugins: list[tuple[str, Any]] | None = None,
            *,
            plex: dict[str, Any] | None = None,
            indexed: bool = True,
        ) -> web.Application:
            import stash2plex_plex.plugin as plex_plugin

            config = dict(raw or {})
            config["server"] = {"data_dir": str(tmp_path / "data"), **config.get("server", {})}
            config["plex"] = {**plex_section(fake_pms), **(plex or {})}
            app = create_app(
                config,
                plugins=[("plex", plex_plugin), *(plugins or [])],
                load_entrypoints=False,
                env={},
            )
            await stack.enter_async_context(started(app))
            library = await app[HOOKS].plex_library()
            if indexed and library is not None:
                await library.refresh_index()  # type: ignore[attr-defined]
            return app

        yield build
