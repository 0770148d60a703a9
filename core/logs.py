"""structlog JSON lines on stdout, for structlog and for every stdlib logger (aiohttp's too).

One object per line: ``ts`` (RFC 3339, UTC), ``level``, ``event``, ``logger``, plus
``request_id`` inside a request and ``plugin`` where a plugin acted. Exceptions become a
structured ``exception`` field, never a multi-line traceback. Secrets are scrubbed.
Loki labels are the collector's business; everything here is a JSON field.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import orjson
import structlog
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

SECRET_KEYS = frozenset(
    {"api_key", "apikey", "token", "plex_token", "password", "signing_key", "x_plex_token"}
)
_SECRET_IN_TEXT = re.compile(r"(?i)\b(apikey|api_key|x-plex-token|token)=([^&\s\"']+)")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_IN_TEXT.sub(r"\1=***", value)
    if isinstance(value, dict):
        return {k: "***" if k.lower() in SECRET_KEYS and v else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Never let a token or API key reach a log line, whoever logged it."""
    return _scrub(event)


def _drop_stdlib_message(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    # ExtraAdder copies the formatted record's "message", which repeats "event".
    if event.get("message") == event.get("event"):
        event.pop("message", None)
    return event


def _dumps(obj: Any, **_kw: Any) -> str:
    # ProcessorFormatter hands its result to a stdlib handler, which wants str.
    return orjson.dumps(obj, default=repr).decode()


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stdout`` (or stderr) is at emit time (pytest swaps it)."""

    def __init__(self, target: str = "stdout") -> None:
        self.target = target
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr if self.target == "stderr" else sys.stdout

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    _drop_stdlib_message,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
]


def configure(level: str = "info", fmt: str = "json", stream: str = "stdout") -> None:
    """Route structlog and the standard library through one renderer on stdout.

    Safe to call again (tests, the CLI after reading the config): it replaces the handler.
    ``stream="stderr"`` keeps a command's own output on stdout clean.
    """
    if fmt == "console":
        renderer: Any = structlog.dev.ConsoleRenderer(colors=False)
        tail: list[Any] = [redact_secrets, renderer]
    else:
        tail = [
            structlog.processors.dict_tracebacks,
            redact_secrets,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    handler = _Stdout(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_stash2plex", False):
            root.removeHandler(old)
    handler._stash2plex = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    # aiohttp's access logger would print its own text line; ours replaces it.
    logging.getLogger("aiohttp.access").setLevel(logging.INFO)
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


class AccessLogger(AbstractAccessLogger):
    """One structured line per request: method, path, status, duration_ms."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        get_logger("aiohttp.access").info(
            "request",
            method=request.method,
            path=request.path,
            status=response.status,
            duration_ms=round(time * 1000, 2),
            remote=request.remote,
            user_agent=request.headers.get("User-Agent"),
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
