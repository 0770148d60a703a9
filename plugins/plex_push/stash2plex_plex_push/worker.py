"""The one worker: takes due jobs from the queue and pushes each scene to Plex.

Plex is reached only through the ``plex_library`` hook, scenes through
``build_metadata`` and ``scene_catalog``, paths through ``map_path``. Transient failures
retry with exponential backoff and jitter (a 429's ``Retry-After`` pauses every job);
permanent ones go to the dead letters at once. Consecutive transient Plex failures open
a circuit breaker that is kept in the queue file (it survives restarts); once its
cooldown has passed one job probes Plex, and after an outage the rate of Plex requests
starts low and doubles every ``ramp_s`` up to ``rate_per_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import random
import secrets
import time
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import attrs
import orjson
from aiohttp import web

from stash2plex import (
    CONFIG,
    HOOKS,
    PathDirection,
    PlexImageKind,
    PlexItem,
    PlexLibrary,
    PlexPermanent,
    PlexTransient,
    Unavailable,
)
from stash2plex.logs import get_logger

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from . import mapping
from .config import PushConfig
from .store import FILE, AsyncStore, Breaker, Job, LedgerLine, Store

log = get_logger("stash2plex.plex_push")


INSTANCE_HEADER = "X-Stash2plex-Push-Instance"


class NotInPlex(Exception):
    """Plex has no item for the scene (yet: it may not have scanned the file).
    ``files_known``: the source's index knows the scene's files."""

    def __init__(self, message: str, *, files_known: bool) -> None:
        super().__init__(message)
        self.files_known = files_known


class SourceProblem(Exception):
    """The source could not answer (Stash down, an image route failing): retry later,
    without counting against Plex."""


class Gone(Exception):
    """The source has no such scene."""


class NoPlex(Exception):
    """No plugin offers a Plex connection (the plex plugin is missing or unconfigured)."""


class Limiter:
    """Spaces Plex requests: ``rate_per_s`` at most, and after an outage a rate that
    starts at 1/s and doubles every ``ramp_s`` (never a thundering herd)."""

    def __init__(self, rate_per_s: float, ramp_s: float) -> None:
        self.rate_per_s = rate_per_s or math.inf
        self.ramp_s = ramp_s
        self.recovering_since: float | None = None
        self._next = 0.0

    def rate(self, now: float) -> float:
        if self.recovering_since is None:
            return self.rate_per_s
        ramp = 2 ** ((now - self.recovering_since) / self.ramp_s)
        if ramp >= self.rate_per_s or ramp > 1e6:
            self.recovering_since = None  # fully open again
            return self.rate_per_s
        return ramp

    async def acquire(self) -> None:
        now = time.monotonic()
        rate = self.rate(time.time())
        if math.isinf(rate):
            return
        wait = self._next - now
        if wait > 0:
            await asyncio.sleep(wait)
            now += wait
        self._next = max(now, self._next) + 1.0 / rate


class Worker:
    def __init__(self, app: web.Application, config: PushConfig, store: AsyncStore) -> None:
        self.app = app
        self.config = config
        self.store = store
        self.hooks = app[HOOKS]
        self.identifier = app[CONFIG].provider.identifier
        self.limiter = Limiter(config.rate_per_s, config.ramp_s)
        self.wake = asyncio.Event()
        self.breaker = Breaker()
        self.paused_until = 0.0  # a 429's Retry-After, for every job
        self.session: aiohttp.ClientSession | None = None
        self.self_url = config.self_url.rstrip("/") or _loopback(app)
        #: Answered by this process's /push/status, so the worker knows it is serving.
        self.instance = secrets.token_hex(8)
        self.state = "starting"
        #: Plex requests sent, by kind (edit, refresh, upload): the benchmark reads these.
        self.requests: dict[str, int] = {"edit": 0, "refresh": 0, "upload": 0}
        self.pushed = 0
        self.unchanged = 0

    # --- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            self.session = session
            with WorkerLock(self.store.store.path.with_suffix(".lock")) as lock:
                waited = 0
                while not (await self._serving() and lock.acquire()):
                    # Only a serving process works the queue (a CLI command that started
                    # an app for its plugins does not), and only one (a lock on the file).
                    waited += 1
                    if waited == 60 and self.state.startswith("standby (not serving"):
                        log.warning(
                            "push.worker_waiting",
                            self_url=self.self_url,
                            hint="this process's own routes do not answer there: "
                            "set [push] self_url",
                        )
                    await asyncio.sleep(self.config.poll_s)
                await self._run()

    async def _serving(self) -> bool:
        """Whether this very process answers at ``self_url`` (artwork comes from there)."""
        assert self.session is not None
        try:
            async with self.session.get(
                f"{self.self_url}/push/status", timeout=aiohttp.ClientTimeout(total=2)
            ) as resp:
                if resp.headers.get(INSTANCE_HEADER) == self.instance:
                    self.state = "standby (another process works the queue)"
                    return True
        except (aiohttp.ClientError, TimeoutError):
            pass
        self.state = f"standby (not serving at {self.self_url})"
        return False

    async def _run(self) -> None:
        self.breaker = await self.store.call(self.store.store.breaker)
        if self.breaker.state == "closed" and self.breaker.closed_at:
            # Restarted during a recovery: the ramp goes on from where it was.
            self.limiter.recovering_since = self.breaker.closed_at
        self.state = "starting"
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The loop itself must never die: log, pause, go on.
                log.exception("push.worker_failed")
                await self._sleep(self.config.poll_s)

    async def _step(self) -> None:
        store = self.store.store
        await self._expand_sweeps()
        now = time.time()
        if self.breaker.state == "open":
            if now < (self.breaker.retry_at or 0):
                self.state = "breaker open"
                await self._sleep(self.breaker.retry_at - now)  # type: ignore[operator]
                return
            await self._save_breaker(_replace(self.breaker, state="half_open"))
        if now < self.paused_until:
            self.state = "waiting (Plex asked to slow down)"
            await self._sleep(self.paused_until - now)
            return
        job = await self.store.call(store.next_job, now)
        if job is None:
            self.state = "idle"
            due = await self.store.call(store.next_due_at)
            await self._sleep(
                self.config.poll_s if due is None else min(self.config.poll_s, due - now)
            )
            return
        plex = await self.hooks.plex_library()
        if plex is None:
            self.state = "no Plex configured"
            await self._sleep(self.config.poll_s * 5)
            return
        if plex.state().index_age_s is None:
            # Before Plex's item index is first read every lookup would miss: wait,
            # without spending the jobs' attempts.
            self.state = "waiting for Plex's item index"
            await self._sleep(self.config.poll_s)
            return
        self.state = "pushing"
        await self._process(job, plex)

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)
        self.wake.clear()

    async def _expand_sweeps(self) -> None:
        """ "Push all" and "push since" requests: every matching scene of the catalog is
        queued (a crash mid-way repeats the expansion; queueing merges, so no harm)."""
        store = self.store.store
        sweeps = await self.store.call(store.sweeps)
        if not sweeps:
            return
        catalog = await self.hooks.scene_catalog()
        if catalog is None or not catalog.ready:
            return  # the source's index is still being built: later
        for sweep in sweeps:
            keys: list[str] = []
            queued = 0
            async for scene in catalog.scenes():
                if sweep.since is not None and (
                    scene.updated_at is None or scene.updated_at.timestamp() < sweep.since
                ):
                    continue
                keys.append(scene.rating_key)
                if len(keys) >= 2000:
                    queued += await self.store.call(store.enqueue, keys, sweep.reason)
                    keys = []
            if keys:
                queued += await self.store.call(store.enqueue, keys, sweep.reason)
            await self.store.call(store.finish_sweep, sweep.id)
            log.info("push.sweep_expanded", reason=sweep.reason, queued=queued)

    # --- one job -----------------------------------------------------------------------

    async def _process(self, job: Job, plex: PlexLibrary) -> None:
        store = self.store.store
        key = job.rating_key
        try:
            line = await self.push(job, plex)
        except PlexTransient as exc:
            delay = self._backoff(job.attempts)
            if exc.retry_after:
                delay = max(delay, exc.retry_after)
                self.paused_until = time.time() + exc.retry_after
            else:
                await self._plex_failed(str(exc))
            await self.store.call(store.retry, job, f"Plex: {exc}", delay)
            log.warning(
                "push.retry",
                rating_key=key,
                error=str(exc),
                status=exc.status,
                delay_s=round(delay, 2),
                attempt=job.attempts + 1,
            )
        except PlexPermanent as exc:
            if exc.status != 404:
                await self.store.call(store.kill, job, f"Plex refused: {exc}")
                log.error("push.dead", rating_key=key, error=str(exc), status=exc.status)
                return
            # The item went away since Plex's item index was read: look for it again.
            await self._not_in_plex(job, f"Plex: {exc}")
        except NotInPlex as exc:
            await self._not_in_plex(job, str(exc))
        except (SourceProblem, Unavailable) as exc:
            await self.store.call(store.retry, job, f"source: {exc}", self._backoff(job.attempts))
            log.warning("push.source_unavailable", rating_key=key, error=str(exc))
        except Gone as exc:
            await self.store.call(store.kill, job, str(exc))
            log.error("push.dead", rating_key=key, error=str(exc))
        except NoPlex:
            await self.store.call(store.postpone, job, time.time() + self.config.poll_s * 5)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug, not Plex: keep the scene where it can be retried after a fix.
            log.exception("push.failed", rating_key=key)
            await self.store.call(store.kill, job, f"internal error: {type(exc).__name__}: {exc}")
        else:
            await self.store.call(store.done, job, line)

    async def _not_in_plex(self, job: Job, error: str) -> None:
        """Not found is transient for ``not_found_for_s`` (Plex may not have scanned the
        file yet), then the job is parked: a gap, not a dead letter."""
        store = self.store.store
        since = job.missing_since or time.time()
        if time.time() - since >= self.config.not_found_for_s:
            await self.store.call(store.park, job, error)
            log.warning("push.not_in_plex", rating_key=job.rating_key, error=error)
        else:
            delay = self._backoff(job.attempts)
            await self.store.call(store.retry, job, error, delay, missing_since=since)
            log.info("push.not_in_plex_yet", rating_key=job.rating_key, error=error)

    def _backoff(self, attempts: int) -> float:
        ceiling = min(self.config.max_backoff_s, self.config.backoff_s * 2**attempts)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter"

    async def push(self, job: Job, plex: PlexLibrary) -> LedgerLine | None:
        """Push one scene; returns its new ledger line (None: forget the scene)."""
        key = job.rating_key
        store = self.store.store
        if job.destroyed:
            return None  # deleted in Stash: nothing to push; the ledger forgets it
        # Plex first (local lookups): a scene Plex has not scanned yet costs Stash nothing.
        try:
            targets, ours = await self.find(key, plex)
        except NotInPlex as exc:
            if not exc.files_known and await self.hooks.build_metadata(key) is None:
                raise Gone(f"the source has no scene {key}") from None
            raise
        found = await self.hooks.build_metadata(key)
        if found is None:
            raise Gone(f"the source has no scene {key}")
        _plugin, metadata = found
        want = mapping.wanted(metadata, self.config)
        target_keys = [t.rating_key for t in targets]
        previous = await self.store.call(store.ledger_line, key)
        before: dict[str, Any] = orjson.loads(previous.written) if previous else {}
        if before.get("targets") != target_keys:
            before = {}  # another item: nothing of it is ours yet
        source = want.digest()
        if previous is not None and before.get("source") == source and before.get("ours") == ours:
            self.unchanged += 1
            return previous  # unchanged: zero requests
        plan = mapping.plan(want, before.get("owned"), ours=ours, lock=self.config.lock)
        edit = mapping.edit_json(plan.edit)
        images_before: dict[str, dict[str, str]] = before.get("images", {})
        images: dict[str, dict[str, str]] = {}
        before_requests = sum(self.requests.values())
        for target in target_keys:
            if ours:
                await self._request("refresh", plex.refresh(target))
            if not plan.edit.is_empty() and edit != before.get("edit"):
                await self._request("edit", plex.edit(target, plan.edit))
        for name, url in want.images.items():
            kept = images_before.get(name)
            if kept and kept.get("url") == url:
                images[name] = kept
                continue
            data = await self._fetch_image(url)
            digest = hashlib.sha256(data).hexdigest()
            if not (kept and kept.get("sha256") == digest):
                kind = PlexImageKind.POSTER if name == "poster" else PlexImageKind.BACKGROUND
                for target in target_keys:
                    await self._request("upload", plex.upload_image(target, kind, data))
            images[name] = {"url": url, "sha256": digest}
        sent = sum(self.requests.values()) > before_requests
        if sent:
            await self._plex_ok()  # only an answer from Plex closes the breaker
        self.pushed += 1
        written = {
            "source": source,
            "ours": ours,
            "targets": target_keys,
            "edit": edit,
            "owned": plan.owned,
            "images": images,
        }
        return LedgerLine(
            rating_key=key,
            plex_rating_key=target_keys[0],
            pushed_at=time.time(),
            digest=mapping.written_digest(plan.owned, images),
            written=orjson.dumps(written).decode(),
        )

    async def _request(self, kind: str, call: Coroutine[Any, Any, None]) -> None:
        try:
            await self.limiter.acquire()
        except BaseException:
            call.close()
            raise
        self.requests[kind] += 1
        await call

    async def find(self, key: str, plex: PlexLibrary) -> tuple[list[PlexItem], bool]:
        """The Plex items of a scene: by our guid when our provider matched them (then
        ``ours``), else by the scene's files mapped to Plex's paths. Local lookups in
        the plex plugin's item index: no request."""
        guid = f"{self.identifier}://movie/{key}"
        items = list(await plex.find_by_guid(guid))
        if items:
            return _distinct(items), True
        catalog = await self.hooks.scene_catalog()
        scene = await catalog.scene(key) if catalog is not None else None
        tried: list[str] = []
        for path in scene.files if scene else ():
            mapped = await self.hooks.map_path(path, PathDirection.STASH_TO_PLEX) or path
            tried.append(mapped)
            item = await plex.find_by_path(mapped)
            if item is not None:
                items.append(item)
        if not items:
            where = f"its files {tried}" if tried else "no files known for it"
            raise NotInPlex(
                f"no Plex item for {key}: guid {guid} not in Plex, {where} not in Plex",
                files_known=bool(tried),
            )
        return _distinct(items), False

    async def _fetch_image(self, url: str) -> bytes:
        """Artwork bytes from this process's own signed ``/images`` route, over loopback
        (the route streams from Stash with the API key, and caches)."""
        parts = urlsplit(url)
        local = f"{self.self_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        assert self.session is not None
        try:
            async with self.session.get(local) as resp:
                body = await resp.read()
                if resp.status != 200 or not resp.content_type.startswith("image/"):
                    raise SourceProblem(f"image {parts.path}: HTTP {resp.status}")
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SourceProblem(f"image {parts.path}: {type(exc).__name__}: {exc}") from None

    # --- the circuit breaker -----------------------------------------------------------

    async def _plex_failed(self, error: str) -> None:
        now = time.time()
        b = self.breaker
        failures = b.failures + 1
        if b.state == "half_open":
            cooldown = min(
                self.config.max_backoff_s, (b.cooldown_s or self.config.breaker_cooldown_s) * 2
            )
            await self._save_breaker(
                _replace(
                    b,
                    state="open",
                    failures=failures,
                    retry_at=now + cooldown,
                    cooldown_s=cooldown,
                    error=error,
                )
            )
            log.warning("push.breaker_probe_failed", retry_in_s=cooldown, error=error)
        elif b.state == "closed" and failures >= self.config.breaker_threshold:
            cooldown = self.config.breaker_cooldown_s
            await self._save_breaker(
                _replace(
                    b,
                    state="open",
                    failures=failures,
                    opened_at=now,
                    retry_at=now + cooldown,
                    cooldown_s=cooldown,
                    error=error,
                ),
                outage="start",
            )
            log.error("push.breaker_open", failures=failures, retry_in_s=cooldown, error=error)
        else:
            await self._save_breaker(_replace(b, failures=failures, error=error))

    async def _plex_ok(self) -> None:
        b = self.breaker
        if b.state == "closed" and b.failures == 0:
            return
        now = time.time()
        if b.state == "closed":
            await self._save_breaker(_replace(b, failures=0))
            return
        await self._save_breaker(Breaker(state="closed", failures=0, closed_at=now), outage="end")
        self.limiter.recovering_since = now
        log.info("push.breaker_closed", outage_s=round(now - (b.opened_at or now), 1))

    async def _save_breaker(self, breaker: Breaker, *, outage: str | None = None) -> None:
        self.breaker = breaker
        await self.store.call(self.store.store.save_breaker, breaker, outage=outage)


class WorkerLock:
    """An exclusive lock on a file next to the queue: one worker per queue, across
    processes. The OS drops it when its process dies, even by ``kill -9``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> WorkerLock:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        return self

    def acquire(self) -> bool:
        if fcntl is None:  # pragma: no cover - Windows: no advisory locks; one server assumed
            return True
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *_exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def _replace(breaker: Breaker, **changes: Any) -> Breaker:
    return attrs.evolve(breaker, **changes)


def _distinct(items: Sequence[PlexItem]) -> list[PlexItem]:
    return list({item.rating_key: item for item in items}.values())


def _loopback(app: web.Application) -> str:
    server = app[CONFIG].server
    host = server.host
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


def open_store(app: web.Application) -> Store:
    return Store(app[CONFIG].data_dir / FILE)
