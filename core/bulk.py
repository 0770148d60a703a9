"""Bulk work: loading or comparing a whole library at once."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_gc_pauses = 0


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a bulk job builds many long-lived
    objects (jobs may overlap: on again when the last ends, and only if it was on before
    the first began).

    Reading 100k Plex items keeps some 300k new container objects; the collector would
    walk the growing heap about eight times meanwhile, a fifth of the read's CPU, to find
    nothing: records hold no reference cycles, and refcounting frees what is replaced.
    Keep the block to the bulk job itself: garbage in cycles waits until it ends."""
    global _gc_pauses
    if _gc_pauses == 0:
        if not gc.isenabled():  # turned off by someone else: theirs to turn on
            yield
            return
        gc.disable()
    _gc_pauses += 1
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_pauses == 0:
            gc.enable()
