"""Finding, loading and describing plugins.

The manager is built per app, never at import time. Order: hook specs, blocks from
``[plugins] disable``, entry points of group ``stash2plex`` (a plugin that fails to import
is logged with its distribution and version and shown as failed; the host still starts),
plugins passed in by the caller, then ``check_pending()`` so a misspelled hook stops
start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import metadata
from typing import Any

import pluggy
from attrs import define, field

from . import hookspecs
from .config import ConfigError
from .logs import get_logger

GROUP = hookspecs.PROJECT
#: Entry points naming the config sections a distribution's plugin owns, when a section is
#: not named as the plugin (``stash = "stash2plex_stash_source.config:StashConfig"``).
#: Read, never loaded: they let a disabled plugin's section be tolerated without importing
#: the plugin.
SECTIONS_GROUP = f"{GROUP}.sections"
log = get_logger("stash2plex.plugins")


class PluginError(Exception):
    """A plugin cannot be used: a misspelled hook, a bad signature, a name clash."""


@define(kw_only=True)
class PluginInfo:
    """What ``stash2plex plugins`` shows for one plugin."""

    name: str
    status: str  # "enabled", "blocked" or "failed"
    distribution: str = ""
    version: str = ""
    hooks: list[str] = field(factory=list)
    error: str = ""
    #: Config sections its distribution declares in ``stash2plex.sections``.
    sections: list[str] = field(factory=list)


@define
class PluginSet:
    """The manager plus what happened while loading, for introspection and config."""

    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo] = field(factory=dict)

    @property
    def inactive(self) -> frozenset[str]:
        """Config sections tolerated unread: those of blocked or failed plugins, by the
        plugin's name and by the names its distribution declares (:data:`SECTIONS_GROUP`)."""
        names = set()
        for name, info in self.infos.items():
            if info.status != "enabled":
                names |= {name, *info.sections}
        return frozenset(names)

    def describe(self) -> list[PluginInfo]:
        for name, plugin in self.pm.list_name_plugin():
            info = self.infos.get(name)
            if info is None or plugin is None:
                continue
            info.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())
        return sorted(self.infos.values(), key=lambda i: i.name)


def _entry_points() -> list[tuple[metadata.EntryPoint, metadata.Distribution | None]]:
    found = []
    seen: set[str] = set()
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group != GROUP or ep.name in seen:
                continue
            seen.add(ep.name)
            found.append((ep, dist))
    return sorted(found, key=lambda pair: pair[0].name)


def build_manager(
    *,
    disable: Iterable[str] = (),
    load_entrypoints: bool = True,
    plugins: Sequence[tuple[str, Any]] = (),
) -> PluginSet:
    """Build a fresh plugin manager.

    :param disable: plugin names to block (``[plugins] disable``).
    :param load_entrypoints: discover installed plugins (tests turn this off).
    :param plugins: ``(name, plugin)`` pairs registered after the entry points: built-in or
        test plugins. Blocked names are skipped here too.
    """
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    result = PluginSet(pm)
    blocked = set(disable)
    found = _entry_points() if load_entrypoints else []
    known = {ep.name for ep, _dist in found} | {name for name, _plugin in plugins}
    unknown = sorted(blocked - known)
    if unknown:
        # A misspelled name would leave the plugin it meant running, silently.
        names = ", ".join(repr(n) for n in unknown)
        what = "is not an installed plugin" if len(unknown) == 1 else "are not installed plugins"
        raise ConfigError(
            [f"plugins.disable: {names} {what} (known: {', '.join(sorted(known)) or 'none'})"]
        )
    for name in blocked:
        pm.set_blocked(name)
        result.infos[name] = PluginInfo(name=name, status="blocked")
    if load_entrypoints:
        for ep, dist in found:
            dist_name = dist.metadata["Name"] if dist else ""
            version = dist.version if dist else ""
            sections = (
                [e.name for e in dist.entry_points if e.group == SECTIONS_GROUP] if dist else []
            )
            if ep.name in blocked:
                result.infos[ep.name] = PluginInfo(
                    name=ep.name,
                    status="blocked",
                    distribution=dist_name,
                    version=version,
                    sections=sections,
                )
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # any import-time failure: log it, keep the host up
                log.error(
                    "plugin.load_failed",
                    plugin=ep.name,
                    distribution=dist_name,
                    version=version,
                    error=f"{type(exc).__name__}: {exc}",
                )
                result.infos[ep.name] = PluginInfo(
                    name=ep.name,
                    status="failed",
                    distribution=dist_name,
                    version=version,
                    error=f"{type(exc).__name__}: {exc}",
                    sections=sections,
                )
                continue
            _register(pm, plugin, ep.name)
            result.infos[ep.name] = PluginInfo(
                name=ep.name,
                status="enabled",
                distribution=dist_name,
                version=version,
                sections=sections,
            )
    for name, plugin in plugins:
        if name in blocked:
            continue
        _register(pm, plugin, name)
        result.infos[name] = PluginInfo(name=name, status="enabled", distribution="(built in)")
    _reject_unknown_hooks(result)
    for name in result.infos:
        plugin = pm.get_plugin(name)
        if plugin is None:
            continue
        for caller in pm.get_hookcallers(plugin) or ():
            for impl in caller.get_hookimpls():
                if impl.plugin_name == name and (impl.hookwrapper or impl.wrapper):
                    raise PluginError(
                        f"plugin {name!r}: hook wrappers are not supported ({caller.name})"
                    )
    pm.check_pending()  # nothing unknown is left; this keeps pluggy's own guarantee
    return result


def _register(pm: pluggy.PluginManager, plugin: Any, name: str) -> None:
    if pm.get_plugin(name) is not None:
        raise PluginError(f"two plugins are named {name!r}")
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r}: {exc}") from None


def _reject_unknown_hooks(result: PluginSet) -> None:
    """A misspelled hook (``map_pth``) would silently never run: unload that plugin."""
    pm = result.pm
    for name, plugin in list(pm.list_name_plugin()):
        if plugin is None:
            continue
        unknown = sorted(
            caller.name
            for caller in pm.get_hookcallers(plugin) or ()
            if caller.spec is None
            and any(not i.optionalhook for i in caller.get_hookimpls() if i.plugin is plugin)
        )
        if not unknown:
            continue
        pm.unregister(plugin)
        error = f"unknown hook(s): {', '.join(unknown)}"
        log.error("plugin.rejected", plugin=name, error=error)
        info = result.infos.get(name) or PluginInfo(name=name, status="failed")
        info.status, info.error = "failed", error
        result.infos[name] = info
