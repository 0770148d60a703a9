"""stash2plex plugin ``plex_push``: Stash edits reach Plex without a rescan, durably."""
