"""Operations: /healthz from memory, stash2plex check, stash2plex plex libraries / find."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from stash2plex import HOOKS, PlexTransient
from stash2plex_plex import plugin as plex_plugin
from stash2plex_plex.fake import FakePMS, plex_section


async def test_healthz_reports_plex_and_stays_200_while_plex_is_down(
    aiohttp_client, make_app, fake_pms: FakePMS
):
    app = make_app({"plex": plex_section(fake_pms)}, plugins=[("plex", plex_plugin)])
    client = await aiohttp_client(app)
    library = await app[HOOKS].plex_library()
    await library.refresh_index()
    body = await (await client.get("/healthz")).json()
    plex = body["plugins"]["plex"]
    assert (plex["ready"], plex["reachable"], plex["items"]) == (True, True, 4)
    assert plex["server"].startswith("fake-pms ")

    fake_pms.fault = "down"
    with pytest.raises(PlexTransient):
        await library.refresh("101")
    resp = await client.get("/healthz")
    plex = (await resp.json())["plugins"]["plex"]
    assert resp.status == 200
    assert plex["reachable"] is False and "cannot reach Plex" in plex["error"]
    assert plex["items"] == 4  # the index outlives the outage


async def test_a_hanging_plex_never_holds_up_the_provider(
    aiohttp_client, make_app, fake_pms: FakePMS
):
    app = make_app({"plex": plex_section(fake_pms)}, plugins=[("plex", plex_plugin)])
    client = await aiohttp_client(app)
    library = await app[HOOKS].plex_library()
    await library.refresh_index()
    fake_pms.fault, fake_pms.slow_seconds = "slow", 30
    pending = asyncio.ensure_future(library.refresh("101"))
    await asyncio.sleep(0.05)
    # Plex holds the worker thread; the provider's routes answer meanwhile
    for path in ("/healthz", "/"):
        assert (await client.get(path)).status == 200
    assert not pending.done()
    pending.cancel()


async def test_no_url_means_no_plex_library_and_a_passing_check(make_app):
    app = make_app({}, plugins=[("plex", plex_plugin)])
    assert await app[HOOKS].plex_library() is None
    [(name, results)] = await app[HOOKS].checks()
    assert name == "plex" and [r.ok for r in results] == [True]


async def check(make_app, fake_pms: FakePMS, **plex):
    app = make_app({"plex": plex_section(fake_pms, **plex)}, plugins=[("plex", plex_plugin)])
    [(_name, results)] = await app[HOOKS].checks()
    return [(r.ok, r.name, r.detail) for r in results]


async def test_check_lines(make_app, fake_pms: FakePMS):
    fake_pms.add_section("3", "Shows", type="show")
    lines = await check(make_app, fake_pms, libraries=["Stash", "Shows", "Stahs"])
    assert lines == [
        (True, f"plex answers at {fake_pms.url}", "version 1.42.2.10156-f737b826c"),
        (True, "plex token", "accepted by fake-pms 1.42.2.10156-f737b826c"),
        (True, "plex library 'Stash'", "movie library, key 1, agent tv.plex.agents.none, 3 items"),
        (False, "plex library 'Shows'", "a show library; only movie libraries are read"),
        (
            False,
            "plex library 'Stahs'",
            "no library of that name (names are case-sensitive; the server has: "
            "'Stash', 'Movies', 'Shows')",
        ),
    ]
    lines = await check(make_app, fake_pms)
    assert lines[-1] == (
        True,
        "plex libraries",
        "every movie library: 'Stash' (3 items), 'Movies' (1 items)",
    )


async def test_check_names_a_bad_token_and_a_dead_plex(make_app, fake_pms: FakePMS):
    lines = await check(make_app, fake_pms, token="wrong")
    assert lines[0][0] is True
    assert lines[1][:2] == (False, "plex token")
    assert "rejected the token (401)" in lines[1][2] and "wrong" not in lines[1][2]
    assert len(lines) == 2
    url = fake_pms.url
    await fake_pms.close()
    lines = await check(make_app, fake_pms, url=url)
    assert [(ok, name) for ok, name, _ in lines] == [(False, f"plex answers at {url}")]
    assert "cannot reach Plex" in lines[0][2]


# --- the command line, as a real process ---------------------------------------------------


async def cli(tmp_path: Path, pms: FakePMS, *args: str, extra: str = "") -> tuple[int, str]:
    cfg = tmp_path / "stash2plex.toml"
    cfg.write_text(
        f"[server]\ndata_dir = {str(tmp_path / 'data')!r}\n\n"
        f"[plex]\nurl = {pms.url!r}\ntimeout_s = 5\n{extra}\n"
        "[[path_regex.rules]]\nname = 'nas'\nplex_prefix = '/data/stash'\n"
        "stash_prefix = '/srv/stash'\n",
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stash2plex",
        "--config",
        str(cfg),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "STASH2PLEX_PLEX__TOKEN": pms.token or ""},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def test_cli_plex_libraries(tmp_path, fake_pms: FakePMS):
    code, out = await cli(tmp_path, fake_pms, "plex", "libraries", extra="libraries = ['Stash']")
    assert code == 0, out
    lines = out.splitlines()
    assert "   1  read  movie   'Stash'  3 items  agent tv.plex.agents.none" in lines
    assert "   2  -     movie   'Movies'  1 items  agent tv.plex.agents.movie" in lines
    assert "                 /data/stash" in lines
    assert fake_pms.token not in out


async def test_cli_plex_find_says_which_lookup_found_the_item(tmp_path, fake_pms: FakePMS):
    code, out = await cli(
        tmp_path, fake_pms, "plex", "find", "/data/stash/Studio B/scene-three - part2.mkv"
    )
    assert code == 0, out
    assert "found by path, as Plex spells it" in out and "ratingKey 103" in out

    code, out = await cli(tmp_path, fake_pms, "plex", "find", "/srv/stash/Studio A/scene-two.mp4")
    assert code == 0, out
    assert "found by mapped path '/data/stash/Studio A/scene-two.mp4'" in out
    assert "provider key stash-22" in out

    code, out = await cli(tmp_path, fake_pms, "plex", "find", "/elsewhere/scene-one.mp4")
    assert code == 1
    assert "not found" in out and "101: /data/stash/Studio A/scene-one.mp4" in out
