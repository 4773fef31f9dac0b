"""The OOM killer's work, as the memory cgroup of this process counts it.

A worker the OOM killer ends dies of SIGKILL, like one somebody killed; the cgroup's count of OOM
kills (cgroup v2 ``memory.events``, v1 ``memory.oom_control``: every kind of OOM kill among its
processes) tells the two apart. A runtime reads it when its workers start and again when one dies.
"""
from __future__ import annotations

import os

ROOT = "/sys/fs/cgroup"


def cgroup() -> tuple[str, int] | None:
    """The folder of this process's memory cgroup, and its version (1 or 2); None when not found."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        folder = os.path.join(ROOT, "memory", path.lstrip("/"))
        if "memory" in controllers.split(",") and os.path.exists(os.path.join(folder, "memory.oom_control")):
            return folder, 1
    for line in lines:
        if line.startswith("0::"):
            for base in (ROOT, os.path.join(ROOT, "unified")):
                folder = os.path.join(base, line[3:].lstrip("/"))
                if os.path.exists(os.path.join(folder, "memory.events")):
                    return folder, 2
    return None


def _read(folder: str, name: str) -> str | None:
    try:
        with open(os.path.join(folder, name)) as f:
            return f.read().strip()
    except OSError:
        return None


def kills() -> int | None:
    """How many processes of this cgroup the OOM killer has ended so far; None when it cannot tell."""
    found = cgroup()
    if found is None:
        return None
    folder, version = found
    text = _read(folder, "memory.oom_control" if version == 1 else "memory.events") or ""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill":
            return int(value)
    return None


def usage() -> str:
    """The cgroup's memory in use and its limit, in words."""
    found = cgroup()
    if found is None:
        return "its memory cgroup not found"
    folder, version = found
    used, limit = ((_read(folder, "memory.usage_in_bytes"), _read(folder, "memory.limit_in_bytes")) if version == 1
                   else (_read(folder, "memory.current"), _read(folder, "memory.max")))
    words = f"{int(used) / 2**20:.0f} MiB in use" if used and used.isdigit() else "memory in use unknown"
    if limit and limit.isdigit() and int(limit) < 2**60:
        words += f" of a limit of {int(limit) / 2**20:.0f} MiB"
    return words + f" in its cgroup {folder}"
