"""``/images/...``: Stash artwork streamed through the provider, behind signed URLs.

Plex stores image URLs and its image service fetches them from outside the LAN, without
Stash's API key. These routes fetch from Stash with the key (it never appears in a URL)
and answer only for URLs this provider signed, so this one path prefix can be published
on a public hostname while everything else stays private.
"""

from __future__ import annotations

import asyncio
import io
from collections import OrderedDict

from aiohttp import web

from stash2plex import error_response, get_logger, verify_signature

from .client import StashAuthError, StashError, StashUnavailable

log = get_logger("stash2plex.stash_source.images")
CACHE_BYTES = 64 * 2**20
#: The path carries Stash's change stamp, so a URL's bytes never change: cache hard.
CACHE_CONTROL = "public, max-age=604800, immutable"
POSTER_SIZE = (600, 900)


class ImageCache:
    """A small LRU of image bytes, bounded by total size."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._size = 0

    def get(self, key: str) -> tuple[bytes, str] | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def put(self, key: str, body: bytes, ctype: str) -> None:
        if len(body) > self.max_bytes // 4:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(old[0])
        self._items[key] = (body, ctype)
        self._size += len(body)
        while self._size > self.max_bytes:
            _k, (evicted, _c) = self._items.popitem(last=False)
            self._size -= len(evicted)


def render_poster(screenshot: bytes) -> tuple[bytes, str]:
    """A 2:3 poster from a 16:9 screenshot: the frame centred over a blurred fill."""
    from PIL import Image, ImageFilter  # optional extra: stash2plex-stash-source[posters]

    with Image.open(io.BytesIO(screenshot)) as shot:
        frame = shot.convert("RGB")
    width, height = POSTER_SIZE
    fill = frame.resize((width, height)).filter(ImageFilter.GaussianBlur(24))
    scaled = frame.resize((width, max(1, round(frame.height * width / frame.width))))
    fill.paste(scaled, (0, (height - scaled.height) // 2))
    out = io.BytesIO()
    fill.save(out, format="JPEG", quality=88)
    return out.getvalue(), "image/jpeg"


def routes(get_source) -> list[web.AbstractRouteDef]:
    cache = ImageCache()
    posters_warned = False

    async def serve(
        request: web.Request, stash_path: str, poster: bool = False
    ) -> web.StreamResponse:
        nonlocal posters_warned
        if not verify_signature(request.app, request.path, request.query.get("sig", "")):
            return error_response(403, "image URL signature missing or invalid")
        source = get_source(request.app)
        if source is None:
            return error_response(503, "stash_source is not started")
        cached = cache.get(request.path)
        if cached is None:
            try:
                body, ctype = await source.client.fetch_image(stash_path)
            except StashUnavailable as exc:
                return error_response(503, str(exc))
            except StashAuthError as exc:
                return error_response(502, str(exc))
            except StashError as exc:
                status = 404 if getattr(exc, "status", None) == 404 else 502
                return error_response(status, str(exc))
            if poster:
                try:
                    # Decoding, blurring and encoding take tens of ms for a 1080p frame:
                    # off the event loop, so a scan's matches are not held up.
                    body, ctype = await asyncio.to_thread(render_poster, body)
                except ImportError:
                    if not posters_warned:
                        log.warning(
                            "images.poster_unavailable",
                            hint="pip install 'stash2plex-stash-source[posters]'",
                        )
                        posters_warned = True
                except Exception as exc:  # a broken image must not become a 500
                    log.warning("images.poster_failed", path=request.path, error=str(exc))
            cached = (body, ctype)
            cache.put(request.path, body, ctype)
        body, ctype = cached
        return web.Response(body=body, content_type=ctype, headers={"Cache-Control": CACHE_CONTROL})

    async def scene(request: web.Request) -> web.StreamResponse:
        scene_id, kind = request.match_info["id"], request.match_info["kind"]
        return await serve(request, f"/scene/{scene_id}/screenshot", poster=kind == "poster")

    async def performer(request: web.Request) -> web.StreamResponse:
        return await serve(request, f"/performer/{request.match_info['id']}/image")

    async def studio(request: web.Request) -> web.StreamResponse:
        return await serve(request, f"/studio/{request.match_info['id']}/image")

    return [
        web.get(r"/images/scene/{id:\d+}/{kind:screenshot|poster}/{version:\d+}", scene),
        web.get(r"/images/performer/{id:\d+}/{version:\d+}", performer),
        web.get(r"/images/studio/{id:\d+}/{version:\d+}", studio),
    ]
