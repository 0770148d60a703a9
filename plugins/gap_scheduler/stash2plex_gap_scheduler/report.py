"""The report, read back: ``GET /gaps``, ``GET /gaps/unmatched`` and ``stash2plex gaps``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

import attrs
from aiohttp import web

from stash2plex import (
    CONFIG,
    GapKind,
    error_response,
    run_in_background,
    started,
    token_refusal,
)

from .detector import STATE, GapDetector, ScanBusy, log, scan_json
from .scan import NotReady, iso
from .store import Store, StoredGap, UnmatchedEntry

#: ``?limit=`` of ``GET /gaps``: default and largest page.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: How long ``stash2plex gaps scan`` waits for a first index build before giving up.
CLI_READY_WAIT_S = 300.0


class BadQuery(ValueError):
    """A query parameter with a value the route cannot use."""


def gap_json(stored: StoredGap) -> dict[str, Any]:
    body = attrs.asdict(stored.gap)
    body["kind"] = stored.gap.kind.value
    body["first_seen"] = iso(stored.first_seen)
    body["last_seen"] = iso(stored.last_seen)
    return body


def unmatched_json(entry: UnmatchedEntry) -> dict[str, Any]:
    return {
        "filename": entry.filename,
        "title": entry.title,
        "first_seen": iso(entry.first_seen),
        "last_seen": iso(entry.last_seen),
        "count": entry.count,
        "verdict": entry.verdict,
        "likely_scene": entry.verdict != "none",
        "candidates": entry.candidates,
    }


def parse_query(query: Mapping[str, str]) -> tuple[str | None, int, int]:
    """``kind``, ``offset`` and ``limit`` of a report request, validated."""
    kind = query.get("kind") or None
    kinds = [k.value for k in GapKind]
    if kind is not None and kind not in kinds:
        raise BadQuery(f"kind must be one of {', '.join(kinds)}; got {kind!r}")
    offset = _whole(query, "offset", 0, None)
    limit = _whole(query, "limit", DEFAULT_LIMIT, MAX_LIMIT)
    if limit < 1:
        raise BadQuery(f"limit must be between 1 and {MAX_LIMIT}; got {limit}")
    return kind, offset, limit


def _whole(query: Mapping[str, str], name: str, default: int, most: int | None) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise BadQuery(f"{name} must be a whole number of 0 or more; got {text!r}")
    value = int(text)
    if most is not None and value > most:
        raise BadQuery(f"{name} must be at most {most}; got {value}")
    return value


def _detector(request: web.Request) -> GapDetector:
    detector = request.app[STATE].detector
    if detector is None:
        # the host turns it into its JSON error, {"error": ..., "message": "gaps not started"}
        raise web.HTTPServiceUnavailable(text="gaps not started")
    return detector


async def report_body(
    store: Store, kind: str | None, offset: int, limit: int, detector: GapDetector | None
) -> dict[str, Any]:
    # The last scan first: a scan committing between the two reads then shows its gaps
    # under the previous scan's line, never an empty report under the new one.
    last = await store.last_scan()
    gaps, total = await store.report(kind, offset, limit)
    body: dict[str, Any] = {
        "gaps": [gap_json(g) for g in gaps],
        "total": total,
        "offset": offset,
        "limit": limit,
        "counts": await store.counts(),
        "last_scan": scan_json(last),
    }
    if last is not None and last.status != "ok":
        body["last_good_scan"] = scan_json(await store.last_scan("ok"))
    if detector is not None:
        body["next_scan_at"] = iso(detector.next_scan_at) if detector.scheduled else None
        body["scan_running_since"] = iso(detector.running)
    return body


async def get_gaps(request: web.Request) -> web.Response:
    try:
        kind, offset, limit = parse_query(request.query)
    except BadQuery as exc:
        return error_response(400, str(exc))
    detector = _detector(request)
    return web.json_response(await report_body(detector.store, kind, offset, limit, detector))


async def get_unmatched(request: web.Request) -> web.Response:
    try:
        _kind, offset, limit = parse_query({k: v for k, v in request.query.items() if k != "kind"})
    except BadQuery as exc:
        return error_response(400, str(exc))
    entries = await _detector(request).store.unmatched()
    page = entries[offset : offset + limit]
    return web.json_response(
        {
            "unmatched": [unmatched_json(e) for e in page],
            "total": len(entries),
            "offset": offset,
            "limit": limit,
        }
    )


async def post_scan(request: web.Request) -> web.Response:
    """Start a scan now (the Stash companion plugin's task); 202 at once, the scan runs
    in the background and ``GET /gaps`` shows it running, then its report."""
    detector = _detector(request)
    refused = token_refusal(
        request,
        detector.config.scan_token,
        setting="gaps.scan_token",
        off="the gap scan route is off (the Stash companion plugin sends its one token)",
    )
    if refused is not None:
        return refused
    if detector.running is not None:
        return error_response(409, "a gap scan is already running; GET /gaps shows it")
    run_in_background(request.app, _scan_quietly(detector), name="gaps-scan-route")
    return web.json_response({"scan": "started", "report": "/gaps"}, status=202)


async def _scan_quietly(detector: GapDetector) -> None:
    try:
        await detector.scan("route")
    except (ScanBusy, NotReady) as exc:  # said in the log: the caller has its 202 already
        log.info("gaps.scan_skipped", trigger="route", reason=str(exc))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/gaps", get_gaps),
        web.get("/gaps/unmatched", get_unmatched),
        web.post("/gaps/scan", post_scan),
    ]


# --- the CLI ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=["report", "scan", "fix"],
        default="report",
        help="report (default): print the last report; scan: compare now; "
        "fix: hand stale and never-pushed scenes to push sync",
    )
    parser.add_argument("--kind", choices=[k.value for k in GapKind], help="one kind only")
    parser.add_argument("--json", action="store_true", help="print JSON (as GET /gaps)")
    parser.add_argument(
        "--rows",
        type=int,
        default=None,
        help=f"rows shown per kind (default 5); with --json, in all (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--scan", action="store_true", help="fix: scan first")


async def run(args: argparse.Namespace, app: web.Application) -> int:
    if args.action == "report":
        return await _print_report(args, app)
    async with started(app):
        detector = app[STATE].detector
        assert detector is not None  # set by the plugin's start-up
        if args.action == "scan" or args.scan:
            code = await _scan(detector, args)
            if code or args.action == "scan":
                return code
        queued = await detector.push_stale(reason="gaps fix (CLI)")
        if queued is None:
            print(
                "stash2plex gaps fix: push sync is not installed (pip install "
                "stash2plex-plex-push), so there is nothing to push stale scenes with",
                file=sys.stderr,
            )
            return 1
        print(f"queued {queued} stale or never-pushed scene(s) for push sync")
        if await detector.store.last_scan("ok") is None:
            print("no gap scan has finished yet: `stash2plex gaps fix --scan` scans first")
        return 0


async def _scan(detector: GapDetector, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + CLI_READY_WAIT_S
    while True:
        try:
            row = await detector.scan("cli")
            break
        except NotReady as exc:
            if time.monotonic() > deadline:
                print(f"stash2plex gaps scan: {exc}", file=sys.stderr)
                return 1
            await asyncio.sleep(1.0)
        except ScanBusy as exc:
            print(f"stash2plex gaps scan: {exc}", file=sys.stderr)
            return 1
    if row.status != "ok":
        print(f"stash2plex gaps scan: failed: {row.error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(scan_json(row), indent=2))
    else:
        found = ", ".join(f"{k} {n}" for k, n in row.stats["found"].items() if n) or "no gaps"
        print(
            f"scanned {row.stats['plex_items']} Plex item(s) against {row.stats['scenes']} "
            f"scene(s) in {row.finished_at - row.started_at:.1f}s: {found}"
        )
    return 0


async def _print_report(args: argparse.Namespace, app: web.Application) -> int:
    store = await Store(app[CONFIG].data_dir).open()
    try:
        if args.json:
            rows = DEFAULT_LIMIT if args.rows is None else args.rows
            body = await report_body(store, args.kind, 0, max(1, rows), None)
            print(json.dumps(body, indent=2))
            return 0
        counts = await store.counts()
        last = await store.last_scan()
        if last is None:
            print("no gap scan yet: run `stash2plex gaps scan`")
        else:
            state = "ok" if last.status == "ok" else f"FAILED: {last.error}"
            print(
                f"last scan {iso(last.started_at)} ({last.finished_at - last.started_at:.1f}s,"
                f" {last.trigger}): {state}"
            )
        kinds = [args.kind] if args.kind else [k.value for k in GapKind]
        width = max(len(k) for k in kinds)
        print()
        for kind in kinds:
            print(f"{kind:<{width}}  {counts.get(kind, 0):>7}")
        for kind in kinds:
            gaps, total = await store.report(kind, 0, 5 if args.rows is None else max(0, args.rows))
            if not gaps:
                continue
            print(f"\n{kind} ({total}):")
            for stored in gaps:
                gap = stored.gap
                where = gap.plex_path or gap.stash_path or ""
                name = gap.rating_key or gap.plex_rating_key or ""
                print(f"  {name:<12} {gap.title[:40]:<40} {where}")
                print(f"  {'':<12} {gap.detail}")
            if total > len(gaps):
                print(f"  ... {total - len(gaps)} more (--kind {kind} --rows N, or --json)")
        return 0
    finally:
        await store.close()
