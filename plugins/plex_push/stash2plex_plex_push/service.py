"""The running push sync of one app: its queue file, its worker, its status.

Created lazily by :func:`get_service` (a hook may be called before the plugin's own
start-up has run) and closed by :func:`lifetime`, the plugin's cleanup context.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
from aiohttp import web

from stash2plex import CONFIG, SyncRecord
from stash2plex.logs import get_logger

from .config import SECTION, PushConfig
from .store import AsyncStore, Counts
from .worker import Worker, open_store

log = get_logger("stash2plex.plex_push")


class PushService:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.config: PushConfig = app[CONFIG].section(SECTION)
        self.store = AsyncStore(open_store(app))
        self.worker = Worker(app, self.config, self.store)
        self.task: asyncio.Task[None] | None = None
        self.counts: Counts | None = None
        self._counted_at = 0.0

    # --- the PushSync contract ---------------------------------------------------------

    async def records(self) -> Mapping[str, SyncRecord]:
        lines = await self.store.call(self.store.store.ledger)
        return {
            line.rating_key: SyncRecord(
                rating_key=line.rating_key,
                plex_rating_key=line.plex_rating_key,
                pushed_at=datetime.fromtimestamp(line.pushed_at, UTC),
                digest=line.digest,
            )
            for line in lines
        }

    async def enqueue(
        self, rating_keys: Sequence[str], reason: str, *, destroyed: bool = False
    ) -> int:
        """Durably queued when this returns; the worker is woken."""
        if not rating_keys:
            return 0
        count = await self.store.call(
            self.store.store.enqueue, rating_keys, reason, destroyed=destroyed
        )
        self.worker.wake.set()
        return count

    async def sweep(self, since: float | None, reason: str) -> None:
        await self.store.call(self.store.store.add_sweep, since, reason)
        self.worker.wake.set()

    # --- status ------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        store = self.store.store
        counts = await self.store.call(store.counts)
        self.counts, self._counted_at = counts, time.monotonic()
        outages = await self.store.call(store.outages)
        return status_body(
            counts,
            self.worker.breaker,
            outages,
            worker=self.worker.state if self.task else "stopped",
            extra={
                "webhook": "on" if self.config.webhook_token else "off",
                "rate_per_s": _rate(self.worker),
                "requests": dict(self.worker.requests),
                "pushed": self.worker.pushed,
                "unchanged": self.worker.unchanged,
            },
        )

    async def refresh_counts(self) -> None:
        """For /healthz, which must answer from memory: at most one count a second."""
        if time.monotonic() - self._counted_at >= 1.0:
            self._counted_at = time.monotonic()
            self.counts = await self.store.call(self.store.store.counts)

    def health(self) -> dict[str, Any]:
        counts = self.counts
        breaker = self.worker.breaker
        details: dict[str, Any] = {"worker": self.worker.state, "breaker": breaker.state}
        if counts is not None:
            details.update(
                pending=counts.pending,
                retrying=counts.retrying,
                dead=counts.dead,
                not_in_plex=counts.not_in_plex,
            )
        if breaker.state != "closed":
            details["plex_error"] = breaker.error
        return details

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        self.store.close()


def status_body(
    counts: Counts,
    breaker: Any,
    outages: Sequence[Any],
    *,
    worker: str,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The one shape of the queue's state: ``GET /push/status`` and ``stash2plex queue
    --json`` both answer it."""
    now = time.time()
    return {
        "worker": worker,
        "pending": counts.pending,
        "retrying": counts.retrying,
        "dead": counts.dead,
        "not_in_plex": counts.not_in_plex,
        "sweeps": counts.sweeps,
        "oldest_age_s": round(now - counts.oldest_queued_at, 1)
        if counts.oldest_queued_at
        else None,
        "breaker": {
            "state": breaker.state,
            "failures": breaker.failures,
            "opened_at": iso(breaker.opened_at) if breaker.state != "closed" else None,
            "probe_at": iso(breaker.retry_at) if breaker.state == "open" else None,
            "error": breaker.error if breaker.state != "closed" else None,
        },
        "outages": [
            {
                "start": iso(o.started_at),
                "end": iso(o.ended_at),
                "duration_s": round((o.ended_at or now) - o.started_at, 1),
                "error": o.error,
            }
            for o in outages
        ],
        **(extra or {}),
    }


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC to the second (``...Z``), as every push output shows."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _rate(worker: Worker) -> float | None:
    rate = worker.limiter.rate(time.time())
    return None if rate == float("inf") else round(rate, 2)


@attrs.define
class ServiceHolder:
    """Put in the app while it is built (it is frozen by start-up); filled at first use."""

    service: PushService | None = None


RUNTIME = web.AppKey("stash2plex_plex_push.runtime", ServiceHolder)


def get_service(app: web.Application) -> PushService:
    holder = app[RUNTIME]
    if holder.service is None:
        holder.service = PushService(app)
    return holder.service


async def lifetime(app: web.Application) -> AsyncIterator[None]:
    service = get_service(app)
    if service.config.enabled:
        service.task = asyncio.get_running_loop().create_task(
            service.worker.run(), name="plex_push.worker"
        )
    await service.refresh_counts()
    log.info(
        "push.started",
        enabled=service.config.enabled,
        webhook="on" if service.config.webhook_token else "off",
        queue=str(service.store.store.path),
    )
    yield
    await service.close()
    app[RUNTIME].service = None
