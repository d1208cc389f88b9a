"""Dependencies staged in S3 (``--stage-deps s3``), the build side.

Full TensorFlow never fits Lambda's 250 MB. With staging, the packed tree is
split in two: the function zip keeps the handler, the model and the small
bootstrap it needs to unpack the rest (``zstandard``: Lambda's OS has no zstd
tool); everything else goes into a deterministic ``deps.tar.zst``, which
``deploy`` uploads and the handler (``lambdapack_handler/staged.py``)
downloads, verifies and unpacks into the temp directory at cold start.

The function's ephemeral storage must hold the unpacked tree and, while it is
being unpacked, the downloaded archive, plus what the function itself writes.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import stat
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import zstandard

from ..errors import SizeLimitError
from ..limits import EPHEMERAL_MB, MiB

DEPS_NAME = "deps.tar.zst"
# Built once, downloaded at every cold start. Measured on TensorFlow 2.20's 847 MB
# tree, 2 cores (scripts/bench_staged.py): level 3 212 MB in 2.7 s, 6 198 MB in
# 6.0 s, 10 189 MB in 10.6 s, 15 187 MB in 64 s; unpacking takes ~2.8 s at any level.
DEFAULT_LEVEL = 6
# Room for what the function itself writes to /tmp (Lambda's default size).
EPHEMERAL_HEADROOM_MB = 512
TAR_EPOCH = 315532800  # 1980-01-01, as in the zip


@dataclass(frozen=True)
class ArchiveDigest:
    sha256: str
    size: int  # compressed
    unpacked: int  # bytes of the files
    files: int
    level: int
    seconds: float

    @property
    def ephemeral_mb(self) -> int:
        return ephemeral_storage_mb(self.unpacked, self.size)

    def as_dict(self, file: str = DEPS_NAME) -> dict:
        return {
            "file": file,
            "sha256": self.sha256,
            "bytes": self.size,
            "unpacked_bytes": self.unpacked,
            "files": self.files,
            "zstd_level": self.level,
            "ephemeral_storage_mb": self.ephemeral_mb,
        }


def ephemeral_storage_mb(unpacked: int, archive: int) -> int:
    """/tmp needed at cold start: the tree, the archive beside it while unpacking,
    filesystem overhead (~5 % for many small files) and the function's own room."""
    needed = (unpacked * 1.05 + archive) / MiB + EPHEMERAL_HEADROOM_MB
    return max(EPHEMERAL_MB.low, math.ceil(needed))


def check_ephemeral(digest: ArchiveDigest) -> None:
    if digest.ephemeral_mb > EPHEMERAL_MB.high:
        raise SizeLimitError(
            f"the staged dependencies unpack to {digest.unpacked / MiB:,.0f} MB and need "
            f"{digest.ephemeral_mb:,} MB of ephemeral storage, over Lambda's {EPHEMERAL_MB.high:,} MB",
            "Drop requirements, or deploy a container image (up to 10 GB, no unpacking).",
        )


def split_tree(task: Path, deps: Path, keep: Iterable[str]) -> list[str]:
    """Move every top-level entry of ``task`` not named in ``keep`` into ``deps``.

    Top-level modules' bytecode (``__pycache__/six.cpython-311.pyc``) goes with
    its module. Returns the moved names, sorted.
    """
    keep = set(keep)
    deps.mkdir(parents=True, exist_ok=True)
    moved = []
    for entry in sorted(task.iterdir()):
        if entry.name == "__pycache__":
            for cached in sorted(entry.iterdir()):
                if cached.name.split(".")[0] + ".py" not in keep:
                    (deps / "__pycache__").mkdir(exist_ok=True)
                    shutil.move(cached, deps / "__pycache__" / cached.name)
                    moved.append(f"__pycache__/{cached.name}")
            if not any(entry.iterdir()):
                entry.rmdir()
        elif entry.name not in keep:
            shutil.move(entry, deps / entry.name)
            moved.append(entry.name)
    return moved


def top_level_names(owners: dict[str, str], distributions: Iterable[str]) -> set[str]:
    """The top-level files and folders that belong to ``distributions``."""
    wanted = {_normalise(name) for name in distributions}
    return {
        PurePosixPath(path).parts[0]
        for path, owner in owners.items()
        if _normalise(owner) in wanted and not PurePosixPath(path).parts[0].startswith("..")
    }


def _normalise(name: str) -> str:
    return name.lower().replace("-", "_").replace(".", "_")


class _HashingWriter:
    """A file object that hashes and counts what passes through it."""

    def __init__(self, raw) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.raw.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


def write_archive(root: Path, dest: Path, level: int = DEFAULT_LEVEL, threads: int = -1) -> ArchiveDigest:
    """A deterministic ``.tar.zst`` of ``root``: sorted entries, fixed times and
    owners, modes 0644/0755. Same tree, same bytes, same sha256."""
    began = time.perf_counter()
    files = 0
    unpacked = 0
    with dest.open("wb") as raw:
        hashing = _HashingWriter(raw)
        compressor = zstandard.ZstdCompressor(level=level, threads=threads)
        with (
            compressor.stream_writer(hashing, closefd=False) as stream,
            tarfile.open(fileobj=stream, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            for path in sorted(root.rglob("*")):
                info = _tar_info(path, path.relative_to(root).as_posix())
                if info.isfile():
                    files += 1
                    unpacked += info.size
                    with path.open("rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
    return ArchiveDigest(
        sha256=hashing.sha256.hexdigest(),
        size=hashing.size,
        unpacked=unpacked,
        files=files,
        level=level,
        seconds=round(time.perf_counter() - began, 3),
    )


def _tar_info(path: Path, name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    status = path.lstat()
    if stat.S_ISLNK(status.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = str(path.readlink())
        info.mode = 0o777
    elif stat.S_ISDIR(status.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = status.st_size
        info.mode = 0o755 if status.st_mode & stat.S_IXUSR else 0o644
    info.mtime = TAR_EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
