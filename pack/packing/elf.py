"""Reading ELF files with pyelftools: what they need, and whether they are intact.

A wheel's platform tag is a promise; the ELF file is the proof. For every
shared library or executable we read its machine, SONAME, ``DT_NEEDED``
libraries and the symbol versions it requires from each (``GLIBC_2.29`` from
``libm.so.6``, ``GLIBCXX_3.4.26`` from ``libstdc++.so.6``, …), and check the
program headers the dynamic loader relies on — the check that catches a
library broken by ``strip`` ("ELF load command address/offset not
page-aligned") without needing to load it, on any architecture.
"""

from __future__ import annotations

import io
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

ELF_MAGIC = b"\x7fELF"
# A zip member larger than this is unpacked into a temporary file instead of memory
# (tensorflow's libtensorflow_cc.so.2 is 687 MB).
IN_MEMORY_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class ElfInfo:
    machine: str
    kind: str  # ET_DYN (shared library or PIE executable) or ET_EXEC
    executable: bool  # has a program interpreter (PT_INTERP): a program, not a library
    soname: str | None
    needed: tuple[str, ...]
    # (library file, version name), e.g. ("libm.so.6", "GLIBC_2.29")
    version_needs: tuple[tuple[str, str], ...]
    # Structural problems the dynamic loader would refuse the file for.
    problems: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "machine": self.machine,
            "kind": self.kind,
            "executable": self.executable,
            "soname": self.soname,
            "needed": list(self.needed),
            "version_needs": [list(pair) for pair in self.version_needs],
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ElfInfo:
        return cls(
            str(data["machine"]),
            str(data["kind"]),
            bool(data["executable"]),
            data["soname"],
            tuple(data["needed"]),
            tuple((str(library), str(name)) for library, name in data["version_needs"]),
            tuple(data["problems"]),
        )


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_elf_file(path: Path) -> ElfInfo:
    with path.open("rb") as handle:
        return read_elf(handle)


def read_elf_bytes(data: bytes) -> ElfInfo:
    return read_elf(io.BytesIO(data))


def read_zip_elves(archive: zipfile.ZipFile) -> dict[str, ElfInfo]:
    """Every ELF file among the members of a zip (a wheel, a function zip), by member name."""
    found = {}
    for info in archive.infolist():
        if info.is_dir() or info.file_size < len(ELF_MAGIC):
            continue
        with archive.open(info) as handle:
            if handle.read(len(ELF_MAGIC)) != ELF_MAGIC:
                continue
        found[info.filename] = read_zip_member(archive, info)
    return found


def read_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> ElfInfo:
    """Read one member without unpacking the zip: in memory, or through a temporary
    file when it is large (pyelftools seeks, which a compressed member cannot do cheaply)."""
    if info.file_size <= IN_MEMORY_LIMIT:
        return read_elf_bytes(archive.read(info))
    with tempfile.TemporaryFile() as spill:
        with archive.open(info) as member:
            shutil.copyfileobj(member, spill, 1024 * 1024)
        return read_elf(spill)


def read_elf(stream: BinaryIO) -> ElfInfo:
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    try:
        elf = ELFFile(stream)
        machine = elf["e_machine"]
        kind = elf["e_type"]
        problems = list(_segment_problems(elf, size))
        executable = any(seg.header.p_type == "PT_INTERP" for seg in elf.iter_segments())
        soname, needed = _dynamic_entries(elf)
        version_needs = _version_needs(elf)
    except (ELFError, ValueError, KeyError, OSError, AssertionError) as exc:
        return ElfInfo("?", "?", False, None, (), (), (f"unreadable ELF file: {exc}",))
    return ElfInfo(machine, kind, executable, soname, needed, version_needs, tuple(problems))


def _segment_problems(elf: ELFFile, size: int):
    for index, segment in enumerate(elf.iter_segments()):
        header = segment.header
        if header.p_type != "PT_LOAD":
            continue
        align = header.p_align
        if align > 1 and (header.p_vaddr - header.p_offset) % align:
            yield (
                f"load segment {index} is not page-aligned "
                f"(address {header.p_vaddr:#x}, offset {header.p_offset:#x}, align {align:#x})"
            )
        if header.p_offset + header.p_filesz > size:
            yield f"load segment {index} extends past the end of the file"


def _dynamic_entries(elf: ELFFile) -> tuple[str | None, tuple[str, ...]]:
    soname = None
    needed: list[str] = []
    for section in elf.iter_sections():
        if not isinstance(section, DynamicSection):
            continue
        for tag in section.iter_tags():
            if tag.entry.d_tag == "DT_NEEDED":
                needed.append(tag.needed)
            elif tag.entry.d_tag == "DT_SONAME":
                soname = tag.soname
    return soname, tuple(needed)


def _version_needs(elf: ELFFile) -> tuple[tuple[str, str], ...]:
    needs: list[tuple[str, str]] = []
    for section in elf.iter_sections():
        if not isinstance(section, GNUVerNeedSection):
            continue
        for verneed, auxiliaries in section.iter_versions():
            for aux in auxiliaries:
                needs.append((verneed.name, aux.name))
    return tuple(needs)


_VERSION = re.compile(r"^(GLIBC|GLIBCXX|CXXABI|GCC)_(\d+(?:\.\d+)*)$")


def parse_symbol_version(name: str) -> tuple[str, tuple[int, ...]] | None:
    """``"GLIBC_2.29"`` -> ``("GLIBC", (2, 29))``; None for names without a number
    (``GLIBC_PRIVATE``) or from other libraries."""
    match = _VERSION.match(name)
    if not match:
        return None
    return match.group(1), tuple(int(part) for part in match.group(2).split("."))
