"""Every test must leave the machine as it found it: no /dev/shm entries, no worker processes."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from cases import default_sigint

SHM = "/dev/shm"
# multiprocessing's own helpers, and the browser the browser tests share, live for the whole
# session by design.
_HELPERS = ("resource_tracker", "forkserver", "playwright", "chromium")


def shm_entries() -> set[str]:
    return set(os.listdir(SHM)) if os.path.isdir(SHM) else set()


def worker_processes() -> list[psutil.Process]:
    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:
            continue
        if not any(helper in cmdline for helper in _HELPERS):
            out.append(child)
    return out


def assert_nothing_left(before: set[str]) -> None:
    # A worker that was just told to stop may take a moment to be reaped.
    deadline = time.monotonic() + 5
    while worker_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker_processes() == [], "worker processes outlived the test"
    # Only new entries count: another program on the machine may remove its own meanwhile.
    assert shm_entries() - before == set(), f"/dev/shm gained: {shm_entries() - before}"


#: Contenders from the extras, and the tier their cells belong in: Ray and Dask start a whole
#: runtime per run (seconds), so their cells are slow too.
EXTRAS = {"ray": ("extras", "slow"), "mpi": ("extras",), "mpi_shm": ("extras",), "dask": ("extras", "slow"),
          "ray_peer": ("extras", "slow"), "mpi_peer": ("extras",), "dask_peer": ("extras", "slow")}


def pytest_collection_modifyitems(items):
    """Mark every test run on a contender of the extras, from its parameters: one place, not a mark per test."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        for value in params.values():
            for mark in EXTRAS.get(value, ()) if isinstance(value, str) else ():
                item.add_marker(mark)


@pytest.fixture(autouse=True)
def leaves_nothing_behind():
    before = shm_entries()
    yield
    assert_nothing_left(before)


@pytest.fixture(scope="session", autouse=True)
def session_leaves_nothing_behind():
    before = shm_entries()
    yield
    assert shm_entries() - before == set()


@pytest.fixture(scope="session", autouse=True)
def results_folder(tmp_path_factory):
    """Journals of runs with no output file go to a temporary folder, not the working tree."""
    folder = tmp_path_factory.mktemp("shmbench-results")
    previous = os.environ.get("SHMBENCH_RESULTS")
    os.environ["SHMBENCH_RESULTS"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["SHMBENCH_RESULTS"]
    else:
        os.environ["SHMBENCH_RESULTS"] = previous


@pytest.fixture(scope="session")
def asv_recorded(tmp_path_factory):
    """One quick asv run of the whole grid, recorded in a temporary tree, shared by the tests."""
    from asvrun import record

    tmp = tmp_path_factory.mktemp("asv")
    return tmp, record(tmp)


@pytest.fixture
def cli():
    """Start ``shmbench`` commands; any still running at the end is killed with its workers."""
    started: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        started.append(subprocess.Popen([sys.executable, "-m", "shmbench", *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
            proc.communicate()
