"""Every strategy, workload, worker count and start method gives a verified, identical matrix."""
from __future__ import annotations

import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import shmbench
from shmbench import Plan, create
from shmbench.strategies import REGISTRY
from cases import METHODS, PARALLEL, methods_for, runs, through


# The quick tier runs two workers; one and three run in the full suite.
@pytest.mark.parametrize("workers", [pytest.param(1, marks=pytest.mark.slow), 2, pytest.param(3, marks=pytest.mark.slow)])
@pytest.mark.parametrize("workload", ["pid", "random", "rowsum"])
@pytest.mark.parametrize("strategy, method", list(runs()))
def test_every_run_verifies(strategy, method, workload, workers):
    result = shmbench.run(strategy, 64, 96, workers=workers, workload=workload, start_method=method,
                          block_rows=4)
    assert result.verified, result.problems
    assert result.problems == []
    assert set(result.phases) == set(shmbench.PHASES)
    assert all(seconds >= 0 for seconds in result.phases.values())
    if strategy != "serial":
        assert result.start_method == method
        assert len(result.pids) == workers
        assert result.workers == workers


def test_default_start_method_is_explicit_and_recorded():
    result = shmbench.run("shared_memory", 8, 8, workers=2)
    assert result.start_method == shmbench.DEFAULT_START_METHOD
    assert shmbench.run("serial", 8, 8).start_method is None


def digest(strategy, workers, method, seed=0, block_rows=7):
    result = shmbench.run(strategy, 50, 33, workers=workers, start_method=method, seed=seed, block_rows=block_rows,
                          digest=True)
    assert result.verified, result.problems
    return result.digest


@pytest.mark.slow  # every strategy, worker count and start method
def test_random_digests_agree_across_strategies_workers_and_start_methods():
    # book too: it maps one task per row, each row's values taken from the shared plan.
    reference = digest("serial", 1, None)
    assert digest("serial", 1, None, block_rows=1) != reference  # the split into blocks is part of the plan
    for strategy in PARALLEL:
        for workers in (1, 2, 3):
            for method in [m for m in methods_for(strategy) if m != "forkserver"]:
                assert digest(strategy, workers, method) == reference, (strategy, workers, method)
    assert digest("serial", 1, None, seed=1) != reference
    assert digest("shared_memory", 2, "fork", seed=1) == digest("serial", 1, None, seed=1)


@pytest.mark.slow  # every strategy, worker count and start method, per dtype
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_random_of_other_dtypes_is_bit_identical_across_strategies_workers_and_start_methods(dtype):
    # 33 columns: a uint8 row is 33 bytes (five draws, the last cut), a float32 row an odd count;
    # book's one-row tasks start in the middle of blocks of 7 rows.
    def run(strategy, workers, method):
        result = shmbench.run(strategy, 50, 33, workers=workers, start_method=method, block_rows=7, digest=True,
                              dtype=dtype)
        assert result.verified and result.dtype == dtype, (strategy, result.problems)
        return result.digest

    reference = run("serial", 1, None)
    assert reference != digest("serial", 1, None)
    for strategy in PARALLEL:
        for workers in (1, 2, 3):
            for method in methods_for(strategy):
                assert run(strategy, workers, method) == reference, (strategy, workers, method)


@pytest.mark.parametrize("dtype", ["float64", "float32", "int64", "int32", "uint8", "complex128"])
def test_each_dtype_gets_its_natural_distribution_and_verifies(dtype):
    with shmbench.create("shared_memory", shmbench.Plan(64, 1000, dtype=dtype), workers=2) as s:
        through(s, "collect")
        matrix = s.matrix.copy()
        from shmbench.runner import check

        assert check(s) == []
    assert matrix.dtype == np.dtype(dtype) and matrix.nbytes == 64 * 1000 * np.dtype(dtype).itemsize
    if matrix.dtype.kind in "fc":
        parts = [matrix.real, matrix.imag] if matrix.dtype.kind == "c" else [matrix]
        for part in parts:
            assert 0.0 <= part.min() and part.max() < 1.0 and 0.45 < part.mean() < 0.55
    else:
        info = np.iinfo(matrix.dtype)
        assert matrix.min() < info.min / 2 + info.max / 4 and matrix.max() > info.max / 2  # the whole range
        assert len(np.unique(matrix[:, :64])) > min(200, info.max // 2)


def test_pid_refuses_a_dtype_that_cannot_hold_a_pid():
    with pytest.raises(ValueError, match="pid workload cannot use uint8"):
        shmbench.run("shared_memory", 8, 8, workers=2, workload="pid", dtype="uint8")
    assert shmbench.run("shared_memory", 8, 8, workers=2, workload="pid", dtype="float32").verified
    assert shmbench.run("mp_array", 8, 8, workers=2, workload="pid", dtype="int32").verified


@pytest.mark.parametrize("workload", ["random", "rowsum"])
def test_book_gives_serials_matrix_bit_for_bit(workload):
    # One task per row, as in the book, but every row's numbers come from its block's stream:
    # the reference the reports measure against fills exactly serial's matrix.
    book = shmbench.run("book", 300, 257, workers=2, workload=workload, block_rows=16, digest=True)
    serial = shmbench.run("serial", 300, 257, workload=workload, block_rows=16, digest=True)
    assert book.verified and serial.verified and book.block_rows == 16
    assert book.digest == serial.digest


@pytest.mark.slow  # every strategy and worker count
def test_rowsum_reads_the_random_input_and_every_strategy_returns_the_same_sums():
    def sums(strategy, workers, method=None, block_rows=7):
        result = shmbench.run(strategy, 50, 33, workers=workers, workload="rowsum", start_method=method,
                              block_rows=block_rows, digest=True)
        assert result.verified, result.problems
        return result.digest

    reference = sums("serial", 1)
    for strategy in PARALLEL:
        for workers in (1, 2):
            for method in [m for m in methods_for(strategy) if m != "forkserver"]:
                assert sums(strategy, workers, method) == reference, (strategy, workers, method)
    # The input is the random workload's matrix, so the sums can be checked from it by hand.
    plan = Plan(50, 33, block_rows=7)
    with create("serial", plan, workload="random") as s:
        through(s, "fill")
        expected = s.matrix.sum(axis=1)
    with create("shared_memory", plan, workers=2, workload="rowsum") as s:
        through(s, "prepare")
        before = s.matrix.copy()
        s.fill()
        assert np.array_equal(s.row_sums, expected)
        assert np.array_equal(s.matrix, before)  # read-only: the input is untouched


def test_rowsum_verification_catches_a_wrong_or_missing_sum():
    from shmbench.verify import verify

    plan = Plan(8, 4, block_rows=2)
    matrix = np.random.default_rng(0).random(plan.shape)
    sums = matrix.sum(axis=1)
    assert verify(matrix, plan, "rowsum", [], row_sums=sums) == []
    wrong = sums.copy()
    wrong[5] += 1e-12
    assert any("1 row sums differ" in p and "row 5" in p for p in verify(matrix, plan, "rowsum", [], row_sums=wrong))
    wrong[5] = np.nan  # a worker that never answered
    assert verify(matrix, plan, "rowsum", [], row_sums=wrong)
    assert any("expected 8 row sums" in p for p in verify(matrix, plan, "rowsum", [], row_sums=None))


@pytest.mark.parametrize("strategy", PARALLEL)
@pytest.mark.parametrize("rows, cols, workers, block_rows", [
    (1, 50, 2, None),     # one row: one block, one worker gets it
    pytest.param(2, 10, 3, None, marks=pytest.mark.slow),  # fewer rows than workers
    (37, 5, 2, 5),        # rows not divisible by blocks
    pytest.param(40, 1, 3, 3, marks=pytest.mark.slow),    # one column
])
def test_odd_shapes(strategy, rows, cols, workers, block_rows):
    for workload in ("pid", "rowsum", "random"):
        result = shmbench.run(strategy, rows, cols, workers=workers, workload=workload, block_rows=block_rows,
                              digest=True)
        assert result.verified, result.problems
    assert result.digest == shmbench.run("serial", rows, cols, block_rows=result.block_rows, digest=True).digest


@pytest.mark.parametrize("strategy", ["mp_array", "shared_memory", "book"])
def test_legacy_random_under_fork_repeats_the_stream_and_is_not_verified(strategy):
    # The parent seeds numpy's module-level generator (as a reproducible script does), and
    # fork copies that state into every worker.
    # Large enough that both of book's pool workers take rows from its shared queue.
    result = shmbench.run(strategy, 1024, 4096, workers=2, workload="legacy-random", start_method="fork",
                          block_rows=64)
    assert not result.verified
    assert any("same random stream" in p for p in result.problems)


def test_legacy_random_is_fine_where_each_process_seeds_itself():
    assert shmbench.run("serial", 64, 32, workload="legacy-random").verified
    assert shmbench.run("shared_memory", 64, 32, workers=2, workload="legacy-random",
                        start_method="spawn", block_rows=4).verified


@pytest.mark.parametrize("strategy, method", [r for r in runs() if r[1]])
def test_worker_writes_are_visible_in_the_parent_only_when_shared(strategy, method):
    with create(strategy, Plan(16, 8, block_rows=1), workers=2, workload="pid", start_method=method) as s:
        through(s, "fill")
        seen = set(np.unique(s.matrix).astype(int))
        if s.traits.shares_memory and not s.traits.every_worker_gets_work:
            assert seen and seen <= set(s.worker_ids)
        elif s.traits.shares_memory:
            assert seen == set(s.worker_ids)
            assert s.is_shared_view()
        else:
            assert seen == {42}
            s.collect()
            assert set(np.unique(s.matrix).astype(int)) == set(s.worker_ids)


def test_verification_catches_a_wrong_matrix():
    from shmbench.verify import verify

    plan = Plan(8, 4, block_rows=2)
    matrix = np.full(plan.shape, 42.0)
    assert any("default" in p for p in verify(matrix, plan, "pid", [1]))
    matrix[:] = 7.0
    assert any("no worker" in p for p in verify(matrix, plan, "pid", [1, 2]))
    assert any("distinct" in p for p in verify(matrix, plan, "pid", [7, 8]))
    matrix[0, 0] = 8.0
    assert any("more than one value" in p for p in verify(matrix, plan, "pid", [7, 8]))
    rng = np.random.default_rng(0).random(plan.shape)
    assert verify(rng, plan, "random", []) == []
    rng[5] = rng[2]
    assert any("identical rows" in p for p in verify(rng, plan, "random", []))
    rng[5, 0] = 1.5
    assert any("outside [0, 1)" in p for p in verify(rng, plan, "random", []))


def test_repeated_fills_are_timed_and_verified():
    result = shmbench.run("shared_memory", 32, 32, workers=2, workload="pid", repeat=3)
    assert result.verified and len(result.warm_passes) == 3
    roles = {m["role"] for m in result.memory}
    assert result.peak_total_pss_bytes and {"parent", "worker 0", "worker 1"} <= roles
    assert all(r.startswith("runtime: ") for r in roles - {"parent", "worker 0", "worker 1"}), roles


@pytest.mark.parametrize("strategy, runtime", [("mpi", {"runtime: mpiexec", "runtime: mpich hydra proxy"}),
                                               ("ray", {"runtime: ray raylet", "runtime: ray gcs_server"})])
def test_the_memory_of_a_runtime_counts_its_own_processes(strategy, runtime):
    result = shmbench.run(strategy, 64, 4096, workers=2)
    roles = {m["role"]: m["pss"] for m in result.memory}
    assert runtime <= set(roles), roles
    workers = roles["parent"] + roles["worker 0"] + roles["worker 1"]
    assert result.peak_total_pss_bytes > workers  # the runtime's processes are charged too


@pytest.mark.parametrize("kwargs, words", [
    (dict(strategy="nope"), ["serial", "shared_memory", "pickled", "mp_array"]),
    (dict(workload="zeros"), ["pid", "random", "legacy-random", "rowsum"]),
    (dict(start_method="thread"), ["fork", "spawn", "forkserver"]),
    (dict(workers=0), ["workers"]),
    (dict(workers=-2), ["workers"]),
    (dict(rows=0), ["rows"]),
    (dict(cols=-1), ["cols"]),
    (dict(repeat=-1), ["repeat"]),
    (dict(dtype="float16"), ["float64", "float32", "int64", "int32", "uint8", "complex128"]),
])
def test_bad_input_names_the_allowed_values(kwargs, words):
    args = dict(strategy="shared_memory", rows=8, cols=8) | kwargs
    with pytest.raises(ValueError) as info:
        shmbench.run(**args)
    for word in words:
        assert word in str(info.value)


@pytest.mark.slow  # every strategy in a subprocess
@pytest.mark.parametrize("method", METHODS)
def test_no_resource_tracker_warnings(method):
    # Strategies with their own way of starting (loky, Ray, mpiexec) run with the default's.
    own = method == shmbench.DEFAULT_START_METHOD
    cells = [(name, m) for name, m in runs() if m == method or (m is None and own)]
    code = (f"import shmbench\n"
            f"for s, m in {cells!r}:\n"
            f"    assert shmbench.run(s, 64, 64, workers=2, start_method=m).verified\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "leaked" not in done.stderr and "resource_tracker" not in done.stderr, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


class _Finalized:
    """Garbage whose finalizer notes the process that ran it."""

    def __init__(self, path) -> None:
        self.path, self.me = path, self  # a cycle: only the cyclic collector frees it

    def __del__(self) -> None:
        with open(self.path, "a") as notes:
            notes.write(f"{os.getpid()}\n")


@pytest.mark.parametrize("strategy", [name for name, cls in REGISTRY.items()
                                      if "fork" in (cls.traits.start_methods or ())])
def test_a_forked_worker_never_collects_the_garbage_it_inherited(strategy, tmp_path):
    """A worker's collection ran a finalizer of the parent's garbage (a Ray driver's, left in a
    test process: SIGSEGV). Forked workers leave what they inherit to the parent."""
    notes = tmp_path / "finalized"
    gc.disable()  # the garbage stays until the workers are forked, and collected by them, if at all
    try:
        _Finalized(notes)
        kernel = f"{os.path.dirname(__file__)}/kernels.py:collects"
        with create(strategy, Plan(64, 64, block_rows=8), workers=2, workload=kernel, start_method="fork") as s:
            through(s, "fill")
            workers = set(s.worker_ids)
    finally:
        gc.enable()
    gc.collect()
    assert notes.read_text().split() == [str(os.getpid())], workers


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_prefault_moves_the_page_faults_out_of_the_fill(method):
    share_pages = 256 * 2048 * 8 // 4096 // 2  # a 4 MiB matrix, half of it per worker
    on = shmbench.run("mp_array", 256, 2048, workers=2, start_method=method, repeat=1)
    off = shmbench.run("mp_array", 256, 2048, workers=2, start_method=method, prefault=False)
    assert on.verified and off.verified
    assert on.prefault and on.phases["touch"] > 0
    assert not off.prefault and off.phases["touch"] == 0 and "touch" not in off.minor_faults
    for worker in ("worker 0", "worker 1"):
        assert on.minor_faults["touch"][worker] >= 0.9 * share_pages
        # The same fill takes about one fault per page fewer once its pages are mapped
        # (the rest are the worker's own: copy-on-write after fork, numpy's temporaries).
        assert off.minor_faults["fill"][worker] - on.minor_faults["fill"][worker] >= 0.8 * share_pages
    assert on.cold_seconds == pytest.approx(on.phases["touch"] + on.phases["fill"] + on.phases["internode"]
                                            + on.phases["collect"])
    assert on.blas_threads_per_worker == 1


def test_prefault_is_on_only_where_the_pages_already_exist():
    plan = Plan(8, 8)
    assert create("mp_array", plan).prefault_pays()  # zero-filled at allocation
    assert create("shared_memory", plan, workload="pid").prefault_pays()  # the parent wrote 42.0
    assert create("shared_memory", plan, workload="rowsum").prefault_pays()  # ... or the input
    assert not create("shared_memory", plan, workload="random").prefault_pays()
    assert not create("pickled", plan).prefault_pays() and not create("serial", plan).prefault_pays()


def test_threads_write_their_native_ids_one_share_each():
    import threading

    result = shmbench.run("threads", 60, 10, workers=3, workload="pid", block_rows=2)
    assert result.verified and result.start_method is None
    assert len(set(result.pids)) == 3 and threading.get_native_id() not in result.pids
    assert [m["role"] for m in result.memory] == ["parent"]  # threads share the parent's memory


def test_mpi_ranks_share_one_window():
    # The ranks hold the window once plus their share of the exchange file (plus each rank's
    # interpreter); a private matrix per rank would make it 3x. Only the ranks are summed: the
    # parent is this test process, whose memory depends on the tests that ran before.
    result = shmbench.run("mpi", 2048, 32768, workers=2, memory_usage=True)
    assert result.verified, result.problems
    roles = [m["role"] for m in result.memory]
    assert roles[:3] == ["parent", "worker 0", "worker 1"] and "runtime: mpiexec" in roles
    ranks = sum(m["pss"] for m in result.memory if m["role"].startswith("worker"))
    # At least the window once; under 2.75x (a private matrix per rank would be 3x). How much of the
    # exchange file falls to the ranks depends on which sample was the peak: the parent maps it too.
    assert 1.0 < ranks / result.nbytes < 2.75


def test_memmap_disk_refuses_a_memory_filesystem(monkeypatch):
    from shmbench.strategies.memmap import DISK_DIR_ENV, MemmapDisk

    monkeypatch.setenv(DISK_DIR_ENV, "/dev/shm")
    assert "tmpfs" in MemmapDisk.unavailable_reason()
    with pytest.raises(ValueError, match="not a disk"):
        create("memmap_disk", Plan(8, 8))
    monkeypatch.setenv(DISK_DIR_ENV, "/no/such/dir")
    assert "not a directory" in MemmapDisk.unavailable_reason()


@pytest.mark.parametrize("strategy", ["joblib", "ray", "mpi", "dask"])
def test_contenders_with_their_own_start_refuse_another(strategy):
    with pytest.raises(ValueError, match="only"):
        create(strategy, Plan(8, 8), workers=2, start_method="spawn")


@pytest.mark.parametrize("strategy", [name for name, cls in REGISTRY.items() if cls.private_rows])
def test_rowsum_of_wide_rows_is_bit_exact_where_the_input_is_shipped(strategy):
    # numpy's row sum depends on the row's alignment: an input unpickled off a 64-byte boundary
    # (Dask's scatter) gave sums that differed in the last bit.
    result = shmbench.run(strategy, 32, 32768, workers=2, workload="rowsum")
    assert result.verified, result.problems


def test_a_missing_module_of_an_extra_is_named_with_its_install_line():
    from dataclasses import replace

    from shmbench.strategies.serial import Serial

    class Missing(Serial):
        traits = replace(Serial.traits, needs=("numpy", "shmbench_no_such_module"), extra="ray")

    assert Missing.unavailable_reason() == ("shmbench_no_such_module is not installed "
                                            "(pip install 'shmbench[ray]')")
    assert Serial.unavailable_reason() is None
