"""From a Stash scene (``FIND_SCENE``'s shape) to Plex metadata, plus the metadata cache.

Image URLs point at this provider's own signed ``/images/...`` routes, never at Stash:
Stash is on the LAN and needs the API key; Plex's image service is neither.
"""

from __future__ import annotations

import asyncio
import re
import string
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stash2plex import ExternalGuid, Image, Metadata, Role, Tag

from .matcher import RATING_KEY_PREFIX

TEMPLATE_FIELDS = ("title", "date", "studio", "code", "performers", "filename")
_EMPTY = "\x00"  # stands for an empty template field while the title is tidied
_SEP = r"[-|,/:\u2013\u2014\u00b7]"
_EMPTY_BRACKETS = re.compile(r"[(\[{]\s*\x00\s*[)\]}]")
_EMPTY_LEADING = re.compile(rf"^(?:\s*\x00\s*{_SEP}?\s*)+")
_EMPTY_WITH_SEP = re.compile(rf"\s*(?:{_SEP}\s*)?\x00")
_FULL_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_template(template: str) -> None:
    """Refuse unknown fields and bad syntax at start-up rather than per request."""
    try:
        names = {f for _t, f, _s, _c in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"title_template {template!r}: {exc}") from None
    unknown = sorted(n for n in names if n not in TEMPLATE_FIELDS)
    if unknown or "" in names:
        raise ValueError(
            f"title_template {template!r}: unknown field(s) {unknown or ['{}']}; "
            f"use {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
        )
    # Conversions and format specs ("{title!x}", "{title:d}") only fail when formatting:
    # try once now, or every metadata request would fail later.
    try:
        template.format(**dict.fromkeys(TEMPLATE_FIELDS, "x"))
    except (ValueError, KeyError, IndexError, AttributeError, TypeError) as exc:
        raise ValueError(f"title_template {template!r}: {exc}") from None


def stem(name: str) -> str:
    """``Path(name).stem`` without building a Path (a scan asks for many untitled scenes):
    the name without its last suffix, by pathlib's rule (a dot first or last is none)."""
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def filename_title(scene: dict[str, Any]) -> str:
    """What Stash itself shows for an untitled scene: the primary file's name."""
    files = scene.get("files") or []
    if not files:
        return f"Scene {scene['id']}"
    name = files[0].get("basename") or files[0].get("path") or ""
    pure = PureWindowsPath(name) if "\\" in name else PurePosixPath(name)
    return stem(pure.name) or name


def render_title(template: str, scene: dict[str, Any]) -> str:
    """Fill the template; an untitled scene's ``{title}`` is its file name, as in Stash."""
    filename = filename_title(scene)
    fields = {
        "title": scene.get("title") or filename,
        "date": scene.get("date") or "",
        "studio": (scene.get("studio") or {}).get("name") or "",
        "code": scene.get("code") or "",
        "performers": ", ".join(p["name"] for p in scene.get("performers") or []),
        "filename": filename,
    }
    # Empty fields are rendered as a marker, then dropped with the brackets around them
    # and one separator next to them ("Studio - {date} - Title", "Title ({date})"), so
    # the scene's own text is never trimmed.
    text = template.format(**{k: v or _EMPTY for k, v in fields.items()})
    text = _EMPTY_BRACKETS.sub(_EMPTY, text)
    text = _EMPTY_LEADING.sub("", text)
    text = _EMPTY_WITH_SEP.sub("", text).strip()
    return text or filename


def image_version(url: str | None) -> str:
    """Stash's ``?t=`` cache-buster (unix seconds of the last change), "0" when absent."""
    if not url:
        return "0"
    t = parse_qs(urlsplit(url).query).get("t", ["0"])[0]
    return t if t.isdigit() else "0"


def is_placeholder(url: str | None) -> bool:
    """Stash appends ``default=true`` when it would serve a silhouette, not a photo."""
    return not url or "default=true" in url


def guid_scheme(endpoint: str) -> str:
    """``https://stashdb.org/graphql`` -> ``stashdb``; letters only, as Plex schemes are."""
    host = urlsplit(endpoint).hostname or ""
    label = host.split(".")[-2] if host.count(".") >= 1 else host
    return re.sub(r"[^a-z]", "", label.lower()) or "stashbox"


def to_metadata(
    scene: dict[str, Any],
    *,
    title_template: str,
    content_rating: str,
    ignore_tags: frozenset[str],
    image_url: Callable[[str], str],
    poster_kind: str = "screenshot",
) -> Metadata:
    """Map one scene. ``image_url(path)`` turns ``/images/...`` into a signed absolute URL."""
    scene_id = str(scene["id"])
    title = render_title(title_template, scene)
    date = scene.get("date") or ""
    studio = scene.get("studio") or None
    version = image_version((scene.get("paths") or {}).get("screenshot"))
    background = image_url(f"/images/scene/{scene_id}/screenshot/{version}")
    poster = image_url(f"/images/scene/{scene_id}/{poster_kind}/{version}")
    images = [
        Image(type="coverPoster", url=poster, alt=title),
        Image(type="background", url=background, alt=title),
    ]
    if studio and not is_placeholder(studio.get("image_path")):
        logo_version = image_version(studio["image_path"])
        logo = image_url(f"/images/studio/{studio['id']}/{logo_version}")
        images.append(Image(type="clearLogo", url=logo, alt=studio["name"]))

    roles = []
    for order, performer in enumerate(scene.get("performers") or [], start=1):
        name = performer["name"]
        # Plex merges actors by name: two "Jane Doe"s must not become one person.
        if performer.get("disambiguation"):
            name = f"{name} ({performer['disambiguation']})"
        thumb = None
        if not is_placeholder(performer.get("image_path")):
            photo_version = image_version(performer["image_path"])
            thumb = image_url(f"/images/performer/{performer['id']}/{photo_version}")
        roles.append(Role(tag=name, thumb=thumb, order=order))

    studios = []
    if studio:
        studios.append(Tag(tag=studio["name"]))
        parent = studio.get("parent_studio")
        if parent and parent.get("name"):
            studios.append(Tag(tag=parent["name"]))

    # Push-only: Plex takes collections and the user rating from push sync, never from a
    # provider. Studio, parent studio and the scene's groups; which tags also become
    # collections is push sync's choice.
    names = [t.tag for t in studios]
    names += [(g.get("group") or {}).get("name") or "" for g in scene.get("groups") or []]
    # A collection is a name in Plex: each name once.
    collections = [Tag(tag=n) for n in dict.fromkeys(n for n in names if n)]
    rating = scene.get("rating100")

    files = scene.get("files") or []
    duration = files[0].get("duration") if files else None
    created = scene.get("created_at")
    return Metadata(
        rating_key=f"{RATING_KEY_PREFIX}{scene_id}",
        title=title,
        summary=scene.get("details") or None,
        originally_available_at=date if _FULL_DATE.match(date) else None,
        year=int(date[:4]) if date[:4].isdigit() else None,
        studio=studio["name"] if studio else None,
        tagline=scene.get("code") or None,
        content_rating=content_rating or None,
        is_adult=True,
        duration=round(duration * 1000) if duration else None,
        thumb=poster,
        art=background,
        added_at=epoch(created),
        images=images,
        genres=[
            Tag(tag=t["name"])
            for t in scene.get("tags") or []
            if t["name"].casefold() not in ignore_tags
        ],
        roles=roles,
        directors=[Tag(tag=scene["director"])] if scene.get("director") else [],
        studios=studios,
        guids=[
            ExternalGuid(id=f"{guid_scheme(s['endpoint'])}://{s['stash_id']}")
            for s in scene.get("stash_ids") or []
            if s.get("stash_id")
        ],
        collections=collections,
        user_rating=None if rating is None else rating / 10,
    )


def epoch(stamp: str | None) -> int | None:
    if not stamp:
        return None
    try:
        return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


class SceneCache:
    """``findScene`` results with a TTL, one fetch per id in flight, stale on failure.

    ``fetch(id)`` returns the scene dict or None (deleted). When a refresh fails, the last
    value is served (stale) and the failure re-raised only if nothing is cached.

    The fetch runs in its own task that every caller awaits through :func:`asyncio.shield`,
    so a caller that is cancelled (client gone, shutdown) never strands the others.
    """

    def __init__(
        self,
        fetch: Callable[[int], Awaitable[dict[str, Any] | None]],
        *,
        ttl_s: float,
        max_items: int = 5000,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._max_items = max_items
        self._items: OrderedDict[int, tuple[float, dict[str, Any] | None]] = OrderedDict()
        self._inflight: dict[int, asyncio.Task[tuple[dict[str, Any] | None, bool]]] = {}
        #: Answers served from an expired entry because Stash failed (one per request).
        self.stale_served = 0

    def expire_all(self) -> None:
        """Refetch everything on next use, but keep values to serve stale if Stash is down."""
        for key, (_at, value) in self._items.items():
            self._items[key] = (float("-inf"), value)

    def expire(self, scene_ids: Iterable[int]) -> None:
        """Refetch these scenes on next use (their values kept to serve stale)."""
        items = self._items
        for scene_id in scene_ids:
            cached = items.get(scene_id)
            if cached is not None:
                items[scene_id] = (float("-inf"), cached[1])

    async def get(self, scene_id: int) -> dict[str, Any] | None:
        cached = self._items.get(scene_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            self._items.move_to_end(scene_id)
            return cached[1]
        task = self._inflight.get(scene_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._load(scene_id), name=f"scene-cache-{scene_id}"
            )
            self._inflight[scene_id] = task
            task.add_done_callback(lambda done: self._finished(scene_id, done))
        value, stale = await asyncio.shield(task)
        if stale:
            self.stale_served += 1
        return value

    async def _load(self, scene_id: int) -> tuple[dict[str, Any] | None, bool]:
        """(value, served stale?) for one fetch, shared by every caller of that moment."""
        try:
            value = await self._fetch(scene_id)
        except Exception:
            cached = self._items.get(scene_id)
            if cached is not None:
                return cached[1], True
            raise
        self._items[scene_id] = (time.monotonic(), value)
        self._items.move_to_end(scene_id)
        while len(self._items) > self._max_items:
            self._items.popitem(last=False)
        return value, False

    async def close(self) -> None:
        """Cancel the fetches still running (shutdown: their session is about to close)."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _finished(self, scene_id: int, task: asyncio.Task[Any]) -> None:
        if self._inflight.get(scene_id) is task:
            del self._inflight[scene_id]
        if not task.cancelled():
            task.exception()  # retrieved: callers re-raise it, even if none is left
