"""Signed image URLs: stable, unforgeable, surviving restarts; the shared-token check."""

from __future__ import annotations

import stat

import pytest

from stash2plex import signed_url, verify_signature
from stash2plex.app import CONFIG


def test_signed_urls_are_stable_and_verified(make_app):
    app = make_app({"provider": {"public_url": "https://img.example.net/"}})
    url = signed_url(app, "/images/scene/12/screenshot")
    assert url.startswith("https://img.example.net/images/scene/12/screenshot?sig=")
    assert signed_url(app, "/images/scene/12/screenshot") == url
    sig = url.rsplit("=", 1)[1]
    assert verify_signature(app, "/images/scene/12/screenshot", sig)
    assert not verify_signature(app, "/images/scene/13/screenshot", sig)
    assert not verify_signature(app, "/images/scene/12/screenshot", "")


@pytest.mark.parametrize(
    "sig", ["\u00e9", "\ufffd" * 22, "\x00", "\ud800", "a" * 10_000, "====", None, b"abc"]
)
def test_any_malformed_signature_is_refused_not_an_error(make_app, sig):
    app = make_app()
    assert verify_signature(app, "/images/scene/12/screenshot", sig) is False
    # and a path a bad URL decoded to is signed, not an error
    assert verify_signature(app, "/images/\ud800", signed_url(app, "/images/\ud800")[-22:])


def test_generated_key_is_kept_private_and_reused(make_app):
    first = make_app()
    url = signed_url(first, "/images/x")
    key_file = first[CONFIG].data_dir / "signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    again = make_app()  # same data_dir: a restart
    assert signed_url(again, "/images/x") == url


def test_configured_key_wins(make_app):
    a = make_app({"provider": {"signing_key": "one"}})
    b = make_app({"provider": {"signing_key": "two"}})
    assert signed_url(a, "/images/x") != signed_url(b, "/images/x")
    assert not (a[CONFIG].data_dir / "signing.key").exists()


def test_token_refusal_names_the_setting_and_takes_either_header():
    from aiohttp.test_utils import make_mocked_request

    from stash2plex import token_refusal

    def answer(headers: dict[str, str], expected: str = "s3cret"):
        request = make_mocked_request("POST", "/hook", headers=headers)
        return token_refusal(request, expected, setting="push.webhook_token", off="the hook is off")

    off = answer({}, expected="")
    assert off is not None and off.status == 403
    assert b"the hook is off: set [push] webhook_token" in off.body
    assert b"STASH2PLEX_PUSH__WEBHOOK_TOKEN" in off.body
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "s3cret"}):
        wrong = answer(headers)
        assert wrong is not None and wrong.status == 401 and b"Bearer" in wrong.body
    assert answer({"Authorization": "Bearer s3cret"}) is None
    assert answer({"authorization": "bearer  s3cret "}) is None
    assert answer({"X-Stash2plex-Token": "s3cret"}) is None
