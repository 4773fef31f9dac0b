import numpy as np
import pytest

from shmbench import Plan


@pytest.mark.parametrize("rows, cols, block_rows", [(1, 1, None), (37, 5, 5), (100, 3, 1), (4096, 32768, None)])
def test_blocks_cover_every_row_once(rows, cols, block_rows):
    plan = Plan(rows, cols, block_rows=block_rows)
    covered = np.zeros(rows, dtype=int)
    for index in range(plan.n_blocks):
        covered[plan.block(index)] += 1
    assert (covered == 1).all()
    assert len(plan.seeds) == plan.n_blocks


def test_block_split_ignores_worker_count_and_shares_give_everyone_work():
    plan = Plan(37, 5, block_rows=5)
    assert plan.n_blocks == 8
    for workers in (1, 2, 3, 8):
        shares = plan.shares(workers)
        assert [b for share in shares for b in share] == list(range(8))
        assert all(len(share) >= 1 for share in shares)
    assert [len(s) for s in plan.shares(10)].count(0) == 2


def test_block_rows_one_is_the_books_task_per_row():
    plan = Plan(10, 4, block_rows=1)
    assert plan.n_blocks == 10 and plan.block(3) == slice(3, 4)


def test_seeds_come_from_seedsequence_spawn():
    plan = Plan(20, 4, seed=7, block_rows=5)
    expected = np.random.SeedSequence(7).spawn(4)
    assert [s.spawn_key for s in plan.seeds] == [s.spawn_key for s in expected]
    assert [s.entropy for s in plan.seeds] == [7] * 4


@pytest.mark.parametrize("kwargs, word", [
    (dict(rows=0, cols=5), "rows"), (dict(rows=5, cols=-1), "cols"), (dict(rows=2.5, cols=5), "rows"),
    (dict(rows=5, cols=5, block_rows=0), "block_rows"), (dict(rows=5, cols=5, seed=-1), "seed"),
    (dict(rows=2**40, cols=2**40), "elements"), (dict(rows=True, cols=5), "rows"),
])
def test_bad_plans_are_refused(kwargs, word):
    with pytest.raises(ValueError, match=word):
        Plan(**kwargs)


def test_byte_sizes_hold_as_many_elements_of_the_dtype_as_fit():
    from shmbench.sizes import describe, parse_size

    assert parse_size("1GiB") == (4096, 32768)
    assert parse_size("1GiB", "float32") == (8192, 32768)
    assert parse_size("1GiB", "uint8") == (32768, 32768)
    assert parse_size("1GiB", "complex128") == (2048, 32768)
    assert parse_size("64x64", "uint8") == (64, 64)  # a shape is a shape
    assert describe(8192, 32768, "float32") == "8192x32768 float32 (1 GiB)"
    assert Plan(8192, 32768, dtype="float32").nbytes == 2**30
    # Blocks stay about 8 MiB whatever the element size.
    assert Plan(32768, 32768, dtype="uint8").block_rows == 256
    with pytest.raises(ValueError, match="choose one of"):
        Plan(8, 8, dtype="float16")
