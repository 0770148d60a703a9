"""POST /push/webhook: off without a token, 401, 400 naming the problem, 202 once queued;
GET /push/status; push state in /healthz."""

from __future__ import annotations

import pytest

from stash2plex_plex_push.service import get_service

AUTH = {"Authorization": "Bearer s3cret"}


async def test_without_a_token_the_webhook_is_off_and_says_so(push_app, serve):
    client = await serve(push_app({"webhook_token": ""}))
    resp = await client.post("/push/webhook", json={"event": "Scene.Update.Post", "id": 1})
    assert resp.status == 403
    body = await resp.json()
    assert "webhook_token" in body["message"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"X-Stash2plex-Token": "s3cre"}]
)
async def test_a_bad_token_is_a_401_json(push_app, serve, headers):
    client = await serve(push_app())
    resp = await client.post(
        "/push/webhook", json={"event": "Scene.Update.Post", "id": 1}, headers=headers
    )
    assert resp.status == 401
    assert resp.content_type == "application/json"
    assert "token" in (await resp.json())["message"]
    assert (await get_service(client.app).status())["pending"] == 0


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"", "empty"),
        (b"{nope", "not valid JSON"),
        (b"[1]", "JSON object"),
        (b'{"event": "Tag.Update.Post", "id": 1}', "event"),
        (b'{"event": "Scene.Update.Post"}', "id"),
        (b'{"event": "Scene.Update.Post", "id": "x1"}', "id"),
        (b'{"task": "format_disk"}', "task"),
        (b'{"task": "push_recent", "hours": -1}', "hours"),
        (b'{"hello": 1}', "event"),
    ],
)
async def test_a_bad_body_is_a_400_naming_the_problem(push_app, serve, body, named):
    client = await serve(push_app())
    resp = await client.post("/push/webhook", data=body, headers=AUTH)
    assert resp.status == 400
    assert named in (await resp.json())["message"]


async def test_accepted_events_are_queued_before_the_202(push_app, serve, tmp_path):
    app = push_app({"enabled": False})  # no worker: the rows stay for us to see
    client = await serve(app)
    for event, scene in [
        ("Scene.Update.Post", 7),
        ("Scene.Create.Post", "8"),
        ("Scene.Update.Post", 7),
        ("Scene.Destroy.Post", 9),
    ]:
        resp = await client.post("/push/webhook", json={"event": event, "id": scene}, headers=AUTH)
        assert resp.status == 202
    # Another connection to the file sees them: they are on disk, merged per scene.
    from stash2plex_plex_push.store import Store

    other = Store(tmp_path / "data" / "push-queue.sqlite3")
    jobs = {j.rating_key: j for j in other.jobs()}
    assert set(jobs) == {"stash-7", "stash-8", "stash-9"}
    assert jobs["stash-7"].seq == 2
    assert jobs["stash-9"].destroyed
    resp = await client.post(
        "/push/webhook", json={"task": "push_recent", "hours": 24}, headers=AUTH
    )
    assert resp.status == 202
    assert len(other.sweeps()) == 1

    status = await (await client.get("/push/status")).json()
    assert status["pending"] == 3
    assert {"pending", "retrying", "dead", "breaker"} <= status.keys()
    assert status["breaker"]["state"] == "closed"
    health = await client.get("/healthz")
    body = await health.json()
    assert body["plugins"]["plex_push"]["pending"] == 3
