"""Second sittings: a contender whose figure did not settle opens again and adds rounds to its first's.

A run keeps one opening of a cell (its storage mapped once, its workers started once) for all its
rounds, so what differs from one opening to the next moves a whole run, where no interval of that
run can see it. A contender left unstable sits again, and its figure pools both openings' rounds.
"""
from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from shmbench import compare
from shmbench.cli import main
from shmbench.compare import Budget, pooled, sits_again
from shmbench.paired import Rounds, interleave
from shmbench.result import RunResult
from shmbench.strategies import REFERENCE

from test_stats import _Fake

SERIAL = 0.1


def _result(strategy: str, speedup: float, spread: float, workers: int = 2, n: int = 30, **fields) -> RunResult:
    """A verified record whose paired speed-up has ``speedup`` at its middle, its rounds spread by ±``spread``."""
    rng = np.random.default_rng(zlib.crc32(f"{strategy} {workers}".encode()))
    serial = [SERIAL] * n
    cell = list(SERIAL / speedup * np.exp(rng.uniform(-spread, spread, n)))
    if strategy == REFERENCE:
        serial, cell = [], [SERIAL] * n
    return RunResult(strategy=strategy, workload="random", rows=8, cols=8, workers=workers, start_method=None,
                     launcher="none", n_blocks=1, block_rows=8, seed=0, total_seconds=0.1, pids=[1],
                     warm_passes=cell, reference={REFERENCE: serial, "yardstick": [SERIAL / workers] * n},
                     **{"verified": True, "phases": {"fill": 0.1}, **fields})


def test_an_unstable_contender_sits_again_and_nothing_else_does():
    results = [
        _result(REFERENCE, 1.0, 0.0, workers=1),
        _result("threads", 1.96, 0.01),            # the leader, stable
        _result("mp_array", 1.90, 0.25),           # unstable, its interval reaches the leader's: sits again
        _result("memmap", 1.93, 0.01),             # a stable contender: it has what it needs
        _result("pickled", 0.40, 0.25),            # unstable but far behind: no
        _result("dask_peer", 1.95, 0.25),          # a peer is no contender
        _result("shared_memory", 1.9, 0.25, error="worker 1 died"),
        _result("book", 1.9, 0.25, verified=False),
        _result("joblib", 1.01, 0.25, workers=1),  # one worker, near serial's 1.00 and unstable: sits again
        _result("threads", 1.0, 0.01, workers=1),  # a stable tie with serial
    ]
    assert [(r.strategy, r.workers) for r in sits_again(results)] == [("joblib", 1), ("mp_array", 2)]
    # Unstable cells are the leaders themselves when nothing settled.
    both = [_result("threads", 1.96, 0.3), _result("mp_array", 1.7, 0.3)]
    assert [r.strategy for r in sits_again(both)] == ["threads", "mp_array"]


def test_a_second_sitting_adds_its_rounds_to_the_first_and_settles_on_all_of_them():
    log: list[str] = []
    earlier = Rounds(cell=[0.1, 0.13] * 5, reference=[0.2] * 10, yardstick=[0.1] * 10)
    rounds = interleave(_Fake("cell", log, 0.1), _Fake("serial", log, 0.2), _Fake("yardstick", log, 0.1),
                        min_rounds=3, budget=60.0, earlier=earlier)
    assert rounds.cell[:10] == earlier.cell and len(rounds.cell) == len(rounds.reference) == len(rounds.yardstick)
    assert len(rounds.cell) >= 13 and log.count("cell") == len(rounds.cell) - 10  # at least min_rounds new ones
    assert rounds.settled  # the figures of the pooled rounds, not only the new ones
    assert earlier.cell == [0.1, 0.13] * 5  # the first sitting's rounds are not touched


def test_pooled_keeps_the_first_sittings_cold_pass_and_both_sittings_rounds():
    first = _result("mp_array", 1.9, 0.25, n=12, peak_total_pss_bytes=100, digest="a" * 64)
    second = _result("mp_array", 1.9, 0.05, n=30, peak_total_pss_bytes=120, digest="a" * 64,
                     phases={"fill": 0.5}, settled=True)
    out = pooled(first, second)
    assert out.sittings == 2 and out.phases == first.phases and out.warm_passes == second.warm_passes
    assert out.peak_total_pss_bytes == 100 and out.settled and out.verified and not out.error
    differ = pooled(first, _result("mp_array", 1.9, 0.05, digest="b" * 64))
    assert not differ.verified and "outputs differ" in differ.problems[-1]
    broken = pooled(first, _result("mp_array", 1.9, 0.05, error="worker 1 (pid 7) died during fill"))
    assert broken.error == "its second sitting failed: worker 1 (pid 7) died during fill" and not broken.verified
    assert broken.warm_passes == first.warm_passes  # what the first measured stays in the record


def test_second_sittings_share_what_is_kept_for_them():
    budget = Budget(4.0, 90.0, cells=3, reserve=40.0)
    assert budget.sitting(cells=2, groups=1) == 20.0
    budget.spend_sitting(5.0)  # the first settled early: the second gets the rest
    assert budget.sitting(cells=1, groups=1) == 35.0
    assert budget.sitting(cells=1, groups=2) == 17.5  # another group is still to come
    budget.spend_sitting(33.0)
    assert budget.sitting(cells=1, groups=1) == 4.0  # never under the floor while some is left
    budget.spend_sitting(4.0)
    assert budget.sitting(cells=1, groups=1) == 0.0  # and none once it is spent
    assert Budget(7.0).sitting(cells=1, groups=1) == 0.0  # --budget: no second sittings


@pytest.mark.slow
def test_a_cell_that_sits_again_is_one_record_with_both_sittings_in_the_output_and_the_journal(
        tmp_path, monkeypatch, capsys):
    # Every contender sits again here (whether it settled or not), with a budget of a few seconds.
    monkeypatch.setattr(compare, "sits_again", lambda results: [r for r in results if r.strategy != REFERENCE])
    monkeypatch.setattr("shmbench.cli.run.TOTAL_BUDGET", 0.0)
    monkeypatch.setattr("shmbench.cli.run.MIN_BUDGET", 0.0)
    monkeypatch.setattr("shmbench.cli.run.SECOND_SITTINGS", 2.0)
    out = tmp_path / "out.json"
    argv = ["run", "--strategy", "serial", "--strategy", "shared_memory", "--workers", "2", "--size", "16MiB",
            "--repeat", "4", "--digest", "--json", str(out)]
    assert main(argv) == 0
    records = {r["strategy"]: r for r in json.loads(out.read_text())["results"]}
    cell = records["shared_memory"]
    assert cell["sittings"] == 2 and cell["passes"] >= 8 and cell["verified"]
    assert len(cell["reference"][REFERENCE]) == cell["passes"] == len(cell["reference"]["yardstick"])
    lines = [json.loads(line)["record"] for line in (tmp_path / "out.journal.jsonl").read_text().splitlines()[1:]]
    assert [(r["strategy"], r["sittings"]) for r in lines] == [("serial", 1), ("shared_memory", 1),
                                                               ("shared_memory", 2)]
    assert lines[1]["warm_passes"] == cell["warm_passes"][:len(lines[1]["warm_passes"])]
    # Resumed, the later line counts: nothing runs again, and the output is the pooled record.
    capsys.readouterr()
    assert main(argv + ["--resume", str(tmp_path / "out.journal.jsonl")]) == 0
    assert "2 of 2 cells already there" in capsys.readouterr().err
    again = {r["strategy"]: r for r in json.loads(out.read_text())["results"]}
    assert again["shared_memory"]["sittings"] == 2 and again["shared_memory"]["passes"] == cell["passes"]


def test_an_earlier_cells_garbage_is_freed_before_the_next_cell_opens():
    import gc

    import psutil

    from shmbench._system import memory

    gc.disable()  # as between two cells, when no collection happened to run
    try:
        left = {"matrix": np.ones(2**23)}  # 64 MiB, held only by a cycle of its own
        left["self"] = left
        del left
        before = psutil.Process().memory_info().rss
        memory.release_freed()
        assert before - psutil.Process().memory_info().rss > 48 * 2**20
    finally:
        gc.enable()


@pytest.mark.slow
def test_run_grid_returns_one_record_a_cell_the_pooled_one(monkeypatch):
    monkeypatch.setattr(compare, "sits_again", lambda results: [r for r in results if r.strategy != REFERENCE])
    cases = compare.grid(["serial", "threads"], [2], ["64x32768"], ["random"], [None])
    heard: list[tuple[str, int]] = []
    out = compare.run_grid(cases, repeat=3, budget=Budget(0.0, 0.0, len(cases), reserve=1.0),
                           on_result=lambda case, r: heard.append((r.strategy, r.sittings)))
    assert [(r.strategy, r.sittings) for r in out] == [("serial", 1), ("threads", 2)]
    assert heard == [("serial", 1), ("threads", 1), ("threads", 2)]
    assert out[1].verified and len(out[1].warm_passes) >= 6
