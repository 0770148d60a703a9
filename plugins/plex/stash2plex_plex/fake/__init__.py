"""A fake Plex Media Server for tests, benchmarks and other plugins' tests.

Start it, seed it, point ``[plex]`` at it::

    from stash2plex_plex.fake import FakePMS, plex_section

    async with FakePMS(token="t0ken") as pms:
        pms.seed_example()                       # sections 1 "Stash", 2 "Movies", 4 items
        pms.add_item("1", "Scene Nine", files=["/data/stash/nine.mp4"],
                     guid="tv.plex.agents.custom.stash2plex://movie/stash-9")
        app = make_app({"plex": plex_section(pms)}, plugins=[("plex", plex_plugin)])
        ...
        assert pms.writes_to("102")[-1].params   # every write is recorded
        pms.fault, pms.fault_count = "503", 3    # the next three requests answer 503

pytest fixtures (``fake_pms``, seeded with :meth:`FakePMS.seed_example`; ``plex_app``, a
started host app with the plex plugin pointed at it) are in :mod:`.pytest_fixtures`;
another plugin's ``conftest.py`` imports them by name::

    from stash2plex_plex.fake.pytest_fixtures import fake_pms, plex_app  # noqa: F401

See :mod:`.server` for the routes and the faults, :mod:`.model` for the library.
"""

from __future__ import annotations

from typing import Any

from .model import TAG_ELEMENTS, Artwork, FakeItem, FakeSection
from .server import FAULTS, FakePMS, Seen, Write

__all__ = [
    "FAULTS",
    "TAG_ELEMENTS",
    "Artwork",
    "FakeItem",
    "FakePMS",
    "FakeSection",
    "Seen",
    "Write",
    "plex_section",
]


def plex_section(pms: FakePMS, **overrides: Any) -> dict[str, Any]:
    """A ``[plex]`` configuration section pointing at ``pms`` (short timeouts for tests)."""
    return {"url": pms.url, "token": pms.token or "", "timeout_s": 3.0, **overrides}
