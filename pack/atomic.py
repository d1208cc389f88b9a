"""Folders and files that appear whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_when_complete(dest: Path, prefix: str) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; when the block completes, it
    replaces ``dest``. An interrupted or failed block leaves ``dest`` as it was,
    so nothing half-built is ever trusted by a later run."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=dest.parent))
    try:
        yield work
        if dest.exists():
            shutil.rmtree(dest)
        work.rename(dest)
    finally:
        if work.exists():
            shutil.rmtree(work)


def write_whole(dest: Path, data: bytes) -> None:
    """Write ``dest`` beside itself and rename it into place: a reader (another thread or
    process, or a later run) sees the old file, or none, or all of the new one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, pending = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(pending, dest)
    finally:
        if os.path.exists(pending):
            os.unlink(pending)
