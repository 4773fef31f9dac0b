"""Where the time and memory go: each phase of a verified run, and memory over all processes.

Every ``track_`` here is lower-is-better, as ``asv compare`` assumes: seconds, bytes, or the
warm fill time over serial's (a ratio under 1 means faster than serial).
"""
from __future__ import annotations

import itertools

from shmbench import run

from .common import PHASE_TIMEOUT, SIZES, STRATEGIES, WORKERS, runnable

_WARM_REPEATS = 2


def _key(strategy, size, workers) -> tuple:
    return (strategy, size, int(workers))


class Phases:
    """Under the default start method: ``Cold`` times the start methods against each other, and
    six benchmarks times three methods was 1,782 processes of asv's (a quarter of an hour)."""

    params = [STRATEGIES, SIZES, WORKERS]
    param_names = ["strategy", "size", "workers"]
    rounds = 1

    def setup_cache(self):
        """Run every cell once (verified), with warm repeats; skipped cells keep their reason."""
        cells = {}
        for key in itertools.product(*self.params):
            strategy, size, workers = key
            try:
                cell = runnable(strategy, size, workers, "random")  # allocates nothing
            except NotImplementedError as skip:
                cells[_key(*key)] = str(skip)
                continue
            try:  # a failing cell fails only itself: its benchmarks raise in setup, the others run
                result = run(strategy, cell.plan.rows, cell.plan.cols, workers=workers,
                             start_method=cell.start_method, repeat=_WARM_REPEATS, timeout=PHASE_TIMEOUT)
            except Exception as error:
                cells[_key(*key)] = RuntimeError(f"{key} failed: {error}")
                continue
            cells[_key(*key)] = (result if result.verified else
                                 RuntimeError(f"{key} did not verify: {'; '.join(result.problems)}"))
        serial = {size: cells.get(_key("serial", size, 1)) for size in SIZES}
        return {"cells": cells, "serial": {s: r for s, r in serial.items() if not isinstance(r, (str, Exception))}}

    setup_cache.timeout = 3600

    def setup(self, cache, strategy, size, workers):
        cell = cache["cells"][_key(strategy, size, workers)]
        if isinstance(cell, str):
            raise NotImplementedError(cell)
        if isinstance(cell, Exception):
            raise cell
        self.result = cell
        self.serial = cache["serial"].get(size)

    def track_allocate(self, cache, *params):
        """Creating the parent's matrix (multiprocessing.Array zero-fills every page here)."""
        return self.result.phases["allocate"]

    def track_start(self, cache, *params):
        """Starting the workers until each has reached the matrix."""
        return self.result.phases["start"]

    def track_first_touch(self, cache, *params):
        """The first pass's extra cost over a warm pass: page faults in fresh processes."""
        return max(0.0, self.result.cold_seconds - self.result.warm_median)

    def track_collect(self, cache, *params):
        """Bringing results into the parent (only the pickled baseline copies anything)."""
        return self.result.phases["collect"]

    def track_fill_over_serial(self, cache, *params):
        """Warm fill+collect time over serial's at the same size (0.5 is a 2x speed-up)."""
        if self.serial is None:
            raise NotImplementedError("no serial baseline at this size")
        return self.result.warm_median / self.serial.warm_median

    def track_total_pss(self, cache, *params):
        """Peak PSS summed over the parent and every worker: one shared matrix counts once."""
        return self.result.peak_total_pss_bytes

    for _name in ("track_allocate", "track_start", "track_first_touch", "track_collect"):
        locals()[_name].unit = "seconds"
    track_fill_over_serial.unit = "ratio"
    track_total_pss.unit = "bytes"
    del _name
