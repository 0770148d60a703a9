"""stash2plex_plex: the Plex Media Server side of stash2plex (see :mod:`.plugin`)."""
