"""What one run reports: the plan, the time of each phase, memory, and whether it verified."""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .phases import COLD, PHASES, total
from .plan import DEFAULT_DTYPE



@dataclass
class RunResult:
    """One verified (or not) run of a strategy.

    ``phases`` holds seconds per phase of the first pass (``touch``, ``fill`` and ``collect`` are
    the cold pass of freshly started workers); ``warm_passes`` holds fill+collect of each repeat.
    """

    strategy: str
    workload: str
    rows: int
    cols: int
    workers: int
    start_method: str | None
    #: How the workers were launched (``Traits.launcher``): "none", "threads", "multiprocessing", ...
    launcher: str
    n_blocks: int
    block_rows: int
    seed: int
    phases: dict[str, float]
    total_seconds: float
    pids: list[int]
    verified: bool
    problems: list[str] = field(default_factory=list)
    #: sha256 of the output: the matrix, or the row sums of a read-only workload.
    digest: str | None = None
    warm_passes: list[float] = field(default_factory=list)
    peak_total_pss_bytes: int | None = None
    memory: list[dict] = field(default_factory=list)
    prefault: bool = False
    #: Minor page faults per phase ("touch", "fill" of the first pass, "warm_fill" of the last
    #: repeat) and per process ("parent", "worker 0", ...).
    minor_faults: dict[str, dict[str, int]] = field(default_factory=dict)
    #: BLAS/OpenMP threads each worker may use (threadpoolctl); None without worker processes.
    blas_threads_per_worker: int | None = None
    #: The passes of the references, one per warm pass, measured in the same round (a comparison's
    #: runs): ``serial`` (its fill of the same plan; empty for serial itself) and ``yardstick`` (a
    #: raw-numpy fill of ``yardstick_threads`` threads over ``yardstick_bytes``).
    reference: dict | None = None
    #: Whether every figure's interval closed within the target before the time budget ran out.
    settled: bool | None = None
    #: Whether its rounds stopped early, its speed-up's interval lying wholly below the best one
    #: of its group so far: more rounds could not have brought it into contention.
    behind: bool | None = None
    #: Why the cell failed (a worker died, a runtime did not start): one line; None when it ran.
    error: str | None = None
    #: The matrix's element type (records before it existed are float64).
    dtype: str = DEFAULT_DTYPE
    #: For a user's kernel, what its output was judged by: serial's output bit for bit, or its
    #: module's ``check`` alone when two serial runs of it differed. None for built-in workloads.
    verified_by: str | None = None
    #: The nodes the workers ran on (``--nodes``; pretend nodes on one machine unless given hosts).
    nodes: int = 1
    #: Bytes one pass moved between nodes (the ``internode`` phase), and whether the engine
    #: reported them ("measured: ...") or they were counted from the rows sent ("computed: ...");
    #: None for strategies that run on one node only.
    internode_bytes: int | None = None
    internode_bytes_how: str | None = None
    #: Of those, what arrived over this host's network links meanwhile (the kernel's counters of
    #: every interface but loopback, less each frame's headers): measured on the wire, where some
    #: workers ran on other hosts of a cluster the run joined; None otherwise.
    internode_wire_bytes: int | None = None
    #: How an engine contender's engine was set up, in words a user of that engine can check
    #: (client options, store size, how idle workers wait, versions); empty for the others.
    settings: dict[str, str] = field(default_factory=dict)
    #: How many times the cell was opened for its rounds: a contender whose figure did not settle in
    #: its first sitting gets a second (``compare.sits_again``), its rounds added to the first's.
    #: ``phases`` and the cold figures are the first sitting's.
    sittings: int = 1

    @property
    def nbytes(self) -> int:
        return self.rows * self.cols * np.dtype(self.dtype).itemsize

    @property
    def cold_seconds(self) -> float:
        """The first pass with workers started but never used: prefault, fill, internode and collect."""
        return total(self.phases, COLD)

    @property
    def warm_median(self) -> float | None:
        return statistics.median(self.warm_passes) if self.warm_passes else None

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        """A result from its ``as_dict`` (a journal line); derived keys are left out."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def as_dict(self) -> dict:
        out = asdict(self)
        out["nbytes"] = self.nbytes
        out["cold_seconds"] = self.cold_seconds
        return out

    def __str__(self) -> str:
        how = self.start_method or (self.launcher if self.launcher != "none" else None)
        where = f"{how}, " if how else ""
        kind = "" if self.dtype == DEFAULT_DTYPE else f" {self.dtype}"
        head = (f"{self.strategy} [{where}{self.workers} worker(s)] {self.workload} "
                f"{self.rows}x{self.cols}{kind} ({self.nbytes / 2**20:.1f} MiB): "
                f"{'verified' if self.verified else 'NOT VERIFIED'}")
        phases = "  ".join(f"{name} {self.phases[name]:.4f}s" for name in PHASES)
        lines = [head, f"  {phases}  total {self.total_seconds:.4f}s"]
        if self.warm_passes:
            lines.append(f"  warm fill+collect: median {self.warm_median:.4f}s over {len(self.warm_passes)}")
        if self.peak_total_pss_bytes is not None:
            lines.append(f"  peak total PSS {self.peak_total_pss_bytes / 2**20:.1f} MiB "
                         f"({self.peak_total_pss_bytes / self.nbytes:.2f}x the matrix)")
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)
