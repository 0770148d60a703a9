"""HMAC-signed URLs, so a public hostname can expose the image routes and nothing else;
and the shared-token check of the routes other programs call (webhooks).

Plex stores the image URLs it is given and Plex's image service fetches them later, from
outside the LAN (PMS 1.43.5+ refuses private addresses). A signed URL is stable (the same
path always gets the same signature) and cannot be forged to reach any other resource.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from aiohttp import web

from .app import CONFIG, RUNTIME, public_base_url
from .errors import error_response

KEY_FILE = "signing.key"


def _key(app: web.Application) -> bytes:
    runtime = app[RUNTIME]
    if runtime.signing_key is None:
        configured = app[CONFIG].provider.signing_key
        stored = configured.encode() if configured else None
        runtime.signing_key = stored or _stored_key(app[CONFIG].data_dir / KEY_FILE)
    return runtime.signing_key


def _stored_key(path: Path) -> bytes:
    """One random key per installation, kept so URLs Plex stored stay valid on restart."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
        return key


def signature(app: web.Application, path: str) -> str:
    # surrogatepass: any str can be signed (and refused), even one a bad URL decoded to.
    digest = hmac.new(_key(app), path.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def signed_url(app: web.Application, path: str) -> str:
    """An absolute URL for ``path`` (which starts with ``/``), signed."""
    return f"{public_base_url(app)}{path}?sig={signature(app, path)}"


def verify(app: web.Application, path: str, sig: str) -> bool:
    """Whether ``sig`` is the signature of ``path``. Whatever a client sends is only ever
    False, never an error: empty, malformed, non-ASCII (``compare_digest`` refuses
    non-ASCII text with a TypeError), or not text at all."""
    if not isinstance(sig, str) or not sig or not sig.isascii():
        return False
    return hmac.compare_digest(signature(app, path).encode(), sig.encode())


def token_refusal(
    request: web.BaseRequest, expected: str, *, setting: str, off: str
) -> web.Response | None:
    """None when ``request`` carries the shared token ``expected`` (``Authorization:
    Bearer <token>``, or ``X-Stash2plex-Token: <token>``), compared in constant time;
    otherwise the JSON error to answer: 403 while no token is configured (the route is
    off, ``off`` says why and ``setting`` (``"push.webhook_token"``) how to turn it on),
    401 for a missing or wrong token."""
    section, _, key = setting.partition(".")
    if not expected:
        env = f"STASH2PLEX_{section.upper()}__{key.upper()}"
        # 403, not 503: nothing is wrong with the server, it was told not to take these
        return error_response(403, f"{off}: set [{section}] {key} (environment {env})")
    auth = request.headers.get("Authorization", "")
    given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    given = given or request.headers.get("X-Stash2plex-Token", "")
    if hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return error_response(
        401, f"missing or wrong token: send 'Authorization: Bearer <[{section}] {key}>'"
    )
