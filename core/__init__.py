"""stash2plex: a Plex custom metadata provider backed by Stash, as a small plugin host.

Plugin authors need only what this module exports::

    from stash2plex import hookimpl, Candidate, Metadata

The hooks are documented in :mod:`stash2plex.hookspecs`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("stash2plex")

# Imported after hookimpl so plugin modules importing `hookimpl` early never see a cycle.
from .app import (  # noqa: E402
    CONFIG,
    HOOKS,
    create_app,
    error_response,
    public_base_url,
    run_in_background,
    started,
)
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
from .errors import Unavailable  # noqa: E402
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
from .signing import signed_url  # noqa: E402
from .signing import verify as verify_signature  # noqa: E402

__all__ = [
    "CONFIG",
    "HOOKS",
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
    "create_app",
    "error_response",
    "hookimpl",
    "path_key",
    "public_base_url",
    "run_in_background",
    "secret",
    "signed_url",
    "started",
    "verify_signature",
]
