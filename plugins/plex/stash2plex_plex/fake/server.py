"""A fake Plex Media Server over real HTTP on loopback: XML as PMS sends it.

It answers the requests python-plexapi really sends (and the raw listings the plex
plugin sends through plexapi's transport):

==========================================  ===================================================
``GET /``                                   server root (``PlexServer()``'s only request)
``GET /identity``                           liveness; no token needed, as on PMS
``GET /library``, ``GET /library/sections`` library root, sections with ``Location``
``GET /library/sections/{s}/all``           paged (``X-Plex-Container-Start/Size`` from headers
                                            or query), partial items with ``Media/Part/@file``,
                                            always ``size``/``totalSize``/``offset``
``GET /library/metadata/{ids}``             full items (comma-separated keys), all tags,
                                            ``Field`` locks
``PUT /library/sections/{s}/all``           the edit: ``<f>.value``, ``<f>.locked``, indexed
                                            ``<kind>[i].tag.tag`` (replaces the list) and
                                            ``<kind>[].tag.tag-`` (removes; values quoted twice)
``POST /library/metadata/{id}/posters``     raw bytes (or ``?url=``); ``/arts`` the same
``GET /library/metadata/{id}/posters``      ``Photo`` list, the newest selected; ``/arts`` too
``PUT /library/metadata/{id}/refresh``      recorded
``GET /library/sections/{s}/refresh``       partial scan, recorded
==========================================  ===================================================

Every write is recorded in :attr:`FakePMS.writes`, every request in
:attr:`FakePMS.requests`. Faults on demand: set :attr:`FakePMS.fault` to one of
:data:`FAULTS` (``fault_count`` limits it to the next N requests).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web
from attrs import define, field

from .model import (
    EDITABLE_FIELDS,
    LIST_TAGS,
    LOCKABLE,
    TAG_ELEMENTS,
    Artwork,
    FakeItem,
    FakeSection,
)

__all__ = ["FAULTS", "FakePMS", "Seen", "Write"]

#: Values :attr:`FakePMS.fault` accepts. "503": a busy or starting server (a storm, with
#: ``fault_count=None``); "429": rate limited, with ``Retry-After``; "slow": every answer
#: after ``slow_seconds``; "down": the connection is dropped without an answer.
FAULTS = ("503", "500", "401", "403", "429", "slow", "down")

_XML = "text/xml"
_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
MACHINE_ID = "5f0c1e2d3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9"
VERSION = "1.42.2.10156-f737b826c"


@define(kw_only=True)
class Seen:
    """One request as the fake saw it (the headers that matter for paging and identity)."""

    method: str
    path: str
    query: str
    client_identifier: str | None
    product: str | None
    container_start: str | None
    container_size: str | None


@define(kw_only=True)
class Write:
    """One write: the edit PUT's parameters (as sent, decoded once), an upload's digest."""

    method: str
    path: str
    params: list[tuple[str, str]] = field(factory=list)
    rating_keys: tuple[str, ...] = ()
    sha256: str = ""
    size: int = 0


def _attrs(pairs: Iterable[tuple[str, Any]]) -> str:
    return "".join(f" {k}={quoteattr(str(v))}" for k, v in pairs if v is not None and v != "")


class FakePMS:
    """A Plex Media Server stand-in with an in-memory library you seed.

    ::

        async with FakePMS(token="t0ken") as pms:
            pms.add_section("1", "Stash", locations=["/data/stash"])
            pms.add_item("1", "Scene One", files=["/data/stash/a.mp4"])
            ...  # PlexServer(pms.url, "t0ken"), or [plex] url = pms.url

    ``indexed_tags_replace`` picks how an indexed tag list is applied: True (PMS's
    behaviour as documented) replaces the item's list; False only adds, so a client that
    relies on ``-=`` removals is still shown to leave the list exact.
    """

    def __init__(
        self,
        *,
        token: str | None = "fake-plex-token",
        host: str = "127.0.0.1",
        friendly_name: str = "fake-pms",
        indexed_tags_replace: bool = True,
    ) -> None:
        self.token = token
        self.host = host
        self.friendly_name = friendly_name
        self.indexed_tags_replace = indexed_tags_replace
        self.sections: dict[str, FakeSection] = {}
        self.items: dict[str, FakeItem] = {}
        #: each section's items in listing order
        self._order: dict[str, list[str]] = {}
        self._next_key = 101
        self.requests: list[Seen] = []
        self.writes: list[Write] = []
        self.scans: list[tuple[str, str]] = []  # (section, path) partial scans asked for
        #: called with (section key, start) after each listing page is rendered: a test
        #: can change the library between two pages
        self.after_listing: Callable[[str, int], None] | None = None
        self._fault: str | None = None
        self.fault_count: int | None = None
        self.slow_seconds = 30.0
        self.retry_after_s = 7
        self.url = ""
        self._runner: web.AppRunner | None = None

    # --- seeding ------------------------------------------------------------------------

    def add_section(
        self,
        key: str,
        title: str,
        *,
        type: str = "movie",
        agent: str = "tv.plex.agents.none",
        locations: Sequence[str] = (),
    ) -> FakeSection:
        section = FakeSection(
            key=str(key), title=title, type=type, agent=agent, locations=list(locations)
        )
        section.uuid = hashlib.md5(f"{key}{title}".encode()).hexdigest()
        self.sections[section.key] = section
        self._order.setdefault(section.key, [])
        return section

    def add_item(
        self,
        section_key: str,
        title: str,
        *,
        files: Sequence[str] = (),
        media: Sequence[Sequence[str]] | None = None,
        guid: str = "",
        rating_key: str | None = None,
        tags: dict[str, list[str]] | None = None,
        fields: dict[str, str] | None = None,
        external_guids: Sequence[str] = (),
        added_at: int | None = None,
        updated_at: int | None = None,
        position: int | None = None,
    ) -> FakeItem:
        """One item; ``files`` are the parts of one Media (a stacked item when several),
        ``media`` several Media (versions). ``guid`` "" is a local (Personal Media) item.
        ``position``: where it goes in the listing order (default: last)."""
        if section_key not in self.sections:
            raise KeyError(f"no section {section_key!r}; add_section() first")
        key = rating_key or str(self._next_key)
        self._next_key = max(self._next_key, int(key) if key.isdigit() else 0) + 1
        now = int(time.time())
        item = FakeItem(
            rating_key=key,
            section_key=section_key,
            title=title,
            guid=guid,
            media=[list(m) for m in media] if media is not None else [list(files)],
            tags={k: list(v) for k, v in (tags or {}).items()},
            fields=dict(fields or {}),
            external_guids=list(external_guids),
            added_at=added_at if added_at is not None else now,
            updated_at=updated_at if updated_at is not None else now,
        )
        self.items[key] = item
        order = self._order[section_key]
        order.insert(len(order) if position is None else position, key)
        return item

    def remove_item(self, rating_key: str) -> None:
        item = self.items.pop(rating_key)
        self._order[item.section_key].remove(rating_key)

    def seed_example(self, identifier: str = "tv.plex.agents.custom.stash2plex") -> None:
        """The reference library: a Stash "Other Videos" section (an untouched item, one
        matched by our provider, a stacked two-part item) and a "Movies" section matched by
        Plex's own agent."""
        self.add_section("1", "Stash", locations=["/data/stash"])
        self.add_section("2", "Movies", agent="tv.plex.agents.movie", locations=["/data/movies"])
        self.add_item("1", "scene-one", files=["/data/stash/Studio A/scene-one.mp4"])
        self.add_item(
            "1",
            "Scene Two",
            files=["/data/stash/Studio A/scene-two.mp4"],
            guid=f"{identifier}://movie/stash-22",
            tags={
                "genre": ["Tag One", "Tag Two", "Tag Three", "Tag Four"],
                "director": ["Director X"],
                "collection": ["Studio A"],
                "label": ["stash-synced"],
                "actor": ["Performer A", "Performer B", "Performer C", "Performer D"],
            },
            fields={"studio": "Studio A", "summary": "Synopsis pushed from Stash."},
        )
        self.add_item(
            "1",
            "scene-three",
            files=[
                "/data/stash/Studio B/scene-three - part1.mkv",
                "/data/stash/Studio B/scene-three - part2.mkv",
            ],
        )
        self.add_item(
            "2",
            "Example Feature",
            rating_key="201",
            files=["/data/movies/Example Feature (1999)/Example Feature (1999).mkv"],
            guid="plex://movie/5d7768ba96b655001fdc0408",
            tags={"genre": ["Action", "Science Fiction"]},
            external_guids=["imdb://tt0000001", "tmdb://1001"],
        )

    def generate(self, section_key: str, count: int, *, root: str = "/data/stash") -> None:
        """``count`` plain items (for benchmarks): one file each, some ours, some local."""
        base = int(time.time()) - 86400
        for n in range(count):
            self.add_item(
                section_key,
                f"Scene {n}",
                files=[f"{root}/Studio {n % 97}/scene-{n:07d}.mp4"],
                guid=f"tv.plex.agents.custom.stash2plex://movie/stash-{n}" if n % 3 else "",
                added_at=base + n,
                updated_at=base + n,
            )

    # --- test hooks ---------------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value is not None and value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; expected one of {FAULTS}")
        self._fault = value

    def writes_to(self, rating_key: str) -> list[Write]:
        return [w for w in self.writes if rating_key in w.rating_keys]

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        r = app.router
        r.add_get("/", self._root)
        r.add_get("/identity", self._identity)
        r.add_get("/library", self._library)
        r.add_get("/library/sections", self._sections)
        r.add_get("/library/sections/", self._sections)
        r.add_get("/library/sections/{s}/all", self._listing)
        r.add_put("/library/sections/{s}/all", self._edit)
        r.add_get("/library/sections/{s}/refresh", self._scan)
        r.add_get("/library/metadata/{ids}", self._metadata)
        r.add_put("/library/metadata/{id}/refresh", self._refresh)
        r.add_post("/library/metadata/{id}/{kind:posters|arts}", self._upload)
        r.add_get("/library/metadata/{id}/{kind:posters|arts}", self._artwork)
        runner = web.AppRunner(
            app,
            access_log=None,
            shutdown_timeout=0.25,
            handler_cancellation=True,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        self.url = f"http://{self.host}:{runner.addresses[0][1]}"
        return self.url

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakePMS:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # --- middleware: record, fault, auth ------------------------------------------------

    def _take_fault(self) -> str | None:
        fault = self._fault
        if fault is None:
            return None
        if self.fault_count is not None:
            self.fault_count -= 1
            if self.fault_count <= 0:
                self._fault, self.fault_count = None, None
        return fault

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        h = request.headers
        self.requests.append(
            Seen(
                method=request.method,
                path=request.path,
                query=request.query_string,
                client_identifier=h.get("X-Plex-Client-Identifier"),
                product=h.get("X-Plex-Product"),
                container_start=h.get("X-Plex-Container-Start"),
                container_size=h.get("X-Plex-Container-Size"),
            )
        )
        fault = self._take_fault()
        if fault == "down":
            if request.transport is not None:
                request.transport.close()
            raise web.HTTPServiceUnavailable()
        if fault == "slow":
            await asyncio.sleep(self.slow_seconds)
        elif fault in ("503", "500"):
            return _html(int(fault), "Service Unavailable" if fault == "503" else "Server Error")
        elif fault == "429":
            response = _html(429, "Too Many Requests")
            response.headers["Retry-After"] = str(self.retry_after_s)
            return response
        elif fault == "403":
            return _html(403, "Forbidden")
        if request.path != "/identity" and (fault == "401" or not self._authorized(request)):
            return _html(401, "Unauthorized")
        return await handler(request)

    def _authorized(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        given = request.headers.get("X-Plex-Token") or request.query.get("X-Plex-Token")
        return given == self.token

    # --- reads ----------------------------------------------------------------------------

    async def _root(self, _request: web.Request) -> web.Response:
        return _xml(
            f"<MediaContainer{_attrs(self._root_attrs())}>"
            '<Directory count="1" key="identity" title="identity" />'
            '<Directory count="1" key="library" title="library" />'
            "</MediaContainer>"
        )

    def _root_attrs(self) -> list[tuple[str, Any]]:
        return [
            ("size", 2),
            ("friendlyName", self.friendly_name),
            ("machineIdentifier", MACHINE_ID),
            ("version", VERSION),
            ("platform", "Linux"),
            ("platformVersion", "6.8.0"),
            ("myPlex", 1),
            ("myPlexSigninState", "ok"),
            ("transcoderVideo", 1),
            ("updatedAt", int(time.time())),
        ]

    async def _identity(self, _request: web.Request) -> web.Response:
        return _xml(
            f'<MediaContainer size="0" apiVersion="1.1.1" claimed="1" '
            f'machineIdentifier="{MACHINE_ID}" version="{VERSION}" />'
        )

    async def _library(self, _request: web.Request) -> web.Response:
        return _xml(
            '<MediaContainer size="1" identifier="com.plexapp.plugins.library" '
            'mediaTagVersion="1760000000" title1="Plex Library" title2="">'
            '<Directory key="sections" title="Library Sections" /></MediaContainer>'
        )

    async def _sections(self, _request: web.Request) -> web.Response:
        body = [f'<MediaContainer size="{len(self.sections)}" title1="Plex Library">']
        for s in self.sections.values():
            attrs = _attrs(
                [
                    ("allowSync", 1),
                    ("key", s.key),
                    ("type", s.type),
                    ("title", s.title),
                    ("agent", s.agent),
                    ("scanner", s.scanner),
                    ("language", s.language),
                    ("uuid", s.uuid),
                    ("refreshing", 0),
                    ("updatedAt", 1763790000),
                    ("createdAt", 1740000000),
                    ("scannedAt", 1763790000),
                    ("content", 1),
                    ("directory", 1),
                    ("hidden", 0),
                ]
            )
            locations = "".join(
                f'<Location id="{i}" path={quoteattr(p)} />' for i, p in enumerate(s.locations, 1)
            )
            body.append(f"<Directory{attrs}>{locations}</Directory>")
        body.append("</MediaContainer>")
        return _xml("".join(body))

    def _section(self, request: web.Request) -> FakeSection:
        section = self.sections.get(request.match_info["s"])
        if section is None:
            raise _NotFound()
        return section

    async def _listing(self, request: web.Request) -> web.Response:
        section = self._section(request)
        keys = self._order[section.key]
        total = len(keys)
        start = _window(request, "X-Plex-Container-Start", 0)
        size = _window(request, "X-Plex-Container-Size", total)
        start = min(max(start, 0), total)
        page = keys[start : start + max(size, 0)]
        head = _attrs(
            [
                ("size", len(page)),
                ("totalSize", total),
                ("offset", start),
                ("allowSync", 1),
                ("identifier", "com.plexapp.plugins.library"),
                ("librarySectionID", section.key),
                ("librarySectionTitle", section.title),
                ("librarySectionUUID", section.uuid),
                ("mediaTagPrefix", "/system/bundle/media/flags/"),
                ("mediaTagVersion", 1760000000),
                ("title1", section.title),
                ("title2", "All Videos"),
                ("viewGroup", "movie"),
            ]
        )
        parts = [f"<MediaContainer{head}>"]
        for key in page:
            item = self.items[key]
            if item.list_xml is None:
                item.list_xml = _video(item, self.sections[item.section_key], full=False)
            parts.append(item.list_xml)
        parts.append("</MediaContainer>")
        if self.after_listing is not None:
            self.after_listing(section.key, start)
        return _xml("".join(parts))

    async def _metadata(self, request: web.Request) -> web.Response:
        keys = request.match_info["ids"].split(",")
        found = [self.items[k] for k in keys if k in self.items]
        if not found:
            raise _NotFound()
        first = self.sections[found[0].section_key]
        head = _attrs(
            [
                ("size", len(found)),
                ("allowSync", 1),
                ("identifier", "com.plexapp.plugins.library"),
                ("librarySectionID", first.key),
                ("librarySectionTitle", first.title),
                ("librarySectionUUID", first.uuid),
                ("mediaTagPrefix", "/system/bundle/media/flags/"),
                ("mediaTagVersion", 1760000000),
            ]
        )
        videos = "".join(_video(i, self.sections[i.section_key], full=True) for i in found)
        return _xml(f"<MediaContainer{head}>{videos}</MediaContainer>")

    async def _artwork(self, request: web.Request) -> web.Response:
        item = self._item(request.match_info["id"])
        kind = request.match_info["kind"]
        photos = [a for a in item.artwork if a.kind == kind]
        body = [f'<MediaContainer size="{len(photos)}" identifier="com.plexapp.plugins.library">']
        for a in reversed(photos):
            key = f"/library/metadata/{item.rating_key}/file?url={a.key}"
            body.append(
                f"<Photo key={quoteattr(key)} ratingKey={quoteattr(a.key)} "
                f'selected="{int(a.selected)}" thumb={quoteattr(key)} provider="local" />'
            )
        body.append("</MediaContainer>")
        return _xml("".join(body))

    def _item(self, rating_key: str) -> FakeItem:
        item = self.items.get(rating_key)
        if item is None:
            raise _NotFound()
        return item

    # --- writes ---------------------------------------------------------------------------

    async def _edit(self, request: web.Request) -> web.Response:
        section = self._section(request)
        params = list(request.query.items())
        ids = request.query.get("id", "")
        keys = tuple(k for k in ids.split(",") if k)
        self.writes.append(Write(method="PUT", path=request.path, params=params, rating_keys=keys))
        if not keys:
            return _html(400, "Bad Request")
        items = []
        for key in keys:
            item = self.items.get(key)
            if item is None or item.section_key != section.key:
                return _html(404, "Not Found")  # a ratingKey not in this section
            items.append(item)
        indexed: dict[str, dict[int, str]] = {}
        removed: dict[str, list[str]] = {}
        values: dict[str, str] = {}
        locks: dict[str, bool] = {}
        for name, value in params:
            if name in ("id", "type", "X-Plex-Token"):
                continue
            if name.endswith(".value"):
                field_name = name[: -len(".value")]
                if field_name not in EDITABLE_FIELDS:
                    return _html(400, "Bad Request")
                values[field_name] = value
            elif name.endswith(".locked"):
                what = name[: -len(".locked")]
                if what not in LOCKABLE:
                    return _html(400, "Bad Request")
                locks[what] = value == "1"
            elif name.endswith("[].tag.tag-"):
                kind = name[: -len("[].tag.tag-")]
                if kind not in TAG_ELEMENTS:
                    return _html(400, "Bad Request")
                # quoted twice by the client: once per value, once for the query string
                removed.setdefault(kind, []).extend(unquote(v) for v in value.split(","))
            elif "[" in name and "]" in name:
                kind, rest = name.split("[", 1)
                index, attribute = rest.split("]", 1)
                if kind not in TAG_ELEMENTS or not index.isdigit():
                    return _html(400, "Bad Request")
                if attribute == ".tag.tag":
                    indexed.setdefault(kind, {})[int(index)] = value
                # .tag.thumb, .tagging.text: accepted, not modelled
            else:
                return _html(400, "Bad Request")
        for item in items:
            item.fields.update(values)
            if "title" in values:
                item.title = values["title"]
            for kind, by_index in indexed.items():
                wanted = [by_index[i] for i in sorted(by_index)]
                item.apply_tags(kind, wanted, replace=self.indexed_tags_replace)
            for kind, unwanted in removed.items():
                item.remove_tags(kind, unwanted)
            for what, on in locks.items():
                (item.locked.add if on else item.locked.discard)(what)
            item.changed()
        return web.Response(status=200)

    async def _upload(self, request: web.Request) -> web.Response:
        item = self._item(request.match_info["id"])
        kind = request.match_info["kind"]
        data = await request.read()
        url = request.query.get("url")
        if not data and not url:
            return _html(400, "Bad Request")
        digest = hashlib.sha256(data).hexdigest() if data else ""
        self.writes.append(
            Write(
                method="POST",
                path=request.path,
                params=list(request.query.items()),
                rating_keys=(item.rating_key,),
                sha256=digest,
                size=len(data),
            )
        )
        for a in item.artwork:
            if a.kind == kind:
                a.selected = False
        item.artwork.append(
            Artwork(
                kind=kind,
                key=url or f"upload://{kind}/{digest}",
                sha256=digest,
                size=len(data),
                selected=True,
            )
        )
        item.changed()
        return web.Response(status=200)

    async def _refresh(self, request: web.Request) -> web.Response:
        item = self._item(request.match_info["id"])
        self.writes.append(Write(method="PUT", path=request.path, rating_keys=(item.rating_key,)))
        item.refreshed += 1
        return web.Response(status=200)

    async def _scan(self, request: web.Request) -> web.Response:
        section = self._section(request)
        self.scans.append((section.key, request.query.get("path", "")))
        return web.Response(status=200)


# --- rendering ------------------------------------------------------------------------------


def _video(item: FakeItem, section: FakeSection, *, full: bool) -> str:
    f = item.fields
    attrs: list[tuple[str, Any]] = [
        ("ratingKey", item.rating_key),
        ("key", f"/library/metadata/{item.rating_key}"),
        ("guid", item.effective_guid),
        ("type", "movie"),
        ("title", item.title),
        ("titleSort", f.get("titleSort") or item.title),
        ("studio", f.get("studio")),
        ("summary", f.get("summary", "")),
        ("tagline", f.get("tagline")),
        ("contentRating", f.get("contentRating")),
        ("userRating", f.get("userRating")),
        ("originallyAvailableAt", f.get("originallyAvailableAt")),
        ("year", (f.get("originallyAvailableAt") or "")[:4] or None),
        ("thumb", f"/library/metadata/{item.rating_key}/thumb/{item.updated_at}"),
        ("addedAt", item.added_at),
        ("updatedAt", item.updated_at),
    ]
    if full:
        attrs += [
            ("librarySectionTitle", section.title),
            ("librarySectionID", section.key),
            ("librarySectionKey", f"/library/sections/{section.key}"),
        ]
    out = [f"<Video{_attrs(attrs)}>"]
    part_id = int(item.rating_key) * 10 if item.rating_key.isdigit() else 1
    for m, parts in enumerate(item.media):
        out.append(f'<Media id="{part_id + m}" container="mp4" videoCodec="h264">')
        for p, path in enumerate(parts):
            pid = part_id * 10 + m * 5 + p
            out.append(
                f'<Part id="{pid}" key="/library/parts/{pid}/{item.added_at}/file.mp4" '
                f'file={quoteattr(path)} size="1000000" container="mp4" />'
            )
        out.append("</Media>")
    for kind, element in TAG_ELEMENTS.items():
        tags = item.tags.get(kind, [])
        if not full:
            tags = tags[: LIST_TAGS.get(kind, 0)]
        out.extend(f"<{element} tag={quoteattr(t)} />" for t in tags)
    if item.guid:  # PMS lists Guid children for matched items only
        out.extend(f"<Guid id={quoteattr(g)} />" for g in item.external_guids)
    if full:
        out.extend(f'<Field locked="1" name={quoteattr(n)} />' for n in sorted(item.locked))
    out.append("</Video>")
    return "".join(out)


def _window(request: web.Request, name: str, default: int) -> int:
    raw = request.headers.get(name) or request.query.get(name)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _xml(body: str) -> web.Response:
    return web.Response(text=_HEAD + body, content_type=_XML, charset="utf-8")


def _html(status: int, reason: str) -> web.Response:
    title = escape(reason)
    text = f"<html><head><title>{title}</title></head><body><h1>{status} {title}</h1></body></html>"
    return web.Response(status=status, text=text, content_type="text/html")


class _NotFound(web.HTTPNotFound):
    def __init__(self) -> None:
        super().__init__(
            text="<html><head><title>Not Found</title></head><body><h1>404 Not Found</h1>"
            "</body></html>",
            content_type="text/html",
        )
