"""stash2plex-stash-source: match Plex files to Stash scenes and serve their metadata."""
