"""Folders and files that appear whole or not at all."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
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


def built_once(
    dest: Path, build: Callable[[Path], None], complete: Callable[[Path], bool] = Path.exists
) -> bool:
    """``dest`` built once for every thread and process that shares it: ``build(work)``
    fills a temporary folder that replaces ``dest`` when complete (``replaced_when_complete``),
    under a lock file beside it, so a second caller waits for the first and then uses its
    folder. A complete ``dest`` is never replaced — someone may be running from it.
    True when ``dest`` was complete already (nothing built)."""
    if complete(dest):
        return True
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "a") as lock:  # one open file per caller
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if complete(dest):
            return True
        with replaced_when_complete(dest, f".{dest.name}-") as work:
            build(work)
    return False


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
