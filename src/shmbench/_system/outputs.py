"""Files a command writes: checked before anything runs, and written whole or not at all."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO


def check_writable(path: str, what: str) -> None:
    """Raise ``ValueError`` (one line) unless ``path`` can be written: its folder exists and is
    writable, and the path is not a folder or a file we may not replace. ``-`` is standard output."""
    if path == "-":
        return
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"{what} {path} is a directory, not a file")
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write {what} {path}: the directory {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {what} {path}: the directory {folder} is not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise ValueError(f"cannot write {what} {path}: the file is not writable")


@contextmanager
def atomic(path: str, mode: str = "w") -> Iterator[IO]:
    """A stream whose content replaces ``path`` only once it is complete (temporary file in the
    same folder, fsync, rename): a reader never sees half a file, an error leaves the old one."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": ""})) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
