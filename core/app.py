"""The application factory: configuration, plugins, routes and lifetimes in one place.

Everything a plugin contributes (config section, routes, cleanup contexts) is collected
here, before aiohttp freezes the app. State lives under typed :class:`web.AppKey` keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from time import perf_counter
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from . import config as config_mod
from . import provider
from .config import ConfigError
from .dispatch import Hooks
from .errors import error_response
from .logs import bind_request_id, get_logger, serving
from .plugins import PluginError, build_manager
from .provider import core_routes
from .state import BACKGROUND, CONFIG, HOOKS, PLUGINS, RUNTIME, Runtime, run_in_background

_ID_PREFIX = secrets.token_hex(4) + "-"
_ID_COUNTER = itertools.count(1)

log = get_logger("stash2plex.app")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    raw_config: Mapping[str, Any] | None = None,
    *,
    config_path: Path | None = None,
    env: Mapping[str, str] | None = None,
    plugins: Sequence[tuple[str, Any]] = (),
    load_entrypoints: bool = True,
) -> web.Application:
    """Build the provider app (not started).

    :param raw_config: configuration as plain data, instead of reading ``config_path``.
    :param config_path: the TOML file; None with no ``raw_config`` means defaults.
    :param env: environment for ``STASH2PLEX_*`` overrides (default: ``os.environ``).
    :param plugins: extra ``(name, plugin)`` pairs to register (tests, embedding).
    :param load_entrypoints: discover installed plugins through entry points.
    :raises ConfigError: the configuration is unusable; the message names every key.
    :raises PluginError: a plugin is unusable (name clash, hook wrapper).
    """
    env = os.environ if env is None else env
    raw = dict(raw_config) if raw_config is not None else config_mod.read_file(config_path)
    core = config_mod.core_raw(raw, env)
    pset = build_manager(
        disable=core.plugins.disable, load_entrypoints=load_entrypoints, plugins=plugins
    )
    hooks = Hooks(pm=pset.pm)
    sections: dict[str, type] = {}
    for plugin, section in hooks.config_sections():
        if section.name in sections or section.name in config_mod.CORE_SECTIONS:
            raise PluginError(f"plugin {plugin!r} claims config section [{section.name}], taken")
        sections[section.name] = section.cls
    merged = config_mod.apply_env(
        raw, env, {**config_mod._CORE_CLASSES, **sections}, ignored=pset.inactive
    )
    config = config_mod.build(
        merged,
        sections,
        ignored=pset.inactive,
        source=str(config_path) if config_path else "defaults",
    )

    # Bodies reach handlers as sent: the match route decodes gzip and deflate itself and
    # refuses any other coding with a JSON 400, where aiohttp would answer a coding it
    # cannot decode (br, zstd) in text before any handler runs.
    app = web.Application(
        client_max_size=provider.MAX_BODY, handler_args={"auto_decompress": False}
    )
    app[CONFIG] = config
    app[PLUGINS] = pset
    app[HOOKS] = hooks
    app[BACKGROUND] = set()
    app[RUNTIME] = Runtime()
    hooks.app = app
    app.cleanup_ctx.append(_core_lifetime)
    app.add_routes(guarded_routes(core_routes()))
    for _plugin, route_defs in hooks.routes():
        app.add_routes(guarded_routes(route_defs))
    # Any path at all, a newline (%0A) in it too.
    app.router.add_route("*", r"/{path:[\s\S]*}", guarded(no_route), name=NO_ROUTE)
    for _plugin, ctx in hooks.cleanup_contexts():
        app.cleanup_ctx.append(ctx)
    return app


async def _core_lifetime(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config_mod.prepare_data_dir(config.data_dir)  # ConfigError: one line, key and reason
    app[RUNTIME].started_at = asyncio.get_running_loop().time()
    log.info(
        "provider.starting",
        identifier=config.provider.identifier,
        config=config.source,
        plugins=[i.name for i in app[PLUGINS].describe() if i.status == "enabled"],
    )
    yield
    pending = app[BACKGROUND]
    if pending:
        # Broadcasts (on_unmatched) still running get a moment to finish, then go.
        _done, still = await asyncio.wait(pending, timeout=2)
        for task in still:
            task.cancel()
    app[RUNTIME].started_at = None


@contextlib.asynccontextmanager
async def started(app: web.Application) -> AsyncIterator[web.Application]:
    """Run ``app``'s start-up and clean-up around a block, without listening on a port.

    For CLI commands that need what plugins open at start-up (the scene index, the Plex
    connection, the push queue): ``async with started(app): ...``.
    """
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        yield app
    finally:
        await runner.cleanup()


def public_base_url(app: web.Application) -> str:
    """The URL Plex reaches this provider at: ``provider.public_url``, else the request's."""
    configured = app[CONFIG].provider.public_url
    if configured:
        return configured.rstrip("/")
    bound = serving()
    return _request_base(bound.request) if bound and bound.request is not None else ""


def _request_base(request: web.BaseRequest) -> str:
    proto = request.headers.get("X-Forwarded-Proto", request.scheme).split(",")[0].strip()
    host = request.headers.get("X-Forwarded-Host", request.host).split(",")[0].strip()
    return f"{proto}://{host}"


def guarded(handler: Handler) -> Handler:
    """``handler`` with what every route needs: a request id for the logs, the external
    base URL, and JSON for every error (no HTML error page, no traceback ever leaves the
    provider). Applied to each route when the app is built, not as an aiohttp middleware:
    a middleware adds aiohttp's own second layer to every request of a scan."""
    async_ = inspect.iscoroutinefunction(handler) or isinstance(handler, type)
    call = handler if async_ else _awaiting(handler)

    @functools.wraps(handler, updated=())  # a class-based view has a class __dict__
    async def guarded_handler(request: web.Request) -> web.StreamResponse:
        # Each request runs in its own task with a copied context, so neither leaks.
        request_id = (request.headers.get("X-Request-ID") or new_request_id())[:64]
        bind_request_id(request_id, perf_counter(), request)
        try:
            response = await call(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                if not isinstance(exc, web.HTTPMove):
                    raise
                # A redirect is JSON like everything else (aiohttp's body is text).
                response = web.json_response(
                    {"location": str(exc.location)},
                    status=exc.status,
                    headers={"Location": str(exc.location)},
                )
            elif exc.content_type == "application/json":
                response = exc  # already ours
            else:
                message = {
                    404: f"no route for {request.method} {request.path}",
                    405: f"{request.method} is not allowed on {request.path}",
                }.get(exc.status, exc.text or exc.reason)
                response = error_response(exc.status, message)
                if exc.status == 405 and "Allow" in exc.headers:
                    response.headers["Allow"] = exc.headers["Allow"]
        except asyncio.CancelledError:
            raise
        except HttpProcessingError as exc:
            # The body broke its own framing (a chunk or a length that lies): the
            # client's fault, answered like any bad body.
            log.info(
                "request.bad_body", method=request.method, path=request.path, error=exc.message
            )
            response = error_response(400, f"body: {exc.message}")
        except ConnectionError as exc:
            if not _client_gone(request):
                response = _internal_error(request, exc)
            else:
                # Nobody is left to answer: a disconnect, not a server error. The access
                # line says 499, as nginx does.
                log.info("request.client_disconnected", method=request.method, path=request.path)
                response = web.Response(status=499, reason="Client Closed Request")
        except Exception as exc:
            response = _internal_error(request, exc)
        if not response.prepared:
            response.headers["X-Request-ID"] = request_id
        return response

    return guarded_handler


def _client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _internal_error(request: web.BaseRequest, exc: Exception) -> web.Response:
    log.exception("request.failed", method=request.method, path=request.path)
    return error_response(500, f"internal error ({type(exc).__name__}); see the provider log")


def _awaiting(handler: Callable[[web.Request], Any]) -> Handler:
    """A plain (not async) handler, which aiohttp still takes: its answer, awaited if it
    is awaitable, as aiohttp does."""

    async def call(request: web.Request) -> web.StreamResponse:
        result = handler(request)
        return await result if inspect.isawaitable(result) else result  # type: ignore[no-any-return]

    return call


def guarded_routes(route_defs: Iterable[web.AbstractRouteDef]) -> list[web.AbstractRouteDef]:
    """Route definitions with :func:`guarded` handlers (other kinds, such as static
    files, as they are)."""
    return [
        web.RouteDef(d.method, d.path, guarded(d.handler), d.kwargs)
        if isinstance(d, web.RouteDef)
        else d
        for d in route_defs
    ]


#: The name of the catch-all route (:func:`no_route`), added last.
NO_ROUTE = "stash2plex.no_route"


async def no_route(request: web.Request) -> web.StreamResponse:
    """The last route, for any method and path no other route takes: a URL with doubled
    or trailing slashes is redirected to the route it means, anything else is a 405 (the
    path exists under other methods) or a 404, both JSON through :func:`guarded`."""
    if (moved := await _tidy_path(request)) is not None:
        # 308 keeps a POST a POST, body included.
        raise web.HTTPPermanentRedirect(moved)
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.name != NO_ROUTE:
            _match, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()


async def _tidy_path(request: web.Request) -> str | None:
    """A provider URL registered with a trailing slash makes Plex ask for
    ``//library/metadata/...``: the same path with merged (or without trailing) slashes,
    if that one exists. Only looked at for a 404, so it costs a scan nothing."""
    path = request.raw_path.split("?", 1)[0]
    query = request.raw_path[len(path) :]
    merged = re.sub("//+", "/", path)
    for candidate in dict.fromkeys((merged, merged.rstrip("/") or "/")):
        if candidate == path:
            continue
        found = await request.app.router.resolve(request.clone(rel_url=candidate + query))
        if found.http_exception is None and found.route.name != NO_ROUTE:
            return candidate + query
    return None


def new_request_id() -> str:
    """Unique in this process and across restarts; cheap (a scan sends hundreds a second)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


__all__ = [
    "BACKGROUND",
    "CONFIG",
    "HOOKS",
    "PLUGINS",
    "RUNTIME",
    "ConfigError",
    "PluginError",
    "Runtime",
    "create_app",
    "error_response",
    "public_base_url",
    "run_in_background",
    "started",
]
