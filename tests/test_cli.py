"""The shmbench command: each subcommand's output, and one-line errors with exit code 2."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from shmbench.cli import main

SMALL = ["--size", "256x4096", "--repeat", "1"]


def test_run_json_has_two_verified_records(capsys):
    code = main(["run", "--strategy", "serial", "--strategy", "shared_memory", "--workers", "2",
                 "--size", "256x4096", "--json", "-"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == 2
    assert {"cpu_model", "logical_cores", "shm_free_bytes", "python", "numpy", "start_method_default",
            "noise_before", "noise_after"} <= set(doc["machine"])
    assert {"yardstick_cv_one_core", "yardstick_cv_all_cores", "steal_fraction"} <= set(doc["machine"]["noise_after"])
    assert [(r["strategy"], r["verified"]) for r in doc["results"]] == [("serial", True), ("shared_memory", True)]
    shared = doc["results"][1]
    for key in ("cold_seconds", "warm_seconds", "warm_ci", "warm_min", "warm_max", "passes", "speedup", "speedup_ci",
                "over_yardstick", "stable", "gbps", "peak_total_pss_bytes", "phases", "pids", "start_method",
                "launcher", "n_blocks", "reference"):
        assert shared[key] is not None, key
    assert shared["warm_min"] <= shared["warm_ci"][0] <= shared["warm_seconds"] <= shared["warm_ci"][1]
    assert shared["speedup_ci"][0] <= shared["speedup"] <= shared["speedup_ci"][1]
    # Every warm pass has its references, measured in the same round: the record stands alone.
    assert shared["passes"] == len(shared["warm_passes"]) >= 8
    assert len(shared["reference"]["serial"]) == len(shared["reference"]["yardstick"]) == shared["passes"]
    assert len(shared["pids"]) == 2 and shared["start_method"] == "fork" and shared["launcher"] == "multiprocessing"


@pytest.mark.slow  # a whole CLI comparison
def test_run_prints_a_table_and_writes_csv_and_plot(tmp_path, capsys):
    plot, table = tmp_path / "out.png", tmp_path / "out.csv"
    code = main(["run", "--strategy", "serial", "--strategy", "pickled", "--strategy", "mp_array",
                 "--workers", "1", "--workers", "2", *SMALL, "--csv", str(table), "--plot", str(plot)])
    assert code == 0
    out = capsys.readouterr().out
    for word in ("strategy", "speed-up", "GB/s", "PSS × matrix", "serial", "pickled", "mp_array", "yes"):
        assert word in out
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 5 and {r["verified"] for r in rows} == {"True"}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 20_000


@pytest.mark.slow  # a whole CLI comparison
def test_run_spawn_and_pid_workload(capsys):
    assert main(["run", "--strategy", "shared_memory", "--workers", "2", "--start-method", "spawn",
                 "--workload", "pid", *SMALL, "--json", "-"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["results"]
    assert record["start_method"] == "spawn" and record["workload"] == "pid" and record["verified"]


@pytest.mark.slow  # a whole CLI comparison
def test_unverified_run_exits_1_with_the_reason(capsys):
    code = main(["run", "--strategy", "mp_array", "--workers", "2", "--workload", "legacy-random", *SMALL])
    assert code == 1
    assert "same random stream" in capsys.readouterr().err


def test_demo_reproduces_the_books_table_and_checks(capsys):
    assert main(["demo", "--workers", "2", "--size", "64x100"]) == 0
    out = capsys.readouterr().out
    assert "Elements written by each worker" in out
    assert out.count("3,200") == 2  # two workers, 32 rows of 100 each
    for check in ("no 42.0 is left", "per-PID counts sum to 6,400", "every one of the 2 workers did some work",
                  "the parent's matrix is the shared array, not a copy"):
        assert "✔ " + check in out
    assert "✘" not in out
    assert "/dev/shm/pym-" in out


def test_memory_shows_each_process_and_the_mapping(capsys):
    assert main(["memory", "--strategy", "shared_memory", "--strategy", "pickled", "--size", "16MiB"]) == 0
    out = capsys.readouterr().out
    for word in ("parent", "worker 0", "worker 1", "RSS", "PSS", "USS", "/dev/shm/psm_", "private memory",
                 "total PSS"):
        assert word in out


def test_list_and_sysinfo(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("serial", "mp_array", "shared_memory", "pickled"):
        assert name in out
    assert main(["sysinfo"]) == 0
    out = capsys.readouterr().out
    for word in ("cpu_model", "shm_free", "thp_shmem_enabled", "numpy", "start_method_default"):
        assert word in out


def test_every_contender_is_available_with_the_extras_installed(capsys):
    # The README's test command (and CI) install '.[test,all]': every strategy must run here.
    from shmbench.strategies import REGISTRY

    assert {name: cls.unavailable_reason() for name, cls in REGISTRY.items() if cls.unavailable_reason()} == {}
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in REGISTRY) and "no:" not in out


@pytest.mark.parametrize("module, strategy, extra", [("ray", "ray", "ray"), ("mpi4py", "mpi", "mpi"),
                                                         ("distributed", "dask", "dask")])
def test_a_missing_extra_is_named_in_list_and_refused_in_one_line(monkeypatch, capsys, module, strategy, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    from shmbench.strategies import REGISTRY

    assert f"pip install 'shmbench[{extra}]'" in REGISTRY[strategy].unavailable_reason()
    assert main(["list"]) == 0
    assert "no: " in capsys.readouterr().out  # the row says so (rich wraps the reason in its cell)
    assert main(["run", "--strategy", strategy, "--size", "8x8"]) == 2
    err = capsys.readouterr().err
    assert f"not available here: {module} is not installed" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, words", [
    (["run", "--strategy", "nope"], ["nope", "serial", "shared_memory"]),
    (["run", "--workers", "0"], ["--workers", "at least 1"]),
    (["run", "--workers", "two"], ["--workers", "whole number"]),
    (["run", "--size=-5x10"], ["--size", "ROWSxCOLS"]),
    (["run", "--size", "0x10"], ["rows"]),
    (["run", "--size", "12 parsecs"], ["ROWSxCOLS", "GiB"]),
    (["run", "--size", "100TiB"], ["RAM", "--force"]),
    (["run", "--size", "2000000x32768", "--strategy", "pickled"], ["RAM"]),
    (["run", "--workload", "zeros"], ["zeros", "pid", "random"]),
    (["run", "--start-method", "thread"], ["thread", "fork", "spawn", "forkserver"]),
    (["run", "--repeat", "-1"], ["--repeat"]),
    (["run", "--timeout", "0"], ["--timeout", "above 0"]),
    (["run", "--timeout", "-3"], ["--timeout", "above 0"]),
    (["run", "--timeout", "soon"], ["--timeout", "number of seconds"]),
    (["run", "--timeout", "inf"], ["--timeout", "finite"]),
    (["run", "--budget", "nan"], ["--budget", "at least 0"]),
    (["demo", "--workers", "-3"], ["--workers"]),
    # Every cell refused leaves none: said as such (it was a ZeroDivisionError traceback).
    (["run", "--nodes", "3", "--workers", "2", "--strategy", "mpi"], ["no cell to run", "--nodes 3", "--workers"]),
    (["run", "--peers", "--strategy", "dask", "--workload", "pid"], ["dask_peer", "random and rowsum only"]),
    (["run", "--hostfile", "/no/such/hostfile"], ["--hostfile", "cannot read the host file", "/no/such/hostfile"]),
    (["run", "--hostfile", "/dev/null"], ["--hostfile", "names no host"]),
    (["run", "--hosts", "a,,b"], ["--hosts", "comma-separated"]),
    (["run", "--hosts", "a,b", "--strategy", "mpi"], ["--hosts is for --strategy", "--nodes as many"]),
    (["compare", "missing-a.json", "missing-b.json"], ["cannot read", "missing-a.json"]),
    (["gate", "no-such-commit", "HEAD"], ["no-such-commit", "is no commit"]),
    (["gate", "HEAD", "HEAD", "--repo", "/"], ["no asv.conf.json"]),
    (["bogus"], ["bogus", "run"]),
    ([], ["command"]),
])
def test_bad_usage_is_one_line_and_exit_2(argv, words, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("shmbench: error:"), err
    assert "Traceback" not in captured.err and captured.out == ""
    for word in words:
        assert word in err


def test_console_script_entry_point():
    done = subprocess.run([sys.executable, "-m", "shmbench", "run", "--workers", "0"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_report_summarises_a_run(tmp_path, capsys):
    results = tmp_path / "run.json"
    assert main(["run", "--strategy", "serial", "--strategy", "shared_memory", "--strategy", "book",
                 "--workers", "2", *SMALL, "--json", str(results)]) == 0
    doc = json.loads(results.read_text())
    assert doc["machine"]["single_core_fill_gbps"] > 0 and doc["created"]
    capsys.readouterr()
    assert main(["report", str(results)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# shmbench results")
    assert "## random, 256x4096 (8 MiB)" in text
    for column in ("allocate", "touch", "speed-up", "efficiency", "÷ 1-core fill", "memory ×"):
        assert column in text
    rows = [line for line in text.splitlines() if line.startswith("| shared_memory") or line.startswith("| book")]
    assert len(rows) == 2 and all(line.endswith("| yes |") for line in rows)
    assert "The book's recipe (2 workers) takes" in text
    out = tmp_path / "report.md"
    assert main(["report", str(results), "-o", str(out)]) == 0 and out.read_text() == text


@pytest.mark.parametrize("content", ["not json", '{"schema": 99, "results": []}'])
def test_report_refuses_what_is_not_a_run(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("shmbench: error:") and len(err.strip().splitlines()) == 1
    assert main(["report", str(tmp_path / "missing.json")]) == 2


def test_dtype_sizes_in_bytes_and_a_pid_that_does_not_fit(capsys):
    code = main(["run", "--strategy", "serial", "--strategy", "mp_array", "--workers", "2", "--size", "4MiB",
                 "--dtype", "float32", "--repeat", "6", "--budget", "0", "--digest", "--json", "-"])
    assert code == 0
    records = json.loads(capsys.readouterr().out)["results"]
    assert {(r["dtype"], r["rows"] * r["cols"], r["nbytes"]) for r in records} == {("float32", 2**20, 4 * 2**20)}
    assert records[0]["digest"] == records[1]["digest"]
    code = main(["run", "--strategy", "mp_array", "--workload", "pid", "--dtype", "uint8", "--size", "64x64"])
    err = capsys.readouterr().err
    assert code == 2 and "pid workload cannot use uint8" in err and err.count("\n") == 1
