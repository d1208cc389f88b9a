"""A zip's code unzipped once into the cache (``invoke`` and ``estimate`` reuse it), checked
before anything is written, and the old folders pruned unless a run still holds them."""

from __future__ import annotations

import os
import zipfile

import pytest

from lambdapack.errors import InputError
from lambdapack.limits import UNZIPPED_BYTES
from lambdapack.local import taskdir
from lambdapack.local.taskdir import unzipped


def code_zip(path, body: str = "def handler(event, context):\n    return 1\n"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.py", body)
        archive.writestr("pkg/data.txt", "data")
    return path


def test_the_same_zip_is_unzipped_once_read_only_and_reused(tmp_path):
    zip_path = code_zip(tmp_path / "function.zip")
    with unzipped(zip_path, tmp_path / "cache") as first:
        assert (first / "index.py").read_text().startswith("def handler")
        assert not os.stat(first / "index.py").st_mode & 0o222  # read-only, as /var/task
        made = (first / "pkg" / "data.txt").stat().st_ino
    with unzipped(zip_path, tmp_path / "cache") as second:
        assert second == first and (second / "pkg" / "data.txt").stat().st_ino == made  # not unzipped again
    other = code_zip(tmp_path / "other.zip", "def handler(event, context):\n    return 2\n")
    with unzipped(other, tmp_path / "cache") as third:
        assert third != first and "return 2" in (third / "index.py").read_text()


def test_a_zip_over_lambdas_unzipped_limit_is_refused_before_anything_is_written(tmp_path):
    zip_path = tmp_path / "big.zip"
    with (
        zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive,
        archive.open("zeros.bin", "w", force_zip64=True) as member,
    ):
        block = bytes(1 << 20)
        for _ in range(UNZIPPED_BYTES // len(block) + 1):
            member.write(block)
    assert zip_path.stat().st_size < 2_000_000
    with pytest.raises(InputError, match="over Lambda's 262,144,000"), unzipped(zip_path, tmp_path / "cache"):
        pass
    tasks = tmp_path / "cache" / "tasks"
    assert not [path for path in tasks.iterdir() if path.is_dir()]


def test_old_folders_are_pruned_but_never_one_a_run_holds(tmp_path):
    cache = tmp_path / "cache"
    zips = [
        code_zip(tmp_path / f"f{n}.zip", f"def handler(event, context):\n    return {n}\n") for n in range(7)
    ]
    with unzipped(zips[0], cache) as held:
        os.utime(held, (0, 0))  # the oldest of all, but still in use
        for n, zip_path in enumerate(zips[1:], start=1):
            with unzipped(zip_path, cache) as folder:
                os.utime(folder, (n + 1e9, n + 1e9))  # used in this order
        assert held.exists() and (held / "index.py").read_text().endswith("return 0\n")
    folders = sorted(p for p in (cache / "tasks").iterdir() if p.is_dir() and not p.name.startswith("."))
    # The KEEP used last, and the one held while the others pruned.
    assert len(folders) == taskdir.KEEP + 1
    with unzipped(zips[1], cache) as again:  # pruned earlier: unzipped anew
        assert (again / "index.py").read_text().endswith("return 1\n")
