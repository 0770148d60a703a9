"""Every hook this plugin implements, in one file.

It recognises files whose name carries an explicit id tag, ``{example-42}``, and serves
a small made-up item for that id. A real source would look the id up in its own catalog.
"""

from __future__ import annotations

import re

from stash2plex import Candidate, MatchRequest, Metadata, hookimpl

TAG = re.compile(r"\{example-(\d+)\}")


@hookimpl
def resolve_match(request: MatchRequest) -> list[Candidate] | None:
    found = TAG.search(request.filename or "")
    if found is None:
        return None
    item = Metadata(rating_key=f"example-{found.group(1)}", title=f"Example {found.group(1)}")
    # An explicit id in the filename is proof: score 100.
    return [Candidate(metadata=item, score=100, reason="filename-tag")]


@hookimpl
async def build_metadata(rating_key: str) -> Metadata | None:
    if not rating_key.startswith("example-"):
        return None  # not ours: another plugin may own it
    number = rating_key.removeprefix("example-")
    return Metadata(rating_key=rating_key, title=f"Example {number}", year=2024)
