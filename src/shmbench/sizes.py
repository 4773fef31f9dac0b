"""Matrix sizes as people write them: ``ROWSxCOLS`` or a byte size such as ``256MiB`` or ``1GiB``."""
from __future__ import annotations

import re

import numpy as np

from .plan import DEFAULT_DTYPE, Plan, check_dtype

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SHAPE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
#: Rows of 256 KiB, as in the 1 GiB reference case 4096x32768.
DEFAULT_COLS = 32768


def parse_size(spec: str, dtype: str = DEFAULT_DTYPE) -> tuple[int, int]:
    """``(rows, cols)`` for a size spec; a byte size becomes rows of ``DEFAULT_COLS`` elements of
    ``dtype`` (``1GiB`` of float32 has twice the elements of ``1GiB`` of float64)."""
    shape = _SHAPE.match(spec)
    if shape:
        rows, cols = int(shape.group(1)), int(shape.group(2))
    else:
        match = _BYTES.match(spec)
        unit = match.group(2).lower() if match else None
        if not match or unit not in _UNITS:
            raise ValueError(f"size {spec!r} is neither ROWSxCOLS (e.g. 2048x16384) nor a byte size "
                             f"(e.g. 256MiB, 1GiB, 500MB; units: {', '.join(u for u in _UNITS if u)})")
        itemsize = np.dtype(check_dtype(dtype)).itemsize
        elements = int(float(match.group(1)) * _UNITS[unit]) // itemsize
        if elements < 1:
            raise ValueError(f"size {spec!r} is smaller than one {dtype} element")
        cols = min(DEFAULT_COLS, elements)
        rows = elements // cols
    Plan(rows, cols, dtype=dtype)  # the same checks as any run: positive, not absurd
    return rows, cols


def describe(rows: int, cols: int, dtype: str = DEFAULT_DTYPE) -> str:
    """``4096x32768 (1 GiB)``, and the dtype when it is not float64: ``8192x32768 float32 (1 GiB)``."""
    nbytes = rows * cols * np.dtype(dtype).itemsize
    shape = f"{rows}x{cols}" + ("" if dtype == DEFAULT_DTYPE else f" {dtype}")
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale:
            return f"{shape} ({nbytes / scale:.4g} {unit})"
    return f"{shape} ({nbytes} B)"
