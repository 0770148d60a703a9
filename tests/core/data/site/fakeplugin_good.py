"""A working plugin, found through the checked-in entry point."""

from stash2plex import Candidate, Metadata, hookimpl


@hookimpl
def resolve_match(request):
    if request.title != "fake good":
        return None
    return [Candidate(metadata=Metadata(rating_key="fake-1", title="Fake Good"), score=99)]
