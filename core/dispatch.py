"""The typed, async-aware way the host calls hooks.

pluggy does not await. Here every implementation is called in pluggy's order (LIFO,
``tryfirst``/``trylast`` respected), its result awaited if it is awaitable, and
first-result semantics decided on the awaited value, so an ``async def`` that returns None
never wins. What :mod:`stash2plex.hookspecs` promises, this module does:

* registration hooks (``config_section``, ``routes``, ``cleanup_ctx``, ``cli_commands``)
  run while the app is built: they must be plain ``def``, and one that raises (or is
  ``async``) stops the build with a :class:`~stash2plex.plugins.PluginError` naming the
  plugin and the hook;
* every other hook may be ``def`` or ``async def``; one that raises is logged with its
  name and skipped, the others still answer (:class:`~stash2plex.Unavailable` is logged
  as a warning and, for a first-result hook, raised to the caller when no plugin
  answered);
* an answer of the wrong type (not a ``str``, ``Candidate``, ``Metadata`` or the hook's
  protocol) is logged as ``plugin.bad_result`` and ignored: for a first-result hook the
  next plugin is asked.
"""

from __future__ import annotations

import inspect
import operator
import time
from collections.abc import Callable, Sequence
from types import CoroutineType
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from .contracts import PlexLibrary, PushSync, SceneCatalog
from .errors import Unavailable
from .logs import debug_enabled, get_logger, milliseconds
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
from .plugins import PluginError

if TYPE_CHECKING:
    from aiohttp import web

log = get_logger("stash2plex.dispatch")
_T = TypeVar("_T")
#: Picks a hook implementation's arguments, in its order, from the call's keywords.
_Arguments = Callable[[dict[str, Any]], tuple[Any, ...]]


def _arguments(names: Sequence[str]) -> _Arguments:
    if len(names) >= 2:
        return operator.itemgetter(*names)  # a tuple, picked in C
    if names:
        name = names[0]
        return lambda kwargs: (kwargs[name],)
    return lambda _kwargs: ()


#: Results that are never awaitable: no need for the (slow, ABC-based) awaitable check.
_PLAIN = frozenset({list, tuple, dict, str, int, bool, float})


class Hooks:
    """One method per hook; the only place that calls plugin code."""

    def __init__(self, pm: pluggy.PluginManager, app: web.Application | None = None) -> None:
        self.pm = pm
        self.app = app
        self._cache: dict[str, tuple[list[pluggy.HookImpl], list[Any]]] = {}

    # --- machinery ---------------------------------------------------------------------

    def _impls(self, hook: str) -> list[tuple[str, Callable[..., Any], _Arguments]]:
        """(plugin name, function, its arguments picker) in pluggy's call order (LIFO,
        ``tryfirst``/``trylast`` respected). A scan calls hooks hundreds of times a second,
        so the list is remembered until the plugin manager's registrations change."""
        raw = getattr(self.pm.hook, hook).get_hookimpls()
        cached = self._cache.get(hook)
        if cached is not None and cached[0] == raw:
            return cached[1]
        # get_hookimpls() lists in reverse call order; pluggy calls the last one first.
        impls = [(i.plugin_name, i.function, _arguments(i.argnames)) for i in reversed(raw)]
        self._cache[hook] = (raw, impls)
        return impls

    def implemented(self, hook: str) -> bool:
        """Whether any plugin implements ``hook`` (lets callers skip building arguments)."""
        return bool(self._impls(hook))

    async def _results(
        self, hook: str, kwargs: dict[str, Any], *, first: type | None = None
    ) -> list[tuple[str, Any]]:
        """(plugin name, awaited non-None result) pairs. With ``first``, a first-result
        hook: the first answer of that type, alone; an answer of another type is logged as
        ``plugin.bad_result`` and the next plugin asked."""
        kwargs["app"] = self.app
        out: list[tuple[str, Any]] = []
        unavailable: Unavailable | None = None
        # Timing each call is for debug lines only: not paid when they are filtered out.
        timed = debug_enabled()
        for plugin, function, arguments in self._impls(hook):
            started = time.perf_counter() if timed else 0.0
            try:
                value = function(*arguments(kwargs))
                if type(value) is CoroutineType or (
                    value is not None and type(value) not in _PLAIN and inspect.isawaitable(value)
                ):
                    value = await value
            except Unavailable as exc:
                log.warning("plugin.unavailable", hook=hook, plugin=plugin, error=str(exc))
                unavailable = unavailable or exc
                continue
            except Exception as exc:
                log.exception(
                    "plugin.hook_failed",
                    hook=hook,
                    plugin=plugin,
                    error=f"{type(exc).__name__}: {exc}",
                )
                continue
            if timed:
                log.debug(
                    "plugin.hook_called",
                    hook=hook,
                    plugin=plugin,
                    duration_ms=milliseconds(time.perf_counter() - started),
                    answered=value is not None,
                )
            if value is None:
                continue
            if first is not None:
                if not isinstance(value, first):
                    log.error("plugin.bad_result", hook=hook, plugin=plugin)
                    continue
                return [(plugin, value)]
            out.append((plugin, value))
        if first is not None and unavailable is not None:
            raise unavailable
        return out

    def _sync_results(self, hook: str, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
        """For registration hooks, called while the app is built (no loop needed). A
        plugin that raises, or answers with an awaitable, stops the build: a plugin
        registered by halves (settings without routes, say) must not serve."""
        kwargs["app"] = self.app
        out = []
        for plugin, function, arguments in self._impls(hook):
            try:
                value = function(*arguments(kwargs))
            except Exception as exc:
                raise PluginError(
                    f"plugin {plugin!r} failed in hook {hook}: {type(exc).__name__}: {exc}"
                ) from exc
            if inspect.isawaitable(value):
                if inspect.iscoroutine(value):
                    value.close()  # never awaited: no "never awaited" warning either
                raise PluginError(
                    f"plugin {plugin!r}: hook {hook} must be a plain def, not async "
                    "(it runs while the app is built, before any event loop)"
                )
            if value is not None:
                out.append((plugin, value))
        return out

    # --- registration hooks ------------------------------------------------------------

    def config_sections(self) -> list[tuple[str, ConfigSection]]:
        return self._sync_results("config_section", {})

    def routes(self) -> list[tuple[str, Sequence[web.AbstractRouteDef]]]:
        return self._sync_results("routes", {})

    def cleanup_contexts(self) -> list[tuple[str, Callable[..., Any]]]:
        return self._sync_results("cleanup_ctx", {})

    def cli_commands(self) -> list[tuple[str, Sequence[CliCommand]]]:
        return self._sync_results("cli_commands", {})

    async def checks(self) -> list[tuple[str, Sequence[CheckResult]]]:
        return await self._results("checks", {})

    async def health(self) -> list[tuple[str, HealthReport]]:
        return await self._results("health", {})

    # --- per request -------------------------------------------------------------------

    async def map_path(self, path: str, direction: PathDirection) -> str | None:
        """The first mapping engine's answer, or None when no rule applies anywhere."""
        found = await self._results("map_path", {"path": path, "direction": direction}, first=str)
        return found[0][1] if found else None

    async def resolve_match(self, request: MatchRequest) -> list[Candidate]:
        """Every source's candidates, each tagged with its plugin name."""
        candidates: list[Candidate] = []
        for plugin, answer in await self._results("resolve_match", {"request": request}):
            for candidate in answer:
                if not isinstance(candidate, Candidate):
                    log.error("plugin.bad_result", hook="resolve_match", plugin=plugin)
                    continue
                candidate.source = plugin
                candidates.append(candidate)
        return candidates

    async def build_metadata(self, rating_key: str) -> tuple[str, Metadata] | None:
        """The first plugin that owns the key, with its answer."""
        found = await self._results("build_metadata", {"rating_key": rating_key}, first=Metadata)
        return found[0] if found else None

    async def on_unmatched(self, request: MatchRequest, candidates: Sequence[Candidate]) -> None:
        await self._results("on_unmatched", {"request": request, "candidates": candidates})

    async def on_gap(self, gap: Gap) -> None:
        await self._results("on_gap", {"gap": gap})

    # --- between the two sides ---------------------------------------------------------

    async def plex_library(self) -> PlexLibrary | None:
        """The Plex connection, or None when no plugin offers one."""
        return await self._first("plex_library", PlexLibrary)

    async def scene_catalog(self) -> SceneCatalog | None:
        """A source's scene index, or None when no plugin offers one."""
        return await self._first("scene_catalog", SceneCatalog)

    async def push_sync(self) -> PushSync | None:
        """Push sync's ledger and queue, or None when push sync is not installed."""
        return await self._first("push_sync", PushSync)

    async def on_scenes_changed(self, rating_keys: Sequence[str]) -> None:
        await self._results("on_scenes_changed", {"rating_keys": list(rating_keys)})

    async def _first(self, hook: str, protocol: type[_T]) -> _T | None:
        found = await self._results(hook, {}, first=protocol)
        return found[0][1] if found else None
