"""Signed image URLs: stable, unforgeable, surviving restarts."""

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
