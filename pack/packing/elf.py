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
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

ELF_MAGIC = b"\x7fELF"


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
