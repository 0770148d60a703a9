"""Gap detection at run time: the unmatched recorder, scans with their lock, the schedule.

``GapDetector`` is created at start-up (the server's, or a CLI command's started app) and
kept under :data:`STATE`. A scan takes the cross-process lock, compares, replaces the
report in one transaction, then broadcasts each new gap once with ``on_gap`` and, with
``[gaps] auto_push``, hands stale scenes to push sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from attrs import define

from stash2plex import CONFIG, HOOKS, Candidate, MatchRequest, gc_paused, path_key
from stash2plex.logs import get_logger

from .config import GapsConfig
from .scan import NotReady, Scan, ScanError, iso
from .store import ScanLock, ScanRow, Store, UnmatchedEvent

log = get_logger("stash2plex_gap_scheduler")

SECTION = "gaps"
#: A failed scan is tried again after this long (or after the interval, if shorter).
RETRY_S = 600.0
#: While the scene index is first built, the schedule looks again this often.
NOT_READY_WAIT_S = 5.0
#: New gaps are read back and broadcast this many at a time.
BROADCAST_PAGE = 500
#: How many scenes one ``enqueue`` call hands push sync.
ENQUEUE_BATCH = 1000
#: Candidates kept per unmatched record.
KEEP_CANDIDATES = 5


class ScanBusy(ScanError):
    """Another scan (in this process or another one) is running."""


@define
class State:
    """The plugin's per-app state, filled at start-up (the app is frozen by then)."""

    detector: GapDetector | None = None


STATE = web.AppKey("stash2plex_gap_scheduler.state", State)


def verdict_of(candidates: Sequence[Candidate], margin: int) -> str:
    """Why nothing matched: ``none`` (Stash has no likely scene), ``ambiguous`` (several
    scenes, the best not ahead of the runner-up by ``margin``: never guessed) or
    ``below_threshold`` (one best scene, but its evidence is too weak)."""
    if not candidates:
        return "none"
    if len(candidates) > 1 and candidates[0].score - candidates[1].score < margin:
        return "ambiguous"
    return "below_threshold"


class Recorder:
    """Buffers unmatched requests in memory and writes them in batches: every
    ``flush_every_s``, sooner once ``flush_events`` wait, and at shutdown. Recording is
    a dict update: it never delays Plex and asks Stash nothing."""

    def __init__(self, store: Store, config: GapsConfig, margin: int) -> None:
        self.store = store
        self.config = config
        self.margin = margin
        self._buffer: dict[str, UnmatchedEvent] = {}
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

    def record(self, request: MatchRequest, candidates: Sequence[Candidate]) -> None:
        filename = request.filename or None
        if filename:
            key = path_key(filename)
        elif request.title:
            key = f"title:{request.title}"
        else:
            return  # nothing to name it by
        event = UnmatchedEvent(
            key=key,
            filename=filename,
            title=request.title,
            seen=time.time(),
            verdict=verdict_of(candidates, self.margin),
            candidates=[
                {"rating_key": c.metadata.rating_key, "score": c.score, "reason": c.reason}
                for c in candidates[:KEEP_CANDIDATES]
            ],
        )
        known = self._buffer.get(key)
        if known is None:
            self._buffer[key] = event
        else:
            known.merge(event)
        if len(self._buffer) >= self.config.flush_events:
            self._full.set()

    async def flush(self) -> int:
        events, self._buffer = list(self._buffer.values()), {}
        self._full.clear()
        if events:
            try:
                await self.store.flush_unmatched(events)
            except Exception:
                # Put them back (merged with what came meanwhile): the next flush retries.
                for event in events:
                    later = self._buffer.get(event.key)
                    if later is not None:
                        event.merge(later)
                    self._buffer[event.key] = event
                raise
            self.flushes += 1
        return len(events)

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), self.config.flush_every_s)
            try:
                await self.flush()
            except Exception:
                log.exception("gaps.unmatched_flush_failed")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="gaps-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


class GapDetector:
    """Scans, the schedule and the recorder of one app."""

    def __init__(self, app: web.Application, store: Store, config: GapsConfig) -> None:
        self.app = app
        self.store = store
        self.config = config
        self.data_dir: Path = app[CONFIG].data_dir
        self.recorder = Recorder(store, config, app[CONFIG].provider.match_margin)
        self.next_scan_at: float | None = None
        self.running: float | None = None  # when the scan running here started
        self._schedule: asyncio.Task[None] | None = None

    # --- one scan --------------------------------------------------------------------

    async def scan(self, trigger: str) -> ScanRow:
        """Run one scan now. Raises :class:`ScanBusy` when one is already running
        anywhere and :class:`NotReady` while the scene index is first built; any other
        failure is recorded (report untouched) and returned as a failed row."""
        lock = ScanLock(self.data_dir)
        if not lock.acquire():
            raise ScanBusy("a gap scan is already running (server or CLI); try again later")
        started = time.time()
        self.running = started
        try:
            await self.recorder.flush()  # judge the freshest unmatched log
            await self.store.stage_begin()
            scan = Scan(
                self.app,
                libraries=self.config.libraries,
                unmatched=await self.store.unmatched(),
                stage=self.store.stage,
                started_at=started,
            )
            log.info("gaps.scan_started", trigger=trigger)
            try:
                with gc_paused():  # the scan's dictionaries of 100k's of path keys
                    output = await scan.run()
            except NotReady:
                raise
            except Exception as exc:
                message = str(exc) if isinstance(exc, ScanError) else f"{type(exc).__name__}: {exc}"
                row = ScanRow(
                    started_at=started,
                    finished_at=time.time(),
                    status="failed",
                    error=message,
                    trigger=trigger,
                    stats={},
                )
                await self.store.record_failure(row)
                log.warning("gaps.scan_failed", trigger=trigger, error=message)
                return row
            row = ScanRow(
                started_at=started,
                finished_at=time.time(),
                status="ok",
                error="",
                trigger=trigger,
                stats=output.stats,
            )
            changes = await self.store.commit_scan(row, output.resolved_unmatched)
        finally:
            self.running = None
            lock.release()
        log.info(
            "gaps.scan_finished",
            trigger=trigger,
            duration_s=round(row.finished_at - row.started_at, 3),
            found=row.stats["found"],
            **changes,
        )
        await self._broadcast(row.finished_at)
        if self.config.auto_push:
            await self.push_stale(reason="gaps: auto_push after a scan")
        return row

    async def _broadcast(self, first_seen: float) -> None:
        """Each gap this scan found for the first time, once, through ``on_gap``."""
        hooks = self.app[HOOKS]
        if not hooks.implemented("on_gap"):
            return
        offset = 0
        while True:
            page = await self.store.new_gaps(first_seen, offset, BROADCAST_PAGE)
            for stored in page:
                await hooks.on_gap(stored.gap)
            if len(page) < BROADCAST_PAGE:
                return
            offset += BROADCAST_PAGE

    async def push_stale(self, reason: str) -> int | None:
        """Queue every stale (and never pushed) scene of the report with push sync;
        None when push sync is not installed."""
        push = await self.app[HOOKS].push_sync()
        if push is None:
            return None
        keys = await self.store.stale_keys()
        queued = 0
        for start in range(0, len(keys), ENQUEUE_BATCH):
            queued += await push.enqueue(keys[start : start + ENQUEUE_BATCH], reason)
        log.info("gaps.pushed_stale", scenes=len(keys), queued=queued, reason=reason)
        return queued

    # --- the schedule ----------------------------------------------------------------

    @property
    def scheduled(self) -> bool:
        """Whether this process runs the schedule (the server does; a CLI command not)."""
        return self._schedule is not None

    async def due_at(self) -> float | None:
        """When the next scheduled scan is due (epoch seconds), from the last finished
        scan on disk, so a restart neither repeats nor skips one; None when off."""
        interval = self.config.interval_s
        if not interval:
            return None
        last = await self.store.last_scan()
        if last is None:
            return time.time()
        wait = interval if last.status == "ok" else min(interval, RETRY_S)
        return last.started_at + wait

    async def _scheduled(self) -> None:
        idle = False
        while True:
            if await self.app[HOOKS].plex_library() is None:
                # No Plex configured (or not yet started): a scan could only fail, and
                # record a failure per retry. Said once; `gaps scan` explains it too.
                self.next_scan_at = None
                if not idle:
                    log.info("gaps.schedule_idle", reason="no Plex library ([plex] url, token)")
                    idle = True
                await asyncio.sleep(NOT_READY_WAIT_S)
                continue
            idle = False
            due = await self.due_at()
            if due is None:
                return
            self.next_scan_at = due
            now = time.time()
            if due > now:
                # Read the last run again on waking: a CLI scan may have run meanwhile.
                await asyncio.sleep(min(due - now, 3600.0))
                continue
            try:
                await self.scan("schedule")
            except NotReady as exc:
                log.info("gaps.scan_postponed", reason=str(exc))
                await asyncio.sleep(NOT_READY_WAIT_S)
            except ScanBusy:
                await asyncio.sleep(min(60.0, self.config.interval_s))
            except Exception:
                log.exception("gaps.schedule_failed")
                await asyncio.sleep(min(RETRY_S, self.config.interval_s))

    # --- lifetime --------------------------------------------------------------------

    def start(self, schedule: bool) -> None:
        self.recorder.start()
        if schedule and self.config.interval_s:
            self._schedule = asyncio.get_running_loop().create_task(
                self._scheduled(), name="gaps-schedule"
            )

    async def stop(self) -> None:
        if self._schedule is not None:
            self._schedule.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._schedule
        await self.recorder.stop()


def scan_json(row: ScanRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "duration_s": round(row.finished_at - row.started_at, 3),
        "status": row.status,
        "error": row.error,
        "trigger": row.trigger,
        **row.stats,
    }
