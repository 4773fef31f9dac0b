"""A user's kernel in every strategy: same output as serial's, its input shared, bad kernels refused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import shmbench
from shmbench import kernels
from shmbench.cli import main
from cases import METHODS, PARALLEL, methods_for

HERE = Path(__file__).resolve().parent
KERNELS = HERE / "kernels.py"
EXAMPLE = HERE.parent / "docs" / "examples" / "smooth.py"


def spec(name: str) -> str:
    return f"{KERNELS}:{name}"


def run(strategy, workload, workers=2, method=None, dtype="float32", rows=40, cols=24, block_rows=3):
    return shmbench.run(strategy, rows, cols, workers=workers, workload=workload, start_method=method,
                        block_rows=block_rows, digest=True, dtype=dtype)


def smoothed(matrix: np.ndarray) -> np.ndarray:
    """The example's stencil written out over the whole matrix at once, independently of it."""
    padded = np.pad(matrix, 1, mode="edge")
    total = padded[:-2, 1:-1] + padded[2:, 1:-1]
    total += matrix
    total += padded[1:-1, :-2]
    total += padded[1:-1, 2:]
    return total / matrix.dtype.type(5)


def test_the_example_stencil_reads_its_neighbours_rows_from_the_shared_input():
    plan = shmbench.Plan(40, 24, block_rows=3, dtype="float32")
    with shmbench.create("shared_memory", plan, workers=2, workload=f"{EXAMPLE}:smooth") as strategy:
        driver = shmbench.Driver(strategy)
        driver.open()
        assert driver.first_pass() == []
        assert strategy.plan.with_input and strategy.storage.shape == (80, 24)
        assert np.allclose(strategy.matrix, smoothed(strategy.input), rtol=1e-6)
        # The input is the random workload's matrix, and the output is no copy of it.
        random = shmbench.run("serial", 40, 24, block_rows=3, dtype="float32", digest=True).digest
        assert kernels.digest(strategy.input) == random
        assert not np.array_equal(strategy.matrix, strategy.input)


@pytest.mark.parametrize("dtype", [pytest.param("float32", marks=pytest.mark.slow), "float64"])
@pytest.mark.parametrize("strategy", PARALLEL)
def test_a_kernel_is_bit_identical_to_serial_in_every_strategy(strategy, dtype):
    for workload in (f"{EXAMPLE}:smooth", spec("draw"), spec("sums")):
        reference = run("serial", workload, workers=1, dtype=dtype)
        assert reference.verified, reference.problems
        assert reference.verified_by == "serial's output, bit for bit"
        result = run(strategy, workload, dtype=dtype)
        assert result.verified, (workload, result.problems)
        assert result.digest == reference.digest, workload


@pytest.mark.parametrize("method", METHODS)
def test_a_kernel_runs_under_every_start_method(method):
    reference = run("serial", spec("draw"), workers=1, dtype="uint8").digest
    for strategy in ("shared_memory", "mp_array", "pickled"):
        if method in methods_for(strategy):
            result = run(strategy, spec("draw"), workers=3, method=method, dtype="uint8")
            assert result.verified and result.digest == reference, (strategy, result.problems)


def test_a_function_is_a_kernel_in_the_api():
    import kernels as module  # the tests' folder is on the path, and spawned workers get the same path

    by_function = run("shared_memory", module.draw, method="spawn")
    assert by_function.verified, by_function.problems
    assert by_function.workload == "kernels:draw"
    assert by_function.digest == run("serial", spec("draw"), workers=1).digest
    with pytest.raises(ValueError, match="module-level function"):
        run("serial", lambda out, rows, rng, input: None, workers=1)


def test_a_kernel_that_is_not_deterministic_is_judged_by_its_check_alone():
    result = run("shared_memory", spec("restless"))
    assert result.verified, result.problems
    assert "not deterministic" in result.verified_by
    failed = run("shared_memory", spec("negative"))
    assert not failed.verified and failed.problems == ["check() returned False"]


def test_writes_outside_the_block_or_into_the_input_fail_verification():
    spilled = run("shared_memory", spec("spills"), dtype="float64", rows=64, block_rows=4)
    assert not spilled.verified
    assert any("differs from serial's" in p for p in spilled.problems), spilled.problems
    wrote_input = run("shared_memory", spec("writes_input"), dtype="float64")
    assert not wrote_input.verified
    assert "the input matrix changed: the kernel wrote where it may only read" in wrote_input.problems


@pytest.mark.parametrize("workload, message", [
    ("no_such_module_here:f", "cannot import module 'no_such_module_here'"),
    (f"{KERNELS}:missing", "has no function 'missing'"),
    (f"{KERNELS}:two_arguments", "must take (out, rows, rng, input), not (out, rows)"),
    (f"{HERE}/nowhere.py:f", "no kernel file"),
    ("kernels", "unknown workload 'kernels'"),
])
def test_a_kernel_that_cannot_be_called_is_refused_in_one_line_before_anything_runs(capsys, workload, message):
    assert main(["run", "--strategy", "shared_memory", "--workload", workload, "--size", "8x8"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 3  # argparse's usage line, then the one that says why


@pytest.mark.parametrize("name, says", [
    ("raises", ["kernel raises raised ValueError: no such luck", "(worker ", "rows 3-5", "Traceback"]),
    ("short", ["returned shape (2,) for 3 rows (rows ", "one value per row"]),
])
def test_a_kernel_that_fails_in_a_worker_says_where_with_its_traceback(capsys, name, says):
    code = main(["run", "--strategy", "shared_memory", "--workers", "2", "--workload", spec(name), "--size", "40x24",
                 "--block-rows", "3", "--repeat", "0", "--json", "-"])
    assert code == 1
    records = json.loads(capsys.readouterr().out)["results"]
    failed = [r for r in records if r["strategy"] == "shared_memory"]
    assert failed and failed[0]["error"]
    text = "\n".join(failed[0]["problems"])
    for part in says:
        assert part in text, text


def test_cli_compares_a_kernel_of_a_dtype_with_digests(capsys):
    code = main(["run", "--strategy", "serial", "--strategy", "shared_memory", "--strategy", "pickled",
                 "--workers", "2", "--workload", f"{EXAMPLE}:smooth", "--dtype", "float32", "--size", "1MiB",
                 "--repeat", "2", "--budget", "0", "--digest", "--json", "-"])
    assert code == 0
    records = json.loads(capsys.readouterr().out)["results"]
    assert {r["strategy"] for r in records} == {"serial", "shared_memory", "pickled"}
    assert all(r["verified"] and r["dtype"] == "float32" for r in records)
    assert len({r["digest"] for r in records}) == 1
    assert {r["verified_by"] for r in records} == {"serial's output, bit for bit"}


def test_a_kernel_not_deterministic_and_without_check_is_never_called_verified(tmp_path, capsys):
    unchecked = str(Path(__file__).with_name("kernels_unchecked.py")) + ":restless"
    result = run("shared_memory", unchecked)
    assert not result.verified
    assert "not deterministic and no check(): nothing to compare" in result.problems
    assert result.verified_by.startswith("nothing:")
    from shmbench.cli import main

    out = tmp_path / "r.json"
    assert main(["run", "--strategy", "serial", "--strategy", "shared_memory", "--workers", "2", "--size", "40x24",
                 "--workload", unchecked, "--repeat", "6", "--budget", "0", "--json", str(out)]) == 1
    records = json.loads(out.read_text())["results"]
    assert not any(r["verified"] for r in records)  # serial too: there is nothing to compare it with
    assert "none is ranked" in capsys.readouterr().out


@pytest.mark.parametrize("kernel, where, says", [
    # In serial's reference first, in the parent: every cell of the group fails the same way.
    ("raises", "serial's reference fill failed: ", 'raise ValueError("no such luck")'),
    ("raises_in_workers", "a worker failed during fill: ", 'raise ValueError("not in a worker")')])
@pytest.mark.parametrize("strategy", ["shared_memory", "mp_array", "pickled"])
def test_a_kernel_failure_reads_like_the_kernels_own_error(capsys, strategy, kernel, where, says):
    # One line naming the kernel, its exception and message, the worker and the block's rows; the
    # kernel's own frames once, and none of shmbench's on stderr; the record keeps the whole traceback.
    code = main(["run", "--strategy", "serial", "--strategy", strategy, "--workers", "2", "--workload", spec(kernel),
                 "--size", "40x24", "--block-rows", "3", "--repeat", "0", "--json", "-"])
    assert code == 1
    captured = capsys.readouterr()
    record = [r for r in json.loads(captured.out)["results"] if r["strategy"] == strategy][0]
    message = says.split("(")[1].strip('")')
    assert record["error"].startswith(f"{where}kernel {kernel} raised ValueError: {message} (worker "), record["error"]
    assert ", rows " in record["error"] and "Traceback" in "\n".join(record["problems"])
    lines = captured.err.strip().splitlines()
    failure = [line for line in lines if "cell failed" in line and strategy in line]
    assert len(failure) == 1 and record["error"] in failure[0]
    assert sum('kernels.py", line' in line and f"in {kernel}" in line for line in lines) == 1  # once
    assert says in captured.err
    assert "shmbench/" not in captured.err and "Traceback" not in captured.err


# ---- a time limit on every phase -------------------------------------------------------------------

@pytest.mark.slow  # each waits out a time limit
@pytest.mark.parametrize("strategy, who", [("shared_memory", "worker"), ("pickled", "worker"), ("threads", "thread")])
def test_a_kernel_that_never_returns_is_stopped_at_the_time_limit_naming_who_was_on_which_block(strategy, who):
    with pytest.raises(shmbench.TimeLimit) as raised:
        shmbench.run(strategy, 40, 24, workers=2, workload=spec("hangs_in_workers" if who == "worker" else "hangs"),
                     block_rows=3, timeout=2)
    message = str(raised.value)
    assert message.startswith(f"{strategy}'s fill ran past its time limit of 2 s; still busy: {who} 0 ("), message
    assert f"{who} 1 (" in message and " on block 7 of its blocks 7-13" in message


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), "10"])
def test_a_time_limit_that_is_not_one_is_refused_before_anything_runs(timeout):
    with pytest.raises(ValueError, match="timeout must be a finite number of seconds above 0"):
        shmbench.run("shared_memory", 40, 24, workers=2, timeout=timeout)


@pytest.mark.slow  # waits out a time limit per cell
@pytest.mark.parametrize("kernel, says", [
    ("hangs_in_workers", "fill ran past its time limit of 3 s; still busy: worker "),
    # In serial's reference first, in the parent: every cell of its group fails so, and the run ends.
    ("hangs", "serial's reference fill failed: serial's fill ran past its time limit of 3 s")])
def test_cli_timeout_fails_the_cell_and_the_comparison_goes_on(cli, tmp_path, kernel, says):
    out = tmp_path / "out.json"
    proc = cli("run", "--strategy", "serial", "--strategy", "mp_array", "--strategy", "shared_memory",
               "--workers", "2", "--workload", spec(kernel), "--size", "40x24", "--block-rows", "3",
               "--repeat", "0", "--timeout", "3", "--json", str(out))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    records = {r["strategy"]: r for r in json.loads(out.read_text())["results"]}
    assert set(records) == {"serial", "mp_array", "shared_memory"}
    for name in ("mp_array", "shared_memory"):
        assert says in records[name]["error"], records[name]["error"]
        assert f"cell failed, the comparison goes on: {name} ×2: " in err
    assert records["serial"]["verified"] == (kernel == "hangs_in_workers")
