"""An example third-party match source for stash2plex."""
