"""The one connection to Plex Media Server: python-plexapi on one worker thread.

plexapi is synchronous (``requests``) and its objects may do network I/O on attribute
access, so every call runs as one function on a single-thread executor that owns the
``PlexServer``: the event loop never blocks, requests reach Plex one at a time, and the
``requests.Session`` is never shared between threads. Each request carries the timeout,
and the awaiting side gives up a little later in case the thread is stuck.

Failures come out as :class:`~stash2plex.PlexTransient` or
:class:`~stash2plex.PlexPermanent` with the HTTP status, never as plexapi's exceptions
(which put the status only in their message).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from xml.etree.ElementTree import XML, Element, ParseError

import requests
import urllib3
from plexapi import exceptions as plex_exc
from plexapi.server import PlexServer

from stash2plex import PlexError, PlexPermanent, PlexTransient, __version__

_T = TypeVar("_T")
CLIENT_ID_FILE = "plex-client-id"
PRODUCT = "stash2plex"


def client_identifier(data_dir: Path) -> str:
    """The ``X-Plex-Client-Identifier`` kept in the data directory: the same on every
    start, so Plex lists one device, not a new one per restart (plexapi's default comes
    from the MAC address, which changes with each container)."""
    path = data_dir / CLIENT_ID_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    value = f"stash2plex-{uuid.uuid4()}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n", encoding="utf-8")
    tmp.replace(path)
    return value


class _Server(PlexServer):  # type: ignore[misc]
    """plexapi's server with this process's own client headers, per instance: plexapi
    reads its identifier once at import into module-wide headers, which two apps in one
    process (tests, the CLI) would share."""

    def __init__(
        self, baseurl: str, token: str, session: requests.Session, timeout: float, ident: str
    ):
        self._client_headers = {
            "X-Plex-Client-Identifier": ident,
            "X-Plex-Product": PRODUCT,
            "X-Plex-Version": __version__,
            "X-Plex-Device-Name": PRODUCT,
        }
        super().__init__(baseurl, token or None, session=session, timeout=timeout)

    def _headers(self, **kwargs: Any) -> dict[str, str]:
        headers: dict[str, str] = super()._headers()
        headers.update(self._client_headers)
        headers.update(kwargs)
        return headers


class PlexConnection:
    """``await conn.call(fn, *args)`` runs ``fn(server, *args)`` on the worker thread."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        client_id: str,
        timeout_s: float,
        verify_tls: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.client_id = client_id
        self.timeout_s = timeout_s
        self._verify = verify_tls
        if not verify_tls:
            # Chosen by the operator (a self-signed certificate), said once at start-up:
            # not a warning on every request. urllib3 is only used through plexapi here.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plexapi")
        # Worker-thread state only:
        self._server: _Server | None = None
        self._last: tuple[int, str | None] = (0, None)  # status, Retry-After of the last answer
        self.closed = False
        #: "<friendly name> <version>" once connected (written by the worker, read anywhere)
        self.server_name = ""

    # --- the event-loop side ------------------------------------------------------------

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await self._submit(self._run, fn, args)

    async def identity(self) -> str:
        """PMS's version from ``GET /identity``, which needs no token: whether Plex
        answers at all, apart from whether the token works."""
        return await self._submit(self._run_unconnected, self._identity, ())

    async def _submit(self, runner: Callable[..., _T], fn: Callable[..., Any], args: Any) -> _T:
        if self.closed:
            raise PlexTransient("the Plex connection is closed")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, runner, fn, args)
        try:
            # Requests time out on their own; this only guards against a stuck thread.
            return await asyncio.wait_for(future, self.timeout_s * 2 + 5)
        except TimeoutError:
            raise PlexTransient(
                f"Plex did not answer within {self.timeout_s * 2 + 5:.0f} s"
            ) from None

    def close(self) -> None:
        """Stop taking calls; calls still queued end at once, the session is closed after
        the request in flight (which ends by its own timeout; nobody waits for it)."""
        if self.closed:
            return
        self.closed = True
        self._executor.submit(self._disconnect)
        self._executor.shutdown(wait=False)

    # --- the worker thread ---------------------------------------------------------------

    def _run(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        return self._run_unconnected(lambda: fn(self._connect(), *args), ())

    def _run_unconnected(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        if self.closed:  # queued before close(): no request now
            raise PlexTransient("the Plex connection is closed")
        try:
            return fn(*args)
        except PlexError:
            raise
        except (plex_exc.Unauthorized, plex_exc.NotFound, plex_exc.BadRequest) as exc:
            raise self._from_status(exc) from None
        except requests.Timeout:
            raise PlexTransient(
                f"Plex at {self.url} timed out after {self.timeout_s:g} s"
            ) from None
        except requests.ConnectionError as exc:
            raise PlexTransient(
                f"cannot reach Plex at {self.url}: {self._scrub(_root_cause(exc))}"
            ) from None
        except requests.RequestException as exc:
            raise PlexTransient(f"request to Plex failed: {self._scrub(str(exc))}") from None
        except ParseError as exc:
            raise PlexTransient(f"Plex sent an unreadable answer: {exc}") from None

    def _identity(self) -> str:
        response = requests.get(f"{self.url}/identity", timeout=self.timeout_s, verify=self._verify)
        self._remember(response)
        if response.status_code != 200:
            raise self._from_status(Exception(f"status {response.status_code}"))
        return str(XML(response.content).get("version") or "unknown version")

    def _connect(self) -> _Server:
        if self._server is None:
            session = requests.Session()
            session.verify = self._verify
            session.hooks["response"].append(self._remember)
            server = _Server(self.url, self._token, session, self.timeout_s, self.client_id)
            self.server_name = f"{server.friendlyName} {server.version}"
            self._server = server
        return self._server

    def _disconnect(self) -> None:
        if self._server is not None:
            self._server._session.close()
            self._server = None

    def _remember(self, response: requests.Response, *_args: Any, **_kwargs: Any) -> None:
        self._last = (response.status_code, response.headers.get("Retry-After"))

    def _from_status(self, exc: Exception) -> PlexError:
        status, retry_after = self._last
        if status in (401, 403):
            return PlexPermanent(
                f"Plex rejected the token ({status}): check [plex] token", status=status
            )
        if status == 404:
            return PlexPermanent("Plex has no such item or library (404)", status=404)
        if status == 429:
            return PlexTransient(
                "Plex is rate limiting (429)", status=429, retry_after=_seconds(retry_after)
            )
        if status >= 500:
            return PlexTransient(f"Plex answered {status}", status=status)
        if status == 400:
            return PlexPermanent("Plex refused the request as bad data (400)", status=400)
        return PlexPermanent(
            f"Plex answered {status}: {self._scrub(str(exc))[:200]}", status=status
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    # --- raw requests through plexapi's transport (worker thread) ------------------------

    @staticmethod
    def get(server: PlexServer, key: str, headers: dict[str, str] | None = None) -> Element:
        data = server.query(key, headers=headers)
        if data is None:
            raise PlexTransient(f"Plex sent an empty answer to {key}")
        return data  # type: ignore[no-any-return]

    @staticmethod
    def put(server: PlexServer, key: str) -> None:
        server.query(key, method=server._session.put)

    @staticmethod
    def post(server: PlexServer, key: str, data: bytes) -> None:
        server.query(key, method=server._session.post, data=data)


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds, or an HTTP date from now."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc)
    return "connection refused" if "refused" in text.lower() else text or type(exc).__name__
