"""The ``check`` stage: can every native file in the package load on the target runtime?

Pure logic over ``ElfInfo`` records: each ``DT_NEEDED`` library must be in the
zip or provided by the Lambda runtime, and each symbol version required
from a runtime library must not be newer than that runtime's glibc,
libstdc++ or libgcc_s. Wheel tags are not trusted: tflite-runtime 2.14
(tagged manylinux2014) needs GLIBC_2.29 and fails on Amazon Linux 2.

``summary`` turns the findings of many files into one short reason per kind of
problem ("needs GLIBCXX_3.4.30, python3.13 arm64 has 3.4.29"), which the install
stage prints for each release it skips.

``extension_findings`` is the CPython side, over file names alone: an extension
module named ``*.cpython-311-x86_64-linux-gnu.so`` (or ``cp311``) is never
imported by python3.12, one named for aarch64 never on x86_64, and an ``abi3``
module needs at least the Python its wheel tag (``cp310-abi3``) names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
    # The same problem in a few words, the same for every file that has it on this
    # target ("needs GLIBCXX_3.4.30, python3.13 arm64 has 3.4.29"), and what it is
    # about, so that ``summary`` can keep one line per kind of problem: ("version",
    # family, version), ("library", name), ("machine", name), ("damaged", path),
    # ("python", …) or ("platform", …).
    short: str = field(default="", compare=False)
    about: tuple = field(default=(), compare=False)

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
    where = f"{target.runtime} {target.arch}"
    findings: list[Finding] = []
    highest: dict[str, Version] = {}
    for path in sorted(elves):
        info = elves[path]
        findings += [
            Finding(
                path,
                f"damaged: {problem}",
                f"{PurePosixPath(path).name} is damaged ({problem})",
                ("damaged", path),
            )
            for problem in info.problems
        ]
        if info.problems and info.machine == "?":
            continue
        if info.machine != target.elf_machine:
            findings.append(
                Finding(
                    path,
                    f"built for {info.machine}, but the target is {target.elf_machine}",
                    f"built for {info.machine}, {where} runs {target.elf_machine}",
                    ("machine", info.machine),
                )
            )
            continue
        for library in info.needed:
            if library not in bundled and library not in system:
                findings.append(
                    Finding(
                        path,
                        f"needs {library}, which is neither in the zip nor part of the "
                        f"{target.runtime} runtime ({target.os.name})",
                        f"needs {library}, which {where} does not provide",
                        ("library", library),
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
                        f"needs {name}, {where} has {version_text(limit)}",
                        ("version", family, version),
                    )
                )
    return CompatReport(
        files=len(elves),
        findings=tuple(findings),
        highest={family: version_text(version) for family, version in sorted(highest.items())},
    )


def summary(findings: Iterable[Finding]) -> tuple[str, ...]:
    """One short reason per kind of problem, in the order first seen: for symbol
    versions only the highest of each family ("needs GLIBC_2.30, python3.11 arm64
    has 2.26"), each missing library once."""
    kept: dict[tuple, tuple[tuple, str]] = {}
    for finding in findings:
        about = finding.about or ("problem", finding.problem)
        if about[0] == "version":
            key, rank = ("version", about[1]), about[2]
        else:
            key, rank = about, ()
        if key not in kept or rank > kept[key][0]:
            kept[key] = (rank, finding.short or finding.problem)
    return tuple(text for _, text in kept.values())


# --- CPython's side: which extension modules the target's Python imports ---------

# foo.cpython-311-x86_64-linux-gnu.so; flags: d (debug), t (free-threaded).
_CPYTHON_SUFFIX = re.compile(r"\.cpython-(\d)(\d+)([a-z]*)-([A-Za-z0-9_]+-[A-Za-z0-9_]+-[A-Za-z0-9_]+)\.so$")
_ABI3_SUFFIX = ".abi3.so"
# cp311 as a word of a shared object's name (libfoo-cp311.so, _bar.cp311-….so).
_CP_TAG = re.compile(r"(?<![A-Za-z0-9])cp(\d)(\d+)(?![0-9])")
_SHARED_OBJECT = re.compile(r"\.so(\.[0-9.]+)?$")
_ABI3_TAG = re.compile(r"^cp(\d)(\d+)-abi3-")


def extension_findings(
    paths: Iterable[str], target: Target, abi3_floors: Mapping[str, Version] | None = None
) -> list[Finding]:
    """Shared objects (by path in the zip) that the target's CPython cannot import.

    A module counts as importable when one of its variants in the same folder is:
    a wheel may ship ``_x.cpython-311-….so`` beside ``_x.cpython-312-….so`` and let
    the import system pick. ``abi3_floors`` maps a path to the lowest Python its
    wheel's ``cpXY-abi3`` tag allows (``abi3_floors`` below)."""
    floors = abi3_floors or {}
    verdicts: dict[tuple[str, str], list[tuple[str, Finding | None]]] = {}
    for path in sorted(set(paths)):
        posix = PurePosixPath(path)
        name = posix.name
        if not _SHARED_OBJECT.search(name):
            continue
        variant, finding = _extension_verdict(path, name, target, floors.get(path))
        if variant is not None:
            verdicts.setdefault((str(posix.parent), variant), []).append((path, finding))
    findings = []
    for variants in verdicts.values():
        if any(finding is None for _, finding in variants):
            continue  # the target imports another variant of this module
        findings += [finding for _, finding in variants if finding is not None]
    return sorted(findings, key=lambda f: f.path)


def _extension_verdict(
    path: str, name: str, target: Target, floor: Version | None
) -> tuple[str | None, Finding | None]:
    """(the module's name with its Python tag taken out, what is wrong or None);
    (None, None) for a shared object that names no Python."""
    wanted = tuple(int(part) for part in target.python.split("."))
    triple = f"{target.machine}-linux-gnu"
    runtime, where = target.runtime, f"{target.runtime} {target.arch}"
    suffix = _CPYTHON_SUFFIX.search(name)
    if suffix:
        version = (int(suffix.group(1)), int(suffix.group(2)))
        flags, platform = suffix.group(3), suffix.group(4)
        variant = name[: suffix.start()]
        built = f"CPython {version_text(version)}{flags}"
        if version != wanted or flags:
            build = {"t": " (free-threaded)", "d": " (debug)"}.get(flags, f" ({flags})" if flags else "")
            return variant, Finding(
                path,
                f"an extension module for CPython {version_text(version)}{build}: {runtime} does not "
                f"import it (it imports *.cpython-{''.join(map(str, wanted))}-{triple}.so)",
                f"built for {built}, the target is {runtime}",
                ("python", version, flags),
            )
        if platform != triple:
            return variant, Finding(
                path,
                f"an extension module for {platform}: {where} does not import it "
                f"(it imports *.cpython-{''.join(map(str, wanted))}-{triple}.so)",
                f"built for {platform}, the target is {where}",
                ("platform", platform),
            )
        return variant, None
    if name.endswith(_ABI3_SUFFIX):
        variant = name[: -len(_ABI3_SUFFIX)]
        if floor is not None and floor > wanted:
            return variant, Finding(
                path,
                f"uses the stable ABI of CPython {version_text(floor)} and later (its wheel is tagged "
                f"cp{''.join(map(str, floor))}-abi3): {runtime} is older",
                f"needs CPython {version_text(floor)} or later (abi3), the target is {runtime}",
                ("python", floor, "abi3"),
            )
        return variant, None
    tag = _CP_TAG.search(name)
    if tag:
        version = (int(tag.group(1)), int(tag.group(2)))
        variant = name[: tag.start()] + "cp*" + name[tag.end() :]
        if version != wanted:
            return variant, Finding(
                path,
                f"named for CPython {version_text(version)} (cp{tag.group(1)}{tag.group(2)}), "
                f"but the target is {runtime}",
                f"built for CPython {version_text(version)}, the target is {runtime}",
                ("python", version, ""),
            )
        return variant, None
    return None, None


def wheel_tags(wheel_metadata: str) -> list[str]:
    """The ``Tag:`` values of a ``*.dist-info/WHEEL`` file (``cp311-cp311-manylinux_2_17_x86_64``)."""
    tags = []
    for line in wheel_metadata.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "tag" and value.strip():
            tags.append(value.strip())
    return tags


def wheel_tag_findings(wheels: Mapping[str, str], target: Target) -> list[Finding]:
    """Installed distributions whose wheel was built for another Python: ``wheels`` maps a
    ``*.dist-info/WHEEL`` path to its text. This catches extension modules whose file
    name says nothing (ai-edge-litert 1.4.0's ``_pywrap_….so`` in a ``cp311-cp311`` wheel)."""
    wanted = tuple(int(part) for part in target.python.split("."))
    findings = []
    for path in sorted(wheels):
        tags = wheel_tags(wheels[path])
        if not tags or any(_tag_allows(tag, wanted) for tag in tags):
            continue
        findings.append(
            Finding(
                path,
                f"the wheel is tagged {', '.join(tags)}: its extension modules are built for another "
                f"Python than {target.runtime}",
                f"a wheel tagged {tags[0]}, the target is {target.runtime}",
                ("wheel", tuple(tags)),
            )
        )
    return findings


def _tag_allows(tag: str, wanted: Version) -> bool:
    """Whether CPython ``wanted`` can use a wheel with this tag (its Python and ABI parts)."""
    parts = tag.split("-")
    if len(parts) != 3:
        return True  # not a tag this check understands: say nothing
    interpreters, abis = parts[0].split("."), parts[1].split(".")
    for interpreter in interpreters:
        match = re.fullmatch(r"(py|cp)(\d)(\d*)", interpreter)
        if not match:
            continue
        kind, major, minor = match.group(1), int(match.group(2)), match.group(3)
        if major != wanted[0]:
            continue
        if kind == "py" or not minor:
            return True
        version = (major, int(minor))
        if "abi3" in abis and version <= wanted:
            return True
        if version == wanted:
            return True
    return False


def abi3_floor(wheel_metadata: str) -> Version | None:
    """The lowest Python a ``*.dist-info/WHEEL`` file's ``cpXY-abi3`` tags allow, or None."""
    floors = []
    for tag in wheel_tags(wheel_metadata):
        match = _ABI3_TAG.match(tag)
        if match:
            floors.append((int(match.group(1)), int(match.group(2))))
    return min(floors) if floors else None


def abi3_floors(wheels: Mapping[str, str], owners: Mapping[str, str]) -> dict[str, Version]:
    """Each file's abi3 floor: ``wheels`` maps a distribution to its WHEEL file's text,
    ``owners`` a file to its distribution (``report.owners_from_records``)."""
    by_distribution = {name: floor for name, text in wheels.items() if (floor := abi3_floor(text))}
    return {path: by_distribution[owner] for path, owner in owners.items() if owner in by_distribution}


def problems_message(header: str, problems: list[tuple[str, str]], shown: int = 20) -> str:
    """``header``, then one line per (path, problem), the first ``shown`` and how many more."""
    lines = [header, *(f"  {path}: {problem}" for path, problem in problems[:shown])]
    if len(problems) > shown:
        lines.append(f"  … and {len(problems) - shown} more")
    return "\n".join(lines)
