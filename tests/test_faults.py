"""Never hang, never leak: killed workers, failing workers, interrupts, memory preflight.

Each test ends in the autouse check of conftest.py: no worker process left, /dev/shm unchanged.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import tempfile
import time

import psutil
import pytest

import shmbench
from shmbench.strategies import REGISTRY
from shmbench import Plan, PreflightError, WorkerDiedError, WorkerError, Workload, create
from shmbench._system import oom
from shmbench._system.deadline import limit
from shmbench.runtimes.base import process_alive

from cases import GROUP_STRATEGIES, METHODS, PROCESS_STRATEGIES, SHARED_GROUP, through, wait_until


def _kill_on_a_block(s, slot: int, victim: int, seen: dict) -> None:
    """Wait until worker ``slot`` is on a block of its fill, stop it there, note the block, kill it."""
    while s._runtime.progress(slot) is None:  # the group's own record of where each worker is
        if not process_alive(victim):  # it died of something else: the test's assertions say what
            return
        time.sleep(0.0005)
    os.kill(victim, signal.SIGSTOP)
    seen["block"] = s._runtime.progress(slot)  # stopped: it stays on this block
    os.kill(victim, signal.SIGKILL)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("strategy", GROUP_STRATEGIES)
def test_worker_killed_mid_fill_fails_fast_naming_worker_and_block(strategy, method):
    # 256 MiB of fresh pages, 128 blocks: the first fill of a worker's share takes a good while.
    with create(strategy, Plan(1024, 32768, block_rows=8), workers=2, workload="random", start_method=method) as s:
        through(s, "prepare")
        victim, seen = s.worker_ids[1], {}
        killer = threading.Thread(target=_kill_on_a_block, args=(s, 1, victim, seen))
        killer.start()
        # The limit turns a wait for the dead worker's blocks into a failure, not a hung suite.
        with pytest.raises(WorkerDiedError) as info, limit(60, "the fill"):
            s.fill()
        killer.join()
    message = str(info.value)
    assert f"worker 1 (pid {victim}) died during fill" in message
    assert f"on block {seen['block']} of its blocks 64-127" in message


def _kill_idle_worker_then_fill(strategy: str) -> None:
    with create(strategy, Plan(256, 64), workers=2) as s:
        through(s, "start")
        victim = s.worker_ids[0]
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: not _left_behind([victim]), "the victim's death")  # reaping it is not ours
        with pytest.raises(WorkerDiedError, match="worker 0") as info:
            s.fill()
        assert "on block" not in str(info.value)  # it never reached one


@pytest.mark.parametrize("strategy", [s for s in PROCESS_STRATEGIES if s != "joblib"])
def test_worker_killed_while_idle_is_reported_at_the_next_fill(strategy):
    _kill_idle_worker_then_fill(strategy)


def test_joblib_worker_killed_is_reported_and_nothing_outlives_the_process():
    # After a worker death joblib builds a new executor; one named semaphore of loky's stays
    # in /dev/shm until the process exits (loky's resource tracker removes it then), so the
    # check is made on a process of its own.
    code = ("import sys; sys.path.insert(0, 'tests'); import pytest\n"
            "from test_faults import _kill_idle_worker_then_fill\n"
            "_kill_idle_worker_then_fill('joblib')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 0, done.stderr
    assert "leak" not in done.stderr


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("strategy", SHARED_GROUP)
def test_worker_exception_is_raised_in_the_parent_with_its_traceback(strategy, method):
    with create(strategy, Plan(32, 64, block_rows=4), workers=2, workload="pid", start_method=method) as s:
        through(s, "fill")
        with pytest.raises(WorkerError) as info:
            s.fill()  # no prepare: every row already holds a PID, which the core must refuse
    text = str(info.value)
    assert "Traceback (most recent call last)" in text
    assert "BlockTouchedError" in text and "already written by another worker" in text
    assert "during fill" in text


@pytest.mark.parametrize("method", METHODS)
def test_pickled_worker_exception_is_raised_too(method):
    # Pickled workers own their rows, so a second pid fill is legitimate there: fail the core instead.
    with create("pickled", Plan(32, 64), workers=2, workload="legacy-random", start_method=method) as s:
        through(s, "start")
        s.work = Workload("no-such-workload")  # its name reaches the workers, which cannot resolve it
        with pytest.raises(WorkerError, match="unknown workload"):
            s.fill()


def _is_worker(process: psutil.Process, parent: psutil.Process, strategy: str | None) -> bool:
    cmdline = " ".join(process.cmdline())
    if strategy == "ray":  # actors are children of Ray's raylet, titled by their class
        return cmdline.startswith("ray::_Actor")
    if strategy and REGISTRY[strategy].traits.launcher == "mpiexec":  # ranks are children of mpiexec's proxy
        return process.cmdline()[1:3] == ["-m", "shmbench.strategies.mpi_rank"]  # not mpiexec's own line
    return process.ppid() == parent.pid and "resource_tracker" not in cmdline and "janitor" not in cmdline


def _workers_of(proc: subprocess.Popen, count: int, timeout: float = 30,
                strategy: str | None = None) -> list[psutil.Process]:
    parent = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = []
        for child in parent.children(recursive=True):
            try:
                if _is_worker(child, parent, strategy):
                    workers.append(child)
            except psutil.Error:  # gone, or a zombie: not a worker to watch
                pass
        if len(workers) >= count:
            return workers
        time.sleep(0.05)
    raise AssertionError("workers never started")


def _wait_until_filling(workers: list[psutil.Process], cpu_seconds: float = 0.2, timeout: float = 60) -> None:
    """Wait until the workers have spent ``cpu_seconds`` between them: the run is in its passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if sum(sum(w.cpu_times()[:2]) for w in workers) >= cpu_seconds:
                return
        except psutil.Error:
            return  # one has already gone: whatever the test does next must cope with that
        time.sleep(0.02)
    raise AssertionError("the workers never got busy")


def _folders() -> set[str]:
    """shmbench's temporary folders (a runtime's session or scratch space, a private socket's)."""
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "shmbench-*")))


def _left_behind(pids: list[int]) -> list[int]:
    """The processes among ``pids`` still running (neither gone nor a zombie)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.slow  # a whole CLI run per case
@pytest.mark.parametrize("strategy", PROCESS_STRATEGIES)
def test_cli_worker_killed_during_a_run_exits_nonzero_quickly(strategy, cli):
    proc = cli("run", "--strategy", strategy, "--workers", "2", "--size", "128MiB", "--repeat", "200", "--fail-fast")
    workers = _workers_of(proc, 2, strategy=strategy)
    _wait_until_filling(workers)
    workers[0].kill()
    out, err = proc.communicate(timeout=30)  # a run that went on fails here
    assert proc.returncode == 1, err
    assert "shmbench: run failed:" in err and "worker" in err and "died" in err and "Traceback" not in err
    assert _left_behind([w.pid for w in workers]) == []


@pytest.mark.slow  # a whole CLI run per case
@pytest.mark.parametrize("starting", [True, False])
def test_cli_mpiexec_gone_while_its_ranks_live_fails_the_cell(starting, cli):
    """mpiexec killed while its proxy cannot end the ranks (stopped): the ranks live on (and, past
    their start, go on answering), but a job without its launcher is not measured on; the cell
    fails naming mpiexec, and the proxy and ranks mpiexec started are ended all the same."""
    proc = cli("run", "--strategy", "mpi", "--workers", "2", "--size", "128MiB", "--repeat", "200", "--fail-fast")
    ranks = _workers_of(proc, 2, strategy="mpi")
    _wait_until_filling(ranks, 0.3 if starting else 2.0)  # importing (a start takes 1 s), or answering
    proxy = psutil.Process(ranks[0].ppid())
    launcher = psutil.Process(proxy.ppid())
    assert launcher.name() == "mpiexec"
    proxy.suspend()
    launcher.kill()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    died = re.search(rf"mpiexec \(pid {launcher.pid}\) died during (\w+) \(exit code -9\)", err)
    assert died and (died.group(1) == "start") == starting, err
    assert "Traceback" not in err
    assert _left_behind([proxy.pid, *(r.pid for r in ranks)]) == []


@pytest.mark.slow  # a whole CLI run per case
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("strategy", PROCESS_STRATEGIES)
def test_cli_interrupted_stops_workers_and_releases_memory(strategy, signum, code, cli):
    proc = cli("run", "--strategy", strategy, "--workers", "2", "--size", "128MiB", "--repeat", "200")
    workers = _workers_of(proc, 2, strategy=strategy)
    _wait_until_filling(workers)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=30)  # a run that went on fails here
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err
    assert "leaked" not in err and " - ERROR - " not in err  # a library's log: something was left open
    assert _left_behind([w.pid for w in workers]) == []


def _ray_processes() -> list[psutil.Process]:
    """Processes of a Ray session of ours (their command lines name its folder)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "shmbench-ray-" in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def _ray_starting(proc: subprocess.Popen) -> bool:
    return any("gcs_server" in " ".join(p.cmdline()) for p in _ray_processes())


def _ray_closing(proc: subprocess.Popen) -> bool:
    """An actor of the cell gone: its close has begun (actors first, then ray.shutdown)."""
    actors = _workers_of(proc, 2, timeout=60, strategy="ray")
    wait_until(lambda: _left_behind([a.pid for a in actors]) != [a.pid for a in actors], "an actor's end",
               timeout=60, poll=0.002)
    return True


@pytest.mark.slow  # a whole CLI run per case
@pytest.mark.parametrize("moment", ["starting", "closing"])
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_interrupted_while_ray_starts_or_closes_exits_so_and_leaves_no_ray_process(moment, signum, code, cli):
    # ray.init makes SIGTERM sys.exit(15) first thing: it ended the run with exit 15, no line said
    # so, and an interrupt in its middle left a driver half made that died of SIGSEGV at exit.
    # ray.shutdown left SIGTERM at its default: a SIGTERM then killed the process outright.
    proc = cli("run", "--strategy", "ray", "--workers", "2", "--size", "16MiB", "--repeat", "0")
    deadline = time.monotonic() + 60
    reached = _ray_starting if moment == "starting" else _ray_closing
    while not reached(proc):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "interrupted" in err and "Traceback" not in err, err
    left = {p.pid: " ".join(p.cmdline()[:3]) for p in _ray_processes() if _left_behind([p.pid])}
    assert left == {}
    assert not glob.glob(os.path.join(tempfile.gettempdir(), "shmbench-ray-*"))


def test_preflight_refuses_a_pickled_run_that_cannot_fit_before_allocating():
    available = psutil.virtual_memory().available
    rows = int(0.6 * available) // (32768 * 8)  # one copy fits, pickled's two do not
    plan = Plan(rows, 32768)
    create("shared_memory", plan, workers=2).check_fits()
    before = psutil.Process().memory_info().rss
    with pytest.raises(PreflightError, match="RAM"):
        shmbench.run("pickled", rows, 32768, workers=2)
    assert psutil.Process().memory_info().rss - before < 64 * 2**20
    shmbench.run("pickled", 8, 8, workers=2, force=True)  # --force still runs what fits


def test_cli_refuses_too_large_with_exit_2():
    done = subprocess.run([sys.executable, "-m", "shmbench", "run", "--strategy", "pickled", "--size", "64TiB"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "RAM" in done.stderr and "--force" in done.stderr
    assert "Traceback" not in done.stderr


SMALL_SHM = """
set -e
mount -t tmpfs -o size=32m shmbench-test /dev/shm
exec "$@"
"""


def _in_small_shm(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", SMALL_SHM, "sh", *argv],
                          capture_output=True, text=True, timeout=120)


def _small_shm_available() -> str | None:
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = _in_small_shm("df", "-k", "/dev/shm")
    if probe.returncode != 0:
        return f"cannot mount a private /dev/shm here: {probe.stderr.strip()}"
    return None


def _run_in_small_shm(strategy: str, size: str, *extra: str) -> subprocess.CompletedProcess:
    return _in_small_shm(sys.executable, "-m", "shmbench", "run", "--strategy", strategy, "--workers", "2",
                         "--size", size, "--repeat", "0", *extra)


def test_small_dev_shm_is_refused_instead_of_sigbus():
    reason = _small_shm_available()
    if reason:
        pytest.skip(reason)
    refused = _run_in_small_shm("shared_memory", "64MiB")
    assert refused.returncode == 2, refused.stderr
    assert "/dev/shm" in refused.stderr and "Traceback" not in refused.stderr
    assert _run_in_small_shm("shared_memory", "8MiB").returncode == 0
    # What the preflight prevents: the first write past the tmpfs's end kills a worker (SIGBUS),
    # which the run reports as a failure instead of hanging.
    forced = _run_in_small_shm("shared_memory", "64MiB", "--force")
    assert forced.returncode == 1 and "died" in forced.stderr and f"exit code -{signal.SIGBUS}" in forced.stderr
    # Named for what it is, with the room there was.
    assert "SIGBUS: a page of the shared matrix could not be had, its file system is full" in forced.stderr
    assert "/dev/shm has 0 MiB free of 32 MiB" in forced.stderr, forced.stderr


#: Strategies whose workers (or whose parent, for ``pid``) write a file in /dev/shm: the shared_memory
#: segment, a memmap's file (nameless once the workers have mapped it), joblib's, MPI's exchange file.
_SHM_FILES = ["shared_memory", "memmap", "joblib", "mpi"]


def _usable(strategy: str) -> None:
    reason = _small_shm_available() or REGISTRY[strategy].unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.mark.slow  # a whole CLI comparison in a subprocess per case
@pytest.mark.parametrize("strategy", _SHM_FILES[1:])
def test_a_worker_short_of_dev_shm_is_named_so_whatever_runtime_saw_it(strategy):
    # Our process group and mpiexec see the SIGBUS; loky only that a worker is gone, and then the
    # full file system is the evidence.
    _usable(strategy)
    forced = _run_in_small_shm(strategy, "64MiB", "--force")
    assert forced.returncode == 1 and f"cell failed, the comparison goes on: {strategy} ×2: worker " in forced.stderr
    assert re.search(r"(SIGBUS: a page of the shared matrix could not be had, its file system is full|"
                     r"the shared matrix's file system is full, where a write dies of SIGBUS); "
                     r"/dev/shm has \d+ MiB free of 32 MiB", forced.stderr), forced.stderr
    assert "Traceback" not in forced.stderr


@pytest.mark.slow  # a whole CLI comparison in a subprocess per case
@pytest.mark.parametrize("strategy", _SHM_FILES)
def test_the_parent_short_of_dev_shm_fails_its_cell_by_name_instead_of_dying(strategy):
    _usable(strategy)
    # pid's 42s are written by the parent: past the tmpfs's end it would die of SIGBUS itself.
    done = _run_in_small_shm(strategy, "64MiB", "--force", "--workload", "pid")
    assert done.returncode == 1, done.stderr
    assert f"cell failed, the comparison goes on: {strategy} ×2: the parent cannot write the matrix: " \
           "/dev/shm has " in done.stderr, done.stderr
    assert "MiB free of 32 MiB, and its file needs 64 MiB more (each write past that dies of SIGBUS)" in done.stderr
    assert "Traceback" not in done.stderr


def _memory_cgroup(limit: int) -> str:
    """A memory cgroup of the test's own, below this process's, limited to ``limit`` bytes."""
    found = oom.cgroup()
    if found is None:
        pytest.skip("no memory cgroup of this process found under /sys/fs/cgroup")
    own, version = found
    folder = os.path.join(own, f"shmbench-test-{os.getpid()}")
    try:
        os.mkdir(folder)
        with open(os.path.join(folder, "memory.limit_in_bytes" if version == 1 else "memory.max"), "w") as f:
            f.write(str(limit))
    except OSError as error:
        if os.path.isdir(folder):
            os.rmdir(folder)
        pytest.skip(f"cannot make a memory cgroup here: {error}")
    return folder


#: The cgroup's limit for each strategy: room for its engine's own processes, not for a worker's 1 GiB.
_OOM_LIMITS = {"shared_memory": 256, "joblib": 384, "mpi": 384, "dask": 768, "ray": 1536}


def _remove_cgroup(folder: str) -> None:
    """Remove the test's cgroup once its processes are gone (an engine's daemons end just after the run)."""
    def empty() -> bool:
        with open(os.path.join(folder, "cgroup.procs")) as f:
            return not f.read().strip()

    wait_until(empty, f"the end of every process in {folder}", timeout=20)
    os.rmdir(folder)


@pytest.mark.slow  # a whole CLI comparison in a subprocess per case
@pytest.mark.parametrize("strategy", list(_OOM_LIMITS))
def test_a_worker_the_oom_killer_ends_is_named_so(strategy):
    """Named from the cgroup's OOM-kill count, for runtimes that see a worker's exit code (ours,
    mpiexec's) and for those that only learn that a worker is gone (loky, Dask, Ray)."""
    if REGISTRY[strategy].unavailable_reason():
        pytest.skip(f"{strategy}: {REGISTRY[strategy].unavailable_reason()}")
    folder = _memory_cgroup(_OOM_LIMITS[strategy] * 2**20)
    try:  # the command joins the cgroup, then becomes shmbench: its workers are born in it
        done = subprocess.run(["sh", "-c", f'echo $$ > {folder}/cgroup.procs && SHMBENCH_TEST_PARENT=$$ exec "$@"',
                               "sh", sys.executable, "-m", "shmbench", "run", "--strategy", "serial", "--strategy",
                               strategy, "--workers", "2", "--workload",
                               f"{os.path.dirname(__file__)}/kernels.py:hogs_in_workers", "--size", "40x24",
                               "--repeat", "0"], capture_output=True, text=True, timeout=180)
    finally:
        _remove_cgroup(folder)
    assert done.returncode == 1, done.stderr
    assert f"cell failed, the comparison goes on: {strategy} ×2: " in done.stderr, done.stderr
    assert re.search(r"(killed by the OOM killer|the OOM killer ended a process of its cgroup meanwhile): "
                     rf"\d+ MiB in use of a limit of {_OOM_LIMITS[strategy]} MiB in its cgroup ", done.stderr), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("strategy", ["shared_memory", "joblib", "book"])
def test_workers_are_the_oom_killers_first_choice_not_the_parent(strategy):
    from shmbench.runtimes.worker_side import OOM_SCORE_ADJ

    def score(pid: int) -> int:
        with open(f"/proc/{pid}/oom_score_adj") as f:
            return int(f.read())

    with create(strategy, Plan(64, 64), workers=2) as s:
        through(s, "start")
        assert [score(pid) for pid in s.worker_ids] == [OOM_SCORE_ADJ] * 2
        assert score(os.getpid()) < OOM_SCORE_ADJ


def test_mp_array_falls_back_to_a_temporary_directory_when_dev_shm_is_small():
    reason = _small_shm_available()
    if reason:
        pytest.skip(reason)
    done = _run_in_small_shm("mp_array", "64MiB")
    assert done.returncode == 0, done.stderr


def test_asv_sizes_from_the_environment_are_checked():
    code = "import benchmarks.common"
    env = dict(os.environ, SHMBENCH_ASV_SIZES="8MiB,twelve")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(__file__)), timeout=60)
    assert done.returncode != 0
    assert "SHMBENCH_ASV_SIZES: size 'twelve' is neither ROWSxCOLS" in done.stderr


def kill_parent_and_expect_nothing_left(cli, strategy: str, *options: str) -> None:
    """Start a long run, kill its parent with SIGKILL once the workers fill, and check that every
    process of the run (a runtime's own too: Ray's raylets and agents) ends and that its temporary
    folders go (the janitor removes what the runtime wrote)."""
    before = _folders()
    proc = cli("run", "--strategy", strategy, *options, "--repeat", "200")
    workers = _workers_of(proc, 2, strategy=strategy)
    _wait_until_filling(workers)
    everything = psutil.Process(proc.pid).children(recursive=True)
    folders = _folders() - before
    proc.kill()
    proc.communicate(timeout=30)
    _, alive = psutil.wait_procs(everything, timeout=15)
    assert alive == [], f"outlived their parent: {alive}"
    deadline = time.monotonic() + 10
    while _folders() & folders and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _folders() & folders


@pytest.mark.slow  # a whole CLI run per case
@pytest.mark.parametrize("strategy", PROCESS_STRATEGIES)
def test_parent_killed_workers_exit_and_the_tracker_frees_the_segment(strategy, cli):
    kill_parent_and_expect_nothing_left(cli, strategy, "--workers", "2", "--size", "128MiB")
    # The conftest check then finds /dev/shm as before: the resource tracker unlinked the segment.
    deadline = time.monotonic() + 10
    while any(name.startswith("psm_") for name in os.listdir("/dev/shm")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [name for name in os.listdir("/dev/shm") if name.startswith("psm_")]


def test_book_pool_worker_killed_mid_fill_fails_instead_of_hanging():
    # multiprocessing.Pool.map alone would wait forever for the killed worker's rows.
    # Large enough that the other worker cannot finish every row before the kill.
    with create("book", Plan(8192, 8192), workers=2) as s:
        through(s, "prepare")
        victim, matrix = s.worker_ids[0], s.matrix

        def kill_once_rows_arrive() -> None:  # the first rows are written: the fill is under way
            wait_until(lambda: matrix[:, 0].any(), "the first row's write", poll=0.001)
            os.kill(victim, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_rows_arrive)
        killer.start()
        with pytest.raises(WorkerDiedError, match=f"worker 0 \\(pid {victim}\\) died during fill; its row tasks"), \
                limit(60, "the fill"):
            s.fill()
        killer.join()


def test_book_worker_exception_carries_the_remote_traceback():
    with create("book", Plan(32, 64), workers=2, workload="pid") as s:
        through(s, "fill")
        with pytest.raises(WorkerError) as info:
            s.fill()
    assert "BlockTouchedError" in str(info.value) and "already written by another worker" in str(info.value)


def test_book_refuses_other_start_methods():
    with pytest.raises(ValueError, match="book runs under fork only"):
        create("book", Plan(8, 8), start_method="spawn")
