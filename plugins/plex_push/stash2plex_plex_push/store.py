"""The push queue, dead letters, sync ledger and circuit breaker: one SQLite file.

WAL mode. Queueing commits with ``synchronous=FULL`` (a queued row is on disk, even
through a power cut, when ``enqueue`` returns); the worker's own bookkeeping commits with
``NORMAL`` (in the OS's hands at once, so a ``kill -9`` loses nothing; a power cut may
at worst forget that a push happened, and the push is then sent again). A job row is
deleted only in the transaction that records its push in the ledger, and only if no newer
event merged into it while it was being pushed: a crash re-sends an edit (harmless, edits
are idempotent) but never forgets one. Plain synchronous methods: the server runs them on
one thread of their own (:class:`AsyncStore`), the CLI calls them directly, and both may
hold the file at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from attrs import define

FILE = "push-queue.sqlite3"
_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    rating_key  TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    queued_at   REAL NOT NULL,           -- first queued: the job's age
    changed_at  REAL NOT NULL,           -- last event merged into it
    seq         INTEGER NOT NULL,        -- bumped by every merge
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     REAL NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',   -- pending | parked
    destroyed   INTEGER NOT NULL DEFAULT 0,
    missing_since REAL,                  -- first time Plex had no item for it
    last_error  TEXT
);
-- Every column of the worker's ORDER BY: with next_at alone, the jobs of one batch (all
-- due at once) were sorted afresh on every take, O(queue) each (1.4 ms a job at 10k).
DROP INDEX IF EXISTS jobs_due;
CREATE INDEX IF NOT EXISTS jobs_next ON jobs (state, next_at, queued_at);
CREATE TABLE IF NOT EXISTS dead (
    rating_key  TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    error       TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    queued_at   REAL NOT NULL,
    died_at     REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    rating_key      TEXT PRIMARY KEY,
    plex_rating_key TEXT NOT NULL,
    pushed_at       REAL NOT NULL,
    digest          TEXT NOT NULL,
    written         TEXT NOT NULL        -- JSON: what was written, per field
);
CREATE TABLE IF NOT EXISTS sweeps (
    id        INTEGER PRIMARY KEY,
    since     REAL,                      -- NULL: every scene
    reason    TEXT NOT NULL,
    queued_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS breaker (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    state      TEXT NOT NULL,            -- closed | open | half_open
    failures   INTEGER NOT NULL,
    opened_at  REAL,
    retry_at   REAL,
    cooldown_s REAL,
    closed_at  REAL,                     -- the end of the last outage: the ramp's start
    error      TEXT
);
CREATE TABLE IF NOT EXISTS outages (
    id         INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    ended_at   REAL,
    error      TEXT
);
"""


@define(frozen=True, kw_only=True)
class Job:
    rating_key: str
    reason: str
    queued_at: float
    seq: int
    attempts: int
    next_at: float
    state: str
    destroyed: bool
    missing_since: float | None
    last_error: str | None


@define(frozen=True, kw_only=True)
class DeadLetter:
    rating_key: str
    reason: str
    error: str
    attempts: int
    queued_at: float
    died_at: float


@define(frozen=True, kw_only=True)
class LedgerLine:
    rating_key: str
    plex_rating_key: str
    pushed_at: float
    digest: str
    written: str


@define(frozen=True, kw_only=True)
class Sweep:
    id: int
    since: float | None
    reason: str


@define(frozen=True, kw_only=True)
class Breaker:
    state: str = "closed"
    failures: int = 0
    opened_at: float | None = None
    retry_at: float | None = None
    cooldown_s: float | None = None
    closed_at: float | None = None
    error: str | None = None


@define(frozen=True, kw_only=True)
class Outage:
    started_at: float
    ended_at: float | None
    error: str | None


@define(frozen=True, kw_only=True)
class Counts:
    pending: int
    retrying: int
    not_in_plex: int
    dead: int
    sweeps: int
    oldest_queued_at: float | None
    next_due_at: float | None


def scene_key(text: str) -> str:
    """``123`` or ``stash-123`` -> ``stash-123``; anything else as given."""
    text = text.strip()
    return f"stash-{text}" if text.isdigit() else text


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self.db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _tx(self, work: Callable[[sqlite3.Connection], _T], *, flush: bool = False) -> _T:
        """``work`` in one transaction; ``flush``: synced to disk before returning."""
        db = self.db
        if flush:
            db.execute("PRAGMA synchronous=FULL")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            if flush:
                db.execute("PRAGMA synchronous=NORMAL")
        return result

    # --- queueing ----------------------------------------------------------------------

    def enqueue(
        self,
        rating_keys: Iterable[str],
        reason: str,
        *,
        destroyed: bool = False,
        now: float | None = None,
    ) -> int:
        """Queue scenes; an already queued scene merges into its row (a parked one wakes
        up, a retrying one keeps its backoff). Returns how many keys were given."""
        now = time.time() if now is None else now
        rows = [(key, reason, now, now, now, int(destroyed)) for key in dict.fromkeys(rating_keys)]

        def work(db: sqlite3.Connection) -> int:
            db.executemany(
                """INSERT INTO jobs (rating_key, reason, queued_at, changed_at, seq, next_at,
                                     destroyed)
                   VALUES (?, ?, ?, ?, 1, ?, ?)
                   ON CONFLICT (rating_key) DO UPDATE SET
                     seq = seq + 1,
                     reason = excluded.reason,
                     changed_at = excluded.changed_at,
                     destroyed = excluded.destroyed,
                     next_at = CASE WHEN state = 'parked' THEN excluded.next_at ELSE next_at END,
                     attempts = CASE WHEN state = 'parked' THEN 0 ELSE attempts END,
                     missing_since = CASE WHEN state = 'parked' THEN NULL ELSE missing_since END,
                     state = 'pending'""",
                rows,
            )
            # A new event supersedes an old failure: the scene gets a fresh chance.
            db.executemany("DELETE FROM dead WHERE rating_key = ?", [(r[0],) for r in rows])
            return len(rows)

        return self._tx(work, flush=True)

    def add_sweep(self, since: float | None, reason: str) -> int:
        """A request to queue every scene (changed since ``since``), expanded by the
        server's worker from the scene catalog."""

        def work(db: sqlite3.Connection) -> int:
            cur = db.execute(
                "INSERT INTO sweeps (since, reason, queued_at) VALUES (?, ?, ?)",
                (since, reason, time.time()),
            )
            return int(cur.lastrowid or 0)

        return self._tx(work, flush=True)

    def sweeps(self) -> list[Sweep]:
        rows = self.db.execute("SELECT id, since, reason FROM sweeps ORDER BY id").fetchall()
        return [Sweep(id=r[0], since=r[1], reason=r[2]) for r in rows]

    def finish_sweep(self, sweep_id: int) -> None:
        self.db.execute("DELETE FROM sweeps WHERE id = ?", (sweep_id,))

    def next_job(self, now: float) -> Job | None:
        """The pending job due first, if it is due."""
        row = self.db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'pending' AND next_at <= ? "
            "ORDER BY next_at, queued_at LIMIT 1",
            (now,),
        ).fetchone()
        return _job(row) if row else None

    def next_due_at(self) -> float | None:
        row = self.db.execute("SELECT min(next_at) FROM jobs WHERE state = 'pending'").fetchone()
        return row[0] if row else None

    def job(self, rating_key: str) -> Job | None:
        row = self.db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs WHERE rating_key = ?", (rating_key,)
        ).fetchone()
        return _job(row) if row else None

    # --- outcomes ----------------------------------------------------------------------

    def done(self, job: Job, line: LedgerLine | None) -> bool:
        """The push of ``job`` succeeded: record it and drop the job, unless an event
        merged into it meanwhile (then it stays queued, due now). ``line`` None removes
        the scene's ledger line (the scene is gone). Returns whether the job was dropped."""

        def work(db: sqlite3.Connection) -> bool:
            if line is None:
                db.execute("DELETE FROM ledger WHERE rating_key = ?", (job.rating_key,))
            else:
                db.execute(
                    """INSERT OR REPLACE INTO ledger
                       (rating_key, plex_rating_key, pushed_at, digest, written)
                       VALUES (?, ?, ?, ?, ?)""",
                    (
                        line.rating_key,
                        line.plex_rating_key,
                        line.pushed_at,
                        line.digest,
                        line.written,
                    ),
                )
            cur = db.execute(
                "DELETE FROM jobs WHERE rating_key = ? AND seq = ?", (job.rating_key, job.seq)
            )
            if cur.rowcount:
                return True
            db.execute(
                "UPDATE jobs SET attempts = 0, next_at = ?, missing_since = NULL, "
                "last_error = NULL WHERE rating_key = ?",
                (time.time(), job.rating_key),
            )
            return False

        return self._tx(work)

    def retry(
        self, job: Job, error: str, delay_s: float, *, missing_since: float | None = None
    ) -> None:
        self.db.execute(
            "UPDATE jobs SET attempts = attempts + 1, next_at = ?, last_error = ?, "
            "missing_since = ? WHERE rating_key = ?",
            (time.time() + delay_s, error, missing_since, job.rating_key),
        )

    def postpone(self, job: Job, until: float) -> None:
        """Not an attempt (the breaker held it back, or Plex asked everyone to wait)."""
        self.db.execute("UPDATE jobs SET next_at = ? WHERE rating_key = ?", (until, job.rating_key))

    def park(self, job: Job, error: str) -> None:
        """Plex has no item for this scene: stop retrying until the scene changes again."""
        self.db.execute(
            "UPDATE jobs SET state = 'parked', last_error = ? WHERE rating_key = ? AND seq = ?",
            (error, job.rating_key, job.seq),
        )

    def kill(self, job: Job, error: str) -> None:
        """A permanent failure: into the dead-letter queue at once, with its reason."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO dead VALUES (?, ?, ?, ?, ?, ?)",
                (job.rating_key, job.reason, error, job.attempts + 1, job.queued_at, time.time()),
            )
            db.execute(
                "DELETE FROM jobs WHERE rating_key = ? AND seq = ?", (job.rating_key, job.seq)
            )

        self._tx(work)

    # --- dead letters ------------------------------------------------------------------

    def dead_letters(self) -> list[DeadLetter]:
        rows = self.db.execute(
            "SELECT rating_key, reason, error, attempts, queued_at, died_at FROM dead "
            "ORDER BY died_at"
        ).fetchall()
        return [
            DeadLetter(
                rating_key=r[0],
                reason=r[1],
                error=r[2],
                attempts=r[3],
                queued_at=r[4],
                died_at=r[5],
            )
            for r in rows
        ]

    def revive(self, rating_keys: Sequence[str] | None) -> int:
        """Dead letters (all when None) back into the queue; returns how many."""
        if rating_keys is None:
            keys = [r[0] for r in self.db.execute("SELECT rating_key FROM dead")]
        else:
            keys = [
                key
                for key in rating_keys
                if self.db.execute("SELECT 1 FROM dead WHERE rating_key = ?", (key,)).fetchone()
            ]
        if keys:
            self.enqueue(keys, "retry")  # which also takes them out of the dead letters
        return len(keys)

    def purge_dead(self) -> int:
        return self.db.execute("DELETE FROM dead").rowcount

    # --- listing -----------------------------------------------------------------------

    def jobs(self, limit: int = 1000) -> list[Job]:
        rows = self.db.execute(
            f"SELECT {_JOB_COLUMNS} FROM jobs ORDER BY next_at LIMIT ?", (limit,)
        ).fetchall()
        return [_job(r) for r in rows]

    def counts(self) -> Counts:
        row = self.db.execute(
            """SELECT
                 count(*) FILTER (WHERE state = 'pending' AND attempts = 0),
                 count(*) FILTER (WHERE state = 'pending' AND attempts > 0),
                 count(*) FILTER (WHERE state = 'parked'),
                 min(queued_at) FILTER (WHERE state = 'pending'),
                 min(next_at) FILTER (WHERE state = 'pending')
               FROM jobs"""
        ).fetchone()
        dead = self.db.execute("SELECT count(*) FROM dead").fetchone()[0]
        sweeps = self.db.execute("SELECT count(*) FROM sweeps").fetchone()[0]
        return Counts(
            pending=row[0],
            retrying=row[1],
            not_in_plex=row[2],
            dead=dead,
            sweeps=sweeps,
            oldest_queued_at=row[3],
            next_due_at=row[4],
        )

    # --- the sync ledger ---------------------------------------------------------------

    def ledger_line(self, rating_key: str) -> LedgerLine | None:
        row = self.db.execute(
            "SELECT rating_key, plex_rating_key, pushed_at, digest, written FROM ledger "
            "WHERE rating_key = ?",
            (rating_key,),
        ).fetchone()
        return _line(row) if row else None

    def ledger(self) -> list[LedgerLine]:
        rows = self.db.execute(
            "SELECT rating_key, plex_rating_key, pushed_at, digest, written FROM ledger"
        ).fetchall()
        return [_line(r) for r in rows]

    # --- the circuit breaker -----------------------------------------------------------

    def breaker(self) -> Breaker:
        row = self.db.execute(
            "SELECT state, failures, opened_at, retry_at, cooldown_s, closed_at, error "
            "FROM breaker WHERE id = 1"
        ).fetchone()
        if row is None:
            return Breaker()
        return Breaker(
            state=row[0],
            failures=row[1],
            opened_at=row[2],
            retry_at=row[3],
            cooldown_s=row[4],
            closed_at=row[5],
            error=row[6],
        )

    def save_breaker(self, breaker: Breaker, *, outage: str | None = None) -> None:
        """Persist the breaker; ``outage`` "start" or "end" records an outage's edge."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO breaker VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                (
                    breaker.state,
                    breaker.failures,
                    breaker.opened_at,
                    breaker.retry_at,
                    breaker.cooldown_s,
                    breaker.closed_at,
                    breaker.error,
                ),
            )
            if outage == "start":
                db.execute(
                    "INSERT INTO outages (started_at, error) VALUES (?, ?)",
                    (breaker.opened_at, breaker.error),
                )
            elif outage == "end":
                db.execute(
                    "UPDATE outages SET ended_at = ? WHERE ended_at IS NULL",
                    (breaker.closed_at,),
                )

        self._tx(work)

    def outages(self, limit: int = 5) -> list[Outage]:
        rows = self.db.execute(
            "SELECT started_at, ended_at, error FROM outages ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [Outage(started_at=r[0], ended_at=r[1], error=r[2]) for r in rows]


_JOB_COLUMNS = (
    "rating_key, reason, queued_at, seq, attempts, next_at, state, destroyed, missing_since, "
    "last_error"
)


def _job(row: Sequence[Any]) -> Job:
    return Job(
        rating_key=row[0],
        reason=row[1],
        queued_at=row[2],
        seq=row[3],
        attempts=row[4],
        next_at=row[5],
        state=row[6],
        destroyed=bool(row[7]),
        missing_since=row[8],
        last_error=row[9],
    )


def _line(row: Sequence[Any]) -> LedgerLine:
    return LedgerLine(
        rating_key=row[0], plex_rating_key=row[1], pushed_at=row[2], digest=row[3], written=row[4]
    )


class AsyncStore:
    """The store for the event loop: every call on one thread of its own, so a commit's
    fsync never blocks the loop and calls never interleave."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-store")

    async def call(self, method: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: method(*args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self.store.close()
