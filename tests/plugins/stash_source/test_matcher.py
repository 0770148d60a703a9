"""split_path, plain and fold take shortcuts (ASCII, already NFC, no Samba stand-in):
they must give exactly what their plain definitions give."""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stash2plex_stash_source.index import fold
from stash2plex_stash_source.matcher import plain, split_path
from stash2plex_stash_source.metadata import stem

_STAND_INS = str.maketrans({0xF000 + ord(c): c for c in '"*:<>?|'})


def reference_plain(path: str) -> str:
    return unicodedata.normalize("NFC", path).translate(_STAND_INS)


def reference_split(path: str) -> list[str]:
    parts = [p for p in re.split(r"[\\/]+", reference_plain(path)) if p not in ("", ".")]
    if parts and re.fullmatch(r"[A-Za-z]:", parts[0]):
        parts = parts[1:]
    return parts


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "\\\\",
        ".",
        "Studio/Some Folder/Some Scene.mp4",
        "/volume1/plex//Studio/./Scene.mp4",
        r"D:\Plex\Studio\Scene.mp4",
        "D:/Plex/Studio/Scene.mp4",
        "D:",
        "d:x/Scene.mp4",
        "1:/Scene.mp4",
        r"\\nas\media\Studio\Scene.mp4",
        "Studio\\mixed/separators\\\\Scene.mp4",
        "Caf\u0065\u0301/Cre\u0300me.mp4",  # NFD, as macOS hands it out
        "Café/Crème.mp4",
        "Odd/what\uf03f.mp4",  # Samba's stand-in for "?"
        "Odd\\a\uf03cb \uf022quoted\uf022.mp4",
        "Odd/a\uf03c\u0338b.mp4",  # the stand-in before a combining mark: NFC first
        "Odd/a<\u0338b.mp4",  # a real "<" composes
        "Odd/\uf000\uf0ff\uf07c.mp4",  # private-use neighbours stay, "|" comes back
        "Strasse/Straße.mp4",
    ],
)
def test_split_path_matches_its_definition(path: str) -> None:
    assert plain(path) == reference_plain(path)
    assert split_path(path) == reference_split(path)


_PIECES = ["a", "B", "/", "\\", ".", ":", "C", "é", "e\u0301", "\u0338", "<", " ", "ß"]
_PIECES += ["\uf03a", "\uf03c", "\uf03f", "\uf07c", "\uf000"]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(_PIECES), max_size=20).map("".join))
def test_split_path_property(path: str) -> None:
    assert plain(path) == reference_plain(path)
    assert split_path(path) == reference_split(path)


@given(st.text(max_size=12) | st.lists(st.sampled_from(_PIECES), max_size=12).map("".join))
def test_fold_matches_its_definition(text: str) -> None:
    def nfc(t: str) -> str:
        return unicodedata.normalize("NFC", t)

    assert fold(text) == nfc(nfc(text).casefold())


@pytest.mark.parametrize(
    "name", ["a.mp4", "a.b.mp4", ".hidden", "noext", "a.", "..", "...mp4", ".a.mp4", "é.mkv"]
)
def test_stem_is_pathlibs(name):
    # An untitled scene's fallback title: the primary file's name without its suffix.
    assert stem(name) == PurePosixPath(name).stem
