"""The matching ladder: from a Plex match request to scored Stash scenes.

Best evidence first, each step scored 0-100; a scene found by several steps keeps its best
score. Everything here reads the local scene index: no request reaches Stash.

======================  =====  ==================================================
evidence                score  notes
======================  =====  ==================================================
our guid / stash-<id>    100   the request names the scene
oshash (+ size check)    100   97 when the basename differs; shared hashes: 70
mapped full path          98   through ``map_path``; 92 when only the case differs
path suffix, k parts   88..95  k >= 2 trailing components shared, unique at that k
unique basename           86   only when nothing contradicts it (folders, duration)
title/date/studio      <= 70   never automatic with the default threshold
======================  =====  ==================================================

Ambiguity is never auto-matched: tied candidates all drop to 70 so they only appear
under Fix Match. A duration that disagrees by more than a few seconds sinks a candidate.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence

from attrs import define

from .index import IndexedFile, IndexedScene, SceneCard, SceneIndex, TailFile, fold

RATING_KEY_PREFIX = "stash-"
_HINT = re.compile(r"(?:^|[^A-Za-z0-9])stash-(\d{1,18})(?![0-9])")
_SPLIT = re.compile(r"[\\/]+")
_DRIVE = re.compile(r"[A-Za-z]:")
_OSHASH = re.compile(r"[0-9a-f]{16}")
#: Below this length a basename is too generic to be trusted alone ("1.mp4", "scene.mp4").
MIN_DISTINCT_BASENAME = 10
DURATION_TOLERANCE_S = 5.0
AMBIGUOUS = 70


#: A scene as the ladder reports it: whole (most steps), or as the suffix step's card in a
#: scan. Both have what gates and a scan's candidates read: ``id``, ``title``, ``date``,
#: ``studio``, ``organized``, ``has_stash_id`` and ``primary_basename``.
AnyScene = IndexedScene | SceneCard
#: A suffix step row: the scene, the file the path tails found, components shared.
_Row = tuple[AnyScene, IndexedFile | TailFile, int]
_WholeRow = tuple[AnyScene, IndexedFile, int]


@define
class Hit:
    """One scene the ladder found, with the score of its best evidence."""

    scene: AnyScene
    score: int
    reason: str


def scene_id_from_key(rating_key: str) -> int | None:
    if not rating_key.startswith(RATING_KEY_PREFIX):
        return None
    digits = rating_key[len(RATING_KEY_PREFIX) :]
    return int(digits) if digits.isdigit() and len(digits) <= 18 else None


#: Samba (vfs_catia/fruit) and macOS show characters Windows forbids in names as private-
#: use code points U+F000 + the ASCII code: a Windows Plex sees ``\uf022`` for ``"``.
_SFM = str.maketrans({0xF000 + ord(c): c for c in '"*:<>?|'})
#: Any character ``_SFM`` replaces: str.translate costs a dict lookup per character, so it
#: only runs on the rare path that has one.
_SFM_ANY = re.compile("[" + "".join(chr(0xF000 + ord(c)) for c in '"*:<>?|') + "]")


def plain(path: str) -> str:
    """NFC, with Samba's private-use stand-ins turned back into the real characters."""
    if path.isascii():
        return path  # already NFC, and no stand-in: the common case, O(1) to tell
    # normalize() returns its input when a quick check finds it already NFC. NFC first,
    # stand-ins second, as always: in the other order "<" + U+0338 would compose.
    path = unicodedata.normalize("NFC", path)
    return path.translate(_SFM) if _SFM_ANY.search(path) else path


def split_path(path: str) -> list[str]:
    """Components of a path in any style (POSIX, Windows, UNC), NFC-normalised."""
    path = plain(path)
    # str.split is several times cheaper than the regex; empty pieces are dropped below
    # either way, so runs of separators give the same answer.
    pieces = _SPLIT.split(path) if "\\" in path else path.split("/")
    parts = [p for p in pieces if p and p != "."]
    if parts and len(parts[0]) == 2 and _DRIVE.fullmatch(parts[0]):
        del parts[0]  # a drive letter is not a folder Stash could share
    return parts


class Matcher:
    """Runs the ladder against one index. ``gates`` cap scenes that fail the optional
    requirements (organized, stash-box id) below any threshold."""

    def __init__(
        self,
        index: SceneIndex,
        *,
        require_organized: bool = False,
        require_stash_id: bool = False,
    ) -> None:
        self.index = index
        self.require_organized = require_organized
        self.require_stash_id = require_stash_id

    # --- the steps ----------------------------------------------------------------------

    def by_hint(self, guid: str | None, title: str | None) -> list[Hit]:
        """Step 1: our own guid (re-match) or ``stash-<id>`` typed into Fix Match."""
        hits = []
        for text, reason in ((guid, "guid"), (title, "hint")):
            if not text:
                continue
            found = _HINT.search(text)
            if found is None:
                continue
            scene = self.index.get(int(found.group(1)))
            if scene is not None:
                hits.append(Hit(scene, 100, reason))
        return hits

    def by_oshash(self, oshash: str | None, basename: str | None, size: int | None) -> list[Hit]:
        """Step 2: the OpenSubtitles hash Stash also computes, confirmed by size/name."""
        if not oshash or not _OSHASH.fullmatch(oshash):
            return []
        scenes = self.index.by_oshash(oshash)
        hits = []
        for scene in scenes:
            files = [f for f in scene.files if f.oshash == oshash]
            if size is not None and not any(f.size == size for f in files):
                continue  # a hash collision: oshash only covers head and tail
            same_name = basename is not None and any(
                fold(f.basename) == fold(basename) for f in files
            )
            hits.append(Hit(scene, 100 if same_name else 97, "oshash"))
        if len({h.scene.id for h in hits}) > 1:
            # The same bytes in several scenes (duplicates): let the user pick.
            return [Hit(h.scene, AMBIGUOUS, "oshash-shared") for h in hits]
        return hits

    def by_path(self, stash_path: str | None, *, cards: bool = True) -> list[Hit]:
        """Step 3: the Plex path translated by a mapping engine, looked up exactly.

        ``cards``: answer from the index's in-memory snapshot when it is current, as a
        scan does (see :meth:`by_suffix`); the database answers otherwise."""
        if not stash_path:
            return []
        stash_path = plain(stash_path)
        index = self.index
        lookup = index.path_matches if cards else None
        exact: Sequence[AnyScene] | None = lookup(stash_path) if lookup else None
        if exact is None:
            lookup = None  # the snapshot is not current: the database for both lookups
            exact = index.by_path(stash_path, case_sensitive=True)
        if len(exact) == 1:
            return [Hit(exact[0], 98, "path")]
        if len(exact) > 1:
            return [Hit(s, AMBIGUOUS, "path-shared") for s in exact]
        folded: Sequence[AnyScene] | None = (
            lookup(stash_path, case_sensitive=False) if lookup else None
        )
        if folded is None:
            folded = index.by_path(stash_path, case_sensitive=False)
        if len(folded) == 1:
            return [Hit(folded[0], 92, "path-case")]
        return [Hit(s, AMBIGUOUS, "path-case-shared") for s in folded]

    def by_suffix(
        self, parts: list[str], duration_s: float | None, *, cards: bool = True
    ) -> list[Hit]:
        """Steps 4 and 5: the longest run of trailing components shared with Stash's path.

        Needs no configuration when Plex sends a relative path. A unique winner at k >= 2
        scores 88-95; a unique basename (k = 1) scores 86 only when the request has no
        folders to contradict it; anything tied is ambiguous.

        ``cards``: answer from the index's in-memory snapshot (scene cards) when it is
        current, as a scan does. The database answers instead (whole scenes) when it is
        not, when case twins must be told apart by their paths, and for ``cards=False``
        (Fix Match, whose thumbnails need whole scenes). The hits are the same either way.
        """
        if not parts:
            return []
        if cards:
            rows = self.index.suffix_matches(parts)
            if rows is not None:
                hits = self._rank_suffix(parts, duration_s, rows)
                if hits is not None:
                    return hits
        hits = self._rank_suffix(parts, duration_s, self.index.suffix_candidates(parts))
        return hits or []  # never None: whole files have their paths

    def _rank_suffix(
        self, parts: list[str], duration_s: float | None, rows: Sequence[_Row]
    ) -> list[Hit] | None:
        """by_suffix's hits from the index's rows; None when a tie needs paths the rows
        do not have."""
        if not rows:
            return []
        if len(rows) == 1:
            # The common case, one file: nothing to rank or tie.
            scene, file, shared = rows[0]
            if _duration_disagrees(file, duration_s):
                return []
            return [Hit(scene, self._suffix_score(parts, file, shared), f"suffix-{shared}")]
        by_scene: dict[int, _Row] = {}
        for scene, file, shared in rows:
            if _duration_disagrees(file, duration_s):
                continue
            best = by_scene.get(scene.id)
            if best is None or shared > best[2]:
                by_scene[scene.id] = (scene, file, shared)
        if not by_scene:
            return []
        ranked = sorted(by_scene.values(), key=lambda r: -r[2])
        top = ranked[0][2]
        tied = [r for r in ranked if r[2] == top]
        if len(tied) > 1:
            whole = [(s, f, k) for s, f, k in tied if isinstance(f, IndexedFile)]
            if len(whole) < len(tied):
                return None  # case twins are told apart by their paths: not in memory
            tied, losers = _break_case_tie(parts, whole)
            ranked = tied + losers + ranked[len(tied) + len(losers) :]
        hits = []
        if len(tied) > 1:
            hits += [Hit(scene, AMBIGUOUS, f"suffix-{top}-shared") for scene, _f, _k in tied]
        else:
            scene, file, shared = tied[0]
            hits.append(Hit(scene, self._suffix_score(parts, file, shared), f"suffix-{shared}"))
        # Weaker runners-up stay visible to Fix Match, well below the winner.
        hits += [
            Hit(scene, 50 + 5 * min(k, 3), f"suffix-{k}") for scene, _f, k in ranked[len(tied) :]
        ]
        return hits

    @staticmethod
    def _suffix_score(parts: list[str], file: IndexedFile | TailFile, shared: int) -> int:
        if shared >= 2:
            return min(95, 83 + 5 * (shared - 1))  # 88, 93, 95
        if len(parts) > 1:
            return 80  # same name, different folders: the file may be another one
        if file.name_len < MIN_DISTINCT_BASENAME:
            return 75  # "1.mp4" alone proves nothing
        return 86

    def by_title(self, title: str | None, year: int | None, date: str | None) -> list[Hit]:
        """Step 6: title (and date) similarity: Fix Match material, never automatic."""
        if not title and not date:
            return []
        hits = []
        for scene in self.index.search(title=title, year=year, date=date, studio=None, limit=20):
            ratio = _similarity(title or "", scene.title or "")
            score = 30 + round(30 * ratio)
            if date and scene.date == date:
                score += 10
            elif year and scene.date and scene.date[:4] == str(year):
                score += 5
            hits.append(Hit(scene, min(score, AMBIGUOUS), "title"))
        return hits

    # --- the ladder ---------------------------------------------------------------------

    def gate(self, hits: list[Hit]) -> list[Hit]:
        if not (self.require_organized or self.require_stash_id):
            return hits
        out = []
        for hit in hits:
            if self.require_organized and not hit.scene.organized:
                hit = Hit(hit.scene, min(hit.score, 50), hit.reason + "+gate-organized")
            if self.require_stash_id and not hit.scene.has_stash_id:
                hit = Hit(hit.scene, min(hit.score, 50), hit.reason + "+gate-stash-id")
            out.append(hit)
        return out


def _break_case_tie(
    parts: list[str], tied: list[_WholeRow]
) -> tuple[list[_WholeRow], list[_WholeRow]]:
    """Case twins ("Beach Day.mp4" and "beach day.mp4" side by side on a Linux Stash):
    the one whose trailing components match with their case wins, if exactly one does."""

    def exact(row: _WholeRow) -> int:
        have = split_path(row[1].path)
        shared = 0
        for a, b in zip(reversed(have), reversed(parts), strict=False):
            if a != b:
                break
            shared += 1
        return shared

    scored = [(exact(row), row) for row in tied]
    best = max(k for k, _row in scored)
    winners = [row for k, row in scored if k == best]
    if len(winners) == 1 and best > 0:
        return winners, [row for k, row in scored if k != best]
    return tied, []


def _similarity(a: str, b: str) -> float:
    a, b = fold(a), fold(b)
    if not a or not b:
        return 0.0
    return difflib.SequenceMatcher(None, a, b).ratio()


def _duration_disagrees(file: IndexedFile | TailFile, duration_s: float | None) -> bool:
    if duration_s is None or not file.duration:
        return False
    return abs(file.duration - duration_s) > DURATION_TOLERANCE_S
