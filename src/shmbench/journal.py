"""Save as you go: a comparison's journal, one JSON line per finished cell, and resuming from it.

A comparison can take hours and is often run unattended. Each finished record (verified or not,
failed or not) is appended and fsynced the moment it lands, so an interrupt, a scheduler's SIGTERM
or a crash loses at most the cell in progress. A record carries its own reference passes, so
each line stands alone; a cell that sits again (``compare.sits_again``) adds a second line, and
the later one counts. ``--resume`` reads the journal back, refuses a different machine or
different settings, and runs only the cells it does not hold.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import IO

from .result import RunResult

FORMAT = 1
#: What makes a machine the same one for a resumed comparison. Readings that change by themselves
#: (free memory, load, noise) are left out: they never stop a resume.
IDENTITY = ("cpu_model", "logical_cores", "ram_total_bytes", "python", "numpy", "shmbench")
#: The folder of journals when no output file says where (``--json -`` or no output at all).
DEFAULT_FOLDER = "shmbench-results"


def default_path(outputs: Sequence[str | None]) -> str:
    """Beside the first output file (``out.json`` -> ``out.journal.jsonl``), else a new file in
    ``$SHMBENCH_RESULTS`` (default ``./shmbench-results``)."""
    for path in outputs:
        if path and path != "-":
            return os.path.splitext(path)[0] + ".journal.jsonl"
    folder = os.environ.get("SHMBENCH_RESULTS") or DEFAULT_FOLDER
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return os.path.join(folder, f"run-{stamp}-{os.getpid()}.jsonl")


def identity(machine: dict) -> dict:
    return {key: machine.get(key) for key in IDENTITY}


class Journal:
    """An open journal: ``add`` appends one finished result and makes it durable."""

    def __init__(self, path: str, stream: IO[str]) -> None:
        self.path = path
        self._stream = stream

    @classmethod
    def create(cls, path: str, machine: dict, settings: dict) -> Journal:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        journal = cls(path, open(path, "w"))
        journal._write({"shmbench_journal": FORMAT, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                        "identity": identity(machine), "settings": settings, "machine": machine})
        return journal

    @classmethod
    def resume(cls, path: str, machine: dict, settings: dict) -> tuple[Journal, list[RunResult]]:
        """The journal at ``path`` opened for more records, and the results it already holds.

        Raises ``ValueError`` (one line) if it is not a journal, or was made on another machine
        or with other settings.
        """
        header, results = read(path)
        mine = identity(machine)
        for key in IDENTITY:
            if header["identity"].get(key) != mine[key]:
                raise ValueError(f"cannot resume {path}: it was made with {key} {header['identity'].get(key)!r}, "
                                 f"this machine has {mine[key]!r}")
        for key, value in settings.items():
            if header["settings"].get(key) != value:
                option = "--" + key.replace("_", "-")
                raise ValueError(f"cannot resume {path}: it was made with {option} {header['settings'].get(key)}, "
                                 f"this command has {value}")
        return cls(path, open(path, "a")), results

    def add(self, result: RunResult) -> None:
        self._write({"record": result.as_dict()})

    def _write(self, entry: dict) -> None:
        self._stream.write(json.dumps(entry) + "\n")
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read(path: str) -> tuple[dict, list[RunResult]]:
    """The header and the results of a journal; a last line cut short by a crash is ignored."""
    try:
        with open(path) as stream:
            lines = stream.read().splitlines()
    except OSError as error:
        raise ValueError(f"cannot read journal {path}: {error.strerror}") from None
    entries = []
    for number, line in enumerate(lines):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines) - 1:  # the write the interruption cut short
                break
            raise ValueError(f"{path} line {number + 1} is not JSON: not a shmbench journal") from None
    if not entries or not isinstance(entries[0], dict) or entries[0].get("shmbench_journal") != FORMAT:
        raise ValueError(f"{path} is not a shmbench journal (format {FORMAT})")
    return entries[0], [RunResult.from_dict(e["record"]) for e in entries[1:] if "record" in e]
