"""MPI-3 shared memory: W ranks launched with ``mpiexec -n W`` share one ``Allocate_shared`` window.

The ranks (``mpi_rank``) fill the window in place, each its share of the rows. The parent is not
an MPI rank, so it reaches the matrix through an exchange file in /dev/shm that every rank maps:
results are copied out of the window in ``collect``, and the ``rowsum`` input is copied into it in
``fill``. ``start`` is mpiexec launching W interpreters, MPI_Init, and the window. The exchange
file loses its name once every rank has mapped it.
"""
from __future__ import annotations

from dataclasses import dataclass

from .._system import preflight
from .._system.files import remove_file
from ..runtimes.mpi import MpiRanks, mpiexec
from ..runtimes.seat import Command
from .base import Strategy, Traits
from .memmap import FileMatrix


@dataclass(frozen=True)
class Exchange:
    path: str  # every rank maps it; the rank program opens it itself
    direct: bool = False  # the ranks of the parent's node write it in place (no window there)


class MpiWindow(FileMatrix, Strategy):
    name = "mpi"
    summary = "mpiexec -n W ranks sharing one MPI.Win.Allocate_shared window; results copied out to the parent"
    # The parent reads a copy of the window.
    traits = Traits(launcher="mpiexec", shares_memory=False, needs=("mpi4py",), extra="mpi",
                    nodes="a window per node (COMM_TYPE_SHARED); MPICH's pretend nodes here, real hosts with --hosts")
    runtime = MpiRanks

    @classmethod
    def unavailable_reason(cls) -> str | None:
        missing = super().unavailable_reason()
        if missing:
            return missing
        return None if mpiexec() else "no mpiexec found (pip install 'shmbench[mpi]' brings MPICH's)"

    def _nodes(self, nodes: int) -> int:
        nodes = super()._nodes(nodes)
        if nodes > 1 and (self.work.reads or self.work.is_kernel):
            raise ValueError("mpi on several nodes runs the writing workloads (random, pid, legacy-random) only: "
                             "an input would first have to travel to every node")
        return nodes

    def need(self) -> preflight.Need:
        # The window and the exchange file, both in /dev/shm.
        both = self.plan.storage_nbytes + self.plan.nbytes
        return preflight.Need(both + preflight.process_overhead(self.workers + 1, True), both)

    def allocate(self) -> None:
        self.make_file(preflight.SHM_DIR, "shmbench-mpi-")

    def attachment(self, slot: int) -> Exchange:
        return Exchange(self.path)

    def start(self) -> None:
        super().start()
        remove_file(self.path)  # every rank has mapped it: nothing is left in /dev/shm however the run ends

    def prepare(self) -> None:
        super().prepare()  # the parent's side: the rowsum input in the exchange file
        self._runtime.run(Command("prepare", self.workload))

    def prefault_pays(self) -> bool:
        return self.work.over_default  # the ranks' 42.0 created the window's pages

    def collect(self) -> None:
        faults = self._runtime.run(Command("collect", self.workload))
        if not self.work.reads:
            self._note(faults)

    def is_shared_view(self) -> bool:
        return False
