"""How noisy is this machine right now? A fixed raw-numpy yardstick, timed a few times on one core
and on all of them, and what the kernel says (load, steal time, CPU governor, huge pages).

Run before and after a comparison (as pyperf's ``check`` and ``system show`` do), it says whether the
figures of the comparison could be trusted to the precision they claim.
"""
from __future__ import annotations

import os
import statistics
import time

from .sysinfo import read_text

_NBYTES = 64 * 2**20
_PASSES = 9
#: Beyond this coefficient of variation of the yardstick the machine is too noisy for ±3% figures.
NOISY_CV = 0.05


def _cpu_times() -> tuple[int, int]:
    """(steal, total) jiffies of all CPUs, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    steal = fields[7] if len(fields) > 7 else 0
    return steal, sum(fields)


def _yardstick_cv(threads: int) -> float:
    from .yardstick import Yardstick

    stick = Yardstick(_NBYTES, threads)
    try:
        times = [stick.run() for _ in range(_PASSES)]
    finally:
        stick.close()
    return statistics.stdev(times) / statistics.mean(times)


def check() -> dict:
    """One reading of the machine's noise (about a second)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    steal0, total0 = _cpu_times()
    began = time.monotonic()
    one, every = _yardstick_cv(1), _yardstick_cv(cores)
    steal1, total1 = _cpu_times()
    return {
        "yardstick_cv_one_core": round(one, 4),
        "yardstick_cv_all_cores": round(every, 4),
        "steal_fraction": round((steal1 - steal0) / (total1 - total0), 4) if total1 > total0 else 0.0,
        "load_average_1min": os.getloadavg()[0],
        "seconds": round(time.monotonic() - began, 2),
        "cpu_governor": read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "thp_enabled": read_text("/sys/kernel/mm/transparent_hugepage/enabled"),
    }


def warning(reading: dict, when: str) -> str | None:
    """One line when the machine is too noisy for figures to settle within ±3%, else None."""
    cv = max(reading["yardstick_cv_one_core"], reading["yardstick_cv_all_cores"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cv > NOISY_CV or reading["load_average_1min"] > cores:
        return (f"the machine was noisy {when} the comparison (a raw numpy fill varied {cv:.0%} between "
                f"passes, load {reading['load_average_1min']:.1f} on {cores} cores): figures may not settle")
    return None
