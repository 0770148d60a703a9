"""Run the fake Stash with a generated library in its own process, for the benchmark.

Prints one JSON line: ``{"url": ..., "stats_url": ...}``; ``GET stats_url`` answers the
number of GraphQL requests the fake has served (Stash requests caused by the provider).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from aiohttp import web

from stash2plex_stash_source.fake import FakeStash, generate_library


async def main(scenes: int, seed: int) -> None:
    library = generate_library(scenes=scenes, seed=seed)
    stash = FakeStash(library)
    url = await stash.start()

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {"graphql_requests": stash.graphql_requests, "image_requests": stash.image_requests}
        )

    app = web.Application()
    app.router.add_get("/stats", stats)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(
        json.dumps({"url": url, "stats_url": f"http://127.0.0.1:{runner.addresses[0][1]}/stats"}),
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await stash.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenes", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.scenes, args.seed))
