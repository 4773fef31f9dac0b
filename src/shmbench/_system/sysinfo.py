"""What machine a result came from: the block printed by ``shmbench sysinfo`` and put in every JSON."""
from __future__ import annotations

import multiprocessing as mp
import os
import platform
import shutil
import sys
import time
from importlib import metadata

import numpy as np
import psutil
from threadpoolctl import threadpool_info

from .start_methods import DEFAULT_START_METHOD

_THP_SHMEM = "/sys/kernel/mm/transparent_hugepage/shmem_enabled"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def fill_bandwidth(nbytes: int = 256 * 2**20, repeat: int = 3) -> float:
    """Single-core ``ndarray.fill`` bandwidth on warm pages, in GB/s: the yardstick for GB/s figures."""
    array = np.ones(nbytes // 8)
    best = min(_timed_fill(array) for _ in range(repeat))
    return nbytes / best / 1e9


def _timed_fill(array: np.ndarray) -> float:
    start = time.perf_counter()
    array.fill(2.0)
    return time.perf_counter() - start


def blas() -> list[dict]:
    """The BLAS/OpenMP libraries numpy loaded and their thread counts (threadpoolctl)."""
    return [{k: info.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
            for info in threadpool_info()]


def machine() -> dict:
    """Facts that explain a figure: CPU, memory, /dev/shm, kernel settings and versions."""
    shm = shutil.disk_usage("/dev/shm") if os.path.isdir("/dev/shm") else None
    memory = psutil.virtual_memory()
    return {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "ram_total_bytes": memory.total,
        "ram_available_bytes": memory.available,
        "shm_total_bytes": shm.total if shm else None,
        "shm_free_bytes": shm.free if shm else None,
        "thp_shmem_enabled": read_text(_THP_SHMEM),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "shmbench": _own_version(),
        "start_method_default": DEFAULT_START_METHOD,
        # The first method listed is the interpreter's default (asking get_start_method would fix it).
        "interpreter_start_method_default": mp.get_start_method(allow_none=True) or mp.get_all_start_methods()[0],
        "blas": blas(),
        **contenders(),
    }


def _own_version() -> str:
    """Read from the installed package's metadata: this layer imports nothing above it."""
    try:
        return metadata.version("shmbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def contenders() -> dict:
    """Versions of the contenders' libraries (None where not installed), read without importing them."""
    versions = {}
    for key, dist in (("joblib", "joblib"), ("ray", "ray"), ("mpi4py", "mpi4py"), ("mpich", "mpich"),
                      ("dask", "distributed")):
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = None
    return versions
