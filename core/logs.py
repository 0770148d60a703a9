"""structlog JSON lines on stdout, for structlog and for every stdlib logger (aiohttp's too).

One object per line: ``ts`` (RFC 3339, UTC), ``level``, ``event``, ``logger``, plus
``request_id`` inside a request and ``plugin`` where a plugin acted. Exceptions become a
structured ``exception`` field, never a multi-line traceback. Secrets are scrubbed.
Loki labels are the collector's business; everything here is a JSON field.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import json
import logging
import re
import sys
import threading
import time
from time import perf_counter
from typing import Any, NamedTuple

import orjson
import structlog
from aiohttp import hdrs
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
        secret = _secret_keys_in(value.keys())
        return {k: "***" if v and k in secret else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _secret_keys_in(keys: Any) -> list[str]:
    """The keys among ``keys`` that name a secret, in any case. Every line asks this of
    every key; the keys are few and repeat, so those known to be harmless are remembered
    and skipped in one set operation."""
    if _HARMLESS_KEYS.issuperset(keys):
        return []  # the usual answer: asked without building a set
    unknown = keys - _HARMLESS_KEYS
    found = []
    for key in unknown:
        if isinstance(key, str) and key.lower() in SECRET_KEYS:
            found.append(key)
        elif len(_HARMLESS_KEYS) < 4096:
            _HARMLESS_KEYS.add(key)
    return found


_HARMLESS_KEYS: set[str] = set()


def redact_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Never let a token or API key reach a log line, whoever logged it."""
    for key in _secret_keys_in(event.keys()):
        if event[key]:
            event[key] = "***"
    for key, value in event.items():
        kind = type(value)
        if kind is str:
            if "=" in value:
                event[key] = _SECRET_IN_TEXT.sub(r"\1=***", value)
        elif kind not in _SCALARS and isinstance(value, dict | list | tuple):
            event[key] = _scrub(value)
    return event


_SCALARS = frozenset({int, float, bool, type(None)})


def render_json(_logger: Any, name: str, event: dict[str, Any]) -> str:
    """The last processor of the JSON format: the event as one line, secrets redacted.

    A secret can only be a text holding "=", the value of a key named like a secret, or
    inside a nested object or list; JSON writes "=", "{" and "[" as they are, so a line
    rendered without any of these needs no redaction, which would cost a pass of Python
    over every field of every line (a scan logs one per request).
    """
    harmless = _HARMLESS_KEYS.issuperset(event)
    line = _dumps(event)
    if not harmless or "=" in line or line.find("{", 1) >= 0 or "[" in line:
        line = _dumps(redact_secrets(_logger, name, event))
    return line


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


class _Output:
    """Where every rendered line goes: whatever ``sys.stdout`` (or stderr) is when written
    (pytest swaps it).

    With ``batch`` on (``serve``), lines written inside the event loop are gathered and
    written once per loop iteration: under a scan's load a line no longer costs a write
    system call of its own. A line is never held longer than that iteration, lines from
    other threads are written at once, and whatever is pending is written at exit.
    """

    def __init__(self, target: str = "stdout", *, batch: bool = False) -> None:
        self.target = target
        self.batch = batch
        self._pending: list[str] = []
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = threading.get_ident()
        if batch:
            atexit.register(self.flush)

    def write(self, line: str) -> None:
        if self.batch:
            thread = threading.get_ident()
            loop = self._loop
            if loop is None or thread != self._loop_thread or not loop.is_running():
                # asyncio.get_running_loop() costs a getpid system call on Python 3.11:
                # asked only when the loop seen last is not this thread's running one.
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:
                    loop = None
                if loop is not None:
                    self._loop, self._loop_thread = loop, thread
                elif thread != self._loop_thread:
                    # A worker thread (asyncio.to_thread): its own write, leaving the
                    # loop's pending lines to the loop.
                    self._emit(line + "\n")
                    return
            if loop is not None:
                self._pending.append(line)
                if not self._scheduled:
                    self._scheduled = True
                    loop.call_soon(self.flush)
                return
        self.flush()
        self._emit(line + "\n")

    def flush(self) -> None:
        self._scheduled = False
        if self._pending:
            lines, self._pending = self._pending, []
            self._emit("\n".join(lines) + "\n")

    def _emit(self, text: str) -> None:
        stream = sys.stderr if self.target == "stderr" else sys.stdout
        stream.write(text)
        stream.flush()


class _Handler(logging.Handler):
    """The standard library's records (aiohttp's, asyncio's...) to the same output."""

    def __init__(self, output: _Output) -> None:
        super().__init__()
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.output.write(self.format(record))
        except Exception:
            self.handleError(record)


class _Writer:
    """structlog's output for our own events: one rendered line to the shared output.

    Our events skip the standard library (a LogRecord per line costs more than the whole
    rendering); stdlib records from other libraries go through the handler above. Both
    paths end in the same processors, so every line has the same shape.
    """

    def __init__(self, output: _Output, name: str) -> None:
        self.output = output
        self.name = name

    def msg(self, message: str) -> None:
        self.output.write(message)

    debug = info = warning = error = critical = exception = msg


def _add_standard_fields(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """``request_id`` (inside a request), ``level``, ``logger`` and ``ts`` of our own
    events, in one processor: every line pays each processor's call."""
    bound = _SERVING.get()
    if bound is not None:
        event.setdefault("request_id", bound.request_id)
    event["level"] = "error" if method in ("exception", "critical") else method
    event["logger"] = logger.name
    event["ts"] = _utc_now()
    return event


def _utc_now() -> str:
    """RFC 3339 in UTC, always with microseconds; the date part is formatted once a
    second (every line has one)."""
    global _ts_cache
    second, nanos = divmod(time.time_ns(), 1_000_000_000)
    cached_second, prefix = _ts_cache
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _ts_cache = (second, prefix)
    return f"{prefix}.{nanos // 1000:06d}Z"


_ts_cache: tuple[int, str] = (-1, "")


def _add_timestamp(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    event["ts"] = _utc_now()
    return event


class Serving(NamedTuple):
    """The request this task serves. Kept in one place, a context variable: every line
    logged while serving it carries ``request_id``, the access line is timed from
    ``started`` (a ``time.perf_counter()`` reading), and absolute URLs are built from
    ``request``. aiohttp serves each request in a task of its own, so none leaks."""

    request_id: str
    started: float | None = None
    request: BaseRequest | None = None


_SERVING: contextvars.ContextVar[Serving | None] = contextvars.ContextVar(
    "stash2plex_serving", default=None
)


def bind_request_id(
    request_id: str, started: float | None = None, request: BaseRequest | None = None
) -> None:
    """Mark the current context (one request's task) as serving ``request_id``: every
    line logged from now on carries it. Cheaper than structlog's ``bind_contextvars``:
    one variable, set per request."""
    _SERVING.set(Serving(request_id, started, request))


def serving() -> Serving | None:
    """The request the current task serves, or None outside a request."""
    return _SERVING.get()


def current_request_id() -> str | None:
    """The id of the request being served (as sent back in ``X-Request-ID``), or None."""
    bound = _SERVING.get()
    return bound.request_id if bound is not None else None


def _add_request_id(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    bound = _SERVING.get()
    if bound is not None:
        event.setdefault("request_id", bound.request_id)
    return event


def milliseconds(seconds: float) -> float:
    """``seconds`` (not negative) in milliseconds, to the microsecond: ``round(x, 3)``'s
    answer but for halves, without its detour through decimal text (paid twice on every
    match request)."""
    return int(seconds * 1_000_000 + 0.5) / 1000


_stack_info = structlog.processors.StackInfoRenderer()


def _exceptions_as_fields(logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    """A traceback (``exc_info``) or a stack (``stack_info``) as structured fields, never
    multi-line text; a line with neither is passed on without two processors' calls."""
    if "exc_info" in event or "stack_info" in event:
        event = structlog.processors.dict_tracebacks(logger, name, _stack_info(logger, name, event))
    return event


_FOREIGN: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.ExtraAdder(),
    _drop_stdlib_message,
    _add_request_id,
    _add_timestamp,
]
_output = _Output()


def configure(
    level: str = "info",
    fmt: str = "json",
    stream: str = "stdout",
    *,
    cache: bool = True,
    batch: bool = False,
) -> None:
    """Route structlog and the standard library through one renderer on stdout.

    Safe to call again (tests): it replaces the handler. Loggers are cached on first use,
    so call it before logging anything: the level is fixed into each cached logger, which
    makes a filtered-out ``debug`` call nearly free on the request path.
    ``stream="stderr"`` keeps a command's own output on stdout clean. Tests pass
    ``cache=False`` so ``structlog.testing.capture_logs`` and reconfiguration still work.
    ``batch`` writes the lines of one event-loop iteration together (``serve``).
    """
    if fmt == "console":
        tail: list[Any] = [redact_secrets, structlog.dev.ConsoleRenderer(colors=False)]
    else:
        tail = [_exceptions_as_fields, render_json]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_FOREIGN,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    global _output, _min_level
    _min_level = _LEVELS[level]
    _output.flush()
    output = _output = _Output(stream, batch=batch)
    handler = _Handler(output)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_stash2plex", False):
            root.removeHandler(old)
    handler._stash2plex = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_standard_fields,
            *tail,
        ],
        logger_factory=lambda name="stash2plex", *_args: _Writer(output, name),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        cache_logger_on_first_use=cache,
    )
    global _access
    # Resolved once when loggers are cached (serve): the access line, one per request,
    # then skips the lazy proxy's lookup on every call.
    _access = structlog.get_logger("aiohttp.access")
    if cache:
        _access = _access.bind()


def debug_enabled() -> bool:
    """Whether debug lines are written: lets a hot path skip work only they need."""
    return _min_level <= logging.DEBUG


#: The level :func:`configure` set (structlog unconfigured writes every level).
_min_level = logging.DEBUG


def get_logger(name: str) -> Any:
    """A structlog logger named ``name`` (the ``logger`` field of its lines)."""
    return structlog.get_logger(name)


#: Fields a handler adds to its request's access line (one canonical line per request).
LOG_FIELDS = RequestKey("stash2plex.log_fields", dict[str, Any])


class AccessLogger(AbstractAccessLogger):
    """One structured line per request: method, path, status, duration_ms, and whatever
    the handler put under :data:`LOG_FIELDS` (a match's outcome, for instance)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        bound = _SERVING.get()
        started = bound.started if bound is not None else None
        if started is not None:
            # aiohttp's ``time`` comes from loop.time(), which uvloop keeps in whole
            # milliseconds, advanced once per loop iteration: most requests would log 0.0.
            time = perf_counter() - started
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status,
            "duration_ms": milliseconds(time),
            "remote": request.remote,
            "user_agent": request.headers.get(hdrs.USER_AGENT),  # an istr: no case folding
        }
        extra = request.get(LOG_FIELDS)
        if extra:
            fields.update(extra)
        # The same processor chain as every other line (request id, level, time, secrets).
        _access.info("request", **fields)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


_access = get_logger("aiohttp.access")
