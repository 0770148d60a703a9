"""Operations: ``stash2plex check``'s Plex lines, ``stash2plex plex libraries`` and
``stash2plex plex find PATH``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from aiohttp import web

from stash2plex import HOOKS, CheckResult, PathDirection, PlexError, PlexItem, PlexSection

from .library import PlexLibraryService


async def check_lines(service: PlexLibraryService) -> list[CheckResult]:
    """Plex answers; the token works; each configured library exists and is a movie
    library. Stops at the first failure that makes the later lines meaningless."""
    url = service.connection.url
    try:
        version = await service.connection.identity()
    except PlexError as exc:
        return [CheckResult(name=f"plex answers at {url}", ok=False, detail=str(exc))]
    results = [CheckResult(name=f"plex answers at {url}", ok=True, detail=f"version {version}")]
    try:
        everything = await service.all_sections()
    except PlexError as exc:
        hint = "" if exc.status not in (401, 403) else "; docs/plugins/plex.md: finding the token"
        results.append(CheckResult(name="plex token", ok=False, detail=f"{exc}{hint}"))
        return results
    results.append(
        CheckResult(name="plex token", ok=True, detail=f"accepted by {service.state().server}")
    )
    wanted = service.config.libraries
    if not wanted:
        movies = [s for s in everything if s.type == "movie"]
        if not movies:
            results.append(
                CheckResult(
                    name="plex libraries",
                    ok=False,
                    detail="the server has no movie library (an Other Videos library is one)",
                )
            )
            return results
        described = [f"{s.title!r} ({await _size(service, s)} items)" for s in movies]
        results.append(
            CheckResult(
                name="plex libraries",
                ok=True,
                detail="every movie library: " + ", ".join(described),
            )
        )
        return results
    by_title = {s.title: s for s in everything}
    for name in wanted:
        section = by_title.get(name)
        label = f"plex library {name!r}"
        if section is None:
            there = ", ".join(repr(s.title) for s in everything) or "none"
            results.append(
                CheckResult(
                    name=label,
                    ok=False,
                    detail=f"no library of that name (names are case-sensitive; the server has: "
                    f"{there})",
                )
            )
        elif section.type != "movie":
            results.append(
                CheckResult(
                    name=label,
                    ok=False,
                    detail=f"a {section.type} library; only movie libraries are read",
                )
            )
        else:
            results.append(
                CheckResult(
                    name=label,
                    ok=True,
                    detail=f"movie library, key {section.key}, agent {section.agent}, "
                    f"{await _size(service, section)} items",
                )
            )
    return results


async def _size(service: PlexLibraryService, section: PlexSection) -> int | str:
    try:
        return await service.count(section.key)
    except PlexError:
        return "?"


# --- stash2plex plex ... -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(
        dest="plex_command", metavar="SUBCOMMAND", required=True, help="libraries or find"
    )
    sub.add_parser("libraries", help="every library on the server, and which ones are read")
    find = sub.add_parser(
        "find", help="which Plex item holds a file (or has a guid), and how it was found"
    )
    find.add_argument("path", help="a file path as Plex or Stash spells it, or a guid")


async def run(args: argparse.Namespace, app: web.Application, service: PlexLibraryService) -> int:
    try:
        if args.plex_command == "libraries":
            return await _libraries(service)
        return await _find(args.path, app, service)
    except PlexError as exc:
        print(f"stash2plex plex: {exc}")
        return 1


async def _libraries(service: PlexLibraryService) -> int:
    everything = await service.all_sections()
    read = {s.key for s in await service.sections()}
    print(f"{service.state().server} at {service.connection.url}")
    for s in everything:
        mark = "read" if s.key in read else "-"
        size = await _size(service, s)
        print(f"{s.key:>4}  {mark:<4}  {s.type:<7} {s.title!r}  {size} items  agent {s.agent}")
        for location in s.locations:
            print(f"{'':>17}{location}")
    for name in service.missing_libraries:
        print(f"   -  missing  {name!r}: configured in [plex] libraries, not on the server")
    return 1 if service.missing_libraries else 0


async def _find(text: str, app: web.Application, service: PlexLibraryService) -> int:
    await service.refresh_index()
    index = service.index
    print(
        f"searched {len(index)} items of {', '.join(repr(s.title) for s in service.read_sections)}"
    )
    found: Sequence[PlexItem] = []
    how = ""
    item = index.by_path(text)
    if item is not None:
        found, how = [item], "by path, as Plex spells it (separators and Unicode normalized)"
    if not found:
        mapped = await app[HOOKS].map_path(text, PathDirection.STASH_TO_PLEX)
        if mapped is not None:
            item = index.by_path(mapped)
            if item is not None:
                found, how = [item], f"by mapped path {mapped!r} (Stash's path mapped to Plex's)"
            else:
                print(f"mapped to Plex's spelling: {mapped!r}; no item holds that path")
    if not found and "://" in text:
        found, how = index.by_guid(text), "by guid"
    if not found and text.isdigit() and index.get(text) is not None:
        found, how = [index.get(text)], "by Plex ratingKey"  # type: ignore[list-item]
    if not found:
        print(f"not found: no item holds {text!r}")
        same_name = index.by_file_name(text)
        if same_name:
            print(f"items holding a file of the same name ({len(same_name)}):")
            for other in same_name[:10]:
                print(f"  {other.rating_key}: {', '.join(other.files)}")
        return 1
    print(f"found {how}:")
    for item in found:
        print(_describe(item, service))
    return 0


def _describe(item: PlexItem, service: PlexLibraryService) -> str:
    section = next((s for s in service.read_sections if s.key == item.section_key), None)
    agent = f"{item.agent.value} ({item.agent_detail or 'no guid'})"
    if item.provider_key:
        agent += f", provider key {item.provider_key}"
    lines = [
        f"  ratingKey {item.rating_key}: {item.title!r}",
        f"  library   {section.title if section else item.section_key!r}",
        f"  guid      {item.guid or '-'}",
        f"  agent     {agent}",
        f"  added     {item.added_at.isoformat() if item.added_at else '-'}",
        f"  updated   {item.updated_at.isoformat() if item.updated_at else '-'}",
    ]
    lines += [f"  file      {f}" for f in item.files]
    return "\n".join(lines)
