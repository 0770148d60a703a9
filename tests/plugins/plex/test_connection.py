"""The connection: a stable client identifier, one worker thread, the token kept secret."""

from __future__ import annotations

import threading

import pytest

from stash2plex import HOOKS, PlexTransient, create_app, started
from stash2plex_plex import plugin as plex_plugin
from stash2plex_plex.connection import CLIENT_ID_FILE, PlexConnection
from stash2plex_plex.fake import FakePMS, plex_section


async def test_two_starts_send_the_same_client_identifier(fake_pms: FakePMS, tmp_path):
    data = tmp_path / "data"
    seen: list[set[str | None]] = []
    for _ in range(2):
        app = create_app(
            {"server": {"data_dir": str(data)}, "plex": plex_section(fake_pms)},
            plugins=[("plex", plex_plugin)],
            load_entrypoints=False,
            env={},
        )
        fake_pms.requests.clear()
        async with started(app):
            library = await app[HOOKS].plex_library()
            await library.refresh_index()
        seen.append({r.client_identifier for r in fake_pms.requests})
    assert seen[0] == seen[1]
    (identifier,) = seen[0]
    assert identifier == (data / CLIENT_ID_FILE).read_text().strip()
    assert {r.product for r in fake_pms.requests} == {"stash2plex"}


async def test_every_call_runs_on_one_worker_thread(fake_pms: FakePMS):
    conn = PlexConnection(fake_pms.url, fake_pms.token or "", client_id="x", timeout_s=3)
    try:
        names = {await conn.call(lambda _server: threading.current_thread().name) for _ in range(5)}
        assert len(names) == 1 and names != {threading.current_thread().name}
    finally:
        conn.close()


async def test_the_token_stays_out_of_logs_and_errors(fake_pms: FakePMS, plex_app, capsys):
    app = await plex_app()
    library = await app[HOOKS].plex_library()
    await library.refresh("101")
    fake_pms.fault = "503"
    try:
        await library.refresh("101")
    except Exception as exc:
        assert fake_pms.token not in str(exc)
    out = capsys.readouterr()
    assert fake_pms.token not in out.out + out.err
    # only ever a header: never in a URL Plex or a proxy could log
    assert all(fake_pms.token not in r.query for r in fake_pms.requests)


async def test_a_closed_connection_refuses_calls_at_once(fake_pms: FakePMS):
    conn = PlexConnection(fake_pms.url, fake_pms.token or "", client_id="x", timeout_s=3)
    assert await conn.call(lambda server: server.friendlyName) == "fake-pms"
    conn.close()
    with pytest.raises(PlexTransient, match="closed"):
        await conn.call(lambda server: server.friendlyName)
