"""``stash2plex push`` and ``stash2plex queue``: they work on the queue file directly,
whether or not the server runs (its worker notices new rows within ``[push] poll_s``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from stash2plex import CliCommand

from .service import iso, status_body
from .store import Store, scene_key
from .worker import open_store

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([hd])$")


def parse_since(text: str) -> float:
    """``24h``, ``7d``, ``2026-12-01`` or an ISO date-time (UTC unless it says) ->
    epoch seconds."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = float(relative[1]), relative[2]
        delta = timedelta(hours=amount) if unit == "h" else timedelta(days=amount)
        return (datetime.now(UTC) - delta).timestamp()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date: use 2026-12-01, 2026-12-01T08:00, 24h or 7d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _push_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--scene",
        action="append",
        metavar="ID",
        help="a scene id (123 or stash-123); repeat for more",
    )
    which.add_argument(
        "--since",
        type=parse_since,
        metavar="DATE",
        help="every scene changed since DATE (2026-12-01, 24h, 7d)",
    )
    which.add_argument("--all", action="store_true", help="every scene")


def _push(args: argparse.Namespace, app: web.Application) -> int:
    store = open_store(app)
    try:
        if args.scene:
            keys = [scene_key(s) for s in args.scene]
            bad = [k for k in keys if not re.fullmatch(r"[A-Za-z0-9_-]+", k)]
            if bad:
                print(f"stash2plex push: not a scene id: {', '.join(bad)}", file=sys.stderr)
                return 2
            count = store.enqueue(keys, "cli")
            print(f"queued {count} scene(s): {', '.join(keys)}")
        elif args.all:
            store.add_sweep(None, "cli:all")
            print("queued a push of every scene")
        else:
            store.add_sweep(args.since, "cli:since")
            when = datetime.fromtimestamp(args.since, UTC).isoformat(timespec="seconds")
            print(f"queued a push of every scene changed since {when}")
        print("the server's worker pushes them; `stash2plex queue` shows progress")
    finally:
        store.close()
    return 0


def _queue_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(
        dest="action", metavar="ACTION", help="list, retry or purge; none: the summary"
    )
    listing = sub.add_parser("list", help="queued jobs and dead letters, with their errors")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument("--limit", type=int, default=100, help="rows at most (default 100)")
    retry = sub.add_parser("retry", help="put dead letters back into the queue")
    retry.add_argument("ids", nargs="*", metavar="ID", help="scene ids (123 or stash-123)")
    retry.add_argument("--all", action="store_true", help="every dead letter")
    sub.add_parser("purge", help="delete every dead letter")


def _queue(args: argparse.Namespace, app: web.Application) -> int:
    store = open_store(app)
    try:
        action = getattr(args, "action", None)
        if action == "list":
            return _list(store, args)
        if action == "retry":
            if not args.all and not args.ids:
                print("stash2plex queue retry: give scene ids or --all", file=sys.stderr)
                return 2
            count = store.revive(None if args.all else [scene_key(i) for i in args.ids])
            print(f"{count} dead letter(s) queued again")
            return 0
        if action == "purge":
            print(f"{store.purge_dead()} dead letter(s) deleted")
            return 0
        return _summary(store, args)
    finally:
        store.close()


def _summary(store: Store, args: argparse.Namespace) -> int:
    body = status_body(store.counts(), store.breaker(), store.outages(), worker="(see server)")
    if args.json:
        print(json.dumps(body, indent=2))
        return 0
    age = body["oldest_age_s"]
    print(f"pending      {body['pending']}")
    print(f"retrying     {body['retrying']}")
    print(f"dead         {body['dead']}")
    print(f"not in Plex  {body['not_in_plex']}")
    if body["sweeps"]:
        print(f"bulk requests waiting for the server: {body['sweeps']}")
    print(f"oldest job   {_age(age) if age is not None else '-'}")
    breaker = body["breaker"]
    line = f"breaker      {breaker['state']}"
    if breaker["state"] != "closed":
        line += f" since {breaker['opened_at']}, next probe {breaker['probe_at'] or 'now'}"
        line += f" ({breaker['error']})"
    print(line)
    if body["outages"]:
        print("last outages:")
        for outage in body["outages"]:
            end = outage["end"] or "ongoing"
            took = _age(outage["duration_s"])
            print(f"  {outage['start']} -> {end}  {took}  {outage['error'] or ''}")
    return 0


def _list(store: Store, args: argparse.Namespace) -> int:
    jobs = store.jobs(args.limit)
    dead = store.dead_letters()
    if args.json:
        print(
            json.dumps(
                {
                    "jobs": [
                        {
                            "rating_key": j.rating_key,
                            "reason": j.reason,
                            "state": _state(j),
                            "attempts": j.attempts,
                            "next_at": iso(j.next_at),
                            "error": j.last_error,
                        }
                        for j in jobs
                    ],
                    "dead": [
                        {
                            "rating_key": d.rating_key,
                            "reason": d.reason,
                            "error": d.error,
                            "attempts": d.attempts,
                            "died_at": iso(d.died_at),
                        }
                        for d in dead
                    ],
                },
                indent=2,
            )
        )
        return 0
    now = time.time()
    for j in jobs:
        due = "due" if j.next_at <= now else f"in {_age(j.next_at - now)}"
        error = f"  {j.last_error}" if j.last_error else ""
        print(f"{j.rating_key:<16} {_state(j):<11} attempts {j.attempts:<3} {due}{error}")
    for d in dead:
        print(f"{d.rating_key:<16} dead        attempts {d.attempts:<3} {d.error}")
    if not jobs and not dead:
        print("the queue is empty")
    return 0


def _state(job: Any) -> str:
    if job.state == "parked":
        return "not_in_plex"
    return "retrying" if job.attempts else "pending"


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


COMMANDS = [
    CliCommand(
        name="push",
        help="queue scenes for a push to Plex (--scene ID | --since DATE | --all)",
        add_arguments=_push_arguments,
        run=_push,
    ),
    CliCommand(
        name="queue",
        help="the push queue: counts, breaker, outages; list | retry | purge",
        add_arguments=_queue_arguments,
        run=_queue,
    ),
]
