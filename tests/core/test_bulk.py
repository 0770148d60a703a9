"""gc_paused(): bulk jobs share one pause of the cyclic GC."""

from __future__ import annotations

import gc

from stash2plex import gc_paused


def test_bulk_jobs_pause_the_cyclic_gc_and_the_last_one_restores_it():
    assert gc.isenabled()
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()  # two reads overlap
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second still reads
    second.__exit__(None, None, None)
    assert gc.isenabled()

    gc.disable()  # someone else's choice is left alone
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
