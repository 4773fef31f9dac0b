"""The multiprocessing start methods a strategy may run under, and the one used when none is asked."""
from __future__ import annotations

import multiprocessing as mp

START_METHODS = ("fork", "spawn", "forkserver")
# Explicit, so results do not change with the interpreter (Python 3.14 made forkserver the
# Linux default). fork is the book's way and the cheapest start.
DEFAULT_START_METHOD = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
