"""Shared fixtures: build a host app with inline plugins, talk to it over loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from stash2plex import create_app, logs


@pytest.fixture(autouse=True)
def _json_logs() -> None:
    # Every test sees the production log pipeline (and a fresh one).
    logs.configure(level="debug", fmt="json", cache=False)


@pytest.fixture
def make_app(tmp_path: Any) -> Callable[..., web.Application]:
    """``make_app(config_dict, plugins=[(name, plugin)])``: no entry points, temp data dir."""

    def build(
        raw: dict[str, Any] | None = None,
        plugins: list[tuple[str, Any]] | None = None,
        **kwargs: Any,
    ) -> web.Application:
        raw = dict(raw or {})
        server = dict(raw.get("server", {}))
        server.setdefault("data_dir", str(tmp_path / "data"))
        raw["server"] = server
        kwargs.setdefault("load_entrypoints", False)
        kwargs.setdefault("env", {})
        return create_app(raw, plugins=plugins or [], **kwargs)

    return build
