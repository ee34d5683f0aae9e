"""Output files that appear whole or not at all.

Every file omniemo writes (reports, scores, run records, charts, weights, model cards) is written to a
temporary file in the destination's own folder and renamed into place: a kill mid-write leaves the previous
file intact and no half-written one. ``check_writable`` fails before any work when a destination cannot be
written, so an analysis is never lost to a bad ``--out``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """A destination that cannot be written (the message names it and why)."""


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(temp)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as temp:
        temp.write_bytes(data)
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def check_writable(path: str | Path, directory: bool = False) -> Path:
    """Fail early, naming ``path``, if a file (or with ``directory``, files inside it) cannot be written there."""
    path = Path(path)
    if directory:  # a run folder: it and missing parents are created, under an existing, writable ancestor
        folder = path
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise OutputError(f"{path}: {folder} exists and is not a folder")
    else:
        if path.is_dir():
            raise OutputError(f"{path}: is a folder, not a file")
        if path.exists() and not path.is_file():
            raise OutputError(f"{path}: is not a regular file")
        folder = path.parent
        if not folder.is_dir():
            raise OutputError(f"{path}: the folder {folder} does not exist")
    # try it rather than ask os.access: root passes every permission check, yet /proc refuses files
    try:
        fd, probe = tempfile.mkstemp(prefix=".omniemo-write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in the folder {folder} ({exc.strerror})") from None
    return path
