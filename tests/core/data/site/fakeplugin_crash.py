"""A plugin whose route and match source raise: errors must be one-line JSON logs."""

from aiohttp import web

from stash2plex import hookimpl


async def _crash(request):
    raise RuntimeError("deliberate crash for the log test")


@hookimpl
def routes(app):
    return [web.get("/crash", _crash)]


@hookimpl
async def resolve_match(request):
    if request.title == "crash":
        raise ValueError("deliberate match crash")
    return None
