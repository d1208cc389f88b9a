"""The ``zip`` stage: a deterministic zip: same inputs, byte-identical output.

Entries are sorted, every timestamp is 1980-01-01 (the zip epoch), modes are
normalised to 0644 (0755 for files that were executable), and nothing from
the build machine (owner, folder, time) leaks in. So a deploy can compare
hashes and skip, and two builds can be diffed.
"""

from __future__ import annotations

import base64
import hashlib
import stat
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# Measured on the sample zip: level 9 took 7.1 s for 24.16 MiB, level 6 2.7 s for
# 24.33 MiB (+0.7 %). Native libraries dominate and gain little from level 9.
COMPRESS_LEVEL = 6


@dataclass(frozen=True)
class ZipDigest:
    sha256: str
    code_sha256: str  # what Lambda reports as CodeSha256: base64 of the raw digest
    size: int


def collect(root: Path) -> list[tuple[str, Path]]:
    """(archive name, file) for every regular file under ``root``, sorted by name."""
    entries = []
    for path in root.rglob("*"):
        if path.is_symlink():
            target = path.resolve()
            if not target.is_file():
                continue
        elif not path.is_file():
            continue
        entries.append((path.relative_to(root).as_posix(), path))
    return sorted(entries)


def write_zip(entries: Iterable[tuple[str, Path]], dest: Path) -> ZipDigest:
    with zipfile.ZipFile(
        dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
    ) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            # ZipFile.open(ZipInfo) ignores the archive's level; set it per entry
            # (the attribute is public as compress_level from Python 3.13).
            info._compresslevel = COMPRESS_LEVEL  # type: ignore[attr-defined]
            info.create_system = 3  # Unix, so external_attr carries the mode
            executable = path.stat().st_mode & stat.S_IXUSR
            mode = 0o755 if executable else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            large = path.stat().st_size >= zipfile.ZIP64_LIMIT
            with path.open("rb") as source, archive.open(info, "w", force_zip64=large) as target:
                while block := source.read(1 << 20):
                    target.write(block)
    return digest(dest)


def digest(path: Path) -> ZipDigest:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            sha.update(block)
    return ZipDigest(
        sha256=sha.hexdigest(),
        code_sha256=base64.b64encode(sha.digest()).decode(),
        size=path.stat().st_size,
    )
