"""The gap report on disk: one SQLite file (WAL) under the data directory.

Three tables: ``unmatched`` (the real-time log of match requests nothing cleared the bar
for), ``gaps`` (the current report, each gap with when it was first and last seen) and
``scans`` (one row per finished scan: when, how long, what it found; the schedule reads
the last one). A scan stages its gaps in a temporary table and replaces the report in one
transaction at its end, so a scan that dies midway leaves the previous report whole.

Every call runs on one worker thread that owns the connection, so SQLite never blocks
the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, TypeVar

from attrs import define, field

from stash2plex import Gap, GapKind

_T = TypeVar("_T")

FILE_NAME = "gaps.sqlite"
LOCK_NAME = "gaps.lock"
#: Finished scans kept for the report's history; the schedule needs only the last.
KEEP_SCANS = 50

_SCHEMA = """
CREATE TABLE IF NOT EXISTS unmatched (
    key TEXT PRIMARY KEY,          -- the file as path_key() spells it (or title:...)
    filename TEXT,
    title TEXT,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    count INTEGER NOT NULL,
    verdict TEXT NOT NULL,         -- none | below_threshold | ambiguous
    best_key TEXT,
    best_score INTEGER,
    candidates TEXT NOT NULL       -- JSON: [{rating_key, score, reason}] best first
);
CREATE TABLE IF NOT EXISTS gaps (
    kind TEXT NOT NULL,
    ident TEXT NOT NULL,
    plex_path TEXT,
    stash_path TEXT,
    scene_id TEXT,
    rating_key TEXT,
    plex_rating_key TEXT,
    title TEXT NOT NULL,
    detail TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    PRIMARY KEY (kind, ident)
);
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY,
    started_at REAL NOT NULL,
    finished_at REAL NOT NULL,
    status TEXT NOT NULL,          -- ok | failed
    error TEXT NOT NULL,
    trigger TEXT NOT NULL,         -- schedule | cli | ...
    stats TEXT NOT NULL            -- JSON
);
"""

_GAP_COLUMNS = (
    "kind, ident, plex_path, stash_path, scene_id, rating_key, plex_rating_key, title, detail"
)


@define(kw_only=True)
class UnmatchedEvent:
    """One unmatched match request, merged with others for the same file until flushed."""

    key: str
    filename: str | None
    title: str | None
    seen: float
    verdict: str
    candidates: list[dict[str, Any]]
    count: int = 1
    first: float = field()

    @first.default
    def _first(self) -> float:
        return self.seen

    def merge(self, later: UnmatchedEvent) -> None:
        self.count += later.count
        self.seen = later.seen
        self.verdict = later.verdict
        self.candidates = later.candidates
        self.title = later.title or self.title


@define(kw_only=True)
class UnmatchedEntry:
    """A row of the unmatched log."""

    key: str
    filename: str | None
    title: str | None
    first_seen: float
    last_seen: float
    count: int
    verdict: str
    candidates: list[dict[str, Any]]


@define(kw_only=True)
class StoredGap:
    """A gap of the report, with when it was first and last seen (epoch seconds)."""

    gap: Gap
    first_seen: float
    last_seen: float


@define(kw_only=True)
class ScanRow:
    started_at: float
    finished_at: float
    status: str
    error: str
    trigger: str
    stats: dict[str, Any]


def gap_row(ident: str, gap: Gap) -> tuple[Any, ...]:
    return (
        gap.kind.value,
        ident,
        gap.plex_path,
        gap.stash_path,
        gap.scene_id,
        gap.rating_key,
        gap.plex_rating_key,
        gap.title,
        gap.detail,
    )


def _gap(row: Sequence[Any]) -> StoredGap:
    return StoredGap(
        gap=Gap(
            kind=GapKind(row[0]),
            plex_path=row[2],
            stash_path=row[3],
            scene_id=row[4],
            rating_key=row[5],
            plex_rating_key=row[6],
            title=row[7],
            detail=row[8],
        ),
        first_seen=row[9],
        last_seen=row[10],
    )


class Store:
    """The plugin's SQLite file. Open with :meth:`open`, close with :meth:`close`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gaps-db")
        self._db: sqlite3.Connection | None = None

    # --- plumbing ------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("gap store is not open")
        return self._db

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit (isolation_level=None): transactions are written out where they matter
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")  # a CLI scan and the server share the file
        db.executescript(_SCHEMA)
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def open(self) -> Store:
        await self._run(self._open)
        return self

    async def close(self) -> None:
        await self._run(self._close)
        self._pool.shutdown(wait=True)

    # --- the unmatched log -------------------------------------------------------------

    def _flush_unmatched(self, events: Sequence[UnmatchedEvent]) -> None:
        rows = [
            (
                e.key,
                e.filename,
                e.title,
                e.first,
                e.seen,
                e.count,
                e.verdict,
                e.candidates[0]["rating_key"] if e.candidates else None,
                e.candidates[0]["score"] if e.candidates else None,
                json.dumps(e.candidates),
            )
            for e in events
        ]
        with self._transaction():
            self.db.executemany(
                "INSERT INTO unmatched VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET filename=excluded.filename, "
                "title=COALESCE(excluded.title, title), last_seen=excluded.last_seen, "
                "count=count + excluded.count, verdict=excluded.verdict, "
                "best_key=excluded.best_key, best_score=excluded.best_score, "
                "candidates=excluded.candidates",
                rows,
            )

    async def flush_unmatched(self, events: Sequence[UnmatchedEvent]) -> None:
        if events:
            await self._run(self._flush_unmatched, events)

    def _unmatched(self) -> list[UnmatchedEntry]:
        cursor = self.db.execute(
            "SELECT key, filename, title, first_seen, last_seen, count, verdict, candidates "
            "FROM unmatched ORDER BY last_seen DESC"
        )
        return [
            UnmatchedEntry(
                key=r[0],
                filename=r[1],
                title=r[2],
                first_seen=r[3],
                last_seen=r[4],
                count=r[5],
                verdict=r[6],
                candidates=json.loads(r[7]),
            )
            for r in cursor
        ]

    async def unmatched(self) -> list[UnmatchedEntry]:
        """The whole log, newest first (one row per file, so it stays small)."""
        return await self._run(self._unmatched)

    # --- a scan ----------------------------------------------------------------------

    def _stage_begin(self) -> None:
        self.db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS staged (kind TEXT, ident TEXT, plex_path TEXT, "
            "stash_path TEXT, scene_id TEXT, rating_key TEXT, plex_rating_key TEXT, "
            "title TEXT, detail TEXT, PRIMARY KEY (kind, ident))"
        )
        self.db.execute("DELETE FROM temp.staged")  # what a scan that died left behind

    async def stage_begin(self) -> None:
        await self._run(self._stage_begin)

    def _stage(self, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO temp.staged VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    async def stage(self, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            await self._run(self._stage, list(rows))

    def _commit_scan(self, scan: ScanRow, resolved_unmatched: Sequence[str]) -> dict[str, int]:
        now = scan.finished_at
        with self._transaction():
            db = self.db
            resolved = db.execute(
                "DELETE FROM gaps WHERE NOT EXISTS (SELECT 1 FROM temp.staged s "
                "WHERE s.kind = gaps.kind AND s.ident = gaps.ident)"
            ).rowcount
            before = db.execute("SELECT count(*) FROM gaps").fetchone()[0]
            db.execute(
                f"INSERT INTO gaps ({_GAP_COLUMNS}, first_seen, last_seen) "
                f"SELECT {_GAP_COLUMNS}, ?, ? FROM temp.staged WHERE true "
                "ON CONFLICT(kind, ident) DO UPDATE SET plex_path=excluded.plex_path, "
                "stash_path=excluded.stash_path, scene_id=excluded.scene_id, "
                "rating_key=excluded.rating_key, plex_rating_key=excluded.plex_rating_key, "
                "title=excluded.title, detail=excluded.detail, last_seen=excluded.last_seen",
                (now, now),
            )
            total = db.execute("SELECT count(*) FROM gaps").fetchone()[0]
            db.executemany(
                "DELETE FROM unmatched WHERE key = ?", [(k,) for k in resolved_unmatched]
            )
            scan.stats.update(new=total - before, resolved=resolved, total=total)
            self._end_scan(scan)
        return {"new": total - before, "resolved": resolved, "total": total}

    async def commit_scan(self, scan: ScanRow, resolved_unmatched: Sequence[str]) -> dict[str, int]:
        """Replace the report with what was staged, in one transaction: gaps no longer
        found go, new ones get ``first_seen`` = the scan's end, the others ``last_seen``."""
        return await self._run(self._commit_scan, scan, list(resolved_unmatched))

    def _record_failure(self, scan: ScanRow) -> None:
        with self._transaction():
            self._end_scan(scan)

    def _end_scan(self, scan: ScanRow) -> None:
        """Within the caller's transaction: the scan's row (the last 50 kept), staging
        emptied."""
        self.db.execute(
            "INSERT INTO scans (started_at, finished_at, status, error, trigger, stats) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                scan.started_at,
                scan.finished_at,
                scan.status,
                scan.error,
                scan.trigger,
                json.dumps(scan.stats),
            ),
        )
        self._trim_scans()
        self.db.execute("DELETE FROM temp.staged")

    async def record_failure(self, scan: ScanRow) -> None:
        """A scan that failed leaves the report alone; only its row is written."""
        await self._run(self._record_failure, scan)

    def _trim_scans(self) -> None:
        self.db.execute(
            "DELETE FROM scans WHERE id NOT IN (SELECT id FROM scans ORDER BY id DESC LIMIT ?)",
            (KEEP_SCANS,),
        )

    def _gaps_seen_at(self, first_seen: float, offset: int, limit: int) -> list[StoredGap]:
        cursor = self.db.execute(
            f"SELECT {_GAP_COLUMNS}, first_seen, last_seen FROM gaps WHERE first_seen = ? "
            "ORDER BY kind, ident LIMIT ? OFFSET ?",
            (first_seen, limit, offset),
        )
        return [_gap(r) for r in cursor]

    async def new_gaps(self, first_seen: float, offset: int, limit: int) -> list[StoredGap]:
        """A page of the gaps first seen by the scan that ended at ``first_seen``."""
        return await self._run(self._gaps_seen_at, first_seen, offset, limit)

    # --- reading the report ------------------------------------------------------------

    def _report(self, kind: str | None, offset: int, limit: int) -> tuple[list[StoredGap], int]:
        where, args = ("WHERE kind = ?", [kind]) if kind else ("", [])
        total = self.db.execute(f"SELECT count(*) FROM gaps {where}", args).fetchone()[0]
        cursor = self.db.execute(
            f"SELECT {_GAP_COLUMNS}, first_seen, last_seen FROM gaps {where} "
            "ORDER BY kind, first_seen DESC, ident LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [_gap(r) for r in cursor], total

    async def report(
        self, kind: str | None = None, offset: int = 0, limit: int = 100
    ) -> tuple[list[StoredGap], int]:
        """A page of the report (one kind, or all) and how many gaps match in all."""
        return await self._run(self._report, kind, offset, limit)

    def _counts(self) -> dict[str, int]:
        counts = {k.value: 0 for k in GapKind}
        for kind, n in self.db.execute("SELECT kind, count(*) FROM gaps GROUP BY kind"):
            counts[kind] = n
        return counts

    async def counts(self) -> dict[str, int]:
        """How many gaps of each kind (every kind listed, zero included)."""
        return await self._run(self._counts)

    def _last_scan(self, status: str | None) -> ScanRow | None:
        where, args = ("WHERE status = ?", (status,)) if status else ("", ())
        row = self.db.execute(
            "SELECT started_at, finished_at, status, error, trigger, stats FROM scans "
            f"{where} ORDER BY id DESC LIMIT 1",
            args,
        ).fetchone()
        if row is None:
            return None
        return ScanRow(
            started_at=row[0],
            finished_at=row[1],
            status=row[2],
            error=row[3],
            trigger=row[4],
            stats=json.loads(row[5]),
        )

    async def last_scan(self, status: str | None = None) -> ScanRow | None:
        """The last finished scan (of that status, when given)."""
        return await self._run(self._last_scan, status)

    def _stale_keys(self) -> list[str]:
        cursor = self.db.execute(
            "SELECT rating_key FROM gaps WHERE kind = ? AND rating_key IS NOT NULL "
            "ORDER BY rating_key",
            (GapKind.STALE.value,),
        )
        return [r[0] for r in cursor]

    async def stale_keys(self) -> list[str]:
        """Provider ratingKeys of every stale (and never pushed) scene in the report."""
        return await self._run(self._stale_keys)

    # --- helpers -----------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")


class ScanLock:
    """One scan at a time, across processes (the server and a CLI ``gaps scan``): an
    exclusive lock on a file in the data directory. The operating system drops it when
    the holder dies, even by ``kill -9``, so a crash never leaves it stuck."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> bool:
        """Take the lock if it is free; False when another scan holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            _lock(handle)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()} {time.time():.0f}\n")
        handle.flush()
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            _unlock(self._file)
            self._file.close()
            self._file = None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle: IO[str]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle: IO[str]) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
