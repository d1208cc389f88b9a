"""The Lambda target: runtime, OS, C/C++ libraries and wheel tags.

Everything downstream (which wheels pip may pick, which ELF symbol versions
may be required, whether bytecode can be compiled here) is decided by the
Python version and architecture the user asks for. This module is pure data
and arithmetic; it runs nothing.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from datetime import date

Version = tuple[int, ...]


@dataclass(frozen=True)
class LambdaOS:
    """What a Lambda runtime's operating system provides to native code."""

    name: str
    glibc: Version
    # libstdc++ / libgcc_s of the OS's system GCC (AL2: GCC 7.3, AL2023: GCC 11.4).
    glibcxx: Version
    cxxabi: Version
    gcc: Version


AMAZON_LINUX_2 = LambdaOS(
    name="Amazon Linux 2", glibc=(2, 26), glibcxx=(3, 4, 24), cxxabi=(1, 3, 11), gcc=(7, 0, 0)
)
AMAZON_LINUX_2023 = LambdaOS(
    name="Amazon Linux 2023", glibc=(2, 34), glibcxx=(3, 4, 29), cxxabi=(1, 3, 13), gcc=(11, 0, 0)
)

OS_BY_PYTHON: dict[str, LambdaOS] = {
    "3.10": AMAZON_LINUX_2,
    "3.11": AMAZON_LINUX_2,
    "3.12": AMAZON_LINUX_2023,
    "3.13": AMAZON_LINUX_2023,
    "3.14": AMAZON_LINUX_2023,
}
PYTHON_VERSIONS = tuple(OS_BY_PYTHON)


@dataclass(frozen=True)
class Lifecycle:
    """When AWS deprecates a runtime, then blocks creating, then updating functions on it."""

    deprecated: date | None
    block_create: date | None
    block_update: date | None


# AWS's Lambda runtimes page (docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html),
# as mirrored in cfn-lint's runtime lifecycle data (2026-06), checked 2026-11-30.
# AWS moves these dates (it extended several in 2026): they live here, and only here.
LIFECYCLE_SOURCE = "AWS Lambda runtimes page, checked 2026-11-30"
LIFECYCLE: dict[str, Lifecycle] = {
    "3.10": Lifecycle(date(2026, 10, 31), date(2027, 2, 1), date(2027, 3, 3)),
    "3.11": Lifecycle(date(2027, 6, 30), date(2027, 7, 31), date(2027, 8, 31)),
    "3.12": Lifecycle(date(2028, 10, 31), None, None),
    "3.13": Lifecycle(date(2029, 6, 30), None, None),
    "3.14": Lifecycle(date(2029, 6, 30), None, None),
}
# What to move to: the newest runtime AWS supports.
NEWEST_PYTHON = "3.14"
# What pack builds for unless told otherwise: supported until 2029, on Amazon Linux 2023
# (the glibc the maintained LiteRT wheels need), with a Debian build to run it locally.
DEFAULT_PYTHON = "3.13"


def _passed(day: date | None, today: date) -> bool:
    return day is not None and today >= day


# Lambda's name for the architecture -> the machine name in wheel tags and uname,
# and pyelftools' e_machine value.
ARCHES = {"x86_64": ("x86_64", "EM_X86_64"), "arm64": ("aarch64", "EM_AARCH64")}

# The oldest manylinux glibc for each machine: manylinux2014 == manylinux_2_17.
MANYLINUX_FLOOR = (2, 17)

# Shared libraries every Lambda Python runtime provides, so a bundled ELF file
# may need them without shipping them. Everything else must be in the zip
# (e.g. libGL.so.1, which opencv wheels need and Lambda does not have).
GLIBC_LIBRARIES = frozenset(
    {
        "libc.so.6",
        "libm.so.6",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libnsl.so.1",
        "libcrypt.so.1",
        "ld-linux-x86-64.so.2",
        "ld-linux-aarch64.so.1",
    }
)
GCC_LIBRARIES = frozenset({"libstdc++.so.6", "libgcc_s.so.1"})
OTHER_SYSTEM_LIBRARIES = frozenset({"libz.so.1"})


class TargetError(ValueError):
    """An unsupported Python version or architecture."""


@dataclass(frozen=True)
class Target:
    """One Lambda target: a Python runtime on one architecture."""

    python: str
    arch: str

    def __post_init__(self) -> None:
        if self.python not in OS_BY_PYTHON:
            raise TargetError(
                f"Python {self.python} is not a Lambda runtime lambdapack supports; "
                f"choose one of {', '.join(PYTHON_VERSIONS)}"
            )
        if self.arch not in ARCHES:
            raise TargetError(
                f"architecture {self.arch!r} is not a Lambda architecture; choose one of {', '.join(ARCHES)}"
            )

    @property
    def runtime(self) -> str:
        """The Lambda runtime identifier, e.g. ``python3.11``."""
        return f"python{self.python}"

    @property
    def os(self) -> LambdaOS:
        return OS_BY_PYTHON[self.python]

    @property
    def machine(self) -> str:
        """The machine name wheels and ``uname -m`` use (``x86_64``/``aarch64``)."""
        return ARCHES[self.arch][0]

    @property
    def elf_machine(self) -> str:
        return ARCHES[self.arch][1]

    @property
    def python_tag(self) -> str:
        return "cp" + self.python.replace(".", "")

    @property
    def system_libraries(self) -> frozenset[str]:
        libpython = f"libpython{self.python}.so.1.0"
        return GLIBC_LIBRARIES | GCC_LIBRARIES | OTHER_SYSTEM_LIBRARIES | {libpython}

    def platform_tags(self) -> list[str]:
        """Every wheel platform tag that runs on this target's glibc.

        pip's ``--platform`` takes each tag literally and adds no lower
        ``manylinux_2_X`` tags, so all of them are listed: the legacy
        ``manylinux2014`` alias and every ``manylinux_2_17`` … ``manylinux_2_<glibc>``.
        """
        major, top = self.os.glibc[0], self.os.glibc[1]
        tags = [f"manylinux2014_{self.machine}"]
        tags += [f"manylinux_{major}_{minor}_{self.machine}" for minor in range(MANYLINUX_FLOOR[1], top + 1)]
        return tags

    @property
    def lifecycle(self) -> Lifecycle:
        return LIFECYCLE[self.python]

    def deprecation_warning(self, today: date) -> str | None:
        """What pack says about a runtime AWS has deprecated (functions still run)."""
        dates = self.lifecycle
        if not _passed(dates.deprecated, today):
            return None
        block = (
            f"; AWS blocks creating functions on it from {dates.block_create}" if dates.block_create else ""
        )
        return (
            f"{self.runtime} is deprecated since {dates.deprecated} ({LIFECYCLE_SOURCE}){block}: "
            f"pack for python{NEWEST_PYTHON} (--python {NEWEST_PYTHON})"
        )

    def deploy_refusal(self, today: date, creating: bool) -> str | None:
        """Why AWS would refuse to create (or update) a function on this runtime today."""
        dates = self.lifecycle
        day = dates.block_create if creating else dates.block_update
        if not _passed(day, today):
            return None
        verb = "creating" if creating else "updating"
        return (
            f"AWS blocks {verb} functions on {self.runtime} since {day} ({LIFECYCLE_SOURCE}): "
            f"pack the model for python{NEWEST_PYTHON} (--python {NEWEST_PYTHON}) and deploy that"
        )

    def newer_runtime_hint(self) -> str:
        """For a native-library failure on an Amazon Linux 2 runtime: the way out."""
        if self.os.glibc >= AMAZON_LINUX_2023.glibc:
            return ""
        return " Or choose a newer runtime: --python 3.12 and later run Amazon Linux 2023 (glibc 2.34)."

    def key(self) -> str:
        """A short name for caches and file names, e.g. ``python3.11-x86_64``."""
        return f"{self.runtime}-{self.arch}"

    def as_dict(self) -> dict[str, object]:
        return {
            "runtime": self.runtime,
            "python": self.python,
            "architecture": self.arch,
            "os": self.os.name,
            "glibc": version_text(self.os.glibc),
            "glibcxx": version_text(self.os.glibcxx),
        }


def version_text(version: Version) -> str:
    return ".".join(str(part) for part in version)


def host_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def host_arch() -> str | None:
    """The Lambda name of this machine's architecture, or None if Lambda has none."""
    machine = platform.machine().lower()
    for arch, (wheel_machine, _) in ARCHES.items():
        if machine in (wheel_machine, arch):
            return arch
    return None


def host_can_run(target: Target) -> bool:
    """True when this interpreter can execute the target's code and bytecode."""
    return host_python() == target.python and host_arch() == target.arch
