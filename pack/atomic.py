"""Folders and files that appear whole or not at all."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_when_complete(dest: Path, prefix: str, keep: Callable[[], bool] | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``dest``; when the block completes, it
    replaces ``dest`` (unless ``keep()`` says to keep ``dest`` as it is now). An
    interrupted or failed block leaves ``dest`` as it was, so nothing half-built is
    ever trusted by a later run."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=dest.parent))
    work.chmod(0o755)  # as a folder made by mkdir would be, not mkdtemp's private 0700
    try:
        yield work
        if keep is None or not keep():
            if dest.exists():
                remove_tree(dest)
            work.rename(dest)
    finally:
        if work.exists():
            remove_tree(work)


def remove_tree(folder: Path) -> None:
    """rmtree, also of a folder made read-only (unzipped code, as /var/task is)."""

    def writable_then_retry(function, path, _):
        os.chmod(os.path.dirname(path), 0o755)
        if os.path.isdir(path):
            os.chmod(path, 0o755)
        function(path)

    handler = {"onexc" if sys.version_info >= (3, 12) else "onerror": writable_then_retry}
    shutil.rmtree(folder, **handler)


def built_once(
    dest: Path, build: Callable[[Path], None], complete: Callable[[Path], bool] = Path.exists
) -> bool:
    """``dest`` built once for every thread and process that shares it: ``build(work)``
    fills a temporary folder that replaces ``dest`` when complete (``replaced_when_complete``),
    under a lock file beside it, so a second caller waits for the first and then uses its
    folder. A complete ``dest`` is never replaced — someone may be running from it — even
    where the lock cannot be taken (a file system without locks: then both build, and the
    first to finish wins). True when ``dest`` was complete already (nothing built)."""
    if complete(dest):
        return True
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f".{dest.name}.lock", "a") as lock:  # one open file per caller
        with contextlib.suppress(OSError):  # no locks here: the check below still holds
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if complete(dest):
            return True
        with replaced_when_complete(dest, f".{dest.name}-", keep=lambda: complete(dest)) as work:
            build(work)
    return False


@contextmanager
def folder_lock(
    folder: Path, name: str, on_wait: Callable[[str], None] = lambda holder: None
) -> Iterator[None]:
    """Hold ``folder/name`` locked (fcntl, released when the file closes, so also when the
    process dies) for the block: a second holder waits. The lock file carries the holder's PID;
    ``on_wait(pid)`` is told it once before waiting ("?" when unknown). Where the file system
    has no locks, the block runs unlocked, as ``built_once`` does."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / name, "a+") as lock:  # "a+": never truncated by a waiter
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            on_wait(lock.read().strip() or "?")
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            pass  # no locks on this file system
        lock.truncate(0)
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


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
