"""A fake Stash server and a realistic sample library, for tests, benchmarks and demos.

::

    from stash2plex_stash_source.fake import FakeStash, generate_library

    lib = generate_library(scenes=200, seed=1)
    async with FakeStash(lib, api_key="secret") as stash:
        ...  # talk GraphQL to stash.url; compare answers with lib.plex_files()

See :mod:`.library` for the data and its hard cases, :mod:`.server` for the behaviour.
"""

from __future__ import annotations

from .library import STASHDB_ENDPOINT, Library, PlexFile, generate_library
from .server import FAULTS, FakeStash

__all__ = ["FAULTS", "STASHDB_ENDPOINT", "FakeStash", "Library", "PlexFile", "generate_library"]
