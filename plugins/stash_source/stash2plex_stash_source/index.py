"""The local scene index: every Stash scene's matching keys in an embedded SQLite file.

A Plex scan sends hundreds of match requests at once, and Stash is itself a SQLite-backed
server that locks under load, so matching never asks Stash: it reads this index. The index
is filled from Stash in pages (:meth:`SceneIndex.build`), kept current by ``updated_at``
(:meth:`SceneIndex.refresh`) and swept for deletions (:meth:`SceneIndex.sweep`). It
survives restarts, so matching works from the first request and while Stash is down.

Two connections:

* a **writer**, used only from one dedicated worker thread so SQLite work never blocks the
  event loop and writes are strictly ordered (a cancelled build's rollback cannot overtake
  its own inserts);
* a **reader**, used synchronously in the event loop by the lookups. Each lookup is one
  indexed statement of a few rows, tens of microseconds: cheaper than a thread hop. WAL
  mode means the reader never waits for the writer and never sees a half-written build.

Strings used for matching are compared after NFC normalisation (macOS hands out NFD
names) and, where case-insensitive, ``str.casefold``. No lookup uses SQL ``LIKE``: its
``_``/``%`` wildcards are the trap Stash's own path filter falls into.

``updated_at`` caveat: Stash compares it as text in the server's local offset. The
watermark is therefore always a string Stash returned, moved back by a margin covering the
previous sync's own duration plus ``overlap_s``. A daylight-saving change that moves the
server's offset back can still hide up to an hour of edits from :meth:`refresh`; a
periodic :meth:`build` (seconds for 100k scenes) is the safety net for that and for edits
that do not touch a scene's ``updated_at`` (file moves, studio renames).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import re
import sqlite3
import sys
import threading
import time
import unicodedata
from array import array
from bisect import bisect_left
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, NamedTuple, TypeVar

import orjson
import structlog
from attrs import define

from . import queries
from .client import StashBadResponse, StashClient

__all__ = [
    "SCHEMA_VERSION",
    "IndexedFile",
    "IndexedScene",
    "SceneCard",
    "SceneIndex",
    "TailFile",
    "fold",
    "nfc",
]

log = structlog.get_logger("stash2plex.stash_source")

T = TypeVar("T")

#: Bump when the table layout changes: an index with another version is dropped and
#: rebuilt from Stash (it is a cache; nothing in it is precious).
SCHEMA_VERSION: Final = 1
#: ``index.build.progress`` is logged every this many pages.
PROGRESS_EVERY_PAGES: Final = 10
#: Related ids per "scenes showing them" query (a bulk edit may touch thousands).
_RELATED_CHUNK: Final = 500
#: search() ranks by words found in at most this many scenes; commoner words are too vague
#: to be worth ranking (it runs in the event loop).
_FTS_RANK_CAP: Final = 1000

ProgressCallback = Callable[[int, int | None], Awaitable[None] | None]

_SEP_RE = re.compile(r"[\\/]+")
_WORD_RE = re.compile(r"\w+")
_YEAR_RE = re.compile(r"^\d{4}")


def nfc(text: str) -> str:
    """NFC form of ``text`` (cheap when it already is: the common case)."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def fold(text: str) -> str:
    """The case-insensitive matching key: NFC, then Unicode case folding."""
    if text.isascii():
        return text.casefold()  # ASCII is NFC and folds to ASCII: the common case
    return nfc(nfc(text).casefold())


def _components(folded_path: str) -> list[str]:
    # Stash paths use the Stash host's separator; accept both so a Windows Stash works.
    # str.split is the cheaper way for a POSIX path (empty pieces are dropped either way).
    pieces = _SEP_RE.split(folded_path) if "\\" in folded_path else folded_path.split("/")
    return [c for c in pieces if c]


def _last_component(path: str) -> str:
    """The last of :func:`_components` (empty when there is none), without splitting the
    whole path: an exact-path lookup needs only the file name."""
    trimmed = path.rstrip("/\\")
    return trimmed[max(trimmed.rfind("/"), trimmed.rfind("\\")) + 1 :]


# --- records ----------------------------------------------------------------------------


@define(frozen=True, slots=True)
class IndexedFile:
    """One file of a scene as the index knows it. ``position`` 0 is the primary file.
    ``path`` and ``basename`` are exactly as Stash reported them."""

    path: str
    basename: str
    size: int | None
    duration: float | None
    oshash: str | None
    position: int

    @property
    def name_len(self) -> int:
        """``len()`` of the basename, as :class:`TailFile` has it."""
        return len(self.basename)


@define(frozen=True, slots=True)
class IndexedScene:
    """One scene's matching keys. ``files`` is ordered by position (primary first)."""

    id: int
    title: str | None
    date: str | None
    code: str | None
    studio: str | None
    organized: bool
    has_stash_id: bool
    files: list[IndexedFile]
    studio_id: int | None = None
    updated_at: str | None = None

    @property
    def primary(self) -> IndexedFile | None:
        return self.files[0] if self.files else None

    @property
    def primary_basename(self) -> str | None:
        """The primary file's basename (an untitled scene's fallback title)."""
        return self.files[0].basename if self.files else None


class TailFile(NamedTuple):
    """A file as the in-memory path tails know it: what ranking a suffix match needs (the
    whole record, with the path, is :class:`IndexedFile`)."""

    position: int
    duration: float | None
    #: ``len()`` of Stash's basename
    name_len: int


@define(slots=True)
class SceneCard:
    """What a scan's candidate shows and the gates test of a scene, from the in-memory
    path tails (see :meth:`SceneIndex.suffix_matches`). ``primary_basename`` is only known
    for an untitled scene (it is then the fallback title), None otherwise; ``title`` is
    None for an empty title too. No ``updated_at``: only Fix Match's thumbnails need it,
    and Fix Match reads whole scenes. Not frozen: a frozen attrs class pays an
    ``object.__setattr__`` per field, and this is built on every scan request."""

    id: int
    title: str | None
    date: str | None
    studio: str | None
    organized: bool
    has_stash_id: bool
    primary_basename: str | None


# --- SQL --------------------------------------------------------------------------------

_DDL = [
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS scenes (
        id INTEGER PRIMARY KEY,
        title TEXT,
        date TEXT,
        code TEXT,
        studio_id INTEGER,
        studio TEXT,
        organized INTEGER NOT NULL DEFAULT 0,
        has_stash_id INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT
    )""",
    # Clustered by scene, so a scene's files are one contiguous b-tree range; every
    # secondary index below carries (scene_id, position), which makes the "which scenes
    # have this key" sub-queries index-only.
    """CREATE TABLE IF NOT EXISTS files (
        scene_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        path TEXT NOT NULL,
        path_fold TEXT NOT NULL,
        basename TEXT NOT NULL,
        basename_fold TEXT NOT NULL,
        size INTEGER,
        duration REAL,
        oshash TEXT,
        PRIMARY KEY (scene_id, position)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS files_oshash ON files (oshash)",
    "CREATE INDEX IF NOT EXISTS files_basename_fold ON files (basename_fold)",
    "CREATE INDEX IF NOT EXISTS files_path_fold ON files (path_fold)",
    "CREATE INDEX IF NOT EXISTS files_path ON files (path)",
    "CREATE INDEX IF NOT EXISTS scenes_date ON scenes (date)",
    # Scenes a refresh or a rebuild found changed, not yet reported (on_scenes_changed):
    # written in the same transaction as the change, so a crash before the report only
    # delays it to the next start.
    "CREATE TABLE IF NOT EXISTS changed (scene_id INTEGER PRIMARY KEY) WITHOUT ROWID",
    # The last change seen of each performer, studio and tag a poll delivered: the poll's
    # overlap margin delivers them again, and an unchanged one is not a change.
    """CREATE TABLE IF NOT EXISTS related (
        kind TEXT NOT NULL,
        id INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, id)
    ) WITHOUT ROWID""",
]
_FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS scenes_fts USING fts5("
    "title, studio, code, tokenize = 'unicode61 remove_diacritics 2')"
)

_SELECT = """
SELECT s.id, s.title, s.date, s.code, s.studio, s.organized, s.has_stash_id, s.studio_id,
       s.updated_at, f.position, f.path, f.basename, f.size, f.duration, f.oshash
"""
_SQL_GET = (
    _SELECT
    + """
FROM scenes s LEFT JOIN files f ON f.scene_id = s.id
WHERE s.id = ?
ORDER BY f.position
"""
)
_SQL_BY_OSHASH = (
    _SELECT
    + """
FROM scenes s LEFT JOIN files f ON f.scene_id = s.id
WHERE s.id IN (SELECT scene_id FROM files WHERE oshash = ?)
ORDER BY s.id, f.position
"""
)
# The lookups by a file key also say which file matched (the trailing column), so the
# caller gets the scene with all its files plus the hit. path_fold rides along for the
# suffix comparison, already folded.
_SQL_BY_BASENAME = (
    _SELECT
    + """, f.basename_fold = ? AS hit, f.path_fold
FROM scenes s JOIN files f ON f.scene_id = s.id
WHERE s.id IN (SELECT scene_id FROM files WHERE basename_fold = ?)
ORDER BY s.id, f.position
"""
)
_SQL_BY_PATH = (
    _SELECT
    + """, f.path = ? AS hit
FROM scenes s JOIN files f ON f.scene_id = s.id
WHERE s.id IN (SELECT scene_id FROM files WHERE path = ?)
ORDER BY s.id, f.position
"""
)
# Case-sensitive lookups after NFC also go through path_fold: a path stored in NFD (a file
# created on macOS) has an NFC fold, so it is found there and then compared exactly.
_SQL_BY_PATH_FOLD = (
    _SELECT
    + """, f.path_fold = ? AS hit, f.path_fold
FROM scenes s JOIN files f ON f.scene_id = s.id
WHERE s.id IN (SELECT scene_id FROM files WHERE path_fold = ?)
ORDER BY s.id, f.position
"""
)
_SQL_BY_IDS = (
    _SELECT
    + """
FROM scenes s LEFT JOIN files f ON f.scene_id = s.id
WHERE s.id IN (SELECT value FROM json_each(?))
ORDER BY s.id, f.position
"""
)

_SQL_PAGE = (
    _SELECT
    + """
FROM scenes s LEFT JOIN files f ON f.scene_id = s.id
WHERE s.id IN (SELECT id FROM scenes WHERE id > ? ORDER BY id LIMIT ?)
ORDER BY s.id, f.position
"""
)

# The catalog's batches: scenes after an id, up to the id of the batch's last scene (a
# range scan of both primary keys, no IN list).
_SQL_CATALOG = """
SELECT s.id, s.title, s.updated_at, f.path, f.basename
FROM scenes s LEFT JOIN files f ON f.scene_id = s.id
WHERE s.id > ? AND s.id <= (
    SELECT max(id) FROM (SELECT id FROM scenes WHERE id > ? ORDER BY id LIMIT ?)
)
ORDER BY s.id, f.position
"""
#: One scene of :meth:`SceneIndex.catalog_pages`: id, title, updated_at, the primary
#: file's basename (None without files), every path by position.
CatalogRow = tuple[int, str | None, str | None, str | None, list[str]]

_INSERT_SCENE = """
INSERT INTO scenes (id, title, date, code, studio_id, studio, organized, has_stash_id, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    title = excluded.title, date = excluded.date, code = excluded.code,
    studio_id = excluded.studio_id, studio = excluded.studio, organized = excluded.organized,
    has_stash_id = excluded.has_stash_id, updated_at = excluded.updated_at
"""
_INSERT_FILE = """
INSERT INTO files (scene_id, position, path, path_fold, basename, basename_fold, size,
                   duration, oshash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

SceneRow = tuple[int, str | None, str | None, str | None, int | None, str | None, int, int, Any]
FileRow = tuple[int, int, str, str, str, str, Any, Any, str | None]


def _scene_rows(scene: dict[str, Any]) -> tuple[SceneRow, list[FileRow]]:
    """Stash's GraphQL scene (as selected by the index queries) as table rows."""
    sid = int(scene["id"])
    studio = scene.get("studio") or None
    row: SceneRow = (
        sid,
        scene.get("title") or None,
        scene.get("date") or None,
        scene.get("code") or None,
        int(studio["id"]) if studio else None,
        studio.get("name") if studio else None,
        1 if scene.get("organized") else 0,
        1 if scene.get("stash_ids") else 0,
        scene.get("updated_at"),
    )
    files: list[FileRow] = []
    for position, f in enumerate(scene.get("files") or ()):
        path = f["path"]
        basename = f.get("basename") or _SEP_RE.split(path)[-1]
        oshash = f.get("oshash")
        if oshash is None:
            # Tolerate a selection of fingerprints{type value} instead of the alias.
            oshash = next(
                (fp["value"] for fp in f.get("fingerprints") or () if fp["type"] == "oshash"),
                None,
            )
        files.append(
            (
                sid,
                position,
                path,
                fold(path),
                basename,
                fold(basename),
                f.get("size"),
                f.get("duration"),
                oshash.lower() if oshash else None,
            )
        )
    return row, files


def shift_timestamp(stamp: str, seconds: float) -> str:
    """``stamp`` moved by ``seconds``, written the way Stash wrote it (same offset, same
    ``Z``, same precision), so Stash's string comparison still orders it correctly.
    A stamp that does not parse is returned unchanged (no margin beats a wrong one)."""
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    moved = parsed + timedelta(seconds=seconds)
    frac = re.search(r"T\d\d:\d\d:\d\d\.(\d+)", stamp)
    if frac is None:
        text = moved.isoformat(timespec="seconds")
    elif len(frac.group(1)) <= 3:
        text = moved.isoformat(timespec="milliseconds")
    else:
        text = moved.isoformat(timespec="microseconds")
    if stamp[-1:] in ("Z", "z") and text.endswith("+00:00"):
        text = text[:-6] + stamp[-1]
    return text


# --- the index --------------------------------------------------------------------------


class SceneIndex:
    """The persistent scene index at ``path`` (created if missing).

    :param overlap_s: how far before the watermark each :meth:`refresh` starts, on top of
        the previous sync's duration: clock skew between Stash's writes and its clock, and
        edits committed while the previous sync was paging.
    """

    def __init__(self, path: Path, *, overlap_s: float = 300.0) -> None:
        self.path = Path(path)
        self.overlap_s = overlap_s
        #: The Stash this index is for: its URL, or a name for the sample library (whose
        #: URL changes at every start). None: the URL of the client it is built from.
        self.source: str | None = None
        #: The installation behind that URL (see :meth:`owner`), once known; recorded by
        #: a build.
        self.server_id: str | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scene-index")
        self._lock = asyncio.Lock()
        self._fts = _fts5_available()
        try:
            self._w = self._open_writer()
        except sqlite3.DatabaseError as exc:
            # A corrupt or foreign file: the index is a cache, so start over.
            log.warning("index.reset", path=str(self.path), reason=str(exc))
            self._remove_files()
            self._w = self._open_writer()
        # One read connection per thread: lookups normally run in the event loop, but a
        # caller may also use them from worker threads (bulk gap detection), and a
        # sqlite3 connection must not run statements from two threads at once.
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._r  # noqa: B018 - open the event loop's reader now, not on the first match
        #: Even while the path tails match what a reader of the database sees; odd from
        #: just before the database moves past them (a refresh's pages) or they are
        #: replaced, until they match again. suffix_matches and path_matches answer from
        #: memory alone only on an even epoch that did not change while they took the
        #: tails (_trusted_tails).
        self._epoch = 0
        self._suffix = self._read_tails()

    # --- lifecycle ----------------------------------------------------------------------

    def _open_writer(self) -> sqlite3.Connection:
        w = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            w.execute("PRAGMA journal_mode = WAL")
            w.execute("PRAGMA synchronous = NORMAL")
            w.execute("PRAGMA temp_store = MEMORY")
            w.execute("PRAGMA cache_size = -65536")
            version = _user_version(w)
            if version not in (0, SCHEMA_VERSION):
                log.info("index.schema_reset", found=version, wanted=SCHEMA_VERSION)
                _drop_all(w)
            w.execute("BEGIN IMMEDIATE")
            for ddl in _DDL:
                w.execute(ddl)
            if self._fts:
                w.execute(_FTS_DDL)
            w.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            w.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            w.execute("COMMIT")
        except BaseException:
            w.close()
            raise
        return w

    @property
    def _r(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("SceneIndex is closed")
            conn = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, cached_statements=64
            )
            conn.execute("PRAGMA query_only = ON")
            # Memory-mapped reads skip a syscall and a copy per page: the lookups' hot path.
            conn.execute("PRAGMA mmap_size = 268435456")
            conn.execute("PRAGMA cache_size = -32768")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _read_tails(self) -> _SuffixMap:
        # A connection of its own, without memory mapping: the reader's mapping would keep
        # every page of this full scan in the process's RSS, and lookups need none of them.
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA mmap_size = 0")
            return _SuffixMap.read(conn)
        finally:
            conn.close()

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{self.path}{suffix}").unlink()

    def close(self) -> None:
        """Close every connection and the writer thread (waits for a running write)."""
        self._closed = True
        self._executor.shutdown(wait=True)
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()
        self._w.close()

    def __enter__(self) -> SceneIndex:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- state --------------------------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        return dict(self._r.execute("SELECT key, value FROM meta").fetchall())

    @property
    def ready(self) -> bool:
        """True once a full build has completed (now or in an earlier run)."""
        return "built_at" in self._meta()

    def owner(self) -> tuple[str | None, str | None]:
        """(source, server id) of the Stash the index was built from: its URL (or the
        sample library's name) and its installation's identity when it was known."""
        meta = self._meta()
        return meta.get("source"), meta.get("server_id")

    def _source_of(self, client: StashClient) -> str:
        return self.source if self.source is not None else client.url

    @property
    def watermark(self) -> str | None:
        return self._meta().get("watermark")

    def stats(self) -> dict[str, Any]:
        """For ``/healthz``: sizes and ages, from the meta table (no table scan)."""
        meta = self._meta()
        built = _float(meta.get("built_at"))
        refreshed = _float(meta.get("refreshed_at"))
        latest = refreshed or built
        return {
            "scenes": int(meta.get("scenes", 0)),
            "files": int(meta.get("files", 0)),
            "built_at": built,
            "refreshed_at": refreshed,
            "swept_at": _float(meta.get("swept_at")),
            "age_s": None if latest is None else max(0.0, time.time() - latest),
            "watermark": meta.get("watermark"),
        }

    # --- build --------------------------------------------------------------------------

    async def build(
        self,
        client: StashClient,
        page_size: int = 1000,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Replace the index with every scene in Stash; returns the number of scenes.

        Keyset pages sorted by id; the next page is fetched while the current one is
        written. Everything happens in one write transaction, so readers keep seeing the
        old index until the new one is complete, and a failure leaves the old one intact.
        """
        async with self._lock:
            return await self._build_locked(client, page_size, progress)

    async def _build_locked(
        self, client: StashClient, page_size: int, progress: ProgressCallback | None
    ) -> int:
        started = time.monotonic()
        fetch: asyncio.Task[dict[str, Any]] | None = None
        done = pages = 0
        total: int | None = None
        newest: str | None = None
        try:
            after = 0
            fetch = asyncio.ensure_future(_scene_page(client, after, page_size))
            begun = False
            while fetch is not None:
                result = await fetch
                fetch = None
                if not begun:
                    # Only once Stash has answered: a rebuild that comes due while Stash
                    # is away must not empty (and restore) the whole index at every retry.
                    await self._write(self._begin_replace, self._source_of(client))
                    begun = True
                scenes = result["scenes"]
                if total is None and isinstance(result.get("count"), int):
                    total = result["count"]
                if not scenes:
                    break
                last = int(scenes[-1]["id"])
                if last <= after:
                    raise StashBadResponse(
                        f"Stash returned scenes out of id order after id {after}: cannot page"
                    )
                after = last
                if len(scenes) >= page_size:
                    # Keyset paging only needs the last id: overlap the next round trip
                    # with this page's SQLite work.
                    fetch = asyncio.ensure_future(_scene_page(client, after, page_size))
                page_newest = await self._write(self._insert_page, scenes)
                if page_newest is not None and (newest is None or page_newest > newest):
                    newest = page_newest
                done += len(scenes)
                pages += 1
                if pages % PROGRESS_EVERY_PAGES == 0:
                    elapsed = time.monotonic() - started
                    log.info(
                        "index.build.progress",
                        done=done,
                        total=total,
                        pages=pages,
                        rate=round(done / elapsed) if elapsed > 0 else None,
                    )
                if progress is not None:
                    maybe = progress(done, total)
                    if inspect.isawaitable(maybe):
                        await maybe
            duration = time.monotonic() - started
            counts = await self._write(
                self._finish_replace,
                {
                    "source": self._source_of(client),
                    "server_id": self.server_id,
                    "watermark": newest,
                    "margin_s": self.overlap_s + duration,
                },
            )
        except BaseException:
            if fetch is not None:
                fetch.cancel()
                with contextlib.suppress(BaseException):
                    await fetch
            await asyncio.shield(self._write(self._rollback))
            raise
        await self._write(self._checkpoint)
        log.info(
            "index.build.done",
            scenes=counts[0],
            files=counts[1],
            pages=pages,
            duration_s=round(time.monotonic() - started, 3),
        )
        return counts[0]

    async def load(self, scenes: Iterable[dict[str, Any]], *, source: str = "") -> int:
        """Replace the index with ``scenes`` given directly, in the shape the index queries
        return (``id``, ``title``, ``files[{path, basename, size, duration, oshash}]``...).
        For tests and tools; :meth:`build` is the way from Stash. Returns the scene count.
        """
        batch = list(scenes)
        async with self._lock:
            newest = max((s["updated_at"] for s in batch if s.get("updated_at")), default=None)
            try:
                await self._write(self._begin_replace, source)
                await self._write(self._insert_page, batch)
                counts = await self._write(
                    self._finish_replace,
                    {"source": source, "watermark": newest, "margin_s": self.overlap_s},
                )
            except BaseException:
                await asyncio.shield(self._write(self._rollback))
                raise
        return counts[0]

    def _begin_replace(self, source: str) -> None:
        w = self._w
        meta = dict(w.execute("SELECT key, value FROM meta").fetchall())
        w.execute("BEGIN IMMEDIATE")
        w.execute("DROP TABLE IF EXISTS temp.before_rebuild")
        if "built_at" in meta and meta.get("source") == source:
            # A rebuild of the same library: remember each scene's change stamp, so the
            # scenes it finds new or changed (edits a refresh missed) are reported too.
            w.execute("CREATE TEMP TABLE before_rebuild AS SELECT id, updated_at FROM main.scenes")
        else:
            # A first build, or another library: nothing in it is a change to report, and
            # what was pending names scenes of another library; the poll of related
            # objects starts over.
            w.execute("DELETE FROM changed")
            w.execute("DELETE FROM related")
            w.execute("DELETE FROM meta WHERE key LIKE 'related%'")
        w.execute("DELETE FROM files")
        w.execute("DELETE FROM scenes")
        if self._fts:
            # Dropped and filled in one statement at the end: much faster than per row.
            w.execute("DROP TABLE IF EXISTS scenes_fts")

    def _reindex_fts(self, ids: list[tuple[int]]) -> None:
        """Within the caller's transaction: these scenes' full-text rows from their
        rewritten rows (no-op without FTS5)."""
        if self._fts:
            self._w.executemany("DELETE FROM scenes_fts WHERE rowid = ?", ids)
            self._w.executemany(
                "INSERT INTO scenes_fts (rowid, title, studio, code) "
                "SELECT id, title, studio, code FROM scenes WHERE id = ?",
                ids,
            )

    def _insert_page(self, scenes: list[dict[str, Any]]) -> str | None:
        scene_rows: list[SceneRow] = []
        file_rows: list[FileRow] = []
        newest: str | None = None
        for scene in scenes:
            row, files = _scene_rows(scene)
            scene_rows.append(row)
            file_rows.extend(files)
            stamp = row[8]
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
        # Stash never repeats an id within a keyset scan, but a refresh may re-deliver a
        # scene; the upsert plus the files delete keep both paths idempotent.
        self._w.executemany(_INSERT_SCENE, scene_rows)
        self._w.executemany("DELETE FROM files WHERE scene_id = ?", [(r[0],) for r in scene_rows])
        self._w.executemany(_INSERT_FILE, file_rows)
        return newest

    def _finish_replace(self, meta: dict[str, Any]) -> tuple[int, int]:
        w = self._w
        if self._fts:
            w.execute(_FTS_DDL)
            w.execute(
                "INSERT INTO scenes_fts (rowid, title, studio, code) "
                "SELECT id, title, studio, code FROM scenes"
            )
        rebuilt = w.execute(
            "SELECT 1 FROM temp.sqlite_master WHERE name = 'before_rebuild'"
        ).fetchone()
        if rebuilt:
            w.execute(
                "INSERT OR IGNORE INTO changed (scene_id) SELECT s.id FROM main.scenes s "
                "LEFT JOIN temp.before_rebuild b ON b.id = s.id "
                "WHERE b.id IS NULL OR b.updated_at IS NOT s.updated_at"
            )
            w.execute("DROP TABLE temp.before_rebuild")
        now = time.time()
        counts = self._store_counts()
        self._set_meta({**meta, "built_at": now, "refreshed_at": now})
        # The map first (read inside this transaction), then the commit: once readers see
        # the new index as built, its tails are already in memory.
        self._tails_stale()
        self._suffix = _SuffixMap.read(w)
        w.execute("COMMIT")
        self._tails_current()
        return counts

    def _rollback(self) -> None:
        w = self._w
        if w.in_transaction:
            w.execute("ROLLBACK")
        if not self._epoch & 1:
            # Never marked stale: the tails are still those of what is committed (a build
            # abandoned before its end). Reading them again would cost a 100k library
            # seconds of CPU after every rebuild that fails while Stash is away.
            return
        # The tails may have been read from the abandoned transaction, or trail the pages
        # a failed refresh committed: read them from what is committed now.
        self._suffix = _SuffixMap.read(w)
        self._tails_current()

    def _tails_stale(self) -> None:
        """Before the database moves past the tails, or they are replaced."""
        if not self._epoch & 1:
            self._epoch += 1

    def _tails_current(self) -> None:
        """The tails (just read) match the committed database again."""
        if self._epoch & 1:
            self._epoch += 1

    def _checkpoint(self) -> None:
        # Give the WAL's pages back to the main file and the disk after a large write.
        with contextlib.suppress(sqlite3.OperationalError):
            self._w.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _store_counts(self) -> tuple[int, int]:
        scenes = self._w.execute("SELECT count(*) FROM scenes").fetchone()[0]
        files = self._w.execute("SELECT count(*) FROM files").fetchone()[0]
        self._set_meta({"scenes": scenes, "files": files})
        return scenes, files

    def _set_meta(self, values: dict[str, Any]) -> None:
        self._w.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [(k, None if v is None else str(v)) for k, v in values.items()],
        )

    # --- refresh ------------------------------------------------------------------------

    async def refresh(self, client: StashClient, page_size: int = 1000) -> int:
        """Apply every scene Stash changed since the watermark; returns how many rows
        changed. Without a watermark (never built), or when the index was built from
        another Stash URL, this is a :meth:`build`."""
        meta = self._meta()
        if meta.get("watermark") is None or meta.get("source") != self._source_of(client):
            return await self.build(client, page_size)
        async with self._lock:
            return await self._refresh_locked(client, page_size)

    async def _refresh_locked(self, client: StashClient, page_size: int) -> int:
        started = time.monotonic()
        meta = self._meta()
        watermark = meta["watermark"]
        margin = _float(meta.get("margin_s")) or self.overlap_s
        since = shift_timestamp(watermark, -margin)
        newest = watermark
        changed = seen = 0
        page = 1
        try:
            while True:
                data = await client.execute(
                    queries.SCENES_UPDATED_SINCE,
                    {"since": since, "page": page, "n": page_size},
                    "Stash2PlexScenesUpdatedSince",
                )
                scenes = _scenes_of(data)
                if scenes:
                    seen += len(scenes)
                    page_changed, page_newest = await self._write(self._upsert_page, scenes)
                    changed += page_changed
                    if page_newest is not None and page_newest > newest:
                        newest = page_newest
                if len(scenes) < page_size:
                    break
                page += 1
        except BaseException:
            # The pages applied so far stay (the next refresh starts from the old
            # watermark anyway): bring the tails up to them rather than leave them behind.
            await asyncio.shield(self._write(self._settle_tails))
            raise
        duration = time.monotonic() - started
        await self._write(
            self._finish_refresh,
            {"watermark": newest, "margin_s": self.overlap_s + duration},
        )
        # Quiet when nothing changed: a refresh runs every minute or so.
        (log.info if changed else log.debug)(
            "index.refresh.done",
            since=since,
            seen=seen,
            changed=changed,
            duration_s=round(duration, 3),
        )
        return changed

    def _upsert_page(self, scenes: list[dict[str, Any]]) -> tuple[int, str | None]:
        """Write the scenes that differ from the stored ``(id, updated_at)``: the overlap
        margin re-delivers scenes already applied, and those cost no write."""
        w = self._w
        fresh: dict[int, dict[str, Any]] = {}
        for scene in scenes:
            sid = int(scene["id"])
            prev = fresh.get(sid)
            if prev is None or (scene.get("updated_at") or "") >= (prev.get("updated_at") or ""):
                fresh[sid] = scene
        newest: str | None = None
        todo: list[dict[str, Any]] = []
        for sid, scene in fresh.items():
            stamp = scene.get("updated_at")
            if stamp is not None and (newest is None or stamp > newest):
                newest = stamp
            stored = w.execute("SELECT updated_at FROM scenes WHERE id = ?", (sid,)).fetchone()
            if stored is None or stored[0] != stamp:
                todo.append(scene)
        if not todo:
            return 0, newest
        # The tails are read again once, when the whole refresh is done; until then they
        # trail the database, and suffix_matches leaves the answers to the database.
        self._tails_stale()
        w.execute("BEGIN IMMEDIATE")
        try:
            self._insert_page(todo)
            ids = [(int(s["id"]),) for s in todo]
            w.executemany("INSERT OR IGNORE INTO changed (scene_id) VALUES (?)", ids)
            self._reindex_fts(ids)
            self._store_counts()
            w.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        return len(todo), newest

    def _finish_refresh(self, meta: dict[str, Any]) -> None:
        w = self._w
        w.execute("BEGIN IMMEDIATE")
        self._set_meta({**meta, "refreshed_at": time.time()})
        w.execute("COMMIT")
        self._settle_tails()

    def _settle_tails(self) -> None:
        """Reads the tails again if the database may have moved past them."""
        if self._epoch & 1:
            self._suffix = _SuffixMap.read(self._w)
            self._tails_current()

    # --- related objects ------------------------------------------------------------

    async def refresh_related(self, client: StashClient, page_size: int = 1000) -> int:
        """Poll performers, studios and tags changed since the last poll (by
        ``updated_at``, with the same overlap margin as scenes), and mark the scenes that
        show them as changed (see :meth:`pending_changes`): their names, photos, logos and
        parents are in those scenes' metadata, yet editing them leaves the scenes'
        ``updated_at`` alone. A studio's scenes are also rewritten in the index (its name
        is part of what matching shows). Returns how many scenes were marked.

        The first poll after a first build only records where each kind starts.
        """
        meta = self._meta()
        if "built_at" not in meta or meta.get("source") != self._source_of(client):
            return 0
        async with self._lock:
            return await self._refresh_related_locked(client, page_size)

    async def _refresh_related_locked(self, client: StashClient, page_size: int) -> int:
        started = time.monotonic()
        meta = self._meta()
        margin = _float(meta.get("related_margin_s")) or self.overlap_s
        marks = {kind: meta.get(f"related_watermark_{kind}") for kind in queries.SCENES_WITH}
        # Seeded kinds: what changed up to the newest stamp was already in the build.
        seeded: dict[str, str] = {}
        if any(mark is None for mark in marks.values()):
            data = await client.execute(queries.RELATED_NEWEST, None, "Stash2PlexRelatedNewest")
            for kind, mark in marks.items():
                if mark is None:
                    rows = _list_of(data, f"find{kind.title()}", kind)
                    seeded[kind] = marks[kind] = (rows[0].get("updated_at") if rows else "") or ""
        found = await self._related_since(client, marks, margin, page_size)
        stamps: list[tuple[str, int, str]] = []
        changed: dict[str, list[int]] = {}
        newest_marks: dict[str, Any] = {}
        for kind, records in found.items():
            stored = self._related_stamps(kind, [rid for rid, _stamp in records])
            seed = seeded.get(kind)
            changed[kind] = [
                rid
                for rid, stamp in records
                if stored.get(rid) != stamp and (seed is None or stamp > seed)
            ]
            stamps += [(kind, rid, stamp) for rid, stamp in records if stored.get(rid) != stamp]
            newest = max([marks[kind] or "", *(stamp for _rid, stamp in records)])
            newest_marks[f"related_watermark_{kind}"] = newest
        touched: set[int] = set()
        studio_scenes: list[dict[str, Any]] = []
        for kind, ids in changed.items():
            scenes_doc = queries.SCENES_WITH[kind]
            for chunk in range(0, len(ids), _RELATED_CHUNK):
                scenes = await self._scenes_with(
                    client, kind, scenes_doc, ids[chunk : chunk + _RELATED_CHUNK], page_size
                )
                touched.update(int(scene["id"]) for scene in scenes)
                if kind == "studios":
                    studio_scenes += scenes
        duration = time.monotonic() - started
        newest_marks["related_margin_s"] = self.overlap_s + duration
        await self._write(self._apply_related, stamps, touched, studio_scenes, newest_marks)
        (log.info if touched else log.debug)(
            "index.related.done",
            performers=len(changed["performers"]),
            studios=len(changed["studios"]),
            tags=len(changed["tags"]),
            scenes=len(touched),
            duration_s=round(duration, 3),
        )
        return len(touched)

    async def _related_since(
        self, client: StashClient, marks: dict[str, str | None], margin: float, page_size: int
    ) -> dict[str, list[tuple[int, str]]]:
        """(id, updated_at) per kind of every object changed since its mark less the
        margin (everything when there is no mark: nothing of that kind existed)."""
        since = {
            kind: shift_timestamp(mark, -margin) if mark else "" for kind, mark in marks.items()
        }
        found: dict[str, list[tuple[int, str]]] = {kind: [] for kind in marks}
        page = 1
        while True:
            data = await client.execute(
                queries.RELATED_UPDATED_SINCE,
                {**since, "page": page, "n": page_size},
                "Stash2PlexRelatedUpdatedSince",
            )
            more = False
            for kind in found:
                rows = _list_of(data, f"find{kind.title()}", kind)
                found[kind] += [(int(r["id"]), r.get("updated_at") or "") for r in rows]
                more = more or len(rows) >= page_size
            if not more:
                return found
            page += 1

    async def _scenes_with(
        self, client: StashClient, kind: str, document: str, ids: list[int], page_size: int
    ) -> list[dict[str, Any]]:
        """Every scene showing one of ``ids``, by id (keyset pages)."""
        out: list[dict[str, Any]] = []
        after = 0
        while True:
            data = await client.execute(
                document,
                {"ids": [str(i) for i in ids], "after": after, "n": page_size},
                f"Stash2PlexScenesWith{kind.title()}",
            )
            scenes = _scenes_of(data)
            if not scenes:
                return out
            last = int(scenes[-1]["id"])
            if last <= after:
                raise StashBadResponse(
                    f"Stash returned scenes out of id order after id {after}: cannot page"
                )
            out += scenes
            after = last
            if len(scenes) < page_size:
                return out

    def _related_stamps(self, kind: str, ids: list[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = self._r.execute(
            "SELECT id, updated_at FROM related WHERE kind = ? "
            "AND id IN (SELECT value FROM json_each(?))",
            (kind, orjson.dumps(ids).decode()),
        )
        return dict(rows.fetchall())

    def _apply_related(
        self,
        stamps: list[tuple[str, int, str]],
        touched: set[int],
        scenes: list[dict[str, Any]],
        meta: dict[str, Any],
    ) -> None:
        w = self._w
        if scenes:
            self._tails_stale()  # read again below, once committed
        w.execute("BEGIN IMMEDIATE")
        try:
            w.executemany(
                "INSERT OR REPLACE INTO related (kind, id, updated_at) VALUES (?, ?, ?)", stamps
            )
            if scenes:
                self._insert_page(scenes)
                self._reindex_fts([(int(s["id"]),) for s in scenes])
                self._store_counts()
            w.executemany(
                "INSERT OR IGNORE INTO changed (scene_id) VALUES (?)", [(i,) for i in touched]
            )
            self._set_meta(meta)
            w.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._settle_tails()

    # --- sweep --------------------------------------------------------------------------

    async def sweep(self, client: StashClient, page_size: int = 5000) -> int:
        """Delete scenes Stash no longer has (deletions never show in ``updated_at``);
        returns how many were removed.

        Only ids up to the highest id Stash listed are candidates: a scene added after the
        listing ended (and already indexed by a refresh) is not mistaken for a deleted one.
        The same rule means an empty answer deletes nothing: emptying Stash entirely shows
        up at the next :meth:`build`, never because one listing came back blank.
        """
        if self._meta().get("source") != self._source_of(client):
            log.info("index.sweep.skipped", reason="index not built from this Stash")
            return 0
        async with self._lock:
            started = time.monotonic()
            live: set[int] = set()
            after = 0
            while True:
                data = await client.execute(
                    queries.SCENE_IDS_PAGE,
                    {"after": after, "n": page_size},
                    "Stash2PlexSceneIdsPage",
                )
                ids = [int(s["id"]) for s in _scenes_of(data)]
                if not ids:
                    break
                if ids[-1] <= after:
                    raise StashBadResponse(
                        f"Stash returned scene ids out of order after id {after}: cannot page"
                    )
                live.update(ids)
                after = ids[-1]
                if len(ids) < page_size:
                    break
            removed = await self._write(self._delete_missing, live, after)
            (log.info if removed else log.debug)(
                "index.sweep.done",
                live=len(live),
                removed=removed,
                duration_s=round(time.monotonic() - started, 3),
            )
            return removed

    def _delete_missing(self, live: set[int], upto: int) -> int:
        w = self._w
        stored = w.execute("SELECT id FROM scenes WHERE id <= ?", (upto,)).fetchall()
        gone = [(sid,) for (sid,) in stored if sid not in live]
        w.execute("BEGIN IMMEDIATE")
        try:
            if gone:
                w.executemany("DELETE FROM files WHERE scene_id = ?", gone)
                w.executemany("DELETE FROM scenes WHERE id = ?", gone)
                w.executemany("DELETE FROM changed WHERE scene_id = ?", gone)
                if self._fts:
                    w.executemany("DELETE FROM scenes_fts WHERE rowid = ?", gone)
                self._store_counts()
            self._set_meta({"swept_at": time.time()})
            if gone:
                self._tails_stale()
                self._suffix = _SuffixMap.read(w)
            w.execute("COMMIT")
            if gone:
                self._tails_current()
        except BaseException:
            self._rollback()
            raise
        return len(gone)

    # --- whose index ------------------------------------------------------------------

    async def record_server_id(self, server_id: str) -> None:
        """Record the installation an index built before it was known belongs to."""
        self.server_id = server_id
        async with self._lock:
            await self._write(self._store_meta, {"server_id": server_id})

    def _store_meta(self, values: dict[str, Any]) -> None:
        self._w.execute("BEGIN IMMEDIATE")
        self._set_meta(values)
        self._w.execute("COMMIT")

    async def clear(self) -> None:
        """Empty the index (not ready until the next build): it belongs to another Stash
        and must not be served, not even while the right one is unreachable."""
        async with self._lock:
            await self._write(self._clear)
        log.info("index.cleared", path=str(self.path))

    def _clear(self) -> None:
        w = self._w
        w.execute("BEGIN IMMEDIATE")
        try:
            for table in ("files", "scenes", "changed", "related"):
                w.execute(f"DELETE FROM {table}")
            w.execute("DELETE FROM meta WHERE key != 'schema_version'")
            if self._fts:
                w.execute("DELETE FROM scenes_fts")
            self._tails_stale()
            self._suffix = _SuffixMap.read(w)
            w.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise
        self._tails_current()
        self._checkpoint()

    # --- changes to report ----------------------------------------------------------

    def pending_changes(self) -> list[int]:
        """Ids of the scenes a refresh or a rebuild found new or changed (or touched by a
        changed performer, studio or tag) and not yet reported, ascending."""
        return [r[0] for r in self._r.execute("SELECT scene_id FROM changed ORDER BY scene_id")]

    async def forget_changes(self, scene_ids: Sequence[int]) -> None:
        """Once reported: these ids are no longer pending (unless changed again since)."""
        if scene_ids:
            await self._write(self._delete_changes, [(int(i),) for i in scene_ids])

    def _delete_changes(self, rows: list[tuple[int]]) -> None:
        w = self._w
        w.execute("BEGIN IMMEDIATE")
        w.executemany("DELETE FROM changed WHERE scene_id = ?", rows)
        w.execute("COMMIT")

    # --- lookups (synchronous, read-only, in the event loop) ---------------------------

    def get(self, scene_id: int) -> IndexedScene | None:
        """The scene with this Stash id, or None."""
        scenes = _collect(self._r.execute(_SQL_GET, (scene_id,)))
        return scenes[0] if scenes else None

    def get_many(self, scene_ids: Iterable[int]) -> list[IndexedScene]:
        """The scenes among ``scene_ids`` that exist, ordered by id."""
        ids = [int(i) for i in scene_ids]
        if not ids:
            return []
        return _collect(self._r.execute(_SQL_BY_IDS, (orjson.dumps(ids).decode(),)))

    def iter_scenes(self, batch: int = 1000) -> Iterator[IndexedScene]:
        """Every scene, by id, in batches: bounded memory and no long read transaction
        (each batch is its own statement), for bulk work such as gap detection. Run it in
        a worker thread for large libraries: 100k scenes take about a second."""
        after = -1
        while True:
            rows = self._r.execute(_SQL_PAGE, (after, batch)).fetchall()
            if not rows:
                return
            scenes = _collect(rows)
            yield from scenes
            after = scenes[-1].id

    def catalog_pages(self, batch: int = 2000) -> Iterator[list[CatalogRow]]:
        """Every scene as ``(id, title, updated_at, primary basename, paths)``, by id, in
        lists of ``batch``: the scene catalog's bulk read. A connection of its own without
        memory mapping (a full scan would otherwise stay in the process's RSS), one
        statement per batch (no long read transaction). Each batch may be read from
        another worker thread; never two at once."""
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA mmap_size = 0")
            after = -1
            while True:
                rows = conn.execute(_SQL_CATALOG, (after, after, batch)).fetchall()
                if not rows:
                    return
                page: list[CatalogRow] = []
                current = None
                paths: list[str] = []
                for sid, title, updated_at, path, basename in rows:
                    if sid != current:
                        current, paths = sid, []
                        page.append((sid, title, updated_at, basename, paths))
                    if path is not None:
                        paths.append(path)
                yield page
                after = page[-1][0]
        finally:
            conn.close()

    def by_oshash(self, oshash: str) -> list[IndexedScene]:
        """Scenes with a file of this oshash (duplicates give several), ordered by id."""
        return _collect(self._r.execute(_SQL_BY_OSHASH, (oshash.strip().lower(),)))

    def by_path(self, path: str, *, case_sensitive: bool = True) -> list[IndexedScene]:
        """Scenes with a file at exactly this Stash-side path (after NFC normalisation of
        both sides; ``case_sensitive=False`` also folds case)."""
        if not case_sensitive:
            key = fold(path)
            return [s for s, _f in self._hits(_SQL_BY_PATH_FOLD, key)]
        want = nfc(path)
        # The raw-path index answers the common case (Stash path already NFC) directly.
        found = self._hits(_SQL_BY_PATH, want)
        if found:
            return [s for s, _f in found]
        # A path stored in another normal form (NFD from macOS): find it by its fold, then
        # insist on exact equality after NFC.
        out: list[IndexedScene] = []
        for scene, hit in self._hits(_SQL_BY_PATH_FOLD, fold(path)):
            if nfc(hit.path) == want and (not out or out[-1].id != scene.id):
                out.append(scene)
        return out

    def by_basename(self, name: str) -> list[tuple[IndexedScene, IndexedFile]]:
        """Every file with this basename (case-insensitive, NFC), with its scene."""
        return self._hits(_SQL_BY_BASENAME, fold(name))

    def suffix_candidates(
        self, components: Sequence[str], *, name_only_limit: int = 8
    ) -> list[tuple[IndexedScene, IndexedFile, int]]:
        """Files sharing the last component (the basename) with ``components``, each with
        the number of trailing components the two paths share (at least 1; compared
        case-folded and NFC). Sorted by that number, longest first, then by scene id.

        Every file sharing two or more components is returned; of those sharing only the
        basename, at most ``name_only_limit`` (a generic name such as ``scene.mp4`` may be
        shared by hundreds, and two already make it ambiguous). Found in an in-memory map
        of path tails, then read back from the database with the whole scene, so the
        answer is right even while the map trails the database.

        :meth:`suffix_matches` is the same answer from memory alone: a scan's hot path.
        """
        tails = self._suffix
        walked = tails.walk(components, name_only_limit)
        if walked is None:
            return []
        slots, name = walked
        found = {(tails.scene_ids[slot], tails.positions[slot]): k for slot, k in slots}
        ids = sorted({sid for sid, _pos in found})
        scenes = [self.get(ids[0])] if len(ids) == 1 else self.get_many(ids)
        out: list[tuple[IndexedScene, IndexedFile, int]] = []
        for scene in scenes:
            if scene is None:
                continue  # deleted between the map's last rebuild and now
            for file in scene.files:
                shared = found.get((scene.id, file.position))
                # The map can trail the database by a moment (a refresh in progress):
                # a file renamed since must not be reported under its old name.
                if shared is not None and fold(file.basename) == name:
                    out.append((scene, file, shared))
        out.sort(key=_suffix_order)
        return out

    def _trusted_tails(self) -> _SuffixMap | None:
        """The in-memory snapshot when it matches the database, else None."""
        epoch = self._epoch
        if epoch & 1:
            return None
        tails = self._suffix
        if self._epoch != epoch:
            return None  # replaced meanwhile: the one read may be older than the database
        return tails

    def suffix_matches(
        self, components: Sequence[str], *, name_only_limit: int = 8
    ) -> list[tuple[SceneCard, TailFile, int]] | None:
        """:meth:`suffix_candidates` answered from the in-memory snapshot alone, with a
        :class:`SceneCard` and a :class:`TailFile` instead of the whole scene and file:
        no SQL, the hot path of a scan. Same files, same counts, same order.

        None when the snapshot may differ from the database (a refresh is being applied,
        or the snapshot is being replaced): ask :meth:`suffix_candidates` then, which
        checks every file against the database.
        """
        tails = self._trusted_tails()
        if tails is None:
            return None
        walked = tails.walk(components, name_only_limit)
        if walked is None:
            return []
        flags, durations = tails.flags, tails.durations
        out: list[tuple[SceneCard, TailFile, int]] = []
        for slot, shared in walked[0]:
            if flags[slot] & _NAME_DIFFERS:
                continue  # never reported by suffix_candidates either
            duration = durations[slot]
            file = TailFile(
                tails.positions[slot],
                None if math.isnan(duration) else duration,
                tails.name_lens[slot],
            )
            out.append((tails.card(slot), file, shared))
        if len(out) > 1:
            out.sort(key=_suffix_order)
        return out

    def path_matches(self, path: str, *, case_sensitive: bool = True) -> list[SceneCard] | None:
        """:meth:`by_path` answered from the in-memory snapshot, with a :class:`SceneCard`
        for each scene: no SQL, the hot path of a scan whose paths are mapped. The same
        scenes in the same order; None when the snapshot may differ from the database
        (see :meth:`suffix_matches`)."""
        tails = self._trusted_tails()
        if tails is None:
            return None
        key = nfc(path) if case_sensitive else fold(path)
        slots = tails.path_slots_of(key, folded=not case_sensitive)
        if case_sensitive and len(slots) > 1:
            # As by_path: a path stored exactly so hides one stored in another form.
            stored_so = [slot for slot in slots if not tails.flags[slot] & _PATH_NOT_NFC]
            slots = stored_so or slots
        cards: list[SceneCard] = []
        scene_ids = tails.scene_ids
        for slot in slots:
            if not cards or cards[-1].id != scene_ids[slot]:
                cards.append(tails.card(slot))
        return cards

    def _hits(self, sql: str, key: str) -> list[tuple[IndexedScene, IndexedFile]]:
        rows = self._r.execute(sql, (key, key)).fetchall()
        return [(s, f) for s, f, _p in _collect_hits(rows, with_fold=sql is not _SQL_BY_PATH)]

    def search(
        self,
        title: str | None = None,
        year: int | None = None,
        date: str | None = None,
        studio: str | None = None,
        limit: int = 20,
    ) -> list[IndexedScene]:
        """Scenes resembling a title / date / studio, best first: the last rung of the
        match ladder, so results are candidates to score, not answers.

        Text relevance (SQLite FTS5 over title, studio and code, BM25-ranked) decides the
        pool; candidates whose date, year or studio also agree come first. Without a
        title, scenes on that date (or in that year) are listed. Always bounded by
        ``limit``.
        """
        limit = max(0, min(int(limit), 500))
        if limit == 0:
            return []
        title_words = _words(title)
        pool: list[int]
        if title_words:
            # The studio is not part of the text query: it often differs in spelling
            # between Plex and Stash, so it only promotes candidates (below).
            pool = self._text_pool(title_words, max(limit * 3, 30))
        elif date or year:
            pool = self._date_pool(date, year, max(limit * 3, 30))
        elif studio:
            pool = self._text_pool(_words(studio), max(limit * 3, 30), column="studio")
        else:
            return []
        if not pool:
            return []
        want_year = str(year) if year else (date[:4] if date and _YEAR_RE.match(date) else None)
        want_studio = fold(studio) if studio else None

        def agreement(row: tuple[int, str | None, str | None]) -> int:
            _id, scene_date, scene_studio = row
            score = 0
            if date and scene_date == date:
                score += 2
            elif want_year and scene_date and scene_date.startswith(want_year):
                score += 1
            if want_studio and scene_studio and fold(scene_studio) == want_studio:
                score += 2
            return score

        # Score the pool on three columns, then build records only for the winners.
        rows = {
            r[0]: r
            for r in self._r.execute(
                "SELECT id, date, studio FROM scenes WHERE id IN (SELECT value FROM json_each(?))",
                (orjson.dumps(pool).decode(),),
            )
        }
        ranked = [rows[i] for i in pool if i in rows]
        # sort() is stable: within one agreement level, text relevance order stays.
        ranked.sort(key=lambda r: -agreement(r))
        top = [r[0] for r in ranked[:limit]]
        by_id = {s.id: s for s in self.get_many(top)}
        return [by_id[i] for i in top if i in by_id]

    def _text_pool(self, words: list[str], n: int, column: str | None = None) -> list[int]:
        words = list(dict.fromkeys(words))[:8]
        if self._fts:
            scope = f"{column} : " if column else ""

            def expr(ws: list[str], op: str = " ") -> str:
                # Every word quoted, so FTS5 syntax in a title (AND, NOT, *, ") is just text.
                return scope + "(" + op.join('"' + w.replace('"', '""') + '"' for w in ws) + ")"

            # A word found in a large share of the library ("the", a studio name) says
            # little and would make BM25 rank tens of thousands of rows in the event loop,
            # so rank by the selective words: all of them first, then any of the rarest.
            counts = {w: self._fts_count(expr([w])) for w in words}
            rare = sorted((w for w in words if 0 < counts[w] <= _FTS_RANK_CAP), key=counts.get)
            if not rare:
                if not any(counts.values()):
                    return []
                # Only vague words: scenes with the first two of them, unranked. Bounded
                # work, and the match ladder scores such candidates low anyway.
                common = [w for w in words if counts[w]][:2]
                return self._fts_ids(expr(common), n, ranked=False)
            pool = self._fts_ids(expr(rare), n, ranked=True)
            if len(pool) < n and len(rare) > 1:
                seen = set(pool)
                extra = self._fts_ids(expr(rare[:4], " OR "), n, ranked=True)
                pool += [i for i in extra if i not in seen]
            return pool[:n]
        # No FTS5 in this SQLite: a bounded scan with instr() (no LIKE wildcards), ranked
        # by how many of the words occur.
        cols = (
            f"lower(coalesce({column}, ''))"
            if column
            else (
                "lower(coalesce(title, '') || ' ' || coalesce(studio, '') || ' ' || "
                "coalesce(code, ''))"
            )
        )
        hits = " + ".join(f"(instr({cols}, ?) > 0)" for _ in words)
        rows = self._r.execute(
            f"SELECT id, {hits} AS n FROM scenes WHERE n > 0 ORDER BY n DESC, id LIMIT ?",
            (*words, n),
        ).fetchall()
        return [r[0] for r in rows]

    def _fts_count(self, expr: str) -> int:
        """How many scenes match, counting no further than the cap (bounded cost)."""
        return self._r.execute(
            "SELECT count(*) FROM (SELECT 1 FROM scenes_fts WHERE scenes_fts MATCH ? LIMIT ?)",
            (expr, _FTS_RANK_CAP + 1),
        ).fetchone()[0]

    def _fts_ids(self, expr: str, n: int, *, ranked: bool) -> list[int]:
        sql = "SELECT rowid FROM scenes_fts WHERE scenes_fts MATCH ? "
        if ranked:
            sql += "ORDER BY bm25(scenes_fts, 10.0, 2.0, 5.0) "
        return [r[0] for r in self._r.execute(sql + "LIMIT ?", (expr, n)).fetchall()]

    def _date_pool(self, date: str | None, year: int | None, n: int) -> list[int]:
        if date:
            rows = self._r.execute(
                "SELECT id FROM scenes WHERE date = ? ORDER BY id LIMIT ?", (date, n)
            ).fetchall()
            if rows or not year:
                return [r[0] for r in rows]
        y = int(year) if year else int(date[:4]) if date and _YEAR_RE.match(date) else None
        if y is None:
            return []
        # Dates are "YYYY", "YYYY-MM" or "YYYY-MM-DD": all sort between these two strings.
        rows = self._r.execute(
            "SELECT id FROM scenes WHERE date >= ? AND date < ? LIMIT ?",
            (f"{y:04d}", f"{y + 1:04d}", n),
        ).fetchall()
        return [r[0] for r in rows]


# --- the in-memory path tails -----------------------------------------------------------

#: Trailing components kept per file for suffix matching (no library nests deeper).
SUFFIX_DEPTH: Final = 16

# One row per file with its scene, in primary key order: a sequential scan. A scene's
# primary file (its lowest position) comes first.
_SQL_TAILS = """
SELECT f.scene_id, f.position, f.path_fold, f.basename, f.duration,
       s.title, s.date, s.studio, s.organized, s.has_stash_id, f.path
FROM files f JOIN scenes s ON s.id = f.scene_id
ORDER BY f.scene_id, f.position
"""
# The order files sharing a key are listed in, as it always was: which files of a generic
# name fill the name-only quota depends on it. The covering index answers it alone.
_SQL_TAIL_ORDER = "SELECT scene_id, position FROM files ORDER BY path_fold, scene_id, position"

# _SuffixMap.flags bits, one byte per file.
_ORGANIZED: Final = 1
_HAS_STASH_ID: Final = 2
#: Stash's basename does not fold to the path's last component: the suffix step, which
#: compares the basename, never reports the file (it still counts against the quota).
_NAME_DIFFERS: Final = 4
#: The file's text is its scene's title; else the primary file's basename (the fallback
#: title).
_TITLED: Final = 8
#: The path is stored in another normal form than NFC (NFD from macOS, say).
_PATH_NOT_NFC: Final = 16

#: Slots of the files a lookup found, with the trailing components each shares.
_Walk = list[tuple[int, int]]


class _SuffixMap:
    """Every file's folded path tail, by basename and by (parent folder, basename), a hash
    of its full path (for the mapped-path step), plus what a scan's answer needs of the
    file and its scene: a snapshot of the database, rebuilt after each write (see
    ``SceneIndex._epoch`` for when it may be trusted alone).

    SQLite answers a lookup in tens of microseconds and a scan asks hundreds of times a
    second, so this lives in memory, compactly: a file is a slot number; the dictionaries
    map to a slot (the common unique key) or a list of slots; per-file fields are flat
    arrays and one UTF-8 blob (the title, or the fallback title of an untitled scene);
    dates and studio names are pooled. Folder names are interned, so they are shared.
    """

    __slots__ = (
        "by_name",
        "by_tail2",
        "date_ix",
        "dates",
        "durations",
        "flags",
        "fold_keys",
        "fold_slots",
        "haves",
        "name_lens",
        "path_keys",
        "path_slots",
        "positions",
        "scene_ids",
        "studio_ix",
        "studios",
        "text",
        "text_ends",
    )

    def __init__(self) -> None:
        self.by_name: dict[str, int | list[int]] = {}
        self.by_tail2: dict[tuple[str, str], int | list[int]] = {}
        #: per slot: the folded path components, last first (at most SUFFIX_DEPTH)
        self.haves: list[tuple[str, ...]] = []
        self.scene_ids = array("q")
        self.positions = array("I")
        self.durations = array("d")  # NaN: unknown (SQLite never stores a NaN)
        self.name_lens = array("I")  # len() of Stash's basename, as the scores need
        self.flags = bytearray()
        self.text_ends = array("Q")
        self.text = b""
        self.date_ix = array("I")  # index into dates; 0 is None
        self.dates: list[str | None] = [None]
        self.studio_ix = array("I")  # index into studios; 0 is None
        self.studios: list[str | None] = [None]
        #: hash() of each file's NFC path, and of its folded path, sorted, with their slots
        #: alongside: an exact-path lookup is a binary search, at 12 bytes a key (a dict
        #: of the paths themselves would cost some 150 bytes a file).
        self.path_keys, self.path_slots = array("q"), array("I")
        self.fold_keys, self.fold_slots = array("q"), array("I")

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> _SuffixMap:
        """The snapshot of what ``conn`` sees (its open transaction, if any)."""
        if conn.in_transaction:
            return cls._read(conn)
        conn.execute("BEGIN")  # two statements, one snapshot
        try:
            return cls._read(conn)
        finally:
            conn.execute("COMMIT")

    @classmethod
    def _read(cls, conn: sqlite3.Connection) -> _SuffixMap:
        tails = cls()
        intern = sys.intern
        nan = math.nan
        by_name, by_tail2 = tails.by_name, tails.by_tail2
        text = bytearray()
        date_pool: dict[str | None, int] = {None: 0}
        studio_pool: dict[str | None, int] = {None: 0}
        # Bound once: this loop runs once per file of the library.
        add_have = tails.haves.append
        add_sid, add_pos = tails.scene_ids.append, tails.positions.append
        add_duration, add_len = tails.durations.append, tails.name_lens.append
        add_flags, add_end = tails.flags.append, tails.text_ends.append
        add_date, add_studio = tails.date_ix.append, tails.studio_ix.append
        path_keys, fold_keys = array("q"), array("q")
        add_path_key, add_fold_key = path_keys.append, fold_keys.append
        scene, primary, slot = None, "", -1
        for row in conn.execute(_SQL_TAILS):
            sid, pos, path_fold, basename, duration, title, date, studio = row[:8]
            if sid != scene:
                scene, primary = sid, basename  # an untitled scene's fallback title
            parts = _components(path_fold)
            if not parts:
                continue
            # Basenames are mostly unique: only folder names are worth interning.
            name = parts[-1]
            have = (name, *[intern(p) for p in parts[-2 : -SUFFIX_DEPTH - 1 : -1]])
            slot += 1
            add_have(have)
            add_sid(sid)
            add_pos(pos)
            add_duration(nan if duration is None else duration)
            add_len(len(basename))
            flags = (_ORGANIZED if row[8] else 0) | (_HAS_STASH_ID if row[9] else 0)
            if fold(basename) != name:
                flags |= _NAME_DIFFERS
            if title:
                flags |= _TITLED
            path = nfc(row[10])
            if path != row[10]:
                flags |= _PATH_NOT_NFC
            add_path_key(hash(path))
            text += (title or primary).encode("utf-8", "surrogatepass")
            add_end(len(text))
            add_flags(flags)
            ix = date_pool.get(date)
            if ix is None:
                ix = date_pool[date] = len(date_pool)
            add_date(ix)
            ix = studio_pool.get(studio)
            if ix is None:
                ix = studio_pool[studio] = len(studio_pool)
            add_studio(ix)
            add_fold_key(hash(path_fold))
            _add_slot(by_name, name, slot)
            if len(have) > 1:
                _add_slot(by_tail2, (have[1], name), slot)
        tails._order_lists(conn)
        tails.path_keys, tails.path_slots = _sorted_keys(path_keys)
        tails.fold_keys, tails.fold_slots = _sorted_keys(fold_keys)
        tails.text = bytes(text)
        tails.dates = list(date_pool)
        tails.studios = list(studio_pool)
        return tails

    def _order_lists(self, conn: sqlite3.Connection) -> None:
        """Lists files sharing a key by folded path, then scene id and position."""
        lists = [v for d in (self.by_name, self.by_tail2) for v in d.values() if type(v) is list]
        if not lists:
            return
        # Each slot's rank in that order, in one flat array: keeping every path for a
        # sort would scatter them among the map's objects, and the heap would stay that
        # size after they are gone.
        sids, positions = self.scene_ids, self.positions
        n = len(sids)
        rank = array("I", bytes(4 * n))
        for i, (sid, pos) in enumerate(conn.execute(_SQL_TAIL_ORDER)):
            # Slots are in (scene id, position) order; a file without a path has none.
            slot = bisect_left(sids, sid)
            while slot < n and sids[slot] == sid:
                if positions[slot] == pos:
                    rank[slot] = i
                    break
                slot += 1
        for slots in lists:
            slots.sort(key=rank.__getitem__)

    def walk(self, components: Sequence[str], name_only_limit: int) -> tuple[_Walk, str] | None:
        """The files sharing trailing components with ``components`` (see
        :meth:`SceneIndex.suffix_candidates` for the rules), as (slot, shared) pairs, plus
        the folded basename asked for; None when there are none."""
        # Only the trailing components can be compared: fold at most SUFFIX_DEPTH of them.
        want: list[str] = []
        for c in reversed(components):
            if c and c not in ("/", "\\"):
                want.append(fold(c))
                if len(want) == SUFFIX_DEPTH:
                    break
        if not want:
            return None
        name = want[0]
        named = self.by_name.get(name)
        if named is None:
            return None  # no file has this basename: nothing shares more either
        found: _Walk = []
        if len(want) > 1:
            slots = self.by_tail2.get((want[1], name))
            if slots is not None:
                haves, depth = self.haves, len(want)
                for slot in (slots,) if type(slots) is int else slots:
                    have = haves[slot]
                    most = min(len(have), depth)
                    shared = 2
                    while shared < most and have[shared] == want[shared]:
                        shared += 1
                    found.append((slot, shared))
        if type(named) is int:
            # The common case: one file has this name (often found above already).
            if name_only_limit > 0:
                for slot, _k in found:
                    if slot == named:
                        break
                else:
                    found.append((named, 1))
            return (found, name) if found else None
        seen = {slot for slot, _k in found}
        name_only = 0
        for slot in named:
            if slot in seen:
                continue
            if name_only >= name_only_limit:
                break
            found.append((slot, 1))
            name_only += 1
        return (found, name) if found else None

    def path_slots_of(self, path: str, *, folded: bool) -> list[int]:
        """The slots of the files at exactly ``path`` (an NFC path, or a folded one with
        ``folded``), in slot order (scene id, then position)."""
        keys, slots = (
            (self.fold_keys, self.fold_slots) if folded else (self.path_keys, self.path_slots)
        )
        last = _last_component(path)
        if not last:
            return []
        key = hash(path)
        i = bisect_left(keys, key)
        found = []
        # Two paths may share a 64-bit hash: the file's (folded) basename must agree too.
        name, haves = fold(last), self.haves
        # Equal keys keep their slots in slot order (_sorted_keys): no sort needed here.
        while i < len(keys) and keys[i] == key:
            slot = slots[i]
            if haves[slot][0] == name:
                found.append(slot)
            i += 1
        return found

    def card(self, slot: int) -> SceneCard:
        """The scene card of the file in ``slot``."""
        flags = self.flags[slot]
        start = self.text_ends[slot - 1] if slot else 0
        shown = self.text[start : self.text_ends[slot]].decode("utf-8", "surrogatepass")
        return SceneCard(
            self.scene_ids[slot],
            shown if flags & _TITLED else None,
            self.dates[self.date_ix[slot]],
            self.studios[self.studio_ix[slot]],
            bool(flags & _ORGANIZED),
            bool(flags & _HAS_STASH_ID),
            None if flags & _TITLED else shown,
        )


def _suffix_order(row: tuple[Any, Any, int]) -> tuple[int, int, int]:
    """The order of suffix rows, whole or from the snapshot: most components shared
    first, then by scene id and file position."""
    return -row[2], row[0].id, row[1].position


def _sorted_keys(keys: array[int]) -> tuple[array[int], array[int]]:
    """``keys`` (one per slot) sorted, and the slot of each; equal keys keep their slots
    in ascending order (the sort is stable)."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return array("q", [keys[i] for i in order]), array("I", order)


def _add_slot(slots: dict[Any, int | list[int]], key: Any, slot: int) -> None:
    # A bare slot for a key only one file has (most of them): a list costs more.
    current = slots.get(key)
    if current is None:
        slots[key] = slot
    elif type(current) is int:
        slots[key] = [current, slot]
    else:
        current.append(slot)


# --- helpers ----------------------------------------------------------------------------


async def _scene_page(client: StashClient, after: int, n: int) -> dict[str, Any]:
    data = await client.execute(queries.SCENE_PAGE, {"after": after, "n": n}, "Stash2PlexScenePage")
    result = data.get("findScenes")
    if not isinstance(result, dict) or not isinstance(result.get("scenes"), list):
        raise StashBadResponse("Stash answered findScenes without a scenes list")
    return result


def _list_of(data: dict[str, Any], field: str, key: str) -> list[dict[str, Any]]:
    result = data.get(field)
    if not isinstance(result, dict) or not isinstance(result.get(key), list):
        raise StashBadResponse(f"Stash answered {field} without a {key} list")
    return result[key]


def _scenes_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    result = data.get("findScenes")
    if not isinstance(result, dict) or not isinstance(result.get("scenes"), list):
        raise StashBadResponse("Stash answered findScenes without a scenes list")
    return result["scenes"]


def _collect(rows: Iterable[tuple[Any, ...]]) -> list[IndexedScene]:
    """Rows of ``_SELECT`` (ordered by scene) as scenes with their files."""
    out: list[IndexedScene] = []
    current = -1
    files: list[IndexedFile] = []
    for r in rows:
        if r[0] != current:
            current = r[0]
            files = []
            out.append(
                IndexedScene(
                    r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6]), files, r[7], r[8]
                )
            )
        if r[9] is not None:
            files.append(IndexedFile(r[10], r[11], r[12], r[13], r[14], r[9]))
    return out


def _collect_hits(
    rows: Iterable[tuple[Any, ...]], *, with_fold: bool
) -> list[tuple[IndexedScene, IndexedFile, str]]:
    """Like :func:`_collect`, plus each file that matched (``hit`` column) and, when
    selected, its folded path."""
    out: list[tuple[IndexedScene, IndexedFile, str]] = []
    current = -1
    scene: IndexedScene | None = None
    files: list[IndexedFile] = []
    for r in rows:
        if r[0] != current:
            current = r[0]
            files = []
            scene = IndexedScene(
                r[0], r[1], r[2], r[3], r[4], bool(r[5]), bool(r[6]), files, r[7], r[8]
            )
        f = IndexedFile(r[10], r[11], r[12], r[13], r[14], r[9])
        files.append(f)
        if r[15]:
            assert scene is not None
            out.append((scene, f, r[16] if with_fold else ""))
    return out


def _words(text: str | None) -> list[str]:
    if not text:
        return []
    # Bounded: a pathological title must not become a thousand-term query.
    return _WORD_RE.findall(fold(text))[:24]


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _user_version(conn: sqlite3.Connection) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        # A brand-new file, or tables from before user_version was set.
        has_meta = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if has_meta:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            return int(row[0]) if row else -1
    return int(version)


def _drop_all(conn: sqlite3.Connection) -> None:
    names = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND substr(name, 1, 7) != 'sqlite_'"
    ).fetchall()
    # Dropping the FTS table drops its shadow tables; dropping those first would fail.
    names = [(k, n) for k, n in names if not n.startswith("scenes_fts_")]
    conn.execute("BEGIN IMMEDIATE")
    for kind, name in names:
        conn.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
    conn.execute("COMMIT")


def _fts5_available() -> bool:
    try:
        probe = sqlite3.connect(":memory:")
        try:
            opts = {r[0] for r in probe.execute("PRAGMA compile_options")}
            if "ENABLE_FTS5" in opts:
                return True
            probe.execute("CREATE VIRTUAL TABLE t USING fts5(x)")  # built in by default
            return True
        finally:
            probe.close()
    except sqlite3.Error:
        return False
