"""The running stash_source: client, scene index, refresh loop, metadata cache.

One :class:`StashSource` per app, created by the plugin's cleanup context and stored under
:data:`SOURCE`. Matching reads only the index; Stash is asked for the index refresh and
for one ``findScene`` per metadata request not already cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
from aiohttp import web

from stash2plex import (
    CONFIG,
    HOOKS,
    Candidate,
    MatchRequest,
    Metadata,
    PathDirection,
    Unavailable,
    cli_command,
    get_logger,
    public_base_url,
    signed_url,
)

from . import queries
from .catalog import StashCatalog
from .client import StashClient, StashError
from .config import StashConfig
from .index import IndexedScene, SceneIndex
from .matcher import (
    RATING_KEY_PREFIX,
    AnyScene,
    Hit,
    Matcher,
    scene_id_from_key,
    split_path,
)
from .metadata import SceneCache, epoch, stem, to_metadata
from .oshash import oshash_file

log = get_logger("stash2plex.stash_source")
SECTION = "stash"
INDEX_FILE = "stash-index.sqlite3"
#: The sample library's index: apart from a real one, so pointing the same data directory
#: at a real Stash never serves the sample's scenes (and going back costs no rebuild).
SAMPLE_INDEX_FILE = "stash-sample-index.sqlite3"
#: Trailing path components tried under each media root (no library nests deeper).
MAX_LOCAL_DEPTH = 16
RENDERED_MAX = 5000
#: At most this long at start for Stash to say which installation it is.
IDENTIFY_AT_START_S = 2.0


class StashSource:
    def __init__(
        self,
        app: web.Application,
        config: StashConfig,
        client: StashClient,
        index: SceneIndex,
        *,
        sample: bool,
    ) -> None:
        self.app = app
        # Fixed once the app runs; looked up here, not on every match request.
        self.provider = app[CONFIG].provider
        self.hooks = app[HOOKS]
        self.own_guid = f"{self.provider.identifier}://"
        self.config = config
        self.client = client
        self.index = index
        self.sample = sample
        # The sample server's URL changes at every start: it is named by its size instead.
        index.source = f"sample library of {config.sample_scenes} scenes" if sample else client.url
        self.matcher = Matcher(
            index,
            require_organized=config.require_organized,
            require_stash_id=config.require_stash_id,
        )
        self.cache = SceneCache(self._fetch_scene, ttl_s=config.metadata_ttl_s)
        self.ignore_tags = frozenset(t.casefold() for t in config.ignore_tags)
        self.sync_error: str | None = None
        #: scene id -> (the cached scene dict it was made from, base URL, Metadata)
        self._rendered: dict[int, tuple[dict[str, Any], str, Metadata]] = {}
        self._task: asyncio.Task[None] | None = None
        #: Upkeep rounds finished (build or refresh, related objects, report), whatever
        #: their outcome: lets a caller wait until the background work has settled.
        self.rounds = 0
        self.catalog = StashCatalog(index, ready=lambda: self.index.ready)

    # --- matching -----------------------------------------------------------------------

    async def resolve(self, request: MatchRequest) -> list[Candidate]:
        manual = request.is_manual
        filename = request.filename
        # Only our own guids are proof: another provider's keys may look like ours and
        # name scenes of another Stash. A "stash-<id>" title is proof only when the user
        # typed it (Fix Match); a scan's title comes from the file name.
        guid = request.guid
        if guid is not None and not guid.startswith(self.own_guid):
            guid = None
        # Steps without their evidence are skipped: they would find nothing.
        hits: list[Hit] = (
            self.matcher.by_hint(guid, request.title if manual else None) if guid or manual else []
        )
        parts = split_path(filename or "")
        oshash, size = request.oshash, None
        if not oshash and self.config.media_roots and filename:
            oshash, size = await self._hash_local(filename)
        if oshash:
            hits += self.matcher.by_oshash(oshash, parts[-1] if parts else None, size)
        if filename:
            mapped = await self.hooks.map_path(filename, PathDirection.PLEX_TO_STASH)
            exact: list[Hit] = []
            if mapped:
                exact = self.matcher.by_path(mapped, cards=not manual)
                hits += exact
            # The user's own rule found exactly one scene at exactly this path: the
            # strongest path evidence. A look-alike elsewhere sharing a longer suffix
            # (the rule renamed a folder) must not make it ambiguous, so no suffix step.
            if not (len(exact) == 1 and exact[0].reason == "path"):
                duration_s = request.duration / 1000 if request.duration else None
                # A scan's answer needs no more than the in-memory scene cards.
                hits += self.matcher.by_suffix(parts, duration_s, cards=not manual)
        # Title similarity scores 70 at most: Fix Match material. A scan asks it only when
        # nothing else was found (a threshold lowered that far may then take it).
        if manual or not hits:
            hits += self.matcher.by_title(request.title, request.year, request.date)
        # Every hit as a candidate: the host merges them (one per scene, its best score),
        # ranks them and applies the threshold and margin, once for every source.
        return [
            Candidate(
                metadata=self._candidate_metadata(h.scene, thumb=manual),
                score=h.score,
                reason=h.reason,
            )
            for h in self.matcher.gate(hits)
        ]

    def _candidate_metadata(self, scene: AnyScene, *, thumb: bool) -> Metadata:
        """What Fix Match shows: from the index alone, no Stash request. A scan's automatic
        match needs no thumbnail (Plex fetches the full item next), so none is signed."""
        title = scene.title
        if not title:
            name = scene.primary_basename
            if name is not None:
                title = stem(name)
        date = scene.date or ""
        url = None
        if thumb:
            # Fix Match: every step answers whole scenes then (by_suffix without cards).
            assert isinstance(scene, IndexedScene)
            # The same change stamp Stash puts on the screenshot URL (its updated_at).
            version = epoch(scene.updated_at) or 0
            url = signed_url(self.app, f"/images/scene/{scene.id}/screenshot/{version}")
        return Metadata(
            rating_key=f"stash-{scene.id}",
            title=title or f"Scene {scene.id}",
            year=int(date[:4]) if date[:4].isdigit() else None,
            originally_available_at=date if len(date) == 10 else None,
            studio=scene.studio,
            thumb=url,
        )

    async def _hash_local(self, filename: str) -> tuple[str | None, int | None]:
        """oshash of the file Plex names, when it is readable under a media root."""
        # Probing paths and reading the file touch the media mount (often NFS or SMB):
        # all of it in a worker thread, never in the event loop.
        return await asyncio.to_thread(self._hash_local_sync, filename)

    def _hash_local_sync(self, filename: str) -> tuple[str | None, int | None]:
        for path in self._local_candidates(filename):
            try:
                size = path.stat().st_size
                return oshash_file(path), size
            except (OSError, ValueError):
                continue
        return None, None

    def _local_candidates(self, filename: str) -> list[Path]:
        out = []
        # Only the trailing components can lie under a root; the cap bounds the probing a
        # single request can cause (a name with thousands of components).
        parts = split_path(filename)[-MAX_LOCAL_DEPTH:]
        for root in self.config.media_roots:
            base = Path(root).resolve()
            # Relative names sit under the root; absolute ones only count inside it, so a
            # match request can never make us read an arbitrary file.
            for k in range(len(parts), 0, -1):
                try:
                    candidate = (base.joinpath(*parts[-k:])).resolve()
                    found = candidate.is_relative_to(base) and candidate.is_file()
                except (OSError, ValueError):
                    # A name no filesystem takes (NUL byte, a component too long): not
                    # here, and no reason to lose the request's other evidence.
                    continue
                if found:
                    out.append(candidate)
                    break
        return out

    # --- metadata -----------------------------------------------------------------------

    async def metadata(self, rating_key: str) -> Metadata | None:
        scene_id = scene_id_from_key(rating_key)
        if scene_id is None:
            return None
        try:
            scene = await self.cache.get(scene_id)
        except StashError as exc:
            raise Unavailable(
                f"Stash is unavailable and scene {scene_id} is not cached: {exc}"
            ) from None
        if scene is None:
            return None
        # Rendering signs every image URL: do it once per fetched scene and base URL.
        base = public_base_url(self.app)
        done = self._rendered.get(scene_id)
        if done is not None and done[0] is scene and done[1] == base:
            return done[2]
        item = to_metadata(
            scene,
            title_template=self.config.title_template,
            content_rating=self.config.content_rating,
            ignore_tags=self.ignore_tags,
            image_url=lambda path: signed_url(self.app, path),
            poster_kind="poster" if self.config.poster == "portrait" else "screenshot",
        )
        self._rendered[scene_id] = (scene, base, item)
        if len(self._rendered) > RENDERED_MAX:
            self._rendered.pop(next(iter(self._rendered)))
        return item

    async def _fetch_scene(self, scene_id: int) -> dict[str, Any] | None:
        data = await self.client.execute(queries.FIND_SCENE, {"id": str(scene_id)})
        return data.get("findScene")

    # --- index upkeep -------------------------------------------------------------------

    async def start(self) -> None:
        """Drop an index built from another Stash (before anything is served from it),
        then keep the index current in the background."""
        source, _server = self.index.owner()
        if self.index.ready and source != self.index.source:
            log.warning(
                "index.foreign", built_from=source, configured=self.index.source, action="rebuild"
            )
            await self.index.clear()
        elif self.index.ready:
            # Same URL: ask which installation answers before serving, briefly. A Stash
            # that is down or slow must not hold up the start (the URL then decides; the
            # upkeep asks again).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._check_server(), min(IDENTIFY_AT_START_S, self.config.timeout_s)
                )
        self._task = asyncio.get_running_loop().create_task(self._upkeep(), name="stash-index")

    async def _check_server(self) -> None:
        """Ask which installation answers at the URL; an index built from another one is
        dropped (503 until rebuilt). Unreachable: the URL alone says which Stash it is."""
        try:
            data = await self.client.execute(queries.SERVER, None, "Stash2PlexServer")
        except StashError:
            return
        status = data.get("systemStatus") or {}
        server_id = f"{status.get('databasePath') or ''} {status.get('configPath') or ''}"
        self.index.server_id = server_id
        if not self.index.ready:
            return
        _source, recorded = self.index.owner()
        if recorded is None:
            # Built before the installation was known, from this URL: take it as this one.
            await self.index.record_server_id(server_id)
        elif recorded != server_id:
            log.warning(
                "index.foreign", built_from=recorded, configured=server_id, action="rebuild"
            )
            await self.index.clear()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.cache.close()

    async def _upkeep(self) -> None:
        """Build once if needed, then refresh on a timer and sweep deletions less often."""
        last_sweep = last_build = time.monotonic()
        while True:
            try:
                await self._check_server()
                stale = time.monotonic() - last_build >= self.config.rebuild_every_s
                if not self.index.ready or stale:
                    log.info("index.build.start", stash=self.client.url, rebuild=stale)
                    await self.index.build(self.client)
                    # A rebuild also catches what no scene's updated_at shows (a studio
                    # renamed, a file moved): nothing cached is trusted after it.
                    self.cache.expire_all()
                    last_sweep = last_build = time.monotonic()
                else:
                    await self.index.refresh(self.client)
                    if time.monotonic() - last_sweep >= self.config.sweep_every_s:
                        removed = await self.index.sweep(self.client)
                        last_sweep = time.monotonic()
                        if removed:
                            # A deleted scene must not be served from the cache until
                            # its TTL: the refetch answers "gone" (or stale if Stash fails).
                            self.cache.expire_all()
                            log.info("index.swept", removed=removed)
                self.sync_error = None
                # Renamed performers, studios, tags: their scenes' metadata changed too.
                await self.index.refresh_related(self.client)
            except asyncio.CancelledError:
                raise
            except StashError as exc:
                self.sync_error = str(exc)
                log.warning("index.sync_failed", error=str(exc), stash=self.client.url)
            except Exception as exc:
                self.sync_error = f"{type(exc).__name__}: {exc}"
                log.exception("index.sync_crashed")
            # Also after a failed refresh: the pages it applied before failing stay.
            try:
                await self.report_changes()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("index.report_failed")
            self.rounds += 1
            if self.index.ready and cli_command(self.app) is not None:
                # A CLI command needs the index built and fresh once; the periodic
                # refresh and sweep belong to the serving process (one writer, not two).
                return
            # A failed first build retries sooner than the steady refresh.
            delay = (
                self.config.index_refresh_s
                if self.index.ready
                else min(30.0, self.config.index_refresh_s)
            )
            await asyncio.sleep(delay)

    async def report_changes(self) -> list[int]:
        """Tell every plugin which scenes changed (``on_scenes_changed``), once their
        cached metadata is dropped, so ``build_metadata`` already answers with the new
        values. The index keeps them pending until this is done: a crash before the report
        only delays it."""
        ids = self.index.pending_changes()
        if not ids:
            return ids
        self.cache.expire(ids)
        log.info("index.scenes_changed", scenes=len(ids))
        await self.hooks.on_scenes_changed([f"{RATING_KEY_PREFIX}{i}" for i in ids])
        await self.index.forget_changes(ids)
        return ids

    def health(self) -> dict[str, Any]:
        client = self.client
        stats = self.index.stats()
        return {
            "stash_url": client.url,
            "sample_library": self.sample,
            "stash_reachable": client.last_ok_at is not None
            and not client.circuit_open
            and client.consecutive_failures == 0,
            "stash_last_ok_at": client.last_ok_at,
            # Auth, query and "locked" errors reset the failure count (Stash did answer),
            # yet nothing works: while the index cannot sync, say why.
            "stash_error": client.last_error
            if client.consecutive_failures or self.sync_error
            else None,
            "stash_requests": client.requests,
            "index_scenes": stats["scenes"],
            "index_files": stats["files"],
            "index_age_s": None if stats["age_s"] is None else round(stats["age_s"], 1),
            "index_sync_error": self.sync_error,
            "metadata_stale_served": self.cache.stale_served,
        }


async def lifetime(app: web.Application) -> AsyncIterator[None]:
    """Open the index, connect (or start the sample library), keep the index fresh."""
    config: StashConfig = app[CONFIG].section(SECTION)
    sample_server = None
    url = config.url
    if not url:
        from .fake import FakeStash, generate_library

        sample_server = FakeStash(generate_library(scenes=config.sample_scenes, seed=7))
        url = await sample_server.start()
        log.warning(
            "stash.sample_library",
            message="no [stash] url configured: serving the built-in sample library",
            scenes=config.sample_scenes,
            url=url,
        )
    session = aiohttp.ClientSession()
    index = SceneIndex(
        app[CONFIG].data_dir / (SAMPLE_INDEX_FILE if sample_server is not None else INDEX_FILE)
    )
    client = StashClient(
        url,
        config.api_key,
        session=session,
        timeout_s=config.timeout_s,
        retries=config.retries,
        breaker_cooldown_s=config.breaker_cooldown_s,
    )
    source = StashSource(app, config, client, index, sample=sample_server is not None)
    app[RUNTIME_SOURCE].source = source
    try:
        await source.start()
        yield
    finally:
        await source.stop()
        await session.close()
        index.close()
        if sample_server is not None:
            await sample_server.close()


@attrs.define
class SourceHolder:
    """Filled at start-up (the app is frozen by then, so a mutable holder set while
    building); None until the index is opened."""

    source: StashSource | None = None


RUNTIME_SOURCE = web.AppKey("stash2plex_stash_source.runtime", SourceHolder)


def get_source(app: web.Application) -> StashSource | None:
    holder = app.get(RUNTIME_SOURCE)
    # None: the plugin's cleanup context never ran (a CLI app, a test's app)
    return holder.source if holder is not None else None
