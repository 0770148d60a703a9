"""The OpenSubtitles hash ("oshash"), computed exactly as Stash computes it.

Stash fingerprints every video with it during a scan, so a hash computed on the Plex side
(from a read-only mount of the same media) finds the scene without any path mapping. It
reads only 128 KiB per file, which stays cheap over SMB or NFS.

Algorithm (Stash ``pkg/hash/oshash``): ``size`` plus the wrap-around sum of the first and
the last ``chunk`` bytes read as little-endian uint64 words, printed as 16 lowercase hex
digits. ``chunk`` is 64 KiB, or ``floor(size / 8) * 8`` for smaller files (head and tail
then overlap). Files of 8 bytes or less have no hash.
"""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

__all__ = ["CHUNK_SIZE", "oshash_bytes", "oshash_file", "oshash_file_async"]

#: Bytes read from each end of the file.
CHUNK_SIZE = 64 * 1024
_MASK = 0xFFFF_FFFF_FFFF_FFFF


def _chunk_for(size: int) -> int:
    if size <= 8:
        # Stash refuses these too; a hash of so few bytes would match nothing useful.
        raise ValueError(f"oshash needs a file larger than 8 bytes (got {size})")
    return CHUNK_SIZE if size >= CHUNK_SIZE else (size // 8) * 8


def _sum_words(buf: bytes) -> int:
    # sum() over the unpacked tuple runs in C; the mask afterwards gives the uint64
    # wrap-around Go gets for free.
    return sum(struct.unpack(f"<{len(buf) // 8}Q", buf))


def _combine(size: int, head: bytes, tail: bytes) -> str:
    return f"{(size + _sum_words(head) + _sum_words(tail)) & _MASK:016x}"


def oshash_bytes(data: bytes) -> str:
    """The oshash of an in-memory buffer (the same value as a file with these bytes)."""
    size = len(data)
    chunk = _chunk_for(size)
    return _combine(size, data[:chunk], data[size - chunk :])


def oshash_file(path: str | os.PathLike[str]) -> str:
    """The oshash of the file at ``path``, as Stash stores it (16 lowercase hex digits).

    :raises ValueError: the file has 8 bytes or fewer.
    :raises OSError: the file cannot be read, or shrank while being read.
    """
    with Path(path).open("rb") as f:
        # fstat on the open handle, so size and content come from the same file even if
        # the path is swapped underneath us.
        size = os.fstat(f.fileno()).st_size
        chunk = _chunk_for(size)
        head = f.read(chunk)
        f.seek(size - chunk)
        tail = f.read(chunk)
    if len(head) != chunk or len(tail) != chunk:
        raise OSError(f"short read while hashing {os.fspath(path)!r}: file changed size?")
    return _combine(size, head, tail)


async def oshash_file_async(path: str | os.PathLike[str]) -> str:
    """:func:`oshash_file` in a worker thread, so network-mounted reads never block the loop."""
    return await asyncio.to_thread(oshash_file, path)
