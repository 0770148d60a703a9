"""Every hook a stash2plex plugin can implement: the plugin author's contract.

A plugin is a module (or object) with functions marked ``@hookimpl`` whose names are the
hook names below, registered under the entry-point group ``stash2plex``::

    # pyproject.toml
    [project.entry-points.stash2plex]
    my_source = "my_package.plugin"

    # my_package/plugin.py
    from stash2plex import hookimpl

    @hookimpl
    async def resolve_match(request, app):
        ...

What the host's dispatcher (:mod:`stash2plex.dispatch`) does with every hook; pluggy
itself does not await, so the host never calls ``pm.hook.<name>()``:

* **Registration hooks** (``config_section``, ``routes``, ``cleanup_ctx``,
  ``cli_commands``) run while the app is built, before any event loop: they must be plain
  ``def``. One that is ``async def``, or that raises, stops start-up with a
  ``PluginError`` naming the plugin, the hook and the exception (a plugin registered by
  halves must not serve).
* **Every other hook** (``checks``, ``health`` and the per-request and between-sides
  hooks) may be ``def`` or ``async def``; the host awaits what needs awaiting and decides
  "first result wins" on the awaited value. One that raises is logged with the plugin's
  name and skipped; the other plugins still answer. :class:`~stash2plex.Unavailable` is
  logged as a warning, and a first-result hook (``map_path``, ``build_metadata``,
  ``plex_library``, ``scene_catalog``, ``push_sync``) raises it to the caller when no
  plugin answered (``build_metadata`` then becomes a 503).
* An answer of the wrong type (``map_path`` not a ``str``, ``build_metadata`` not a
  ``Metadata``, the between-sides hooks not their protocol, ``resolve_match`` items that
  are not ``Candidate``) is logged as ``plugin.bad_result`` and ignored: for a
  first-result hook the next plugin is asked.
* Implementations are called in pluggy's order: the plugin registered last first,
  ``tryfirst``/``trylast`` respected. Hook wrappers are not supported.
* An implementation may accept fewer arguments than the spec (pick the ones you need), but
  never give a parameter a default value: pluggy does not pass those.
* ``app`` is the :class:`aiohttp.web.Application`. Read the configuration with
  ``app[stash2plex.CONFIG].section("name")`` and keep your own state under your own
  :class:`aiohttp.web.AppKey`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from aiohttp import web

    from .contracts import PlexLibrary, PushSync, SceneCatalog
    from .models import (
        Candidate,
        CheckResult,
        CliCommand,
        ConfigSection,
        Gap,
        HealthReport,
        MatchRequest,
        Metadata,
        PathDirection,
    )

PROJECT = "stash2plex"
hookspec = pluggy.HookspecMarker(PROJECT)


# --- registration: called once, while the app is built ---------------------------------


@hookspec
def config_section() -> ConfigSection | None:
    """Declare this plugin's section of the configuration file.

    Called once, before the configuration is structured. Every key of ``[<name>]`` in the
    TOML file (and every ``STASH2PLEX_<NAME>__<KEY>`` variable) is structured strictly into
    the attrs class: an unknown key or a wrong type stops start-up, naming the key. Give
    every field a default so an absent section is valid; mark secrets with
    ``metadata={"secret": True}`` so they are redacted wherever config is printed.

    :returns: a :class:`~stash2plex.ConfigSection`, or None for a plugin without settings.
        Collected from every plugin; two plugins claiming one name stop start-up.

    Example::

        @define
        class StashConfig:
            url: str = "http://localhost:9999"
            api_key: str = field(default="", metadata={"secret": True})

        @hookimpl
        def config_section():
            return ConfigSection(name="stash", cls=StashConfig)
    """


@hookspec
def routes(app: web.Application) -> Sequence[web.AbstractRouteDef] | None:
    """Add HTTP routes to the provider.

    Called once while the app is built, before it is frozen; the app is not started yet.

    :param app: the application being built; its configuration is already loaded.
    :returns: route definitions (``web.get(...)``, ``web.post(...)``, ``web.view(...)``),
        or None. Collected from every plugin. The host wraps each handler as it does its
        own: the request gets an id (``X-Request-ID``, and on every log line) and is timed
        for its access line, and every answer that is not yours is JSON: an
        ``HTTPException`` keeps its status (a redirect its ``Location``), a body broken
        in its framing is a 400, a client gone before the answer is logged at info as a
        disconnect (499 on its access line), anything else is a 500 whose traceback goes
        to the log, never to the client. Request bodies reach the handler as the client
        sent them: aiohttp's automatic decompression is off for the whole app, so a
        handler that accepts ``Content-Encoding`` decodes it itself. Static-file
        definitions are added as they are.
    """


@hookspec
def cleanup_ctx(
    app: web.Application,
) -> Callable[[web.Application], AsyncIterator[None]] | None:
    """Hand the host a resource's lifetime, as an aiohttp cleanup context.

    Called once while the app is built. The returned async generator function runs at
    start-up up to its single ``yield`` and resumes at shutdown; use it to open sessions,
    start background tasks and close them again.

    :param app: the application being built; its configuration is already loaded.
    :returns: an async generator function taking the app, or None. Collected from every
        plugin and run in plugin order.
    """


@hookspec
def cli_commands() -> Sequence[CliCommand] | None:
    """Add ``stash2plex <name>`` sub-commands.

    Called once when the command line is parsed.

    :returns: :class:`~stash2plex.CliCommand` records, or None. Collected from every
        plugin; a name already taken stops the CLI with an error naming both.
    """


@hookspec
def checks(app: web.Application) -> Sequence[CheckResult] | None:
    """Report what ``stash2plex check`` should verify for this plugin.

    Called once by ``stash2plex check``, on an app that is built but not started. Check
    reachability, credentials, rule round-trips: whatever an operator should know before
    starting.

    :param app: the built application; its configuration is loaded.
    :returns: :class:`~stash2plex.CheckResult` records, or None. Collected from every
        plugin; any failed result makes the command exit 1.
    """


@hookspec
def health(app: web.Application) -> HealthReport | None:
    """Contribute to ``GET /healthz``.

    Called on every health request, so answer from memory: no network calls.

    :param app: the running application.
    :returns: a :class:`~stash2plex.HealthReport` (``ready=False`` turns the answer into a
        503), or None. Collected from every plugin, keyed by plugin name.
    """


# --- per request --------------------------------------------------------------------------


@hookspec
def map_path(path: str, direction: PathDirection, app: web.Application) -> str | None:
    """Translate a file path between Plex's view and Stash's view of the same file.

    Called by match sources (and gap detection) whenever they hold a path seen by one side
    and need the other side's spelling.

    :param path: the path as the source side sees it, unmodified.
    :param direction: :attr:`~stash2plex.PathDirection.PLEX_TO_STASH` or
        :attr:`~stash2plex.PathDirection.STASH_TO_PLEX`.
    :param app: the running application.
    :returns: the translated path, or None for "no rule of mine applies".
        **First result wins**: implementations are asked in plugin order and the first
        non-None answer is used. When every plugin answers None, callers fall back to
        other evidence (path suffix, basename, fingerprint).
    """


@hookspec
def resolve_match(request: MatchRequest, app: web.Application) -> Sequence[Candidate] | None:
    """Propose scenes for one file Plex is scanning.

    Called for every ``POST /library/metadata/matches``, on every match source. Answer from
    local state (an index), not with a network call per request: a Plex scan sends
    hundreds of these at once.

    :param request: the match body Plex sent (title, year, filename, guid, hashes...).
        The host has bounded it: every text field holds at most 1024 characters
        (``filename`` 32767); a longer one was answered 400 before any source ran.
    :param app: the running application.
    :returns: scored :class:`~stash2plex.Candidate` records, or None (same as empty).
        Collected from every plugin: the host merges them (for one ratingKey the highest
        score wins), ranks them, and applies ``provider.match_threshold``: automatic
        matches get the best candidate only if it clears the threshold and beats the
        runner-up by ``provider.match_margin``; Fix Match (``manual=1``) gets up to 10.
    """


@hookspec
def build_metadata(rating_key: str, app: web.Application) -> Metadata | None:
    """Return the full metadata of one item Plex asks for.

    Called for every ``GET /library/metadata/{ratingKey}`` (and its ``/images``).

    :param rating_key: a key this provider handed out earlier, e.g. ``stash-123``; always
        within ``[A-Za-z0-9_-]+``. Answer only for keys your plugin owns.
    :param app: the running application.
    :returns: the :class:`~stash2plex.Metadata`, or None for "not mine / not found".
        **First result wins**; when every plugin answers None the host answers 404.
        ``guid`` and ``key`` are filled in by the host.
    """


@hookspec
def on_unmatched(
    request: MatchRequest, candidates: Sequence[Candidate], app: web.Application
) -> None:
    """Learn that Plex asked for a match and no candidate cleared the threshold.

    Called for a scan's match (never for Fix Match, which gets a list whatever the
    scores) after the (empty) response has been sent, so it never delays Plex. Gap
    detection records these.

    :param request: the match body Plex sent.
    :param candidates: every candidate that was proposed, best first (maybe none).
    :param app: the running application.
    :returns: nothing; broadcast to every plugin.
    """


@hookspec
def on_gap(gap: Gap, app: web.Application) -> None:
    """Act on a difference between the Plex and Stash libraries.

    Called by gap detection for each gap it finds (push sync queues work from these).

    :param gap: the :class:`~stash2plex.Gap`: its kind, the paths and ids involved.
    :param app: the running application.
    :returns: nothing; broadcast to every plugin.
    """


# --- between the two sides ---------------------------------------------------------------


@hookspec
def plex_library(app: web.Application) -> PlexLibrary | None:
    """Hand out the connection to Plex Media Server.

    Called by push sync and gap detection whenever they need Plex, so return an object
    created at start-up (in your cleanup context), not a new one per call.

    :param app: the running application (or a CLI command's started app).
    :returns: an object of the :class:`~stash2plex.PlexLibrary` protocol, or None when
        Plex is not configured. **First result wins.** No plexapi type may cross it:
        records only (:class:`~stash2plex.PlexItem`, :class:`~stash2plex.PlexEdit`...),
        and Plex's failures as :class:`~stash2plex.PlexTransient` or
        :class:`~stash2plex.PlexPermanent`.
    """


@hookspec
def scene_catalog(app: web.Application) -> SceneCatalog | None:
    """Hand out read access to a source's scene index.

    Called by gap detection (and push sync) to list every scene with its files and change
    time, from local state: no request to Stash.

    :param app: the running application (or a CLI command's started app).
    :returns: an object of the :class:`~stash2plex.SceneCatalog` protocol, or None.
        **First result wins.**
    """


@hookspec
def push_sync(app: web.Application) -> PushSync | None:
    """Hand out push sync's ledger and queue.

    Called by gap detection to learn when each scene was last pushed (``stale`` gaps) and
    to hand it scenes to push (``stash2plex gaps fix``).

    :param app: the running application (or a CLI command's started app).
    :returns: an object of the :class:`~stash2plex.PushSync` protocol, or None.
        **First result wins.**
    """


@hookspec
def on_scenes_changed(rating_keys: Sequence[str], app: web.Application) -> None:
    """Learn that scenes changed at their source.

    Called by a source after an index refresh found changed scenes (or changed performers,
    studios or tags that touch them), once it has dropped their cached metadata, so that
    ``build_metadata`` already answers with the new values. Push sync queues them.

    :param rating_keys: provider ratingKeys (``stash-123``) of the changed scenes.
    :param app: the running application.
    :returns: nothing; broadcast to every plugin.
    """
