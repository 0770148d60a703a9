"""Make the plugin importable when it is not installed (a plain checkout)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

PLUGIN_ROOT = Path(__file__).resolve().parents[3] / "plugins" / "path_regex"

if importlib.util.find_spec("stash2plex_path_regex") is None:
    sys.path.insert(0, str(PLUGIN_ROOT))
