"""stash2plex: a Plex custom metadata provider backed by Stash, as a small plugin host.

Plugin authors need only what this module exports, and import nothing else from the
host (its modules are its own business and may change)::

    from stash2plex import hookimpl, Candidate, Metadata

The hooks are documented in :mod:`stash2plex.hookspecs`, everything exported here in
docs/writing-plugins.md ("What the host offers"). ``stash2plex.logs.get_logger`` stays
importable for plugins written before ``get_logger`` was exported here.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("stash2plex")

# Imported after hookimpl so plugin modules importing `hookimpl` early never see a cycle.
from .app import create_app, public_base_url, started  # noqa: E402
from .bulk import gc_paused  # noqa: E402
from .config import Config, ConfigError, secret  # noqa: E402
from .contracts import (  # noqa: E402
    CatalogScene,
    PlexAgentKind,
    PlexEdit,
    PlexError,
    PlexImageKind,
    PlexItem,
    PlexLibrary,
    PlexPermanent,
    PlexSection,
    PlexState,
    PlexTransient,
    PushSync,
    SceneCatalog,
    SyncRecord,
    path_key,
)
from .errors import Unavailable, error_response  # noqa: E402
from .logs import AccessLogger, debug_enabled, get_logger  # noqa: E402
from .models import (  # noqa: E402
    Candidate,
    CheckResult,
    CliCommand,
    ConfigSection,
    ExternalGuid,
    Gap,
    GapKind,
    HealthReport,
    Image,
    MatchRequest,
    Metadata,
    PathDirection,
    Role,
    Tag,
)
from .server import run_app  # noqa: E402
from .signing import signed_url, token_refusal  # noqa: E402
from .signing import verify as verify_signature  # noqa: E402
from .state import CONFIG, HOOKS, cli_command, run_in_background  # noqa: E402

__all__ = [
    "CONFIG",
    "HOOKS",
    "AccessLogger",
    "Candidate",
    "CatalogScene",
    "CheckResult",
    "CliCommand",
    "Config",
    "ConfigError",
    "ConfigSection",
    "ExternalGuid",
    "Gap",
    "GapKind",
    "HealthReport",
    "Image",
    "MatchRequest",
    "Metadata",
    "PathDirection",
    "PlexAgentKind",
    "PlexEdit",
    "PlexError",
    "PlexImageKind",
    "PlexItem",
    "PlexLibrary",
    "PlexPermanent",
    "PlexSection",
    "PlexState",
    "PlexTransient",
    "PushSync",
    "Role",
    "SceneCatalog",
    "SyncRecord",
    "Tag",
    "Unavailable",
    "__version__",
    "cli_command",
    "create_app",
    "debug_enabled",
    "error_response",
    "gc_paused",
    "get_logger",
    "hookimpl",
    "path_key",
    "public_base_url",
    "run_app",
    "run_in_background",
    "secret",
    "signed_url",
    "started",
    "token_refusal",
    "verify_signature",
]
