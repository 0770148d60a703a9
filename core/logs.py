"""structlog JSON lines on stdout, for structlog and for every stdlib logger (aiohttp's too).

One object per line: ``ts`` (RFC 3339, UTC), ``level``, ``event``, ``logger``, plus
``request_id`` inside a request and ``plugin`` where a plugin acted. Exceptions become a
structured ``exception`` field, never a multi-line traceback. Secrets are scrubbed.
Loki labels are the collector's business; everything here is a JSON field.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, RequestKey, StreamResponse

SECRET_KEYS = frozenset(
    {"api_key", "apikey", "token", "plex_token", "password", "signing_key", "x_plex_token"}
)
_SECRET_IN_TEXT = re.compile(r"(?i)\b(apikey|api_key|x-plex-token|token)=([^&\s\"']+)")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
_LEVELS["error"] = logging.ERROR


def _scrub(value: Any) -> Any:
    # Hot path (every log line): cheap membership tests before any regex or recursion.
    if isinstance(value, str):
        return _SECRET_IN_TEXT.sub(r"\1=***", value) if "=" in value else value
    if isinstance(value, dict):
        return {k: "***" if v and k.lower() in SECRET_KEYS else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def redact_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Never let a token or API key reach a log line, whoever logged it."""
    for key, value in event.items():
        if value and key.lower() in SECRET_KEYS:
            event[key] = "***"
        elif type(value) is str:
            if "=" in value:
                event[key] = _SECRET_IN_TEXT.sub(r"\1=***", value)
        elif isinstance(value, dict | list | tuple):
            event[key] = _scrub(value)
    return event


def _drop_stdlib_message(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    # ExtraAdder copies the formatted record's "message", which repeats "event".
    if event.get("message") == event.get("event"):
        event.pop("message", None)
    return event


def _dumps(obj: Any, **_kw: Any) -> str:
    try:
        return orjson.dumps(obj, default=repr).decode()
    except TypeError:
        # orjson refuses lone surrogates (a path from a broken filesystem, say); the
        # stdlib escapes them. A log line must never raise.
        return json.dumps(obj, default=repr)


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


class _Writer:
    """structlog's output for our own events: one rendered line to the current stream.

    Our events skip the standard library (a LogRecord per line costs more than the whole
    rendering); stdlib records from other libraries go through the handler below. Both
    paths end in the same processors, so every line has the same shape.
    """

    def __init__(self, target: str, name: str) -> None:
        self.target = target
        self.name = name

    def msg(self, message: str) -> None:
        stream = sys.stderr if self.target == "stderr" else sys.stdout
        stream.write(message + "\n")
        stream.flush()

    debug = info = warning = error = critical = exception = msg


def _add_level_and_name(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    event["level"] = "error" if method in ("exception", "critical") else method
    event["logger"] = logger.name
    return event


_FOREIGN: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    _drop_stdlib_message,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
]


def configure(
    level: str = "info", fmt: str = "json", stream: str = "stdout", *, cache: bool = True
) -> None:
    """Route structlog and the standard library through one renderer on stdout.

    Safe to call again (tests): it replaces the handler. Loggers are cached on first use,
    so call it before logging anything: the level is fixed into each cached logger, which
    makes a filtered-out ``debug`` call nearly free on the request path.
    ``stream="stderr"`` keeps a command's own output on stdout clean. Tests pass
    ``cache=False`` so ``structlog.testing.capture_logs`` and reconfiguration still work.
    """
    if fmt == "console":
        tail: list[Any] = [redact_secrets, structlog.dev.ConsoleRenderer(colors=False)]
    else:
        tail = [
            structlog.processors.dict_tracebacks,
            redact_secrets,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_FOREIGN,
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
    global _access_line
    # The access line (one per request, the hot path of a scan) skips structlog's
    # generic machinery but renders through the same tail: same keys, same format.
    writer = _Writer(stream, "aiohttp.access")
    _access_line = (
        (lambda event: writer.msg(_dumps(redact_secrets(None, "info", event))))
        if fmt == "json"
        else None
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_level_and_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.StackInfoRenderer(),
            *tail,
        ],
        logger_factory=lambda name="stash2plex", *_args: _Writer(stream, name),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        cache_logger_on_first_use=cache,
    )


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (the ``logger`` field of its lines)."""
    return structlog.get_logger(name)


#: Fields a handler adds to its request's access line (one canonical line per request).
LOG_FIELDS = RequestKey("stash2plex.log_fields", dict)
#: The id of the request being served, as sent back in ``X-Request-ID``.
REQUEST_ID = RequestKey("stash2plex.request_id", str)
#: Renders and writes a finished access-line event (set by :func:`configure`).
_access_line: Any = None


def _utc_now() -> str:
    # The same RFC 3339 form as structlog's TimeStamper(fmt="iso", utc=True).
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class AccessLogger(AbstractAccessLogger):
    """One structured line per request: method, path, status, duration_ms, and whatever
    the handler put under :data:`LOG_FIELDS` (a match's outcome, for instance)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": round(time * 1000, 2),
            "remote": request.remote,
            "user_agent": request.headers.get("User-Agent"),
            **(request.get(LOG_FIELDS) or {}),
        }
        if _access_line is None:  # console format: the ordinary structlog path
            _access.info("request", **fields)
            return
        fields["event"] = "request"
        request_id = request.get(REQUEST_ID)
        if request_id:
            fields["request_id"] = request_id
        fields["level"] = "info"
        fields["logger"] = "aiohttp.access"
        fields["ts"] = _utc_now()
        _access_line(fields)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


_access = get_logger("aiohttp.access")
