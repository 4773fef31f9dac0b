"""How workers run: one protocol (``base.Runtime``: start, run a command, close), the one-line
reports of a worker that failed or died, and one module per way of running them (our process
group, a process pool, loky, Ray actors, MPI ranks, Dask workers, threads, the parent alone)."""
