"""Stage 8a — can every native file in the package load on the target runtime?

Pure logic over ``ElfInfo`` records: each ``DT_NEEDED`` library must be in the
zip or provided by the Lambda runtime, and each symbol version required
from a runtime library must not be newer than that runtime's glibc,
libstdc++ or libgcc_s. Wheel tags are not trusted: tflite-runtime 2.14
(tagged manylinux2014) needs GLIBC_2.29 and fails on Amazon Linux 2.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from .elf import ElfInfo, parse_symbol_version
from .target import Target, Version, version_text

FAMILY_LIBRARY = {
    "GLIBC": "glibc",
    "GLIBCXX": "libstdc++",
    "CXXABI": "libstdc++ (C++ ABI)",
    "GCC": "libgcc_s",
}


@dataclass(frozen=True)
class Finding:
    path: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "problem": self.problem}


@dataclass(frozen=True)
class CompatReport:
    files: int
    findings: tuple[Finding, ...]
    # Highest version required from the runtime's libraries, per family.
    highest: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, object]:
        return {
            "files": self.files,
            "ok": self.ok,
            "highest_required": self.highest,
            "problems": [finding.as_dict() for finding in self.findings],
        }


def target_limit(target: Target, family: str) -> Version:
    return {
        "GLIBC": target.os.glibc,
        "GLIBCXX": target.os.glibcxx,
        "CXXABI": target.os.cxxabi,
        "GCC": target.os.gcc,
    }[family]


def check(elves: Mapping[str, ElfInfo], target: Target) -> CompatReport:
    """Check ELF files (keyed by their path in the zip) against ``target``."""
    bundled = {PurePosixPath(path).name for path in elves}
    bundled |= {info.soname for info in elves.values() if info.soname}
    system = target.system_libraries
    findings: list[Finding] = []
    highest: dict[str, Version] = {}
    for path in sorted(elves):
        info = elves[path]
        findings += [Finding(path, f"damaged: {problem}") for problem in info.problems]
        if info.problems and info.machine == "?":
            continue
        if info.machine != target.elf_machine:
            findings.append(
                Finding(path, f"built for {info.machine}, but the target is {target.elf_machine}")
            )
            continue
        for library in info.needed:
            if library not in bundled and library not in system:
                findings.append(
                    Finding(
                        path,
                        f"needs {library}, which is neither in the zip nor part of the "
                        f"{target.runtime} runtime ({target.os.name})",
                    )
                )
        for library, name in info.version_needs:
            if library in bundled and library not in system:
                continue  # a bundled library is checked as a file of its own
            parsed = parse_symbol_version(name)
            if parsed is None:
                continue
            family, version = parsed
            if version > highest.get(family, ()):
                highest[family] = version
            limit = target_limit(target, family)
            if version > limit:
                findings.append(
                    Finding(
                        path,
                        f"needs {name} from {library}, but {target.runtime} "
                        f"({target.os.name}) has {FAMILY_LIBRARY[family]} {version_text(limit)}",
                    )
                )
    return CompatReport(
        files=len(elves),
        findings=tuple(findings),
        highest={family: version_text(version) for family, version in sorted(highest.items())},
    )
