"""A plugin with a misspelled hook: it must be rejected, not silently ignored."""

from stash2plex import hookimpl


@hookimpl
def map_pth(path, direction):
    return "/never"
