"""Build the scene index from a Stash URL into a file; print time and peak memory as JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from pathlib import Path

import aiohttp

from stash2plex_stash_source.client import StashClient
from stash2plex_stash_source.index import SceneIndex


async def main(url: str, path: Path) -> None:
    async with aiohttp.ClientSession() as session:
        client = StashClient(url, session=session, timeout_s=60)
        started = time.perf_counter()
        with SceneIndex(path) as index:
            await index.build(client)
            stats = index.stats()
        seconds = time.perf_counter() - started
    size_mb = path.stat().st_size / 2**20  # noqa: ASYNC240 - the index is closed; one stat
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_mb,
                "scenes": stats["scenes"],
                "stash_requests": client.requests,
                "file_mb": size_mb,
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", type=Path, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.path))
