"""Stash misbehaving in every way the fake can: the provider stays up, says what is wrong
(in /healthz, in its answers, in its logs) and keeps matching from its index."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

import stash2plex_path_regex.plugin as path_plugin
import stash2plex_stash_source.plugin as stash_plugin
from stash2plex import HOOKS
from stash2plex_stash_source.fake import FAULTS, FakeStash, Library

TIMEOUT_S = 0.3

#: What each fault's report must say, so a user knows where to look.
EXPECTED = {
    "401": "stash.api_key",
    "403": "HTTP 403",
    "422": "HTTP 422",
    "500": "HTTP 500",
    "html": "did not answer with GraphQL JSON",
    "garbage": "did not answer with GraphQL JSON",
    "locked": "database is locked",
    "slow": f"no answer within {TIMEOUT_S:g} s",
    "down": "cannot connect",
}
assert set(EXPECTED) == set(FAULTS)


async def health(client: TestClient) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/healthz")
    assert resp.content_type == "application/json"
    return resp.status, await resp.json()


def ordinary(library: Library, n: int) -> list[Any]:
    return [f for f in library.plex_files(relative=True) if f.note == ""][:n]


def mentions(event: dict[str, Any], text: str) -> bool:
    return any(isinstance(v, str) and text in v for v in event.values())


@pytest.mark.parametrize("fault", FAULTS)
async def test_provider_survives_every_fault(
    provider, fake_stash, library, match, ids, eventually, log_events, fault
):
    client = await provider(
        fake_stash.url, stash={"timeout_s": TIMEOUT_S, "retries": 0, "index_refresh_s": 0.1}
    )
    log_events()  # start-up lines are not what this test is about
    fake_stash.slow_seconds = TIMEOUT_S * 4
    fake_stash.fault = fault
    expected = EXPECTED[fault]

    async def reported() -> bool:
        _status, body = await health(client)
        # This fault's error (on a loaded machine a 0.3 s timeout may come first).
        return expected in (body["plugins"]["stash_source"]["index_sync_error"] or "")

    await eventually(reported, 10, f"/healthz reporting {fault}")
    status, body = await health(client)
    assert status == 200  # the index still answers matches: the provider stays ready
    report = body["plugins"]["stash_source"]
    assert expected in report["index_sync_error"]
    assert report["stash_error"] and expected in report["stash_error"]

    # Matching keeps working from the index.
    for f in ordinary(library, 5):
        assert ids(await match(client, filename=f.plex_path)) == [f.expected_scene_id]

    # Uncached metadata: a clear 503, as JSON.
    resp = await client.get("/library/metadata/stash-7")
    assert resp.status == 503
    assert resp.content_type == "application/json"
    text = await resp.text()
    # JSON, never a page or a traceback (a snippet of what Stash sent may be quoted).
    assert not text.lstrip().startswith("<") and "Traceback" not in text
    message = (await resp.json())["message"]
    assert "scene 7" in message and expected in message

    events = log_events()
    problems = [e for e in events if e["level"] in ("warning", "error") and mentions(e, expected)]
    assert {e["event"] for e in problems} >= {"index.sync_failed", "plugin.unavailable"}
    # Expected failures are reported, not crashed on.
    crashes = {"index.sync_crashed", "plugin.hook_failed", "request.failed"}
    assert not [e for e in events if e["event"] in crashes]
    assert all(e["level"] != "error" or "exception" not in e for e in events)


async def test_down_from_the_start_then_recovers(provider, fake_stash, eventually):
    fake_stash.fault = "down"
    client = await provider(
        fake_stash.url,
        stash={"timeout_s": TIMEOUT_S, "retries": 0, "index_refresh_s": 0.3},
        ready=False,
    )

    async def failed_once() -> bool:
        status, body = await health(client)
        assert status == 503  # never ready without an index
        return body["plugins"]["stash_source"]["index_sync_error"] is not None

    await eventually(failed_once, 10, "a failed first build")
    status, body = await health(client)
    assert status == 503 and body["status"] != "ok"
    report = body["plugins"]["stash_source"]
    assert report["ready"] is False and report["stash_reachable"] is False
    assert "cannot connect" in report["index_sync_error"]
    assert fake_stash.url in report["index_sync_error"]

    fake_stash.fault = None

    async def ready() -> bool:
        status, body = await health(client)
        # Ready once the build commits; the error clears when its round ends, a moment on.
        return status == 200 and body["plugins"]["stash_source"]["index_sync_error"] is None

    # The first build is retried every min(30 s, index_refresh_s).
    await eventually(ready, 10, "recovery once Stash is back")
    _status, body = await health(client)
    assert body["plugins"]["stash_source"]["index_sync_error"] is None
    assert body["plugins"]["stash_source"]["stash_error"] is None


# --- stash2plex check ---------------------------------------------------------------------


def checks_app(make_app, url: str, rules: list[dict[str, Any]] | None = None):
    raw: dict[str, Any] = {"stash": {"url": url, "timeout_s": 1.0}}
    if rules:
        raw["path_regex"] = {"rules": rules}
    return make_app(raw, plugins=[("stash_source", stash_plugin), ("path_regex", path_plugin)])


async def stash_checks(app) -> list[Any]:
    results = dict(await app[HOOKS].checks())
    return list(results["stash_source"])


async def test_check_reachable_stash(make_app, fake_stash, library):
    rule = {"name": "nas", "plex_prefix": "/mnt/plex", "stash_prefix": library.stash_root}
    results = await stash_checks(checks_app(make_app, fake_stash.url, [rule]))
    assert all(r.ok for r in results), results
    reach, trip = results
    assert fake_stash.url in reach.name and "v0.30.1" in reach.detail
    assert "25 of 25" in trip.detail


async def test_check_reports_refused_key(make_app, fake_stash):
    fake_stash.fault = "401"
    (result,) = await stash_checks(checks_app(make_app, fake_stash.url))
    assert not result.ok
    assert "stash.api_key" in result.detail and "401" in result.detail


async def test_check_reports_unreachable_stash(make_app, fake_stash):
    url = fake_stash.url
    await fake_stash.close()
    (result,) = await stash_checks(checks_app(make_app, url))
    assert not result.ok and "cannot connect" in result.detail


async def test_check_finds_a_lossy_path_rule(make_app, fake_stash, library):
    # Stash -> Plex drops nothing, but Plex -> Stash adds a folder: every path comes back
    # different, which would make every exact-path match miss.
    rule = {
        "name": "lossy",
        "stash_pattern": r"^/data/stash/(?P<rest>.+)$",
        "plex_template": "/media/plex/{rest}",
        "plex_pattern": r"^/media/plex/(?P<rest>.+)$",
        "stash_template": "/data/stash/Lost/{rest}",
    }
    results = await stash_checks(checks_app(make_app, fake_stash.url, [rule]))
    trip = next(r for r in results if "round-trip" in r.name)
    assert not trip.ok
    scene = library.scenes[min(library.scenes)]
    original = scene["files"][0]["path"]
    rel = original.removeprefix("/data/stash/")
    assert f"{original} -> /media/plex/{rel} -> /data/stash/Lost/{rel}" in trip.detail


async def test_checks_against_a_keyed_stash(make_app, library):
    async with FakeStash(library, api_key="check-key-1") as stash:
        app = make_app(
            {"stash": {"url": stash.url, "api_key": "check-key-1", "timeout_s": 1.0}},
            plugins=[("stash_source", stash_plugin), ("path_regex", path_plugin)],
        )
        results = await stash_checks(app)
        assert all(r.ok for r in results), results
        assert not any("check-key-1" in r.detail or "check-key-1" in r.name for r in results)


async def test_health_reports_every_documented_field(provider, fake_stash, library):
    client = await provider(fake_stash.url)
    status, body = await health(client)
    assert status == 200 and body["status"] == "ok"
    report = body["plugins"]["stash_source"]
    assert report == {
        "ready": True,
        "stash_url": fake_stash.url,
        "sample_library": False,
        "stash_reachable": True,
        "stash_last_ok_at": report["stash_last_ok_at"],
        "stash_error": None,
        "stash_requests": fake_stash.graphql_requests,
        "index_scenes": len(library.scenes),
        "index_files": sum(len(s["files"]) for s in library.scenes.values()),
        "index_age_s": report["index_age_s"],
        "index_sync_error": None,
        "metadata_stale_served": 0,
    }
    assert isinstance(report["stash_last_ok_at"], float)
    assert 0 <= report["index_age_s"] < 60
