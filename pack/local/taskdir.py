"""A zip's code unzipped once, as Lambda's ``/var/task``: ``invoke`` and ``estimate`` of
the same zip reuse it instead of inflating the whole zip again at each run.

The folder is ``<cache>/tasks/<sha256 of the zip>``, made whole or not at all
(``atomic.built_once``) and read-only, as ``/var/task`` is. Before anything is written,
the central directory is checked: no more than Lambda's unzipped limit in all (Lambda
refuses such a zip too, and a zip bomb never reaches the disk; zipfile stops each member
at the size the directory declares). The folders of the
``KEEP`` zips used last stay; older ones are removed unless a run still uses them (each
run holds a shared lock on its folder's ``.use`` file for as long as it runs).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..atomic import built_once, remove_tree
from ..errors import InputError
from ..limits import UNZIPPED_BYTES

KEEP = 4  # unzipped zips kept in the cache (the ones used last)


@contextlib.contextmanager
def unzipped(zip_path: Path, cache_dir: Path) -> Iterator[Path]:
    """The zip's code as a read-only folder, for the block (kept in the cache after it)."""
    tasks = cache_dir / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    folder = tasks / _digest(zip_path)
    with _use_lock(folder, fcntl.LOCK_SH):  # waits while a pruner removes it

        def unzip(work: Path) -> None:
            with zipfile.ZipFile(zip_path) as archive:
                _check(archive, zip_path)
                archive.extractall(work)
            make_read_only(work)

        built_once(folder, unzip)
        os.utime(folder)  # used now: the last folders used are the ones kept
        _prune(tasks, keep={folder})
        yield folder


def make_read_only(root: Path) -> None:
    """/var/task is read-only on Lambda; a function that writes there fails here too."""
    for path in [*root.rglob("*"), root]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _check(archive: zipfile.ZipFile, zip_path: Path) -> None:
    """Refuse, from the central directory alone, a zip that would fill the disk."""
    total = sum(info.file_size for info in archive.infolist())
    if total > UNZIPPED_BYTES:
        raise InputError(
            f"{zip_path} unzips to {total:,} bytes, over Lambda's {UNZIPPED_BYTES:,}: not unzipped",
            "Lambda refuses it too; run lambdapack report on it to see what is large.",
        )


def _digest(zip_path: Path) -> str:
    digest = hashlib.sha256()
    with open(zip_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:32]


@contextlib.contextmanager
def _use_lock(folder: Path, operation: int) -> Iterator[bool]:
    """``folder``'s use lock taken with ``operation`` for the block: True when held."""
    with open(folder.parent / f".{folder.name}.use", "a") as lock:
        try:
            fcntl.flock(lock, operation)
        except OSError:
            # Held by another (or a file system without locks): a run goes on unlocked, as
            # built_once does; a pruner leaves the folder alone.
            yield not operation & fcntl.LOCK_NB
            return
        yield True


def _prune(tasks: Path, keep: set[Path]) -> None:
    """Remove the folders beyond the ``KEEP`` used last that no run holds."""
    used: list[tuple[float, Path]] = []
    for path in tasks.iterdir():
        if path.is_dir() and not path.name.startswith("."):
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another run
                used.append((path.stat().st_mtime, path))
    folders = [path for _, path in sorted(used, reverse=True)]
    for folder in folders[KEEP:]:
        if folder in keep:
            continue
        with _use_lock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
            if held and folder.exists():
                remove_tree(folder)
