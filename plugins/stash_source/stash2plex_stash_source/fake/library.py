"""A sample Stash library, and how Plex sees the same files.

:func:`generate_library` builds a deterministic, realistic library: studios (some under a
parent network), performers, tags (some with parents), groups and scenes whose records have
the same keys as Stash's GraphQL types, so the fake server's resolvers can return them
as they are. Related objects are shared dicts (``scene["studio"] is lib.studios[3]``), so
renaming a studio shows up in every scene, as it does in Stash.

Record conventions (beyond the GraphQL keys):

* ids are ``int`` in the records and in the ``lib.*`` dict keys; GraphQL serialises them as
  strings.
* ``paths``, ``image_path``, ``front_image_path`` and ``back_image_path`` are not stored:
  the server computes them per request from the ``Host`` header, as Stash does. Keys that
  start with ``_`` are internal: ``_has_image`` (performer, studio, tag, group front image),
  ``_has_back_image`` (group), ``_slug`` (studio, for sample URLs) and ``_has_cover``
  (scene; ``False`` for a few scenes, which Stash reports through ``is_missing: "cover"``).
* Timestamps are RFC 3339 strings in the library's fixed offset (``tz``); see
  :func:`generate_library`.

Every generated library contains the hard cases listed in :func:`generate_library`, and
:meth:`Library.plex_files` labels each Plex-side file with the case it exercises
(:attr:`PlexFile.note`).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import random
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs

__all__ = ["STASHDB_ENDPOINT", "Library", "PlexFile", "generate_library"]

STASHDB_ENDPOINT = "https://stashdb.org/graphql"

#: Plex-side defaults for the non-POSIX path styles, used when ``root`` is left at the
#: POSIX default.
_DEFAULT_ROOTS = {"posix": "/media/plex", "windows": r"D:\Media\Stash", "unc": r"\\nas\media\stash"}
#: Characters Windows forbids in names. An SMB share shows them to Windows clients as the
#: private-use characters of Samba's "catia"/SFM mapping (U+F000 + code), so that is what a
#: Windows Plex would see for a Linux file named with a double quote.
_SFM_MAP = {ord(c): chr(0xF000 + ord(c)) for c in '"*:<>?|'}
_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}

# 2020-01-01 and 2025-06-01 UTC: the span over which the sample library was "scanned".
_START_EPOCH = 1_577_836_800
_END_EPOCH = 1_748_736_000


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only, as SQLite's ``LIKE`` folds case."""
    return text.translate(_ASCII_LOWER)


@attrs.frozen
class PlexFile:
    """One media file as Plex sees it, with the answer a matcher should find.

    ``plex_path`` is the path Plex reports (absolute, or relative to the Plex library root
    when :meth:`Library.plex_files` was asked for ``relative=True``). ``stash_path`` is the
    same file's path in Stash, or ``None`` when Stash has no such file. ``oshash`` and
    ``size`` are what Plex would compute from the bytes it sees: equal to Stash's except for
    ``note == "remuxed"`` files (rewritten after Stash's last scan).

    ``expected_scene_id`` is the Stash scene this file belongs to, or ``None`` when no Stash
    scene holds this content (``note`` starts with ``"plex-only"``: the right answer is "no
    match").

    ``ambiguous`` is ``True`` when no matcher can be right for certain: several Stash scenes
    hold byte-identical copies of the file (same oshash and size, so no path-free evidence
    separates them) *and* the Plex path cannot decide either (it maps to no Stash file, and
    its basename is shared by all the candidates). ``candidates`` then lists every scene a
    matcher may legitimately return; ``expected_scene_id`` is the first of them (the one
    ``findSceneByHash`` returns). Declining to match is also acceptable for these. For
    every other file ``candidates`` is ``(expected_scene_id,)`` or empty.

    ``note`` names the hard case ("" for an ordinary file): ``multi-file``,
    ``dup-basename``, ``sibling-prefix``, ``case-twin``, ``unicode``, ``unicode-nfd``
    (Plex path in NFD as macOS gives it, Stash in NFC), ``special-chars``, ``like-wildcard``
    (``_``/``%`` in the name makes Stash's path ``EQUALS`` return another scene too),
    ``long-name``, ``remuxed``, ``dup-content`` (identical bytes in two scenes; only the
    path decides), ``ambiguous-dup``, ``plex-only``, ``plex-only-basename-clash`` (Plex-only,
    but shares its basename with a Stash file), ``deleted-from-stash``.
    """

    plex_path: str
    stash_path: str | None
    expected_scene_id: int | None
    ambiguous: bool = False
    oshash: str | None = None
    size: int | None = None
    note: str = ""
    candidates: tuple[int, ...] = ()


@attrs.define
class _PlexExtra:
    """A file only Plex has, stored relative to the library root (POSIX separators)."""

    rel_path: str
    oshash: str
    size: int
    note: str


class Library:
    """A Stash library in memory, plus what Plex sees of it.

    Mutate it only through :meth:`add_scene`, :meth:`touch` and :meth:`delete` so the
    lookup indexes the fake server uses stay in step. ``revision`` increases on every
    mutation.
    """

    def __init__(self, *, stash_root: str = "/data/stash", tz: str = "-06:00", seed: int = 0):
        self.stash_root = stash_root.rstrip("/")
        self.tz = tz
        self.seed = seed
        self.scenes: dict[int, dict[str, Any]] = {}
        self.studios: dict[int, dict[str, Any]] = {}
        self.performers: dict[int, dict[str, Any]] = {}
        self.tags: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.revision = 0
        # Bumped only when scenes or files come or go: the id and path indexes depend on
        # nothing else, so plain edits (touch) do not force a rebuild.
        self._layout_revision = 0
        self._offset = _parse_offset(tz)
        self._suffix = "Z" if tz == "Z" else tz
        self._clock = _END_EPOCH + 3600
        self._next_scene_id = 1
        self._next_file_id = 1
        self._folders: dict[str, dict[str, Any]] = {}
        self._by_path: dict[str, tuple[int, dict[str, Any]]] = {}
        self._by_fp: dict[tuple[str, str], list[int]] = {}  # (type, value) -> scene ids
        self._notes: dict[int, str] = {}  # file id -> PlexFile.note
        self._remuxed: dict[int, tuple[str, int]] = {}  # file id -> (oshash, size) Plex sees
        self._nfd: set[int] = set()  # file ids Plex sees in NFD
        self._hidden: set[int] = set()  # file ids Plex does not have
        self._extras: list[_PlexExtra] = []
        self._cache: dict[str, tuple[int, Any]] = {}

    # --- time --------------------------------------------------------------------------

    def stamp(self, epoch: int) -> str:
        """``epoch`` (UTC seconds) as Stash prints it: RFC 3339 in the library's offset."""
        # gmtime and str.format: several times faster than datetime arithmetic, and the
        # generator prints a few hundred thousand of these.
        fields = time.gmtime(epoch + self._offset)[:6]
        return "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format(*fields, self._suffix)

    def tick(self) -> str:
        """The next timestamp of the library's clock, later than every generated one."""
        self._clock += 1
        return self.stamp(self._clock)

    # --- mutation ----------------------------------------------------------------------

    def add_scene(self, **fields: Any) -> int:
        """Add a scene and return its id (always larger than every id used before).

        Any scene key may be given. ``studio``, ``performers``, ``tags`` may be ids or
        records; ``groups`` a list of ``{"group": id_or_record, "scene_index": n}``.
        ``files`` may be a list of paths or of partial file dicts (defaults fill the rest;
        ``oshash`` sets the fingerprint); without ``files`` the scene gets one file under
        ``<stash_root>/Added/``.
        """
        if "id" in fields:
            raise ValueError("add_scene assigns the id itself")
        scene_id = self._next_scene_id
        now = self.tick()
        rng = random.Random(f"{self.seed}:added:{scene_id}")
        files = fields.pop("files", None)
        if files is None:
            files = [f"{self.stash_root}/Added/added-{scene_id}.mp4"]
        scene = _blank_scene(scene_id, now)
        scene.update(self._resolve_refs(fields))
        scene["files"] = [self._complete_file(f, rng, now) for f in files]
        self._insert(scene)
        return scene_id

    def touch(self, scene_id: int, **fields: Any) -> str:
        """Edit a scene as a user would in Stash: set ``fields`` and bump ``updated_at``.

        Returns the new ``updated_at``. Unknown keys raise ``KeyError``.
        """
        scene = self.scenes[scene_id]
        unknown = set(fields) - set(scene) - {"files"}
        if unknown:
            raise KeyError(f"not scene fields: {sorted(unknown)}")
        if "files" in fields:
            rng = random.Random(f"{self.seed}:touched:{scene_id}:{self._clock}")
            self._unindex(scene)
            scene["files"] = [
                self._complete_file(f, rng, scene["updated_at"]) for f in fields.pop("files")
            ]
            self._index(scene)
            self._layout_revision += 1
        scene.update(self._resolve_refs(fields))
        scene["updated_at"] = self.tick()
        self.revision += 1
        return scene["updated_at"]

    def touch_related(self, kind: str, record_id: int, **fields: Any) -> str:
        """Edit a performer, studio, tag or group (``kind``: ``"performers"``,
        ``"studios"``, ``"tags"``, ``"groups"``) as a user would: set ``fields``, bump its
        ``updated_at`` (a new photo or logo is a new ``?t=`` on its image URL), and leave
        the scenes it belongs to untouched, as Stash does. Returns the new ``updated_at``.
        ``parent_studio`` may be an id or a record."""
        record = getattr(self, kind)[record_id]
        unknown = set(fields) - set(record) - {"_has_image"}
        if unknown:
            raise KeyError(f"not {kind} fields: {sorted(unknown)}")
        if isinstance(fields.get("parent_studio"), int):
            fields["parent_studio"] = self.studios[fields["parent_studio"]]
        record.update(fields)
        record["updated_at"] = self.tick()
        self.revision += 1
        return record["updated_at"]

    def delete(self, scene_id: int, *, delete_files: bool = False) -> None:
        """Destroy a scene, like Stash's ``sceneDestroy``.

        By default the files stay on disk (Stash's default), so Plex still lists them: they
        reappear in :meth:`plex_files` with ``expected_scene_id=None`` and note
        ``deleted-from-stash``. With ``delete_files=True`` they vanish from Plex too.
        """
        scene = self.scenes.pop(scene_id)
        self._unindex(scene)
        if not delete_files:
            for f in scene["files"]:
                rel = self._relative(f["path"])
                if rel is not None and f["id"] not in self._hidden:
                    oshash, size = self._plex_view(f)
                    self._extras.append(_PlexExtra(rel, oshash, size, "deleted-from-stash"))
        self.revision += 1
        self._layout_revision += 1

    def _insert(self, scene: dict[str, Any]) -> None:
        self.scenes[scene["id"]] = scene
        self._next_scene_id = max(self._next_scene_id, scene["id"] + 1)
        self._index(scene)
        self.revision += 1
        self._layout_revision += 1

    def _resolve_refs(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Turn ids in relation fields into the shared records."""
        out = dict(fields)
        if isinstance(out.get("studio"), int):
            out["studio"] = self.studios[out["studio"]]
        for key, table in (("performers", self.performers), ("tags", self.tags)):
            if key in out:
                out[key] = [table[x] if isinstance(x, int) else x for x in out[key]]
        if "groups" in out:
            out["groups"] = [
                {
                    "group": self.groups[g["group"]] if isinstance(g["group"], int) else g["group"],
                    "scene_index": g.get("scene_index"),
                }
                for g in out["groups"]
            ]
        return out

    def _complete_file(self, spec: str | dict[str, Any], rng: random.Random, now: str) -> dict:
        """A full VideoFile record from a path or a partial dict.

        A partial dict may give ``oshash`` as a shortcut for its fingerprint.
        """
        partial = {"path": spec} if isinstance(spec, str) else dict(spec)
        oshash = partial.pop("oshash", None) or f"{rng.getrandbits(64):016x}"
        path = partial["path"]
        size = partial.get("size") or rng.randint(50_000_000, 4_000_000_000)
        duration = partial.get("duration") or round(rng.uniform(300, 3600), 3)
        record = {
            "id": self._new_file_id(),
            "path": path,
            "basename": path.rsplit("/", 1)[-1],
            "size": size,
            "duration": duration,
            "width": 1920,
            "height": 1080,
            "video_codec": "h264",
            "audio_codec": "aac",
            "frame_rate": 29.97,
            "bit_rate": int(size * 8 / duration),
            "format": path.rsplit(".", 1)[-1].lower() if "." in path else "mp4",
            "mod_time": now,
            "fingerprints": [{"type": "oshash", "value": oshash}],
            "created_at": now,
            "updated_at": now,
        }
        record.update({k: v for k, v in partial.items() if k != "id"})
        return record

    def _new_file_id(self) -> int:
        self._next_file_id += 1
        return self._next_file_id - 1

    # --- indexes for the fake server ---------------------------------------------------

    def _index(self, scene: dict[str, Any]) -> None:
        for f in scene["files"]:
            self._by_path[f["path"]] = (scene["id"], f)
            for fp in f["fingerprints"]:
                if fp["type"] == "phash":
                    continue  # looked up by distance, never by value
                ids = self._by_fp.setdefault((fp["type"], fp["value"]), [])
                bisect.insort(ids, scene["id"])

    def _unindex(self, scene: dict[str, Any]) -> None:
        for f in scene["files"]:
            self._by_path.pop(f["path"], None)
            for fp in f["fingerprints"]:
                ids = self._by_fp.get((fp["type"], fp["value"]), [])
                if scene["id"] in ids:
                    ids.remove(scene["id"])

    def scenes_by_fingerprint(self, fp_type: str, value: str) -> list[int]:
        """Ids of scenes with a file carrying this exact oshash or md5, lowest id first."""
        return list(self._by_fp.get((fp_type, value), ()))

    def file_by_path(self, path: str) -> tuple[int, dict[str, Any]] | None:
        """``(scene id, file)`` for an exact, case-sensitive path, or ``None``."""
        return self._by_path.get(path)

    def scene_ids(self) -> list[int]:
        """All scene ids, ascending (cached until the next mutation)."""
        return self._cached("ids", lambda: sorted(self.scenes), self._layout_revision)

    def path_index(self) -> tuple[list[str], list[int]]:
        """Every file path folded as SQLite's LIKE folds it, sorted, with its scene id."""

        def build() -> tuple[list[str], list[int]]:
            pairs = sorted((ascii_lower(p), sid) for p, (sid, _f) in self._by_path.items())
            return [p for p, _ in pairs], [s for _, s in pairs]

        return self._cached("paths", build, self._layout_revision)

    def scene_counts(self) -> dict[str, Counter[int]]:
        """Scene counts per performer, studio, tag and group id."""

        def build() -> dict[str, Counter[int]]:
            counts: dict[str, Counter[int]] = {k: Counter() for k in ("p", "s", "t", "g")}
            for scene in self.scenes.values():
                if scene["studio"]:
                    counts["s"][scene["studio"]["id"]] += 1
                counts["p"].update(p["id"] for p in scene["performers"])
                counts["t"].update(t["id"] for t in scene["tags"])
                counts["g"].update(g["group"]["id"] for g in scene["groups"])
            return counts

        return self._cached("counts", build, self.revision)

    def folder(self, path: str) -> dict[str, Any]:
        """The Folder record for a directory path, created with a stable id on first use."""
        found = self._folders.get(path)
        if found is None:
            parent = path.rsplit("/", 1)[0] if path.count("/") > 1 else None
            found = {
                "id": len(self._folders) + 1,
                "path": path,
                "_parent": parent,
                "mod_time": self.stamp(_START_EPOCH),
                "created_at": self.stamp(_START_EPOCH),
                "updated_at": self.stamp(_START_EPOCH),
            }
            self._folders[path] = found
        return found

    def _cached(self, key: str, build: Any, revision: int) -> Any:
        hit = self._cache.get(key)
        if hit is None or hit[0] != revision:
            hit = (revision, build())
            self._cache[key] = hit
        return hit[1]

    # --- the Plex side -----------------------------------------------------------------

    def plex_files(
        self, root: str = "/media/plex", style: str = "posix", relative: bool = False
    ) -> list[PlexFile]:
        """Every file as Plex sees it: the Stash files under ``root``, plus Plex-only ones.

        ``style`` is ``"posix"``, ``"windows"`` (``root`` like ``r"D:\\Media\\Stash"``) or
        ``"unc"`` (``root`` like ``r"\\\\nas\\media\\stash"``); when ``root`` is left at the
        POSIX default, those two use the roots just given. Windows styles use ``\\`` and show
        characters Windows forbids (``"*:<>?|``) as SMB's private-use substitutes. With
        ``relative=True`` paths are relative to the Plex library root, in the style's
        separator. Order: Stash files by scene id (primary file first), then Plex-only files.
        Files marked hidden (one "stash-only" scene per hard-case block) are left out.
        """
        if style not in _DEFAULT_ROOTS:
            raise ValueError(f"unknown path style {style!r}")
        if style != "posix" and root == _DEFAULT_ROOTS["posix"]:
            root = _DEFAULT_ROOTS[style]
        with _no_gc():
            return self._plex_files(root, style, relative)

    def _plex_files(self, root: str, style: str, relative: bool) -> list[PlexFile]:
        out: list[PlexFile] = []
        for scene in self.scenes.values():
            for f in scene["files"]:
                rel = self._relative(f["path"])
                if rel is None or f["id"] in self._hidden:
                    continue
                oshash, size = self._plex_view(f)
                if f["id"] in self._nfd:
                    rel = unicodedata.normalize("NFD", rel)
                note = self._notes.get(f["id"], "")
                path = _plex_path(root, rel, style, relative)
                out.append(
                    PlexFile(
                        path, f["path"], scene["id"], False, oshash, size, note, (scene["id"],)
                    )
                )
        out.extend(self._extra_file(extra, root, style, relative) for extra in self._extras)
        return out

    def _extra_file(self, extra: _PlexExtra, root: str, style: str, relative: bool) -> PlexFile:
        """A Plex-only file, checked against the current library (scenes may be gone)."""
        path = _plex_path(root, extra.rel_path, style, relative)
        if extra.note != "ambiguous-dup":
            return PlexFile(path, None, None, False, extra.oshash, extra.size, extra.note, ())
        candidates = tuple(
            sid
            for sid in self.scenes_by_fingerprint("oshash", extra.oshash)
            if any(f["size"] == extra.size for f in self.scenes[sid]["files"])
        )
        if not candidates:
            return PlexFile(path, None, None, False, extra.oshash, extra.size, "plex-only", ())
        return PlexFile(
            path,
            None,
            candidates[0],
            len(candidates) > 1,
            extra.oshash,
            extra.size,
            extra.note if len(candidates) > 1 else "dup-content",
            candidates,
        )

    def _plex_view(self, f: dict[str, Any]) -> tuple[str, int]:
        """The (oshash, size) Plex computes for a Stash file."""
        remux = self._remuxed.get(f["id"])
        if remux is not None:
            return remux
        return _fingerprint(f, "oshash") or "", f["size"]

    def _relative(self, path: str) -> str | None:
        prefix = self.stash_root + "/"
        return path[len(prefix) :] if path.startswith(prefix) else None


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic collector while building many objects that are all kept: its passes
    over the growing heap are pure overhead (a third of the time at 100k scenes)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _plex_path(root: str, rel: str, style: str, relative: bool) -> str:
    if style == "posix":
        return rel if relative else f"{root.rstrip('/')}/{rel}"
    rel = rel.translate(_SFM_MAP).replace("/", "\\")
    return rel if relative else f"{root.rstrip(chr(92))}\\{rel}"


def _fingerprint(f: dict[str, Any], fp_type: str) -> str | None:
    for fp in f["fingerprints"]:
        if fp["type"] == fp_type:
            return fp["value"]
    return None


def _parse_offset(tz: str) -> int:
    """Seconds east of UTC for ``"Z"`` or ``"+HH:MM"``/``"-HH:MM"``."""
    if tz == "Z":
        return 0
    if len(tz) != 6 or tz[0] not in "+-" or tz[3] != ":":
        raise ValueError(f"tz must be 'Z' or '+HH:MM'/'-HH:MM', not {tz!r}")
    seconds = int(tz[1:3]) * 3600 + int(tz[4:6]) * 60
    return seconds if tz[0] == "+" else -seconds


def _blank_scene(scene_id: int, now: str) -> dict[str, Any]:
    """A scene with every stored key at Stash's default for a freshly created scene."""
    return {
        "id": scene_id,
        "title": None,
        "code": None,
        "details": None,
        "director": None,
        "urls": [],
        "date": None,
        "rating100": None,
        "organized": False,
        "o_counter": 0,
        "play_count": 0,
        "captions": None,
        "created_at": now,
        "updated_at": now,
        "files": [],
        "studio": None,
        "performers": [],
        "tags": [],
        "groups": [],
        "stash_ids": [],
    }


# --- the generator -------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_FIRST = _words(
    "Ava Bella Chloe Daisy Eva Fiona Gina Holly Iris Jade Kara Lena Mia Nora Olive Piper "
    "Quinn Rosa Sofia Tara Uma Vera Willa Xena Yara Zoe Amber Brooke Cleo Dana Elle Faye "
    "Gemma Hazel Ivy June Kiki Lola Maya Nina Opal Penny Ruby Sage Tess Valerie Wren"
)
_FIRST_MALE = _words("Max Leo Jack Ryan Owen Luke Adam Evan Noah Theo Marco Felix Dante Kai")
_LAST = _words(
    "Rivers Stone Lane Brooks Hart Knight Vale Monroe Cruz Reyes Blake Cole Fox Grey Hayes "
    "Jensen Kane Lowe Marsh Nash Park Quill Rowe Shaw Troy Vance Wilde York Zane Bishop "
    "Carter Dean Ellis Ford Gale Holt Innes Jett Kerr Lux Moss North Oakes Pryce Reed Snow"
)
_ADJ = _words(
    "Midnight Golden Secret Velvet Sunny Wild Lazy Sweet Electric Crimson Silent Hidden "
    "Lucky Summer Winter Neon Private Perfect Sunday Endless Morning Rainy Tropical Urban "
    "Rooftop Lakeside Vintage Candid First Last"
)
_NOUN = _words(
    "Rendezvous Affair Session Lessons Getaway Escape Encounter Weekend Secrets Dreams "
    "Fantasy Holiday Retreat Reunion Adventure Surprise Audition Interview Workout Party "
    "Massage Picnic Roadtrip Sunset Daydream Promise Memories Tension Chemistry Spark"
)
_STUDIO_A = _words(
    "Velvet Harbor Crimson Golden Blue Silver Neon Private Urban Coastal Midnight Sunset "
    "Pure Wild Royal Prime Lush Vivid Bold Indie Metro Nova Echo Apex"
)
_STUDIO_B = _words("Studios Films Pictures Media Productions Cinema Works House Collective Labs")
_TAG_NAMES = _words(
    "Outdoor Indoor POV Interview Behind-the-Scenes Solo Duo Group Romantic Couples "
    "Massage Pool Beach Kitchen Office Hotel Car Shower Bedroom Lingerie Costume Cosplay "
    "Amateur Professional 4K VR Vertical Compilation Feature Trailer Documentary Dance "
    "Fitness Yoga Roleplay Vintage Retro Story Parody Music-Video Slow-Motion Close-up "
    "Natural-Light Studio-Light Night Morning Sunset Rain Snow Travel Vacation Party"
)
_EXTS = ("mp4",) * 14 + ("mkv",) * 3 + ("wmv", "mov", "m4v", "avi", "webm")
_RES = ((1920, 1080),) * 6 + ((1280, 720),) * 3 + ((3840, 2160),) * 2 + ((854, 480), (1080, 1920))
_VCODEC = ("h264",) * 6 + ("hevc",) * 3 + ("vp9", "av1")
_ACODEC = ("aac",) * 6 + ("opus", "ac3", "mp3")
_FPS = (29.97, 30.0, 25.0, 59.94, 60.0, 23.976)
_GENDERS = ("FEMALE",) * 14 + ("MALE",) * 4 + ("TRANSGENDER_FEMALE", "NON_BINARY", None)
_WORDS = _words(
    "a warm afternoon turns into something more when old friends meet again after years "
    "apart and nobody expected the evening to end like this under city lights"
)
#: Synopses, made once: sampling words per scene was a visible share of generation time.
_DETAILS = tuple(
    " ".join(random.Random(i).sample(_WORDS, 12)).capitalize() + "." for i in range(64)
)

#: Scenes each hard-case block takes (see ``_Generator._hard_block``).
_BLOCK_SCENES = 24


class _FastRandom(random.Random):
    """``random.Random`` with float-based integer picks.

    The stdlib's exact, rejection-sampling ``randint``/``choice`` dominated generation time
    (a million calls for 100k scenes); the tiny bias of scaling ``random()`` does not matter
    for sample data, and the sequence is still fully determined by the seed.
    """

    def _randbelow(self, n: int) -> int:  # type: ignore[override]
        return int(self.random() * n)

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]


class _Generator:
    """Builds one library; all randomness comes from one seeded :class:`_FastRandom`."""

    def __init__(self, n_scenes: int, seed: int, lib: Library):
        self.n = n_scenes
        self.rng = _FastRandom(seed)
        self.lib = lib
        self.used_paths: set[str] = set()
        self.bulk_epochs = sorted(self.rng.randint(_START_EPOCH, _END_EPOCH) for _ in range(6))
        self.created_epoch = _START_EPOCH

    # --- related objects -----------------------------------------------------------------

    def make_related(self) -> None:
        self.make_tags(max(20, min(len(_TAG_NAMES) * 3, self.n // 40)))
        self.make_studios(max(8, self.n // 150))
        self.make_performers(max(24, self.n // 20))
        self.make_groups(max(3, self.n // 100))

    def _created(self) -> tuple[str, str]:
        epoch = self.rng.randint(_START_EPOCH - 86_400 * 400, _START_EPOCH)
        later = epoch + self.rng.choice((0, 0, self.rng.randint(0, 86_400 * 900)))
        return self.lib.stamp(epoch), self.lib.stamp(min(later, _END_EPOCH))

    def make_tags(self, count: int) -> None:
        names = list(_TAG_NAMES)
        names += [f"{a} {b}" for a in _ADJ for b in _TAG_NAMES[:10]][: max(0, count - len(names))]
        names += ["Pêche Mignon", "日本語タグ", "100% Real"]
        for tag_id, name in enumerate(names[: count + 3], start=1):
            created, updated = self._created()
            parents = []
            if tag_id > 10 and self.rng.random() < 0.15:
                parents = [self.lib.tags[self.rng.randint(1, 10)]]
            self.lib.tags[tag_id] = {
                "id": tag_id,
                "name": name,
                "sort_name": None,
                "description": None,
                "aliases": [],
                "ignore_auto_tag": False,
                "favorite": self.rng.random() < 0.05,
                "stash_ids": [],
                "parents": parents,
                "created_at": created,
                "updated_at": updated,
                "_has_image": self.rng.random() < 0.2,
            }

    def make_studios(self, count: int) -> None:
        # Fixed first names carry the folder-name traps: an apostrophe, accents, an
        # underscore (a LIKE wildcard) and a percent sign.
        fixed = ["Harbor Network", "Ava's Place", "Crème de la Crème", "Studio_X", "100% Indie"]
        seen = set(fixed)
        names = list(fixed)
        while len(names) < count:
            name = f"{self.rng.choice(_STUDIO_A)} {self.rng.choice(_STUDIO_B)}"
            if name in seen:
                name = f"{name} {len(names)}"
            seen.add(name)
            names.append(name)
        for studio_id, name in enumerate(names, start=1):
            created, updated = self._created()
            parent = None
            # Studio 6 always has a parent, so even the smallest library has a hierarchy.
            if studio_id == 6 or (studio_id > 5 and self.rng.random() < 0.3):
                parent = self.lib.studios[self.rng.choice((1, 1, 1, 2))]
            slug = "".join(c for c in name.lower() if c.isascii() and c.isalnum()) or "studio"
            self.lib.studios[studio_id] = {
                "id": studio_id,
                "name": name,
                "urls": [f"https://www.{slug}.example/"],
                "parent_studio": parent,
                "aliases": [],
                "tags": [],
                "ignore_auto_tag": False,
                "stash_ids": self._stash_ids(0.5, updated),
                "rating100": None,
                "favorite": self.rng.random() < 0.1,
                "details": None,
                "created_at": created,
                "updated_at": updated,
                "_has_image": self.rng.random() < 0.7,
                "_slug": slug,
            }

    def make_performers(self, count: int) -> None:
        seen: set[tuple[str, str | None]] = set()
        # Two people share a name; only the disambiguation tells them apart.
        specs: list[tuple[str, str | None]] = [("Alex Rivers", "2019"), ("Alex Rivers", "EU")]
        specs += [("Zoë Ångström", None), ("Mei 美咲", None)]
        seen.update(specs)
        genders = [None, None, None, None]
        while len(specs) < count:
            gender = self.rng.choice(_GENDERS)
            first = self.rng.choice(_FIRST_MALE if gender == "MALE" else _FIRST)
            name = f"{first} {self.rng.choice(_LAST)}"
            dis = None if (name, None) not in seen else str(self.rng.randint(2010, 2024))
            if (name, dis) in seen:
                continue
            seen.add((name, dis))
            specs.append((name, dis))
            genders.append(gender)
        for perf_id, (name, dis) in enumerate(specs, start=1):
            created, updated = self._created()
            self.lib.performers[perf_id] = {
                "id": perf_id,
                "name": name,
                "disambiguation": dis,
                "urls": [],
                "gender": genders[perf_id - 1] if perf_id > 4 else "FEMALE",
                "birthdate": f"{self.rng.randint(1975, 2003)}-{self.rng.randint(1, 12):02d}-"
                f"{self.rng.randint(1, 28):02d}"
                if self.rng.random() < 0.6
                else None,
                "ethnicity": None,
                "country": self.rng.choice(("US", "US", "GB", "DE", "FR", "JP", "BR", None)),
                "alias_list": [],
                "favorite": self.rng.random() < 0.1,
                "tags": [],
                "ignore_auto_tag": False,
                "stash_ids": self._stash_ids(0.6, updated),
                "rating100": None,
                "details": None,
                "death_date": None,
                "created_at": created,
                "updated_at": updated,
                # The first pair differ here too: one has a picture, one has the default.
                "_has_image": perf_id == 1 or (perf_id != 2 and self.rng.random() < 0.75),
            }

    def make_groups(self, count: int) -> None:
        for group_id in range(1, count + 1):
            created, updated = self._created()
            studio = self.lib.studios[self.rng.randint(1, len(self.lib.studios))]
            self.lib.groups[group_id] = {
                "id": group_id,
                "name": f"{self.rng.choice(_ADJ)} {self.rng.choice(_NOUN)} Vol. {group_id}",
                "aliases": None,
                "duration": None,
                "date": f"{self.rng.randint(2015, 2025)}-{self.rng.randint(1, 12):02d}-01",
                "rating100": None,
                "studio": studio,
                "director": None,
                "synopsis": None,
                "urls": [],
                "tags": [],
                "created_at": created,
                "updated_at": updated,
                "_has_image": group_id % 4 != 0,
                "_has_back_image": group_id % 3 == 0,
            }

    def _stash_ids(self, chance: float, updated: str) -> list[dict[str, Any]]:
        if self.rng.random() >= chance:
            return []
        stash_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return [{"endpoint": STASHDB_ENDPOINT, "stash_id": stash_id, "updated_at": updated}]

    # --- scenes --------------------------------------------------------------------------

    def run(self) -> None:
        self.make_related()
        blocks = max(1, self.n // 400)
        step = self.n // blocks
        starts = {
            k * step + max(0, (step - _BLOCK_SCENES) // 2): k for k in range(blocks) if self.n
        }
        index = 0
        while index < self.n:
            self._set_created(index)
            if index in starts:
                for spec in self._hard_block(starts[index], self.n - index):
                    self._set_created(index)
                    self._emit(**spec)
                    index += 1
            else:
                self._emit(**self._regular())
                index += 1

    def _set_created(self, index: int) -> None:
        """Scenes are "scanned" in id order over the library's time span."""
        span = _END_EPOCH - _START_EPOCH
        self.created_epoch = (
            _START_EPOCH + span * index // max(1, self.n) + self.rng.randint(0, 3600)
        )

    def _emit(self, **spec: Any) -> None:
        """Create the next scene from a spec made by the block builders."""
        lib = self.lib
        scene_id = lib._next_scene_id
        created_epoch = self.created_epoch
        updated_epoch = self._updated_epoch(created_epoch)
        created = lib.stamp(created_epoch)
        scene = _blank_scene(scene_id, created)
        scene["updated_at"] = lib.stamp(updated_epoch)
        meta = spec.pop("meta")
        scene.update(meta)
        files = []
        for file_spec in spec.pop("files"):
            files.append(self._file(file_spec, created_epoch))
        scene["files"] = files
        if spec.pop("no_cover", False):
            scene["_has_cover"] = False
        lib._insert(scene)

    def _updated_epoch(self, created: int) -> int:
        roll = self.rng.random()
        if roll < 0.4:
            return created
        if roll < 0.5:
            # Bulk edits (a batch tag or a scrape run) give many scenes the same second,
            # which trips clients that page on updated_at with a strict GREATER_THAN.
            later = [b for b in self.bulk_epochs if b > created]
            if later:
                return later[0]
        return self.rng.randint(created, _END_EPOCH)

    def _file(self, spec: dict[str, Any], created_epoch: int) -> dict[str, Any]:
        """A VideoFile record; ``spec`` has the path and may fix oshash/size/note flags."""
        rng = self.rng
        path = spec["path"]
        if path in self.used_paths:
            raise AssertionError(f"generator produced a duplicate path: {path}")
        self.used_paths.add(path)
        width, height = rng.choice(_RES)
        duration = round(rng.uniform(90, 5400), 3)
        size = spec.get("size") or rng.randint(60_000_000, 6_000_000_000)
        fps: list[dict[str, str]] = []
        if rng.random() < 0.05:
            fps.append({"type": "md5", "value": f"{rng.getrandbits(128):032x}"})
        fps.append({"type": "oshash", "value": spec.get("oshash") or f"{rng.getrandbits(64):016x}"})
        if rng.random() < 0.3:
            # Stash prints phash without zero padding.
            fps.append({"type": "phash", "value": f"{rng.getrandbits(64):x}"})
        mod_time = self.lib.stamp(created_epoch - rng.randint(0, 86_400 * 30))
        stamp = self.lib.stamp(created_epoch)
        file_id = self.lib._new_file_id()
        record = {
            "id": file_id,
            "path": path,
            "basename": path.rsplit("/", 1)[1],
            "size": size,
            "duration": duration,
            "width": width,
            "height": height,
            "video_codec": rng.choice(_VCODEC),
            "audio_codec": rng.choice(_ACODEC),
            "frame_rate": rng.choice(_FPS),
            "bit_rate": int(size * 8 / duration),
            "format": path.rsplit(".", 1)[1].lower(),
            "mod_time": mod_time,
            "fingerprints": fps,
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._annotate(file_id, spec)
        return record

    def _annotate(self, file_id: int, spec: dict[str, Any]) -> None:
        lib = self.lib
        if spec.get("note"):
            lib._notes[file_id] = spec["note"]
        if spec.get("nfd"):
            lib._nfd.add(file_id)
        if spec.get("hidden"):
            lib._hidden.add(file_id)
        if spec.get("remux"):
            lib._remuxed[file_id] = (
                f"{self.rng.getrandbits(64):016x}",
                self.rng.randint(60_000_000, 6_000_000_000),
            )

    # --- scene metadata ------------------------------------------------------------------

    def _title(self) -> str:
        return f"{self.rng.choice(_ADJ)} {self.rng.choice(_NOUN)}"

    def _date(self) -> str | None:
        """A release date up to four years before the scan, at Stash's three precisions."""
        rng = self.rng
        released = self.created_epoch - rng.randint(0, 86_400 * 365 * 4)
        year, month, day = time.gmtime(released)[:3]
        roll = rng.random()
        if roll < 0.1:
            return None
        if roll < 0.15:
            return str(year)
        if roll < 0.2:
            return f"{year}-{month:02d}"
        return f"{year}-{month:02d}-{day:02d}"

    def _meta(self, title: str | None, studio: dict[str, Any] | None, date: str | None) -> dict:
        """Everything but files, with realistic gaps."""
        rng = self.rng
        lib = self.lib
        n_perf = rng.choice((0, 1, 1, 2, 2, 2, 3, 4))
        performers = [lib.performers[rng.randint(1, len(lib.performers))] for _ in range(n_perf)]
        tags = [lib.tags[rng.randint(1, len(lib.tags))] for _ in range(rng.randint(0, 6))]
        groups = []
        if rng.random() < 0.05:
            group = lib.groups[rng.randint(1, len(lib.groups))]
            groups.append({"group": group, "scene_index": rng.choice((None, rng.randint(1, 12)))})
        slug = studio["_slug"] if studio else "example"
        return {
            "title": title,
            "code": f"{slug[:3].upper()}-{rng.randint(100, 9999)}" if rng.random() < 0.3 else None,
            "details": rng.choice(_DETAILS) if rng.random() < 0.6 else None,
            "director": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}" if rng.random() < 0.2 else None,
            "urls": [f"https://www.{slug}.example/scenes/{rng.getrandbits(32):x}"]
            if rng.random() < 0.5
            else [],
            "date": date,
            "rating100": rng.choice((None, None, 20, 40, 60, 80, 100, rng.randint(1, 100))),
            "organized": rng.random() < 0.5,
            "o_counter": rng.choice((0, 0, 0, 1, 2)),
            "play_count": rng.choice((0, 0, 1, 3)),
            "captions": [{"language_code": "en", "caption_type": "srt"}]
            if rng.random() < 0.05
            else None,
            "studio": studio,
            "performers": list({p["id"]: p for p in performers}.values()),
            "tags": list({t["id"]: t for t in tags}.values()),
            "groups": groups,
            "stash_ids": self._stash_ids(0.4, self.lib.stamp(_END_EPOCH - 86_400)),
        }

    def _studio(self) -> dict[str, Any] | None:
        if self.rng.random() < 0.12:
            return None
        return self.lib.studios[self.rng.randint(1, len(self.lib.studios))]

    def _folder(self, studio: dict[str, Any] | None, date: str | None) -> str:
        top = studio["name"] if studio else "Unsorted"
        year = date[:4] if date else str(self.rng.randint(2012, 2025))
        return f"{self.lib.stash_root}/{top}/{year}"

    def _regular(self) -> dict[str, Any]:
        rng = self.rng
        studio = self._studio()
        date = self._date()
        title = self._title() if rng.random() < 0.7 else None
        folder = self._folder(studio, date)
        ext = rng.choice(_EXTS)
        style = rng.random()
        if style < 0.45 and title:
            name = f"{studio['name'] if studio else 'Unknown'} - {date or 'undated'} - {title}"
        elif style < 0.7:
            day, clock = rng.randint(101, 1231), rng.randint(0, 235959)
            name = f"VID_{rng.randint(2015, 2025)}{day:04d}_{clock:06d}"
        elif style < 0.85 and title:
            name = title
        else:
            name = f"{studio['_slug'] if studio else 'clip'}_{rng.getrandbits(24):06x}"
        path = f"{folder}/{name}.{ext}"
        while path in self.used_paths:
            path = f"{folder}/{name} ({rng.randint(2, 99)}).{ext}"
        return {
            "meta": self._meta(title, studio, date),
            "files": [{"path": path}],
            "no_cover": rng.random() < 0.02,
        }

    # --- hard cases ----------------------------------------------------------------------

    def _hard_block(self, block: int, room: int) -> Iterator[dict[str, Any]]:
        """The hard cases, in a release folder unique to this block; at most ``room`` scenes.

        Also records the Plex-only files that go with them.
        """
        rng = self.rng
        lib = self.lib
        studios = rng.sample(range(1, len(lib.studios) + 1), 2)
        s1, s2 = lib.studios[studios[0]], lib.studios[studios[1]]
        year, month, day = time.gmtime(self.created_epoch - rng.randint(0, 86_400 * 700))[:3]
        date = f"{year}-{month:02d}-{day:02d}"
        f1 = f"{lib.stash_root}/{s1['name']}/{date[:4]}/Release {block + 1:04d}"
        f2 = f"{lib.stash_root}/{s2['name']}/{date[:4]}/Release {block + 1:04d}"
        dup_oshash, dup_size = f"{rng.getrandbits(64):016x}", rng.randint(60_000_000, 3_000_000_000)
        long_title = (
            "The Extraordinarily Long and Winding Director's Cut of a Summer Afternoon by the "
            "Lake Featuring Everyone Who Was There That Day, Remastered in Ultra High "
            f"Definition with Bonus Behind the Scenes Footage and Commentary Part {block + 1}"
        )
        title = self._title()

        def scene(
            name: str, note: str, folder: str = f1, scene_title: str | None = "", **file: Any
        ) -> dict[str, Any]:
            studio = s1 if folder == f1 else s2
            meta = self._meta(scene_title if scene_title != "" else self._title(), studio, date)
            return {"meta": meta, "files": [{"path": f"{folder}/{name}", "note": note, **file}]}

        specs = [
            scene("scene.mp4", "dup-basename", f1, None),
            scene("scene.mp4", "dup-basename", f2, None),
            scene(f"{title}.mp4", "dup-basename", f1, title),
            scene(f"{title}.mp4", "dup-basename", f2, title),
            scene("Pt. I.mp4", "sibling-prefix", scene_title="Pt. I"),
            scene("Pt. II.mp4", "sibling-prefix", scene_title="Pt. II"),
            scene("Beach Day.mp4", "case-twin", scene_title="Beach Day"),
            scene("beach day.mp4", "case-twin", scene_title=None),
            scene("Café Crème à la Plage.mp4", "unicode-nfd", nfd=True),
            scene("서울의 밤 Seoul Nights.mkv", "unicode-nfd", nfd=True),
            scene("東京の夜 ガールズ.mp4", "unicode"),
            scene("Sunset Vibes 🌅🔥.mp4", "unicode"),
            scene('It\'s "Quoted" [HD] #1.mp4', "special-chars", scene_title='It\'s "Quoted"'),
            scene("100% Natural.mp4", "like-wildcard", scene_title="100% Natural"),
            scene("100 - 100% Natural.mp4", "like-wildcard", scene_title=None),
            scene("Part_1.mp4", "like-wildcard", scene_title="Part 1"),
            scene("Part-1.mp4", "like-wildcard", scene_title=None),
            scene(f"{long_title}.mp4", "long-name", scene_title=long_title),
            scene(f"Remastered {title}.mp4", "remuxed", remux=True),
            scene("Duplicate Copy.mp4", "dup-content", f1, oshash=dup_oshash, size=dup_size),
            scene("Duplicate Copy.mp4", "dup-content", f2, oshash=dup_oshash, size=dup_size),
            self._multi_file(f1, s1, date, title),
            self._no_files(s1, date),
            scene(f"Private {title}.mp4", "stash-only", hidden=True),
        ]
        assert len(specs) == _BLOCK_SCENES
        # The namesakes (same name, different disambiguation) both appear in scenes.
        specs[4]["meta"]["performers"] = [lib.performers[1]]
        specs[5]["meta"]["performers"] = [lib.performers[2], lib.performers[3]]
        lib._extras.extend(
            [
                _PlexExtra(
                    f"Incoming/{block + 1:04d}/Duplicate Copy.mp4",
                    dup_oshash,
                    dup_size,
                    "ambiguous-dup",
                ),
                _PlexExtra(
                    f"Incoming/{block + 1:04d}/new_download_{block + 1}.mp4",
                    f"{rng.getrandbits(64):016x}",
                    rng.randint(60_000_000, 3_000_000_000),
                    "plex-only",
                ),
                _PlexExtra(
                    f"Incoming/{block + 1:04d}/Beach Day.mp4",
                    f"{rng.getrandbits(64):016x}",
                    rng.randint(60_000_000, 3_000_000_000),
                    "plex-only-basename-clash",
                ),
            ]
        )
        yield from specs[:room]

    def _multi_file(
        self, folder: str, studio: dict[str, Any], date: str, title: str
    ) -> dict[str, Any]:
        """One scene, two files (a 1080p primary and a 4K alternate), primary first."""
        return {
            "meta": self._meta(f"{title} (Two Versions)", studio, date),
            "files": [
                {"path": f"{folder}/{title} (Two Versions) 1080p.mp4", "note": "multi-file"},
                {"path": f"{folder}/{title} (Two Versions) 2160p.mkv", "note": "multi-file"},
            ],
        }

    def _no_files(self, studio: dict[str, Any], date: str) -> dict[str, Any]:
        """A scene created by hand or by a scraper, with no file at all."""
        return {"meta": self._meta(f"Upcoming: {self._title()}", studio, date), "files": []}


def generate_library(
    scenes: int = 200,
    seed: int = 1,
    *,
    tz: str = "-06:00",
    stash_root: str = "/data/stash",
) -> Library:
    """A deterministic sample library: the same ``(scenes, seed, tz, stash_root)`` always
    gives the same records.

    ``tz`` is the fixed offset every timestamp is printed in, as a Stash host stores its
    local time. The default ``"-06:00"`` keeps clients honest (Stash in a UTC container
    prints ``"Z"``; pass that to get it). ``stash_root`` is where Stash sees the media
    (POSIX, Stash in Docker). Layout: ``<root>/<Studio>/<year>/<file>`` (``Unsorted`` when
    no studio), hard cases in ``<root>/<Studio>/<year>/Release NNNN/``.

    Realistic gaps: about 30 % of scenes have no title, 10 % no date, 10 % a ``YYYY`` or
    ``YYYY-MM`` date, 12 % no studio; 40 % carry a StashDB id; 5 % of files an md5 and 30 %
    a phash; 10 % of scenes share their ``updated_at`` second with many others (bulk edits).

    Hard cases come in blocks of 24 scenes, one block per 400 scenes (at least one, placed
    mid-range), so they scale with size: two ``scene.mp4`` and two same-titled files in
    different studio folders; ``Pt. I``/``Pt. II`` siblings; case-only twins in one folder;
    NFC accents, Hangul (both shown to Plex in NFD), CJK and emoji names; quotes, ``#``,
    ``[]``; ``%`` and ``_`` names with a sibling that their LIKE pattern also matches; a
    200+ character name; a remuxed file (Plex's oshash differs); byte-identical copies in two
    scenes; a two-file scene; a scene without files; a scene whose file Plex does not have.
    Each block also adds three Plex-only files: an unmatched download, one sharing a
    basename with a Stash file, and a third copy of the duplicate (ambiguous).
    """
    if scenes < 0:
        raise ValueError("scenes must be >= 0")
    lib = Library(stash_root=stash_root, tz=tz, seed=seed)
    with _no_gc():
        _Generator(scenes, seed, lib).run()
    return lib


def utc_epoch(stamp: str) -> int:
    """Unix seconds of an RFC 3339 timestamp as this module prints them."""
    return int(datetime.fromisoformat(stamp).astimezone(UTC).timestamp())
