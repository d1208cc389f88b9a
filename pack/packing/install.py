"""Stage 2 — install the runtime's dependencies with pip, for the target.

Three layers, as in chalice's packager: ``PipRunner`` only executes pip;
``Installer`` builds the arguments, keeps a per-target wheelhouse and turns
pip's stderr into ``InstallError``; ``platform_args`` is the pure part.

The wheelhouse (``<cache>/wheels/<runtime>-<arch>``) makes warm rebuilds
fast and offline: the first attempt installs from it alone (``--no-index``);
only when it cannot satisfy the requirements is ``pip download`` asked to
fetch what is missing from the package index.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from ..errors import InstallError, ToolError
from .target import Target, version_text


@dataclass
class PipResult:
    returncode: int
    stdout: str
    stderr: str


# pip before 24.2 checks Requires-Python against the interpreter running it, not
# --python-version, when installing for another platform: numpy for python3.12+
# then fails with "requires a different Python" (pypa/pip#12216). lambdapack
# depends on pip>=24.2 and refuses an older one before running it.
MIN_PIP = (24, 2)


class PipRunner:
    """Runs ``python -m pip`` and returns what it printed. Nothing else."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._checked = False

    def check_version(self) -> None:
        """The pip this interpreter runs is new enough to install for another Python."""
        proc = subprocess.run(
            [self.python, "-m", "pip", "--version"], capture_output=True, text=True, check=False
        )
        found = _PIP_VERSION.match(proc.stdout)
        if proc.returncode != 0 or found is None:
            raise ToolError(
                f"{self.python} has no working pip",
                f"Install lambdapack with pip, or run: {self.python} -m ensurepip",
            )
        version = (int(found.group(1)), int(found.group(2)))
        if version < MIN_PIP:
            raise ToolError(
                f"pip {found.group(1)}.{found.group(2)} in {self.python} cannot install packages for "
                f"another Python version (needs pip {MIN_PIP[0]}.{MIN_PIP[1]} or newer)",
                f'Upgrade it: {self.python} -m pip install "pip>={MIN_PIP[0]}.{MIN_PIP[1]}"',
            )

    def run(self, args: Sequence[str]) -> PipResult:
        if not self._checked:
            self.check_version()
            self._checked = True
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        try:
            proc = subprocess.run(
                [self.python, "-m", "pip", *args],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
        except OSError as exc:
            raise ToolError(f"could not run pip with {self.python}: {exc}") from exc
        return PipResult(proc.returncode, proc.stdout, proc.stderr)


def platform_args(target: Target) -> list[str]:
    """pip options that select wheels for ``target`` instead of this machine."""
    args: list[str] = []
    for tag in target.platform_tags():
        args += ["--platform", tag]
    args += [
        "--implementation",
        "cp",
        "--python-version",
        target.python,
        "--only-binary=:all:",
    ]
    return args


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str


@dataclass
class InstallResult:
    distributions: list[Distribution]
    downloaded: bool
    wheelhouse: Path


_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_PIP_VERSION = re.compile(r"pip (\d+)\.(\d+)")
_WRONG_PYTHON = re.compile(r"requires? a different Python")
_CONFLICT = re.compile(r"ResolutionImpossible|conflicting dependencies|Cannot install")


class Installer:
    def __init__(self, cache_dir: Path, runner: PipRunner | None = None) -> None:
        self.cache_dir = cache_dir
        self.runner = runner or PipRunner()

    def wheelhouse(self, target: Target) -> Path:
        return self.cache_dir / "wheels" / target.key()

    def install(
        self,
        requirements: Sequence[str],
        target: Target,
        dest: Path,
        find_links: Sequence[Path] = (),
        refresh: bool = False,
    ) -> InstallResult:
        """Install ``requirements`` for ``target`` into the empty folder ``dest``."""
        wheelhouse = self.wheelhouse(target)
        wheelhouse.mkdir(parents=True, exist_ok=True)
        links = [wheelhouse, *find_links]
        link_args = [arg for link in links for arg in ("--find-links", str(link))]
        common = [*platform_args(target), *link_args]
        install_args = [
            "install",
            "--no-index",
            "--no-compile",
            "--target",
            str(dest),
            *common,
            *requirements,
        ]
        if not refresh and self.runner.run(install_args).returncode == 0:
            return InstallResult(installed_distributions(dest), False, wheelhouse)
        download = self.runner.run(["download", "--dest", str(wheelhouse), *common, *requirements])
        if download.returncode != 0:
            raise install_error(download.stderr, requirements, target)
        _empty(dest)
        second = self.runner.run(install_args)
        if second.returncode != 0:
            raise install_error(second.stderr, requirements, target)
        return InstallResult(installed_distributions(dest), True, wheelhouse)


def install_error(stderr: str, requirements: Sequence[str], target: Target) -> InstallError:
    """Turn pip's stderr into the message a user can act on."""
    where = f"{target.runtime} on {target.arch} ({target.os.name}, glibc {version_text(target.os.glibc)})"
    missing = _NO_MATCH.search(stderr)
    if missing:
        return InstallError(
            f"pip found no wheel of {missing.group(1)} that runs on {where}",
            hint=(
                "The package publishes no binary wheel for this Python version, architecture "
                "and glibc. Pin a version that does, or choose another target "
                "(--python/--arch). lambdapack never builds from source: a compiled sdist "
                "would not match Lambda's OS."
            ),
        )
    if _WRONG_PYTHON.search(stderr):
        return InstallError(
            f"pip checked a package's Python requirement against this machine's Python instead of {where}",
            hint=f"Upgrade pip to {MIN_PIP[0]}.{MIN_PIP[1]} or newer. pip said:\n" + _tail(stderr),
        )
    if _CONFLICT.search(stderr):
        return InstallError(
            f"pip could not resolve {' '.join(requirements)} for {where}",
            hint="Relax or change the conflicting pins. pip said:\n" + _tail(stderr),
        )
    return InstallError(
        f"pip failed to install {' '.join(requirements)} for {where}",
        hint="Check the network or the package index settings. pip said:\n" + _tail(stderr),
    )


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if not line.startswith("WARNING: Location")]
    return "\n".join(kept[-lines:])


def _empty(folder: Path) -> None:
    """Remove what a failed install left in ``folder`` (only inside it)."""
    if not folder.exists():
        return
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def installed_distributions(folder: Path) -> list[Distribution]:
    """Name and version of every distribution installed in ``folder``."""
    found = []
    for metadata in sorted(folder.glob("*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        found.append(Distribution(headers.get("Name", "?"), headers.get("Version", "?")))
    return found
