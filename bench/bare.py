"""The baseline: a bare aiohttp handler that parses a JSON body and answers JSON.

It does what any match handler must (read and parse the body, build and serialize a
MediaContainer-sized answer) and nothing else: no hooks, no index, no logs.
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiohttp import web

ANSWER = {
    "MediaContainer": {
        "identifier": "tv.plex.agents.custom.stash2plex",
        "offset": 0,
        "totalSize": 1,
        "size": 1,
        "Metadata": [
            {
                "ratingKey": "stash-1",
                "key": "/library/metadata/stash-1",
                "guid": "tv.plex.agents.custom.stash2plex://movie/stash-1",
                "type": "movie",
                "title": "A Scene Title",
                "year": 2024,
                "thumb": "http://127.0.0.1:8787/images/scene/1/screenshot/0?sig=abcdefghijklmnopqrstuv",
                "score": 93,
            }
        ],
    }
}


async def handler(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    answer = dict(ANSWER)
    answer["echo"] = body.get("filename")
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default="asyncio",
        help="asyncio: aiohttp as it runs by default (the target's baseline)",
    )
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/library/metadata/matches", handler)
    app.router.add_get("/library/metadata/{key}", handler_get)
    if args.loop == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


async def handler_get(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(ANSWER), content_type="application/json")


if __name__ == "__main__":
    main()
