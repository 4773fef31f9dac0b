"""The plan of a run: the matrix shape, its split into row blocks and one seed per block.

The split depends only on the shape (and ``block_rows``), never on the worker count or the
strategy, so every way of sharing the matrix produces the same matrix bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

#: The element types a matrix may have; float64 (the book's ``c_double``) is the default.
DTYPES = ("float64", "float32", "int64", "int32", "uint8", "complex128")
DEFAULT_DTYPE = "float64"
ITEMSIZE = np.dtype(DEFAULT_DTYPE).itemsize
# Blocks of at most this many bytes, and at least MIN_BLOCKS of them where the rows allow:
# per-block overhead (a Generator, a verify step) stays negligible, and small matrices still
# split over many workers. The book's one-row tasks are block_rows=1.
TARGET_BLOCK_BYTES = 8 * 2**20
MIN_BLOCKS = 64
# One matrix must be addressable by numpy and by a single mmap on a 64-bit machine.
MAX_BYTES = 2**62


def check_dtype(dtype: object) -> str:
    """The name of a supported element type, or ``ValueError`` naming the ones there are."""
    name = np.dtype(dtype).name if isinstance(dtype, type) or isinstance(dtype, np.dtype) else str(dtype)
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    return name


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value}")
    return int(value)


@dataclass(frozen=True)
class Plan:
    """A ``rows`` x ``cols`` matrix of ``dtype`` split into contiguous blocks of ``block_rows`` rows."""

    rows: int
    cols: int
    seed: int = 0
    block_rows: int | None = None
    dtype: str = DEFAULT_DTYPE
    #: A second matrix of the same shape, the input a user's writing kernel reads, is stored below
    #: the output (rows ``rows`` to ``2 * rows`` of the storage): one buffer, shared as the matrix is.
    with_input: bool = False

    def __post_init__(self) -> None:
        rows = positive_int("rows", self.rows)
        cols = positive_int("cols", self.cols)
        dtype = check_dtype(self.dtype)
        itemsize = np.dtype(dtype).itemsize
        if rows * cols > MAX_BYTES // itemsize:
            raise ValueError(f"{rows}x{cols} has more elements than one matrix can hold ({MAX_BYTES // itemsize})")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        block_rows = self.block_rows
        if block_rows is None:
            block_rows = max(1, min(TARGET_BLOCK_BYTES // (cols * itemsize), -(-rows // MIN_BLOCKS)))
        block_rows = min(positive_int("block_rows", block_rows), rows)
        object.__setattr__(self, "rows", rows)
        object.__setattr__(self, "cols", cols)
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "block_rows", block_rows)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "with_input", bool(self.with_input))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def storage_shape(self) -> tuple[int, int]:
        """The shape of what a strategy allocates: the matrix, and the input below it if any."""
        return (2 * self.rows if self.with_input else self.rows, self.cols)

    @property
    def storage_nbytes(self) -> int:
        return self.storage_shape[0] * self.cols * self.itemsize

    @property
    def itemsize(self) -> int:
        return np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.rows * self.cols * self.itemsize

    @property
    def n_blocks(self) -> int:
        return -(-self.rows // self.block_rows)

    def block(self, index: int) -> slice:
        """The rows of block ``index``."""
        start = index * self.block_rows
        return slice(start, min(start + self.block_rows, self.rows))

    def blocks_of(self, rows: range) -> range:
        """The indices of the blocks that hold any of ``rows``."""
        if not rows:
            return range(0)
        return range(rows.start // self.block_rows, (rows.stop - 1) // self.block_rows + 1)

    @cached_property
    def seeds(self) -> list[np.random.SeedSequence]:
        """One independent seed per block (``SeedSequence(seed).spawn(n_blocks)``)."""
        return np.random.SeedSequence(self.seed).spawn(self.n_blocks)

    def shares(self, workers: int) -> list[range]:
        """Contiguous runs of block indices, one per worker, as even as possible.

        Every worker gets at least one block whenever there are at least as many blocks as
        workers, which is what lets verification insist that every worker did some work.
        """
        workers = positive_int("workers", workers)
        base, extra = divmod(self.n_blocks, workers)
        out, start = [], 0
        for w in range(workers):
            stop = start + base + (1 if w < extra else 0)
            out.append(range(start, stop))
            start = stop
        return out

    def share_rows(self, workers: int) -> list[range]:
        """The plan rows of each worker's share (``shares``), as row ranges."""
        return [range(self.block(s.start).start, self.block(s.stop - 1).stop) if s else range(0)
                for s in self.shares(workers)]
