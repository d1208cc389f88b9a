"""The ``strip`` stage: strip symbols from native files, and prove each still loads.

``strip --strip-unneeded`` is not safe blindly: on numpy 2's bundled
OpenBLAS and libgfortran it leaves load segments misaligned and numpy stops
importing. So every stripped file is checked — its program headers with
pyelftools on any architecture, and, where this machine can run the target,
by actually loading it with ``dlopen`` in a separate process — and the
original is put back for any file that fails, with the reason recorded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .elf import ElfInfo, is_elf, read_elf_file
from .target import Target, host_arch, host_can_run

STRIP_ARGS = ("--strip-unneeded",)


@dataclass
class StrippedFile:
    path: str  # relative to the tree
    before: int
    after: int
    kept_original: str | None = None  # why the unstripped file was kept

    @property
    def saved(self) -> int:
        return self.before - self.after


@dataclass
class StripResult:
    tool: str | None
    load_checked: bool
    files: list[StrippedFile] = field(default_factory=list)
    note: str = ""

    @property
    def saved(self) -> int:
        return sum(item.saved for item in self.files)

    @property
    def kept(self) -> list[StrippedFile]:
        return [item for item in self.files if item.kept_original]

    def as_dict(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "load_checked": self.load_checked,
            "files": len(self.files),
            "saved_bytes": self.saved,
            "kept_original": [{"path": item.path, "reason": item.kept_original} for item in self.kept],
            "note": self.note,
        }


def strip_tool_candidates(target: Target) -> list[str]:
    """strip binaries that understand the target's ELF files, best first."""
    cross = {"x86_64": "x86_64-linux-gnu-strip", "arm64": "aarch64-linux-gnu-strip"}[target.arch]
    native = ["strip"] if host_arch() == target.arch else []
    return [*native, cross, "llvm-strip"]


def find_strip_tool(target: Target) -> str | None:
    for name in strip_tool_candidates(target):
        found = shutil.which(name)
        if found:
            return found
    return None


def elf_files(root: Path) -> list[Path]:
    return sorted(
        path for path in root.rglob("*") if path.is_file() and not path.is_symlink() and is_elf(path)
    )


LoadChecker = Callable[[Sequence[Path]], dict[Path, str]]


def strip_tree(root: Path, target: Target, load_checker: LoadChecker | None = None) -> StripResult:
    """Strip every ELF file under ``root`` in place; keep originals that break."""
    tool = find_strip_tool(target)
    files = elf_files(root)
    if tool is None:
        hint = {"x86_64": "binutils-x86-64-linux-gnu", "arm64": "binutils-aarch64-linux-gnu"}
        return StripResult(
            tool=None,
            load_checked=False,
            files=[StrippedFile(_rel(root, f), f.stat().st_size, f.stat().st_size) for f in files],
            note=(
                f"not stripped: no strip tool for {target.arch} on this machine "
                f"(install binutils, or apt-get install {hint[target.arch]})"
            ),
        )
    if load_checker is None and host_can_run(target):
        load_checker = dlopen_check
    outcomes: dict[Path, StrippedFile] = {}
    libraries: list[Path] = []  # stripped, intact shared libraries: what the load check loads
    with tempfile.TemporaryDirectory(prefix="lambdapack-strip-") as backup_dir:
        backups: dict[Path, Path] = {}
        for index, path in enumerate(files):
            before = path.stat().st_size
            backup = Path(backup_dir) / str(index)
            shutil.copy2(path, backup)
            backups[path] = backup
            outcome = StrippedFile(_rel(root, path), before, before)
            outcomes[path] = outcome
            error = _run_strip(tool, path)
            if error:
                _restore(backups[path], path)
                outcome.kept_original = f"strip failed: {error}"
                continue
            info = read_elf_file(path)
            if info.problems:
                _restore(backups[path], path)
                outcome.kept_original = "stripped copy is damaged: " + "; ".join(info.problems)
                continue
            outcome.after = path.stat().st_size
            if _is_library(info):
                libraries.append(path)
        if load_checker is not None:
            _check_loads(libraries, outcomes, backups, load_checker)
    return StripResult(tool=tool, load_checked=load_checker is not None, files=list(outcomes.values()))


def _check_loads(
    libraries: Sequence[Path],
    outcomes: dict[Path, StrippedFile],
    backups: dict[Path, Path],
    load_checker: LoadChecker,
) -> None:
    failures = load_checker(libraries)
    if not failures:
        return
    for path in failures:
        _restore(backups[path], path)
        outcomes[path].after = outcomes[path].before
    # A file can fail only because a stripped dependency failed: check again with
    # the originals back, and say which fail even unstripped (not strip's doing).
    still = load_checker(list(failures))
    for path, error in failures.items():
        if path in still:
            outcomes[path].kept_original = f"does not load on this machine even unstripped: {still[path]}"
        else:
            outcomes[path].kept_original = f"stripped copy failed to load: {error}"


def _is_library(info: ElfInfo) -> bool:
    return info.kind == "ET_DYN" and not info.executable and not info.problems


def _run_strip(tool: str, path: Path) -> str | None:
    proc = subprocess.run([tool, *STRIP_ARGS, str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return (proc.stderr.strip() or f"exit code {proc.returncode}").splitlines()[-1]
    return None


def _restore(backup: Path, path: Path) -> None:
    shutil.copy2(backup, path)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# Runs in a separate, clean interpreter: loads each library named on stdin with
# dlopen and prints one JSON line per file, so a crash names the file that caused it.
_DLOPEN_CHILD = """
import ctypes, json, os, sys
for line in sys.stdin:
    path = line.rstrip("\\n")
    try:
        ctypes.CDLL(path, mode=os.RTLD_LAZY | os.RTLD_LOCAL)
        error = None
    except OSError as exc:
        error = str(exc)
    print(json.dumps({"path": path, "error": error}), flush=True)
"""


def dlopen_check(paths: Sequence[Path]) -> dict[Path, str]:
    """Load each library in a child process; return the ones that failed, with why."""
    failures: dict[Path, str] = {}
    pending = list(paths)
    while pending:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _DLOPEN_CHILD],
            input="".join(f"{p}\n" for p in pending),
            capture_output=True,
            text=True,
            check=False,
        )
        done: set[Path] = set()
        for line in proc.stdout.splitlines():
            record = json.loads(line)
            path = Path(record["path"])
            done.add(path)
            if record["error"]:
                failures[path] = record["error"]
        rest = [p for p in pending if p not in done]
        if rest:
            # The first file not reported crashed the loader; record it and go on.
            failures[rest[0]] = f"loading it crashed the process (exit code {proc.returncode})"
            rest = rest[1:]
        pending = rest
    return failures
