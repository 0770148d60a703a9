"""stash2plex gap detection: what Plex could not match, what is only on one side, what is
stale. The hooks are in :mod:`.plugin`."""
