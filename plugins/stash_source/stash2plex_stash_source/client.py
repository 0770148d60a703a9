"""A small async client for Stash's GraphQL API and its image routes.

Why not stashapp-tools/stashapi: they are synchronous, set no timeouts, never retry, make
three round-trips (one of them fetching the server's API key) at construction and report
errors as bare exceptions or ``None``. The provider needs a handful of fixed queries, so a
thin client with the failure modes spelled out is simpler and safer:

* per-attempt timeouts; retries with exponential backoff and jitter on connection errors,
  timeouts, HTTP 5xx and Stash's ``database is locked`` (its SQLite busy timeout is 50 ms,
  so it happens under load);
* a typed error for every other outcome (:class:`StashError` and subclasses), each with a
  message a user can act on and never the API key;
* a circuit breaker so a dead Stash costs nothing while it is dead: after
  ``breaker_threshold`` consecutive unavailable-kind failures every call fails at once for
  ``breaker_cooldown_s``; then one trial request decides whether it closes again.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import aiohttp
import orjson
import structlog
from yarl import URL

__all__ = [
    "MAX_IMAGE_BYTES",
    "StashAuthError",
    "StashBadResponse",
    "StashClient",
    "StashError",
    "StashGraphQLError",
    "StashQueryError",
    "StashUnavailable",
]

log = structlog.get_logger("stash2plex.stash_source")

T = TypeVar("T")

#: Images larger than this are refused (a screenshot is well under 1 MB; anything this big
#: is not a thumbnail and would sit in memory).
MAX_IMAGE_BYTES: Final = 20 * 1024 * 1024
#: Upper bound for one GraphQL response body. A 1000-scene index page is about 1 MB.
MAX_GRAPHQL_BYTES: Final = 128 * 1024 * 1024
#: Stash's SQLite busy-timeout error text, returned as a GraphQL error with HTTP 200.
LOCKED_MARKER: Final = "database is locked"
#: No single backoff sleep is longer than this, whatever the attempt number.
MAX_BACKOFF_S: Final = 10.0

_OPERATION_RE = re.compile(r"^\s*(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")
_WS_RE = re.compile(r"\s+")


# --- errors ---------------------------------------------------------------------------


class StashError(Exception):
    """Base class of every error this client raises.

    ``status`` is the HTTP status when one was received. The message is meant for a user
    (and for logs): it names the Stash URL without credentials and never contains the key.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class StashUnavailable(StashError):
    """Stash could not be reached or kept failing: connection refused or reset, timeout,
    HTTP 5xx after every retry, or the circuit breaker is open."""


class StashAuthError(StashError):
    """Stash refused our credentials (HTTP 401/403, or a redirect to its login page)."""


class StashQueryError(StashError):
    """HTTP 422: Stash could not parse or validate our query, so this Stash version does not
    have a field we ask for. ``messages`` holds Stash's explanations."""

    def __init__(self, message: str, *, messages: list[str], status: int | None = 422) -> None:
        super().__init__(message, status=status)
        self.messages = messages


class StashGraphQLError(StashError):
    """HTTP 200 with ``errors[]``: the query ran but a resolver failed. ``messages`` holds
    each error message; ``data`` the partial data Stash returned, if any."""

    def __init__(
        self,
        message: str,
        *,
        messages: list[str],
        data: dict[str, Any] | None = None,
        status: int | None = 200,
    ) -> None:
        super().__init__(message, status=status)
        self.messages = messages
        self.data = data

    @property
    def locked(self) -> bool:
        """Stash's database was busy on every attempt (a transient condition)."""
        return any(LOCKED_MARKER in m for m in self.messages)


class StashBadResponse(StashError):
    """Stash (or something in front of it) answered with something that is not what the
    API promises: not JSON, an HTML login page, a wrong shape, an unexpected status."""


class _Transient(Exception):
    """One attempt failed in a way worth retrying that counts towards the breaker."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class _Locked(Exception):
    """One attempt hit ``database is locked``: retry, but Stash is up (breaker unaffected)."""

    def __init__(self, messages: list[str], data: dict[str, Any] | None) -> None:
        super().__init__(messages[0] if messages else LOCKED_MARKER)
        self.messages = messages
        self.data = data


# --- client ---------------------------------------------------------------------------


class StashClient:
    """Talks to one Stash server over a caller-owned :class:`aiohttp.ClientSession`.

    :param url: Stash's base URL, e.g. ``http://stash:9999`` (a trailing ``/graphql`` is
        accepted; any query string is dropped so a key pasted into the URL is not used).
    :param api_key: sent as the ``ApiKey`` header, and only when non-empty: Stash answers
        401 to any key when it has no credentials configured.
    :param retries: extra attempts after the first one for retryable failures.

    Observability (for ``/healthz``): :attr:`last_ok_at`, :attr:`last_error`,
    :attr:`last_error_at`, :attr:`consecutive_failures`, :attr:`circuit_open`,
    :attr:`requests` (HTTP requests actually sent).
    """

    def __init__(
        self,
        url: str,
        api_key: str = "",
        *,
        session: aiohttp.ClientSession,
        timeout_s: float = 10,
        retries: int = 3,
        backoff_s: float = 0.25,
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 30,
    ) -> None:
        base = URL(url.strip())
        if base.scheme not in ("http", "https") or not base.host:
            # Say what is wrong without echoing the value: it might carry credentials.
            raise ValueError("stash.url must be an absolute http:// or https:// URL")
        if retries < 0 or breaker_threshold < 1 or timeout_s <= 0:
            raise ValueError("retries >= 0, breaker_threshold >= 1 and timeout_s > 0 required")
        prefix = base.path.rstrip("/")
        if prefix.endswith("/graphql"):
            prefix = prefix[: -len("/graphql")]
        self._prefix = prefix
        self._base = base.with_path(prefix or "/").with_query(None).with_fragment(None)
        self._graphql_url = self._base.with_path(f"{prefix}/graphql")
        #: The Stash URL as shown in messages and logs: no userinfo, no query.
        self.url: str = str(self._base.with_user(None)).rstrip("/")

        self._api_key = api_key
        self._session = session
        self._timeout_s = timeout_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._retries = retries
        self._backoff_s = backoff_s
        self._breaker_threshold = breaker_threshold
        self._breaker_cooldown_s = breaker_cooldown_s

        auth = {"ApiKey": api_key} if api_key else {}
        self._json_headers = {
            **auth,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._image_headers = {**auth, "Accept": "image/*"}

        self.last_ok_at: float | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.consecutive_failures: int = 0
        self.requests: int = 0
        self._opened_at: float | None = None  # time.monotonic() when the breaker opened
        self._trial_in_flight = False

    def __repr__(self) -> str:
        return f"StashClient({self.url!r}, api_key={'***' if self._api_key else 'none'})"

    # --- public API -------------------------------------------------------------------

    @property
    def circuit_open(self) -> bool:
        """True from the moment the breaker opens until a request succeeds again."""
        return self._opened_at is not None

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> dict[str, Any]:
        """Run one GraphQL document and return its ``data`` object.

        :raises StashUnavailable: unreachable, timing out or 5xx after every retry, or the
            circuit breaker is open.
        :raises StashAuthError: HTTP 401/403.
        :raises StashQueryError: HTTP 422, the query does not validate on this Stash.
        :raises StashGraphQLError: HTTP 200 with ``errors[]`` (``.locked`` if Stash's
            database stayed locked through every retry).
        :raises StashBadResponse: anything else that is not a GraphQL response.
        """
        name = operation_name or _operation_name(query)
        op = name or "anonymous"
        payload: dict[str, Any] = {"query": query, "variables": variables or {}}
        if name:
            payload["operationName"] = name
        body = orjson.dumps(payload)
        return await self._call(op, lambda: self._post_once(body, op))

    async def fetch_image(self, url_or_path: str) -> tuple[bytes, str]:
        """GET an image from Stash with the API key; returns ``(bytes, content_type)``.

        ``url_or_path`` is an absolute URL on the configured Stash (scheme, host and port
        must match, so this cannot be turned into a proxy to anywhere else) or a path such
        as ``/scene/12/screenshot``. Redirects are not followed: Stash redirects an
        unauthenticated image request to its login page.

        :raises ValueError: the URL points somewhere other than the configured Stash.
        :raises StashAuthError: 401/403 or a redirect (missing or wrong API key).
        :raises StashBadResponse: not an image, larger than :data:`MAX_IMAGE_BYTES`, 404...
        :raises StashUnavailable: as for :meth:`execute`.
        """
        target = self._image_url(url_or_path)
        return await self._call("image", lambda: self._get_image_once(target))

    # --- breaker and retries ----------------------------------------------------------

    def _admit(self) -> bool:
        """Let a request through, or fail fast. Returns True for the half-open trial."""
        if self._opened_at is None:
            return False
        waited = time.monotonic() - self._opened_at
        if waited < self._breaker_cooldown_s or self._trial_in_flight:
            retry_in = max(0.0, self._breaker_cooldown_s - waited)
            raise StashUnavailable(
                f"Stash at {self.url} is unavailable: circuit open after "
                f"{self.consecutive_failures} consecutive failures (last: {self.last_error}); "
                f"next attempt in {retry_in:.0f} s"
            )
        self._trial_in_flight = True
        log.info("stash.circuit_half_open", url=self.url)
        return True

    def _note_failure(self, reason: str, *, trial: bool) -> None:
        self.consecutive_failures += 1
        self._note_error(reason)
        reached = self._opened_at is None and self.consecutive_failures >= self._breaker_threshold
        # Open on reaching the threshold, or re-open when the half-open trial fails. A
        # request already in flight when the breaker opened does not extend the cooldown.
        if reached or trial:
            self._opened_at = time.monotonic()
            log.error(
                "stash.circuit_open",
                url=self.url,
                failures=self.consecutive_failures,
                cooldown_s=self._breaker_cooldown_s,
                reason=reason,
            )

    def _note_reachable(self) -> None:
        """Stash answered (even if with an error): it is up, so the breaker resets."""
        self.consecutive_failures = 0
        if self._opened_at is not None:
            self._opened_at = None
            log.info("stash.circuit_closed", url=self.url)

    def _note_error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time()

    def _delay(self, attempt: int) -> float:
        # Exponential with +-50 % jitter, so a burst of callers does not retry in lockstep.
        return min(self._backoff_s * 2**attempt, MAX_BACKOFF_S) * random.uniform(0.5, 1.5)

    async def _call(self, op: str, attempt_once: Callable[[], Awaitable[T]]) -> T:
        attempts = self._retries + 1
        for attempt in range(attempts):
            trial = self._admit()
            try:
                result = await attempt_once()
            except _Transient as exc:
                self._note_failure(exc.reason, trial=trial)
                if attempt + 1 >= attempts:
                    raise StashUnavailable(
                        f"Stash at {self.url} is unavailable: {exc.reason} "
                        f"(after {attempts} attempt{'s' if attempts > 1 else ''})",
                        status=exc.status,
                    ) from None
                reason = exc.reason
            except _Locked as exc:
                self._note_reachable()
                self._note_error(f"{LOCKED_MARKER} ({op})")
                if attempt + 1 >= attempts:
                    raise StashGraphQLError(
                        f"Stash at {self.url} kept answering '{LOCKED_MARKER}' to {op} "
                        f"({attempts} attempts): it is busy (a scan or a large edit?)",
                        messages=exc.messages,
                        data=exc.data,
                    ) from None
                reason = LOCKED_MARKER
            except StashError as exc:
                self._note_reachable()
                self._note_error(exc.message)
                log.warning("stash.error", op=op, error=exc.message, status=exc.status)
                raise
            else:
                self._note_reachable()
                self.last_ok_at = time.time()
                return result
            finally:
                if trial:
                    self._trial_in_flight = False
            delay = self._delay(attempt)
            log.warning(
                "stash.retry",
                op=op,
                attempt=attempt + 1,
                of=attempts,
                delay_s=round(delay, 3),
                reason=reason,
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    # --- one attempt --------------------------------------------------------------------

    async def _post_once(self, body: bytes, op: str) -> dict[str, Any]:
        self.requests += 1
        started = time.perf_counter()
        try:
            async with self._session.post(
                self._graphql_url,
                data=body,
                headers=self._json_headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                status = resp.status
                ctype = resp.headers.get("Content-Type", "")
                raw = await _read_capped(resp, MAX_GRAPHQL_BYTES)
        except TimeoutError:
            raise _Transient(f"no answer within {self._timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise _Transient(self._describe(exc)) from None
        log.debug(
            "stash.request",
            op=op,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return self._interpret_graphql(status, ctype, raw)

    def _interpret_graphql(self, status: int, ctype: str, raw: bytes | None) -> dict[str, Any]:
        if status in (401, 403):
            raise self._auth_error(status, raw)
        if status >= 500:
            raise _Transient(f"HTTP {status}", status)
        if raw is None:
            raise StashBadResponse(
                f"Stash at {self.url} sent a GraphQL response over {MAX_GRAPHQL_BYTES // 2**20} MB",
                status=status,
            )
        payload = _json_object(raw)
        if status == 422:
            messages = _error_messages(payload) or [self._snippet(raw) or "(no message)"]
            raise StashQueryError(
                f"Stash at {self.url} rejected our query as invalid for its version "
                f"(HTTP 422): {self._redact('; '.join(messages))}. "
                "stash2plex may need a newer Stash.",
                messages=messages,
            )
        if status != 200 or payload is None:
            raise StashBadResponse(
                f"Stash at {self.url} did not answer with GraphQL JSON (HTTP {status}, "
                f"content-type {ctype or 'none'!r}): {self._snippet(raw)!r}. Is stash.url "
                "the Stash server itself, not a login page or proxy?",
                status=status,
            )
        errors = payload.get("errors")
        data = payload.get("data")
        if errors:
            messages = _error_messages(payload)
            partial = data if isinstance(data, dict) else None
            if any(LOCKED_MARKER in m for m in messages):
                raise _Locked(messages, partial)
            raise StashGraphQLError(
                f"Stash at {self.url} returned an error: {self._redact('; '.join(messages))}",
                messages=messages,
                data=partial,
            )
        if not isinstance(data, dict):
            raise StashBadResponse(
                f"Stash at {self.url} answered without a 'data' object: {self._snippet(raw)!r}",
                status=status,
            )
        return data

    async def _get_image_once(self, target: URL) -> tuple[bytes, str]:
        self.requests += 1
        try:
            async with self._session.get(
                target,
                headers=self._image_headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                status = resp.status
                if 300 <= status < 400:
                    raise StashAuthError(
                        f"Stash at {self.url} redirected an image request (HTTP {status}), "
                        "which it does when the request is not authenticated: check "
                        "stash.api_key",
                        status=status,
                    )
                if status in (401, 403):
                    raise self._auth_error(status, None)
                if status >= 500:
                    raise _Transient(f"HTTP {status} for an image", status)
                ctype = resp.content_type
                if status != 200 or not ctype.startswith("image/"):
                    head = await resp.content.read(256)
                    raise StashBadResponse(
                        f"Stash at {self.url} did not return an image for "
                        f"{_shown_path(target)} (HTTP {status}, content-type {ctype!r}): "
                        f"{self._snippet(head)!r}",
                        status=status,
                    )
                data = await _read_capped(resp, MAX_IMAGE_BYTES)
        except TimeoutError:
            raise _Transient(f"no answer within {self._timeout_s:g} s") from None
        except aiohttp.ClientError as exc:
            raise _Transient(self._describe(exc)) from None
        if data is None:
            raise StashBadResponse(
                f"image {_shown_path(target)} from Stash at {self.url} is larger than "
                f"{MAX_IMAGE_BYTES // 2**20} MB",
                status=status,
            )
        return data, ctype

    # --- helpers ------------------------------------------------------------------------

    def _image_url(self, url_or_path: str) -> URL:
        text = url_or_path.strip()
        given = URL(text)
        if given.is_absolute() or given.scheme:
            if (
                given.scheme != self._base.scheme
                or (given.host or "").lower() != (self._base.host or "").lower()
                or given.port != self._base.port
            ):
                # SSRF guard: this client carries the API key; it only talks to Stash.
                raise ValueError(
                    f"refusing to fetch an image from {given.scheme}://{given.host}:"
                    f"{given.port}: not the configured Stash ({self.url})"
                )
            target = given.with_user(self._base.user).with_password(self._base.password)
        else:
            target = URL(f"{self.url}/{text.lstrip('/')}")
            target = target.with_user(self._base.user).with_password(self._base.password)
        # The header carries the key; a key in the query string would end up in logs.
        return target.without_query_params("apikey")

    def _auth_error(self, status: int, raw: bytes | None) -> StashAuthError:
        if status == 403:
            detail = f": {self._snippet(raw)}" if raw else ""
            return StashAuthError(
                f"Stash at {self.url} refused the request (HTTP 403{detail}). Stash blocks "
                "requests from non-local addresses when it has no login "
                "configured: set a username, password and API key in Stash, then put the key "
                "in stash.api_key",
                status=status,
            )
        if self._api_key:
            return StashAuthError(
                f"Stash at {self.url} rejected the configured API key (HTTP 401): check "
                "stash.api_key (Stash > Settings > Security). If Stash has no login "
                "configured, leave stash.api_key empty",
                status=status,
            )
        return StashAuthError(
            f"Stash at {self.url} requires authentication (HTTP 401) and no API key is "
            "configured: set stash.api_key (Stash > Settings > Security > API Key)",
            status=status,
        )

    def _describe(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        return self._redact(f"cannot connect ({type(exc).__name__}: {text})")

    def _snippet(self, raw: bytes | None) -> str:
        if not raw:
            return ""
        text = _WS_RE.sub(" ", raw[:400].decode("utf-8", "replace")).strip()
        return self._redact(text[:80])

    def _redact(self, text: str) -> str:
        # Belt and braces: nothing we build includes the key, but server text might echo it.
        if self._api_key and self._api_key in text:
            text = text.replace(self._api_key, "***")
        return text


def _operation_name(query: str) -> str | None:
    m = _OPERATION_RE.match(query)
    return m.group(1) if m else None


def _shown_path(url: URL) -> str:
    # Paths only: query strings may carry tokens (paths.stream embeds the API key).
    return url.path


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _error_messages(payload: dict[str, Any] | None) -> list[str]:
    if not payload or not isinstance(payload.get("errors"), list):
        return []
    out: list[str] = []
    for err in payload["errors"]:
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            out.append(err["message"])
        else:
            out.append(str(err))
    return out


async def _read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes | None:
    """The whole body, or None once it exceeds ``cap`` bytes (checked while streaming)."""
    if resp.content_length is not None and resp.content_length > cap:
        return None
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(1 << 16):
        buf += chunk
        if len(buf) > cap:
            return None
    return bytes(buf)
