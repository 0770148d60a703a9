"""Fixtures for the plex plugin: the fake PMS and a started app pointed at it."""

from __future__ import annotations

from stash2plex_plex.fake.pytest_fixtures import fake_pms, plex_app

__all__ = ["fake_pms", "plex_app"]
