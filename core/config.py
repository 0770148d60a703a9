"""Configuration: one TOML file, every key overridable from the environment.

``STASH2PLEX_<SECTION>__<KEY>=value`` overrides ``[section] key``; the value is read as
the field's type (``true``/``false`` for bools, TOML or JSON syntax for lists). Each
section is an attrs class, structured by the strict converter in :mod:`stash2plex.wire`:
an unknown key or a wrong type stops start-up with the key's path and the reason. So does
any other ``STASH2PLEX_*`` variable (a misspelled section, a single underscore), except
the few in :data:`OTHER_VARIABLES`, which are not configuration keys.
"""

from __future__ import annotations

import json
import os
import tempfile
import tomllib
import types
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import attrs
from attrs import define, field

from .models import IDENTIFIER_RE
from .wire import WireError, structure, unstructure

ENV_PREFIX = "STASH2PLEX_"
#: ``STASH2PLEX_*`` variables that are not ``<SECTION>__<KEY>`` overrides, and what they do.
OTHER_VARIABLES = {
    "STASH2PLEX_CONFIG": "the TOML configuration file (as --config)",
    "STASH2PLEX_VENV": "the virtual environment dev.py installs into (default .venv)",
}
DEFAULT_IDENTIFIER = "tv.plex.agents.custom.stash2plex"
CORE_SECTIONS = ("server", "provider", "plugins", "log")
REDACTED = "***"


class ConfigError(Exception):
    """The configuration cannot be used. ``problems`` name each key and the reason."""

    def __init__(self, problems: list[str]) -> None:
        # One problem, one line (a container's log shows it whole); several, one each.
        if len(problems) == 1:
            super().__init__(f"invalid configuration: {problems[0]}")
        else:
            super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


def secret() -> Any:
    """A string field holding a secret: redacted wherever configuration is printed."""
    return field(default="", metadata={"secret": True})


def _between(low: float, high: float) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
        if not low <= value <= high:
            raise ValueError(f"{attribute.name} must be between {low} and {high}, got {value}")

    return check


def _one_of(*allowed: str) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in allowed:
            raise ValueError(f"{attribute.name} must be one of {', '.join(allowed)}, got {value!r}")

    return check


def _identifier(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    if not IDENTIFIER_RE.match(value):
        raise ValueError(
            f"identifier {value!r} must match ^tv\\.plex\\.agents\\.custom\\.[A-Za-z0-9.]+$"
        )


def _public_url(_inst: object, _attribute: attrs.Attribute[Any], value: str) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"public_url must start with http:// or https://, got {value!r}")


@define
class ServerConfig:
    """``[server]``: where the provider listens and keeps its files."""

    host: str = "0.0.0.0"
    port: int = field(default=8787, validator=_between(1, 65535))
    data_dir: str = "./data"
    #: Stay under Docker's 10 s stop grace period.
    shutdown_timeout_s: float = field(default=8.0, validator=_between(0, 300))
    #: "auto": uvloop where it is installed (Linux, macOS), else asyncio's own loop.
    event_loop: str = field(default="auto", validator=_one_of("auto", "asyncio", "uvloop"))


@define
class ProviderConfig:
    """``[provider]``: how the provider presents itself to Plex and decides matches."""

    identifier: str = field(default=DEFAULT_IDENTIFIER, validator=_identifier)
    title: str = "Stash"
    #: The URL Plex (and Plex's image service) reaches this provider at; image URLs are
    #: built from it. Empty: built from each request's Host header.
    public_url: str = field(default="", validator=_public_url)
    match_threshold: int = field(default=85, validator=_between(0, 100))
    #: The best automatic candidate must beat the runner-up by this many points.
    match_margin: int = field(default=10, validator=_between(0, 100))
    max_manual_results: int = field(default=10, validator=_between(1, 50))
    #: Secret for signing image URLs; empty: generated once and kept in the data directory.
    signing_key: str = secret()


@define
class PluginsConfig:
    """``[plugins]``: which installed plugins are not loaded."""

    disable: list[str] = field(factory=list)


@define
class LogConfig:
    """``[log]``: level and format of the log lines on stdout."""

    level: str = field(default="info", validator=_one_of("debug", "info", "warning", "error"))
    format: str = field(default="json", validator=_one_of("json", "console"))


_CORE_CLASSES: dict[str, type] = {
    "server": ServerConfig,
    "provider": ProviderConfig,
    "plugins": PluginsConfig,
    "log": LogConfig,
}


@define
class Config:
    """The whole configuration: the core sections plus one object per plugin section."""

    server: ServerConfig = field(factory=ServerConfig)
    provider: ProviderConfig = field(factory=ProviderConfig)
    plugins: PluginsConfig = field(factory=PluginsConfig)
    log: LogConfig = field(factory=LogConfig)
    sections: dict[str, Any] = field(factory=dict)
    source: str = "defaults"

    def section(self, name: str) -> Any:
        """The structured section ``[name]`` of a plugin (its defaults when absent)."""
        return self.sections[name]

    @property
    def data_dir(self) -> Path:
        return Path(self.server.data_dir)

    def redacted(self) -> dict[str, Any]:
        """Everything, as plain data, with every secret replaced by ``***``."""
        out: dict[str, Any] = {}
        for name in CORE_SECTIONS:
            out[name] = _redact(getattr(self, name))
        for name, value in self.sections.items():
            out[name] = _redact(value)
        return out


def _redact(obj: Any) -> Any:
    if attrs.has(type(obj)):
        data = {}
        for f in attrs.fields(type(obj)):
            value = getattr(obj, f.name)
            data[f.name] = REDACTED if f.metadata.get("secret") and value else _redact(value)
        return data
    if isinstance(obj, list):
        return [_redact(v) for v in obj]
    return unstructure(obj)


def read_file(path: Path | None) -> dict[str, Any]:
    """Parse the TOML file; a missing explicit file or bad TOML is a :class:`ConfigError`."""
    if path is None:
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except IsADirectoryError:
        # Docker bind-mounts a missing host file as an empty directory.
        raise ConfigError(
            [
                f"{path}: is a directory, not a TOML file (in Docker: the host file to "
                f"bind-mount does not exist, so Docker made a directory; create the file "
                f"on the host, remove that directory, then recreate the container)"
            ]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                f"{exc.start}); save it as UTF-8"
            ]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror or exc}{_as_user()}"]) from None
    except ValueError as exc:  # a NUL in the path
        raise ConfigError([f"{str(path)!r}: not a usable path: {exc}"]) from None


def _as_user() -> str:
    """`` (running as uid U, gid G)``, where permissions can be the reason."""
    if not hasattr(os, "getuid"):
        return ""
    return f" (running as uid {os.getuid()}, gid {os.getgid()})"


def prepare_data_dir(path: Path, *, create: bool = True) -> None:
    """Make sure ``[server] data_dir`` is a directory this process can write, creating it
    (and its parents) unless ``create`` is False; ConfigError naming the key and the reason.

    Without ``create`` (``stash2plex check``), a missing directory passes when it could
    be created: its nearest existing parent is a writable directory.
    """
    key = f"server.data_dir: {str(path)!r}"
    if "\0" in str(path):
        raise ConfigError([f"{key} is not a usable path (it holds a NUL character)"])
    target = path
    if not create:
        while not target.exists() and target.parent != target:
            target = target.parent
    try:
        if create:
            target.mkdir(parents=True, exist_ok=True)
        if not target.is_dir():
            raise NotADirectoryError
    except FileExistsError:
        raise ConfigError([f"{key} is a file, not a directory"]) from None
    except NotADirectoryError:
        blocker = _first_non_directory(path)
        if blocker == path:
            raise ConfigError([f"{key} is a file, not a directory"]) from None
        raise ConfigError([f"{key} cannot be created: {str(blocker)!r} is a file"]) from None
    except OSError as exc:
        raise ConfigError([f"{key} cannot be created: {exc.strerror or exc}{_as_user()}"]) from None
    try:
        # A file really created and removed: permission bits, ACLs, read-only mounts and
        # root-squashed NAS shares all answer this one honestly.
        with tempfile.TemporaryFile(dir=target, prefix=".stash2plex-probe-"):
            pass
    except OSError as exc:
        where = key if target == path else f"{key} cannot be created: {str(target)!r}"
        raise ConfigError(
            [
                f"{where} is not writable: {exc.strerror or exc}{_as_user()}; give it to "
                f'that user (chown) or run as its owner (docker: user: "UID:GID")'
            ]
        ) from None
    if target == path:
        _check_files(path, key)


def _first_non_directory(path: Path) -> Path:
    for candidate in [*reversed(path.parents), path]:
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return path


def _check_files(path: Path, key: str) -> None:
    """Files left by another user (the index, the signing key) fail later, mid-request:
    name them now."""
    if not hasattr(os, "getuid"):
        return
    try:
        entries = list(path.iterdir())
    except OSError as exc:
        raise ConfigError([f"{key} cannot be listed: {exc.strerror or exc}{_as_user()}"]) from None
    for entry in entries:
        if entry.is_file() and not os.access(entry, os.R_OK | os.W_OK):
            owner = entry.stat().st_uid
            raise ConfigError(
                [
                    f"{key}: {entry.name} is not readable and writable{_as_user()}; it "
                    f"belongs to uid {owner}: chown the whole folder to the user that runs "
                    f"stash2plex"
                ]
            )


def apply_env(
    raw: dict[str, Any],
    env: Mapping[str, str],
    classes: Mapping[str, type],
    *,
    ignored: Collection[str] | None = frozenset(),
) -> dict[str, Any]:
    """Overlay ``STASH2PLEX_<SECTION>__<KEY>`` variables, read as each field's type.

    Any other ``STASH2PLEX_*`` variable is refused as an unknown TOML key is, except those
    in :data:`OTHER_VARIABLES`.

    :param ignored: sections of plugins that are disabled or failed to load (their
        variables are tolerated, not read); None: sections outside ``classes`` are not
        judged at all (before plugins are known).
    """
    merged = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    problems = []
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in OTHER_VARIABLES:
            continue
        if "__" not in name[len(ENV_PREFIX) :]:
            if ignored is not None:
                problems.append(_not_a_key(name, classes))
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        cls = classes.get(section)
        if cls is None:
            if ignored is not None and section not in ignored:
                known = ", ".join(sorted(classes))
                problems.append(f"{name}: unknown section {section!r} (known: {known})")
            continue
        fields = attrs.fields_dict(attrs.resolve_types(cls))
        if key not in fields:
            problems.append(f"{name}: {section} has no key {key!r}")
            continue
        try:
            value = _from_env(text, fields[key].type)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
            continue
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            problems.append(f"{section}: expected a table")
            continue
        target[key] = value
    if problems:
        raise ConfigError(problems)
    return merged


def _not_a_key(name: str, classes: Mapping[str, type]) -> str:
    rest = name[len(ENV_PREFIX) :].lower()
    hint = ""
    for section in sorted(classes, key=len, reverse=True):
        if rest.startswith(section + "_") and len(rest) > len(section) + 1:
            key = rest[len(section) + 1 :].lstrip("_")
            hint = f" (did you mean {ENV_PREFIX}{section.upper()}__{key.upper()}?)"
            break
    others = ", ".join(OTHER_VARIABLES)
    return (
        f"{name}: not a configuration variable: keys are {ENV_PREFIX}<SECTION>__<KEY>, "
        f"with two underscores{hint}; the others allowed are {others}"
    )


def _from_env(text: str, tp: Any) -> Any:
    """Read an environment string as ``tp``; strings stay verbatim (secrets often look odd)."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        tp = args[0] if len(args) == 1 else str
    if tp is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if tp is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
    if tp is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if tp is str:
        return text
    # Lists and tables: TOML inline syntax first, JSON second, comma list for list[str].
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    if typing.get_origin(tp) is list and typing.get_args(tp) == (str,):
        return [part.strip() for part in text.split(",") if part.strip()]
    raise ValueError(f"expected TOML or JSON syntax for {tp}, got {text!r}")


def build(
    raw: Mapping[str, Any],
    plugin_sections: Mapping[str, type],
    *,
    ignored: frozenset[str] = frozenset(),
    source: str = "defaults",
) -> Config:
    """Structure raw data into a :class:`Config`, reporting every bad key at once.

    :param ignored: sections of plugins that are disabled or failed to load: tolerated,
        not structured.
    """
    problems: list[str] = []
    values: dict[str, Any] = {}
    sections: dict[str, Any] = {}
    classes = {**_CORE_CLASSES, **plugin_sections}
    for name, data in raw.items():
        if name not in classes and name not in ignored:
            known = ", ".join(sorted(classes))
            problems.append(f"[{name}]: unknown section (known: {known})")
        elif name in classes and not isinstance(data, dict):
            problems.append(f"{name}: expected a table, got {type(data).__name__}")
    for name, cls in classes.items():
        data = raw.get(name, {})
        if not isinstance(data, dict):
            continue
        try:
            obj = structure(data, cls, path=name)
        except WireError as exc:
            problems.extend(exc.problems)
            continue
        if name in _CORE_CLASSES:
            values[name] = obj
        else:
            sections[name] = obj
    if problems:
        raise ConfigError(problems)
    return Config(**values, sections=sections, source=source)


def load(
    path: Path | None,
    plugin_sections: Mapping[str, type],
    *,
    env: Mapping[str, str] | None = None,
    ignored: frozenset[str] = frozenset(),
) -> Config:
    """Read the file, overlay the environment, structure everything."""
    env = os.environ if env is None else env
    raw = read_file(path)
    raw = apply_env(raw, env, {**_CORE_CLASSES, **plugin_sections}, ignored=ignored)
    return build(raw, plugin_sections, ignored=ignored, source=str(path) if path else "defaults")


def core_raw(raw: Mapping[str, Any], env: Mapping[str, str]) -> Config:
    """Just the core sections, before plugins are known (to learn ``[plugins] disable``)."""
    core = {k: v for k, v in raw.items() if k in _CORE_CLASSES}
    core = apply_env(core, env, _CORE_CLASSES, ignored=None)
    return build(core, {})
