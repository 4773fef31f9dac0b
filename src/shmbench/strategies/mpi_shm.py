"""MPI for launch and coordination, POSIX shared memory for the data: the older "MPI + shared
memory" pattern, zero-copy for the parent's node.

``mpiexec -n W`` ranks (the same rank program as ``mpi``) map a file in /dev/shm that the parent
created and holds as its matrix (an ``np.memmap``), and write their rows into it in place: no
window, nothing copied out in ``collect``. Across nodes, every other node keeps the window of
``mpi`` and its leader sends the node's rows to rank 0, which receives them into the file
(``internode``).
"""
from __future__ import annotations

from .._system import preflight
from ..runtimes.seat import Command
from .base import Traits
from .mpi_window import MpiWindow, Exchange


class MpiShm(MpiWindow):
    name = "mpi_shm"
    summary = "mpiexec -n W ranks writing the parent's /dev/shm file in place (MPI launches and coordinates)"
    traits = Traits(launcher="mpiexec", shares_memory=True, needs=("mpi4py",), extra="mpi",
                    nodes="the parent's node writes its file in place; every other node a window (as mpi) whose "
                          "rows are sent to rank 0")

    def need(self) -> preflight.Need:
        # The parent's file, plus a window for each other node's share.
        shm = self.plan.storage_nbytes + (self.plan.nbytes * (self.nodes - 1)) // self.nodes
        return preflight.Need(shm + preflight.process_overhead(self.workers + 1, True), shm)

    def attachment(self, slot: int) -> Exchange:
        return Exchange(self.path, direct=True)

    def prepare(self) -> None:
        super(MpiWindow, self).prepare()  # the parent's file is the matrix; the other nodes' windows:
        if self.nodes > 1:
            self._runtime.run(Command("prepare", self.workload))

    def collect(self) -> None:
        """Nothing: the parent's node wrote the file in place; the other nodes' rows came in ``internode``."""

    def is_shared_view(self) -> bool:
        return super(MpiWindow, self).is_shared_view()

    def prefault_pays(self) -> bool:
        return super(MpiWindow, self).prefault_pays()  # as for any file the parent wrote first
