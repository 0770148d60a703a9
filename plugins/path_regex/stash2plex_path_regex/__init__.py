"""stash2plex-path-regex: translate file paths between Plex's and Stash's view of a file.

The engine (:mod:`.engine`) is usable on its own; :mod:`.plugin` holds the host hooks.
"""

from __future__ import annotations

from .engine import Engine, Mapping, PathRegexConfig, Rule, validate_rules

__all__ = ["Engine", "Mapping", "PathRegexConfig", "Rule", "validate_rules"]
