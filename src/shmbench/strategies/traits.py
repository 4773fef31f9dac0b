"""What a strategy is, in a few frozen facts: how its workers are launched, whether they share the
parent's memory, its part in a comparison, what it needs installed. The CLI, the reports, asv, the
grid and the tests read these and derive nothing else from a strategy's name."""
from __future__ import annotations

from dataclasses import dataclass

from ..runtimes.base import DEFAULT_START_METHOD


@dataclass(frozen=True)
class Traits:
    """What a strategy is; the CLI, asv, the grid and the tests read these and derive nothing else."""

    #: How its workers are launched: "none" (the parent alone), "threads", "multiprocessing",
    #: "process pool", "loky", "ray", "mpiexec" or "dask".
    launcher: str
    #: The multiprocessing start methods it runs under; empty where the launcher starts workers its own way.
    start_methods: tuple[str, ...] = ()
    #: The parent's matrix is the very memory the workers write (no copy anywhere).
    shares_memory: bool = True
    #: Each worker is sure to get a share of the rows (the book's third check holds).
    every_worker_gets_work: bool = True
    #: How it runs across several nodes (``--nodes``), in words; empty: on one node only.
    nodes: str = ""
    #: Its part in a comparison: "reference" (every speed-up is over it, every cell carries its
    #: passes), "recipe" (the book's recipe this project grew from) or "baseline" (known ways the
    #: answer says how far the winner is ahead of), or "".
    role: str = ""
    #: What a baseline is called in the answer ("the book's recipe").
    label: str = ""
    #: The modules it cannot run without, and the extra of ours that installs them ("" : a
    #: dependency of shmbench itself); `shmbench list` says which is missing.
    needs: tuple[str, ...] = ()
    extra: str = ""

    @property
    def parallel(self) -> bool:
        """Has workers of its own (threads or processes)."""
        return self.launcher != "none"

    @property
    def processes(self) -> bool:
        """Its workers are processes."""
        return self.launcher not in ("none", "threads")

    def default_start_method(self) -> str | None:
        if not self.start_methods:
            return None
        return DEFAULT_START_METHOD if DEFAULT_START_METHOD in self.start_methods else self.start_methods[0]
