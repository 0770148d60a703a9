"""Running an app over HTTP: aiohttp's own runner, with one difference.

Bytes that are not HTTP (a broken request line, a header past the size limit, what follows
a ``Content-Length`` that claimed less than was sent) never reach the app or its
middlewares: aiohttp's protocol answers them itself, in plain text, and logs a traceback at
error level. Here they get the answer every route gives, a JSON error naming the problem,
and an info line: a client's mistake is not a server error.
"""

from __future__ import annotations

import asyncio
import contextlib
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .errors import error_response
from .logs import AccessLogger, get_logger

log = get_logger("stash2plex.server")


class _JsonErrorHandler(RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: an answer is under way already
            raise ConnectionError("the response is under way; the connection is dropped")
        if status >= 500:
            # Only a handler failing past the error middleware lands here: keep the trace
            # for the log, never in the answer.
            log.error("request.failed", status=status, exc_info=exc)
            text = "the server failed on this request; its log says why"
        else:
            text = (message or (str(exc) if exc else "") or HTTPStatus(status).phrase).strip()
            log.info("request.bad_http", status=status, reason=text, remote=request.remote)
            text = f"not a valid HTTP request: {text}"
        response = error_response(status, text)
        response.force_close()  # the stream cannot be trusted past this point
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparsable requests in JSON."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()  # starts the app, as AppRunner does
        return _JsonErrorServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            **made._kwargs,  # the runner's and the app's handler_args, merged by aiohttp
        )


def run_app(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_timeout: float,
    loop: asyncio.AbstractEventLoop | None = None,
    handle_signals: bool = True,
    **runner_args: Any,
) -> None:
    """Serve ``app`` until SIGINT or SIGTERM, then shut it down gracefully (in-flight
    requests get ``shutdown_timeout`` seconds). Like ``aiohttp.web.run_app``, with
    :class:`JsonErrorRunner` and this project's access log. Raises ``OSError`` when the
    address cannot be bound."""
    loop = loop or asyncio.new_event_loop()
    runner = JsonErrorRunner(
        app,
        handle_signals=handle_signals,
        access_log_class=AccessLogger,
        shutdown_timeout=shutdown_timeout,
        **runner_args,
    )

    async def serve() -> None:
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            await runner.cleanup()

    main = loop.create_task(serve())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():  # a signal stopped it: run the shutdown to its end
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
