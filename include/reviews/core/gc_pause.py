"""Python's cyclic garbage collector paused for a bulk step (a partnership's ingest, a validation).

A partnership's ingest makes millions of short-lived objects (cells, GX's metric configurations,
ids, dicts). Each allocation burst sets off collections, and the full ones walk every object the
process holds (GX, SQLAlchemy and pandas leave a large heap: a full collection took about 0.2 s),
about a tenth of the ingest's CPU, for nothing: what these steps make is freed by reference
counting as usual (a paused partnership's ingest left the process's peak memory as it was).
Anything in a reference cycle waits for the first collection after the block.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_LOCK = threading.Lock()
_pausers = 0  # blocks open now
_was_enabled = True  # whether the collector was on when the first of them opened


@contextmanager
def gc_paused():
    """The collector off while the block runs, back on (if it was) afterwards. Nested and
    concurrent blocks count themselves: the last one out turns the collector back on."""
    global _pausers, _was_enabled
    with _LOCK:
        if _pausers == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pausers += 1
    try:
        yield
    finally:
        with _LOCK:
            _pausers -= 1
            if _pausers == 0 and _was_enabled:
                gc.enable()
