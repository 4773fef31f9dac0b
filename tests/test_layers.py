"""The package's layers hold: import-linter checks the contracts in pyproject.toml."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_each_layer_imports_only_those_below_it():
    lint = shutil.which("lint-imports") or str(Path(__import__("sys").executable).parent / "lint-imports")
    done = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout
