"""oshash must equal Stash's value byte for byte: Stash's own unit-test vectors, plus a
straightforward re-implementation of the algorithm as an oracle for random inputs."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stash2plex_stash_source.oshash import (
    CHUNK_SIZE,
    oshash_bytes,
    oshash_file,
    oshash_file_async,
)


def _doubled(base: bytes, times: int) -> bytes:
    for _ in range(times):
        base += base
    return base


def _zeros_with_tail(tail: bytes) -> bytes:
    # Stash's "identical" cases: a zero chunk, then a chunk ending in `tail`.
    last = bytearray(CHUNK_SIZE)
    last[-len(tail) :] = tail
    return bytes(CHUNK_SIZE) + bytes(last)


# Vectors from stash pkg/hash/oshash/oshash_test.go.
STASH_VECTORS = [
    pytest.param(_doubled(b"this is a test", 15), "6a0eba04654d0b9b", id="regular"),
    pytest.param(b"hello world", "d3e392dee38cd4df", id="lt-chunk"),
    pytest.param(_zeros_with_tail(b"this is dumb"), "d5d6ddd820756920", id="identical-1"),
    pytest.param(_zeros_with_tail(b"dumb is this"), "d5d6ddd820756920", id="identical-2"),
]


def _oracle(data: bytes) -> str:
    """The algorithm written out the slow, obvious way."""
    size = len(data)
    chunk = 65536 if size >= 65536 else (size // 8) * 8
    total = size
    for buf in (data[:chunk], data[size - chunk :]):
        for (word,) in struct.iter_unpack("<Q", buf):
            total = (total + word) % 2**64
    return f"{total:016x}"


@pytest.mark.parametrize(("data", "expected"), STASH_VECTORS)
def test_stash_vectors_bytes(data: bytes, expected: str) -> None:
    assert oshash_bytes(data) == expected


@pytest.mark.parametrize(("data", "expected"), STASH_VECTORS)
def test_stash_vectors_file(tmp_path: Path, data: bytes, expected: str) -> None:
    f = tmp_path / "video.bin"
    f.write_bytes(data)
    assert oshash_file(f) == expected
    assert oshash_file(str(f)) == expected


@pytest.mark.parametrize("size", [0, 5, 8])
def test_tiny_files_raise(tmp_path: Path, size: int) -> None:
    f = tmp_path / "tiny.bin"
    f.write_bytes(b"x" * size)
    with pytest.raises(ValueError, match="larger than 8 bytes"):
        oshash_file(f)
    with pytest.raises(ValueError):
        oshash_bytes(b"x" * size)


def test_nine_bytes_hash(tmp_path: Path) -> None:
    f = tmp_path / "nine.bin"
    f.write_bytes(b"123456789")
    assert oshash_file(f) == _oracle(b"123456789")


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        oshash_file(tmp_path / "nope.mp4")


async def test_async_variant(tmp_path: Path) -> None:
    f = tmp_path / "v.bin"
    f.write_bytes(b"hello world")
    assert await oshash_file_async(f) == "d3e392dee38cd4df"


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.binary(min_size=9, max_size=300),
        # Around the chunk boundary, where head and tail stop overlapping. Built from a
        # seeded PRNG because asking hypothesis for 64 KiB blobs is slow.
        st.builds(
            lambda n, seed: random.Random(seed).randbytes(n),
            st.integers(min_value=CHUNK_SIZE - 16, max_value=2 * CHUNK_SIZE + 16),
            st.integers(min_value=0, max_value=2**32),
        ),
    )
)
def test_matches_oracle(data: bytes) -> None:
    assert oshash_bytes(data) == _oracle(data)


def test_large_file_reads_only_ends(tmp_path: Path) -> None:
    # A sparse 4 GiB file: hashing must not read it all (it would take far too long).
    f = tmp_path / "big.bin"
    with f.open("wb") as fh:
        fh.write(b"\x01" * 8)
        fh.seek(4 * 2**30 - 8)
        fh.write(b"\x02" * 8)
    size = 4 * 2**30
    expected = (size + 0x0101010101010101 + 0x0202020202020202) % 2**64
    assert oshash_file(f) == f"{expected:016x}"
