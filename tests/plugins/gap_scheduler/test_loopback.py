"""Gap detection end to end over loopback: the real stash_source against the fake Stash,
the real plex plugin against the fake PMS, path_regex between them; and the CLI in a
separate process, which may be killed midway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from gapfakes import MemoryPush, Sides

import stash2plex_gap_scheduler.plugin as gaps_plugin
import stash2plex_path_regex.plugin as path_plugin
import stash2plex_plex.plugin as plex_plugin
import stash2plex_stash_source.plugin as stash_plugin
from stash2plex import HOOKS, started
from stash2plex_gap_scheduler.detector import STATE, ScanBusy
from stash2plex_gap_scheduler.store import ScanLock
from stash2plex_plex.fake import FakePMS, plex_section
from stash2plex_stash_source.fake import FakeStash, Library, generate_library

IDENT = "tv.plex.agents.custom.stash2plex"
RULE = {"name": "stash", "plex_prefix": "/media/plex", "stash_prefix": "/data/stash"}


def seed(pms: FakePMS, library: Library) -> dict[str, Any]:
    """Plex's library from the Stash library's own account of what Plex sees, with a few
    items held by another agent or none. Returns what a correct scan must find."""
    pms.add_section("1", "Scenes", locations=["/media/plex"])
    expected: dict[str, set[str]] = {"plex_only": set(), "other_agent": set()}
    listed: set[int] = set()
    for n, f in enumerate(library.plex_files(root="/media/plex")):
        sid = f.expected_scene_id
        if f.stash_path is None:  # Plex-only (or a copy Stash does not hold at this path)
            item = pms.add_item("1", f"extra {n}", files=[f.plex_path])
            expected["plex_only"].add(item.rating_key)
            continue
        listed.add(sid)
        if sid % 17 == 0:
            guid = "plex://movie/5d77" if sid % 2 else ""  # another agent, or none
            item = pms.add_item("1", f"scene {sid}", files=[f.plex_path], guid=guid)
            expected["other_agent"].add(f"stash-{sid}")
        else:
            pms.add_item(
                "1", f"scene {sid}", files=[f.plex_path], guid=f"{IDENT}://movie/stash-{sid}"
            )
    # a scene without a file (Stash keeps "upcoming" ones) has nothing to compare
    expected["stash_only"] = {
        f"stash-{s}" for s, scene in library.scenes.items() if s not in listed and scene["files"]
    }
    expected["in_plex"] = {f"stash-{s}" for s in listed}
    return expected


@pytest.fixture
async def sides():
    library = generate_library(scenes=150, seed=23)
    # a Stash folder no rule maps and no Plex library holds: one unmappable gap
    elsewhere = {
        library.add_scene(title=f"elsewhere {n}", files=[f"/mnt/other/set {n % 3}/o{n}.mp4"])
        for n in range(30)
    }
    async with FakeStash(library) as stash, FakePMS() as pms:
        expected = seed(pms, library)
        expected["stash_only"] -= {f"stash-{s}" for s in elsewhere}
        yield library, stash, pms, expected


def raw_config(stash: FakeStash, pms: FakePMS, data_dir: Path) -> dict[str, Any]:
    return {
        "server": {"data_dir": str(data_dir)},
        "stash": {"url": stash.url, "timeout_s": 2.0},
        "plex": plex_section(pms),
        "path_regex": {"rules": [RULE]},
        "gaps": {"interval": "0"},
    }


async def ready(app) -> None:
    deadline = time.monotonic() + 20
    while not (await app[HOOKS].scene_catalog()).ready:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


def kinds(gaps) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for g in gaps:
        gap = g.gap
        name = gap.rating_key if gap.kind.value != "plex_only" else gap.plex_rating_key
        out.setdefault(gap.kind.value, set()).add(name or gap.title)
    return out


async def test_a_scan_against_the_fake_pms_and_the_fake_stash(sides, make_app, tmp_path):
    _library, stash, pms, expected = sides
    in_plex = sorted(expected["in_plex"], key=lambda k: int(k.split("-")[1]))
    # the ledger: most pushed after their last change, one pushed before it, some never
    pushed = {k: _far_future() for k in in_plex[5:]}
    pushed[in_plex[5]] = _long_ago()
    push = MemoryPush(pushed)
    app = make_app(
        raw_config(stash, pms, tmp_path / "data"),
        plugins=[
            ("stash_source", stash_plugin),
            ("plex", plex_plugin),
            ("path_regex", path_plugin),
            ("gap_scheduler", gaps_plugin),
            ("push", Sides(push=push)),
        ],
    )
    async with started(app):
        await ready(app)
        detector = app[STATE].detector
        row = await detector.scan("test")
        assert row.status == "ok", row.error
        gaps, _total = await detector.store.report(limit=1000)
    found = kinds(gaps)
    assert found["plex_only"] == expected["plex_only"]
    assert found["stash_only"] == expected["stash_only"]
    assert found["other_agent"] == expected["other_agent"]
    assert found["stale"] == {*in_plex[:6]}
    assert found["unmappable"] == {"/mnt/other"}
    assert set(found) == {"plex_only", "stash_only", "other_agent", "stale", "unmappable"}
    assert len(expected["plex_only"]) >= 2 and len(expected["stash_only"]) >= 1
    unmappable = next(g.gap for g in gaps if g.gap.kind.value == "unmappable")
    assert unmappable.detail.startswith("30 Stash scene(s) under /mnt/other")
    assert row.stats["plex_items"] == len(pms.items)
    assert row.stats["read_plex_s"] > 0 and row.stats["compare_s"] >= 0


async def test_cli_scan_runs_beside_the_server_and_a_kill_leaves_the_report(
    sides, make_app, tmp_path
):
    _library, stash, pms, _expected = sides
    data_dir = tmp_path / "data"
    config = tmp_path / "stash2plex.toml"
    # the CLI loads installed plugins: without push sync, as gap detection works alone
    config.write_text(
        _toml({**raw_config(stash, pms, data_dir), "plugins": {"disable": ["plex_push"]}})
    )

    # the CLI scans while no server runs
    code, out, err = await _cli(config, "gaps", "scan")
    assert code == 0, err
    assert "scanned" in out and "stash_only" in out
    code, out, err = await _cli(config, "gaps", "--json")
    report = json.loads(out)
    assert code == 0 and report["total"] > 0 and report["last_scan"]["trigger"] == "cli"
    code, out, _err = await _cli(config, "gaps", "--kind", "unmappable")
    assert "unmappable" in out and "/mnt/other" in out
    code, _out, err = await _cli(config, "gaps", "fix")
    assert code == 1 and "push sync is not installed" in err

    # a server runs; a CLI scan holds the lock (Plex made slow), then is killed -9
    app = make_app(
        raw_config(stash, pms, data_dir),
        plugins=[
            ("stash_source", stash_plugin),
            ("plex", plex_plugin),
            ("path_regex", path_plugin),
            ("gap_scheduler", gaps_plugin),
        ],
    )
    async with started(app):
        await ready(app)
        detector = app[STATE].detector
        before, total = await detector.store.report(limit=1000)
        pms.slow_seconds = 20.0
        pms.fault = "slow"  # every Plex answer now takes 20 s: the CLI scan waits midway
        proc = await _spawn(config, "gaps", "scan", env={"STASH2PLEX_PLEX__TIMEOUT_S": "60"})
        try:
            deadline = time.monotonic() + 30
            while not _lock_held(data_dir):
                assert proc.returncode is None, await proc.stderr.read()
                assert time.monotonic() < deadline, "the CLI scan never started"
                await asyncio.sleep(0.05)
            # the CLI process holds the scan lock: the server cannot start a second scan
            with pytest.raises(ScanBusy, match="already running"):
                await detector.scan("test")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        pms.fault = None
        after, total_after = await detector.store.report(limit=1000)
        assert [g.gap for g in after] == [g.gap for g in before] and total_after == total
        assert not _lock_held(data_dir)  # the dead process's lock went with it
        last = await detector.store.last_scan()
        assert last is not None and last.trigger == "cli" and last.status == "ok"


def _lock_held(data_dir: Path) -> bool:
    lock = ScanLock(data_dir)
    if lock.acquire():
        lock.release()
        return False
    return True


def _far_future():
    from datetime import UTC, datetime

    return datetime(2100, 1, 1, tzinfo=UTC)


def _long_ago():
    from datetime import UTC, datetime

    return datetime(2000, 1, 1, tzinfo=UTC)


def _toml(raw: dict[str, Any]) -> str:
    lines = []
    for section, values in raw.items():
        if section == "path_regex":
            for rule in values["rules"]:
                lines.append("[[path_regex.rules]]")
                lines += [f"{k} = {json.dumps(v)}" for k, v in rule.items()]
            continue
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


async def _spawn(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    env = {**os.environ, "STASH2PLEX_CONFIG": str(config), **(env or {})}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stash2plex",
        "--log-level",
        "warning",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    proc = await _spawn(config, *args)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise
    return proc.returncode or 0, out.decode(), err.decode()
