"""``POST /push/webhook`` (the Stash companion plugin's door) and ``GET /push/status``.

The webhook answers 202 only once the work is in the queue file, so an accepted event
survives any crash that follows. Body shapes (JSON object)::

    {"event": "Scene.Update.Post", "id": 45}          # also Scene.Create.Post / .Destroy.Post
    {"task": "push_all"}
    {"task": "push_recent", "hours": 24}
    {"task": "push_scenes", "ids": [1, 2, 3]}
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from stash2plex import error_response, token_refusal

from .service import get_service
from .worker import INSTANCE_HEADER

WEBHOOK = "/push/webhook"
STATUS = "/push/status"
SCENE_EVENTS = ("Scene.Update.Post", "Scene.Create.Post", "Scene.Destroy.Post")
TASKS = ("push_all", "push_recent", "push_scenes")


class BadBody(Exception):
    pass


def route_defs() -> list[web.AbstractRouteDef]:
    return [web.post(WEBHOOK, webhook), web.get(STATUS, status)]


async def webhook(request: web.Request) -> web.Response:
    service = get_service(request.app)
    refused = token_refusal(
        request,
        service.config.webhook_token,
        setting="push.webhook_token",
        off="the push webhook is off (give the Stash companion plugin the same token)",
    )
    if refused is not None:
        return refused
    try:
        body = await _read(request)
        reply = await _accept(service, body)
    except BadBody as exc:
        return error_response(400, str(exc))
    return web.json_response(reply, status=202)


async def _read(request: web.Request) -> dict[str, Any]:
    raw = await request.read()  # bounded by the app's client_max_size (a 413 beyond)
    if not raw.strip():
        raise BadBody(
            'body: empty; expected a JSON object such as {"event": "Scene.Update.Post", "id": 45}'
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadBody(f"body: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadBody(f"body: expected a JSON object, got {type(data).__name__}")
    return data


def _scene_id(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise BadBody(f"{where}: expected a scene id (a number), got {value!r}")
    text = str(value).strip()
    if text.startswith("stash-"):
        text = text[6:]
    if not text.isdigit():
        raise BadBody(f"{where}: expected a scene id (a number), got {value!r}")
    return f"stash-{int(text)}"


async def _accept(service: Any, body: dict[str, Any]) -> dict[str, Any]:
    if "event" in body:
        event = body["event"]
        if event not in SCENE_EVENTS:
            raise BadBody(f"event: {event!r} is not one of {', '.join(SCENE_EVENTS)}")
        if "id" not in body:
            raise BadBody("id: missing (the scene's id)")
        key = _scene_id(body["id"], "id")
        destroyed = event == "Scene.Destroy.Post"
        await service.enqueue([key], event, destroyed=destroyed)
        return {"queued": 1, "rating_key": key, "event": event}
    task = body.get("task")
    if task is None:
        raise BadBody(f'body: needs "event" (a Stash hook) or "task" (one of {", ".join(TASKS)})')
    if task == "push_all":
        await service.sweep(None, "task:push_all")
        return {"task": task, "queued": "every scene"}
    if task == "push_recent":
        hours = body.get("hours", 24)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
            raise BadBody(f"hours: expected a positive number, got {hours!r}")
        since = time.time() - hours * 3600
        await service.sweep(since, f"task:push_recent:{hours:g}h")
        return {"task": task, "queued": f"scenes changed in the last {hours:g} h"}
    if task == "push_scenes":
        ids = body.get("ids")
        if not isinstance(ids, list) or not ids:
            raise BadBody("ids: expected a non-empty list of scene ids")
        keys = [_scene_id(v, f"ids[{n}]") for n, v in enumerate(ids)]
        count = await service.enqueue(keys, "task:push_scenes")
        return {"task": task, "queued": count}
    raise BadBody(f"task: {task!r} is not one of {', '.join(TASKS)}")


async def status(request: web.Request) -> web.Response:
    service = get_service(request.app)
    response = web.json_response(await service.status())
    response.headers[INSTANCE_HEADER] = service.worker.instance
    return response
