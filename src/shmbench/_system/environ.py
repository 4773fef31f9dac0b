"""Environment variables set for a while, and given back their earlier values afterwards."""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def restore(name: str, earlier: str | None) -> None:
    """Give ``name`` back its ``earlier`` value (None: it was unset)."""
    if earlier is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = earlier


@contextmanager
def setting(name: str, value: str) -> Iterator[None]:
    """``name`` set to ``value`` for the block (for this process and what it starts meanwhile)."""
    earlier = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        restore(name, earlier)
