"""stash2plex push: the Stash plugin that tells stash2plex which scenes changed.

Stash runs this script (``interface: raw``) with its plugin input as JSON on stdin: a
hook's ``args.hookContext`` ({"type": "Scene.Update.Post", "id": 45, ...}) or a task's
``args.mode``. The script forwards it to stash2plex's webhook in one short request and
returns at once: stash2plex queues the work on disk and pushes it to Plex on its own, so
a Stash save never waits for Plex.

Settings (Settings > Plugins > stash2plex push): ``url`` and ``token``; the environment
variables STASH2PLEX_PUSH_URL and STASH2PLEX_PUSH_TOKEN override them (handy in Docker).
Only the Python standard library is needed; with stashapp-tools installed, log lines go
through its ``stashapi.log`` (Stash's log format), otherwise through the same format
written here.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any

PLUGIN_ID = "stash2plex_push"
TIMEOUT_S = 5.0
SCENE_EVENTS = ("Scene.Update.Post", "Scene.Create.Post", "Scene.Destroy.Post")
TASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "push_all": ("/push/webhook", {"task": "push_all"}),
    "push_recent_24h": ("/push/webhook", {"task": "push_recent", "hours": 24}),
    "push_recent_7d": ("/push/webhook", {"task": "push_recent", "hours": 168}),
    "scan_gaps": ("/gaps/scan", {}),
}

try:
    import stashapi.log as log  # stashapp-tools
except ImportError:  # the same control-character format Stash reads from stderr

    class log:  # type: ignore[no-redef]  # stands in for the stashapi.log module
        @staticmethod
        def _write(level: str, message: str) -> None:
            for line in str(message).splitlines() or [""]:
                sys.stderr.write(f"\x01{level}\x02{line}\n")
            sys.stderr.flush()

        @staticmethod
        def debug(message: str) -> None:
            log._write("d", message)

        @staticmethod
        def info(message: str) -> None:
            log._write("i", message)

        @staticmethod
        def warning(message: str) -> None:
            log._write("w", message)

        @staticmethod
        def error(message: str) -> None:
            log._write("e", message)


class Failed(Exception):
    pass


def settings(connection: dict[str, Any]) -> tuple[str, str]:
    """(url, token): from the environment, else from this plugin's settings in Stash."""
    url = os.environ.get("STASH2PLEX_PUSH_URL", "")
    token = os.environ.get("STASH2PLEX_PUSH_TOKEN", "")
    if not (url and token) and connection:
        stored = _plugin_settings(connection)
        url = url or str(stored.get("url") or "")
        token = token or str(stored.get("token") or "")
    if not url:
        raise Failed("set 'stash2plex URL' in Settings > Plugins > stash2plex push")
    return url.rstrip("/"), token


def _plugin_settings(connection: dict[str, Any]) -> dict[str, Any]:
    """One GraphQL query to Stash with the session Stash handed us. (stashapi's
    StashInterface would cost three requests, one a full schema introspection, on every
    scene save.)"""
    host = connection.get("Host") or "localhost"
    if host == "0.0.0.0":
        host = "127.0.0.1"
    endpoint = f"{connection.get('Scheme') or 'http'}://{host}:{connection.get('Port') or 9999}"
    query = {
        "query": "query ($ids: [ID!]) { configuration { plugins(include: $ids) } }",
        "variables": {"ids": [PLUGIN_ID]},
    }
    headers = {"Content-Type": "application/json"}
    cookie = (connection.get("SessionCookie") or {}).get("Value")
    if cookie:
        headers["Cookie"] = f"session={cookie}"
    request = urllib.request.Request(
        f"{endpoint}/graphql", data=json.dumps(query).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            answer = json.load(response)
    except (OSError, ValueError) as exc:
        raise Failed(f"could not read this plugin's settings from Stash: {exc}") from None
    plugins = ((answer.get("data") or {}).get("configuration") or {}).get("plugins") or {}
    return plugins.get(PLUGIN_ID) or {}


def send(url: str, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("message", "")
        except ValueError:
            message = ""
        raise Failed(f"stash2plex answered {exc.code} for {path}: {message}") from None
    except OSError as exc:
        raise Failed(f"stash2plex is not reachable at {url}: {exc}") from None


def run(plugin_input: dict[str, Any]) -> str:
    args = plugin_input.get("args") or {}
    hook = args.get("hookContext")
    url, token = settings(plugin_input.get("server_connection") or {})
    if hook:
        event = hook.get("type")
        if event not in SCENE_EVENTS:
            return f"ignored {event}"
        send(url, token, "/push/webhook", {"event": event, "id": hook.get("id")})
        return f"queued scene {hook.get('id')} ({event})"
    mode = args.get("mode")
    if mode not in TASKS:
        raise Failed(f"unknown task mode {mode!r}; expected one of {', '.join(TASKS)}")
    path, body = TASKS[mode]
    try:
        answer = send(url, token, path, body)
    except Failed as exc:
        if mode == "scan_gaps" and " 404 " in str(exc):
            raise Failed(
                "this stash2plex has no gap scan route (is gap_scheduler installed?); "
                "run `stash2plex gaps scan` instead"
            ) from None
        raise
    return f"{mode}: {json.dumps(answer)}"


def main() -> int:
    try:
        plugin_input = json.loads(sys.stdin.read() or "{}")
        output = run(plugin_input)
    except Failed as exc:
        log.error(str(exc))
        print(json.dumps({"error": str(exc)}))
        return 0  # Stash reads the error from the output; a non-zero exit adds nothing
    except ValueError as exc:
        print(json.dumps({"error": f"plugin input is not JSON: {exc}"}))
        return 0
    log.info(output)
    print(json.dumps({"output": output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
