"""The install stage chooses releases by their ELF files, with real pip and real wheels.

The wheels are built here: a library compiled with cc that calls ``puts``
(GLIBC_2.2.5) in release 1.0, and ``arc4random`` (GLIBC_2.36, newer than
Amazon Linux 2023's 2.34) in releases 2.0 and 3.0. pip resolves them from a
``--find-links`` folder alone, so these tests need no network except the last,
which asks the package index whether it knows older releases (it does not).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import zipfile
from pathlib import Path

import pytest

from lambdapack.errors import CompatibilityError
from lambdapack.packing.elf import read_elf_file
from lambdapack.packing.install import ELF_CACHE, Installer, cached_wheel_elves
from lambdapack.packing.target import Target, host_arch

from .native import compile_library

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(
        shutil.which("cc") is None or host_arch() != "x86_64", reason="needs a C compiler on x86_64"
    ),
]
TARGET = Target("3.13", "x86_64")  # glibc 2.34
LIB = "lambdapack_fixture_elf"  # a name no index knows
APP = "lambdapack_fixture_app"
OLD_SOURCE = '#include <stdio.h>\nint hello(void) { return puts("hello"); }\n'
NEW_SOURCE = "#include <stdlib.h>\nunsigned hello(void) { return arc4random(); }\n"


WHEEL = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: py3-none-any\n"


def write_wheel(folder: Path, name: str, version: str, files: dict[str, bytes], requires=()) -> Path:
    dist_info = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents = {
        **files,
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": WHEEL,
    }
    record = ""
    for path, data in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record += f"{path},sha256={digest},{len(data)}\n"
    record += f"{dist_info}/RECORD,,\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in contents.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist_info}/RECORD", record)
    return wheel


@pytest.fixture(scope="module")
def links(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("links")
    build = tmp_path_factory.mktemp("build")
    old = compile_library(build / "old" / "libhello.so", OLD_SOURCE).read_bytes()
    new = compile_library(build / "new" / "libhello.so", NEW_SOURCE).read_bytes()
    assert ("libc.so.6", "GLIBC_2.36") in read_elf_file(build / "new" / "libhello.so").version_needs
    for version, library in (("1.0", old), ("2.0", new), ("3.0", new)):
        write_wheel(folder, LIB, version, {f"{LIB}/__init__.py": b"", f"{LIB}/libhello.so": library})
    write_wheel(folder, APP, "1.0", {f"{APP}/__init__.py": b""}, requires=[LIB])
    return folder


def installed(dest: Path) -> dict[str, str]:
    names = (p.name.removesuffix(".dist-info").rpartition("-") for p in dest.glob("*.dist-info"))
    return {name: version for name, _, version in names}


def test_an_older_release_that_loads_is_installed_and_each_skip_reported(links, tmp_path):
    dest = tmp_path / "task"
    dest.mkdir()
    # The library comes in through another distribution's dependency, unpinned.
    result = Installer(tmp_path / "cache").install([APP], TARGET, dest, find_links=[links])
    assert installed(dest) == {APP: "1.0", LIB: "1.0"}
    assert result.skipped == (
        f"{LIB} 3.0 skipped: needs GLIBC_2.36, python3.13 x86_64 has 2.34",
        f"{LIB} 2.0 skipped: needs GLIBC_2.36, python3.13 x86_64 has 2.34",
    )
    assert not result.downloaded  # the wheelhouse and --find-links were enough
    needs = read_elf_file(dest / LIB / "libhello.so").version_needs
    assert ("libc.so.6", "GLIBC_2.36") not in needs


def test_what_a_wheel_in_the_wheelhouse_needs_is_read_once(links, tmp_path):
    wheel = tmp_path / f"{LIB}-2.0-py3-none-any.whl"
    shutil.copy(links / wheel.name, wheel)
    cache = tmp_path / ELF_CACHE
    first = cached_wheel_elves(wheel, cache)
    assert ("libc.so.6", "GLIBC_2.36") in first[f"{LIB}/libhello.so"].version_needs
    assert [p.name for p in cache.iterdir()] == [f"{wheel.name}.json"]
    assert cached_wheel_elves(wheel, cache) == first
    # Another file under the same name is read again, not taken from the cache.
    shutil.copy(links / f"{LIB}-1.0-py3-none-any.whl", wheel)
    again = cached_wheel_elves(wheel, cache)
    assert ("libc.so.6", "GLIBC_2.36") not in again[f"{LIB}/libhello.so"].version_needs


def test_a_release_the_user_pinned_is_never_replaced(links, tmp_path):
    dest = tmp_path / "task"
    dest.mkdir()
    with pytest.raises(CompatibilityError) as failure:
        Installer(tmp_path / "cache").install([APP, f"{LIB}==3.0"], TARGET, dest, find_links=[links])
    error = failure.value
    assert error.exit_code == 6
    message = str(error)
    assert f"{LIB} 3.0 (pinned) cannot load on python3.13 x86_64" in message
    assert "needs GLIBC_2.36, python3.13 x86_64 has 2.34" in message
    assert f"{LIB}/libhello.so: needs GLIBC_2.36 from libc.so.6" in message
    assert "2.0" not in message and "1.0" not in message  # no fallback was tried
    assert "==" not in error.hint.replace("without ==", "")  # no pin is suggested
    assert list(dest.iterdir()) == []  # nothing was installed


def test_when_no_allowed_release_loads_the_error_lists_what_was_tried(links, tmp_path):
    dest = tmp_path / "task"
    dest.mkdir()
    with pytest.raises(CompatibilityError) as failure:
        Installer(tmp_path / "cache").install([f"{LIB}>=2"], TARGET, dest, find_links=[links])
    message = str(failure.value)
    assert f"no release of {LIB} that pip may install loads on python3.13 x86_64" in message
    assert f"{LIB} 3.0 skipped: needs GLIBC_2.36" in message
    assert f"{LIB} 2.0 skipped: needs GLIBC_2.36" in message
    assert f"{LIB} 1.0" not in message  # excluded by >=2, so never tried
    assert list(dest.iterdir()) == []
