"""What a forked child inherits of its parent's heap, kept out of reach of the child's garbage
collector: CPython's advice for fork without exec (``gc.freeze`` right before the fork)."""
from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def left_alone(start_method: str | None) -> Iterator[None]:
    """The parent's objects frozen while children are forked in the block. A forked child's
    collections then never run the finalizers of objects it merely inherited: the garbage of a
    Ray driver, left in a test process, crashed a worker here (SIGSEGV in its first fill's
    collection). Nor do they write to the inherited pages, which stay shared. Only ``fork``
    children inherit the heap; a freeze the caller made is left as it was."""
    if start_method != "fork" or gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
