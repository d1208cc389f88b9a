"""Stage 5 — compile bytecode the target interpreter will trust.

``/var/task`` is read-only, so Python on Lambda cannot cache what it
compiles: without shipped ``.pyc`` every cold start compiles every imported
module from source (numpy: 0.235 s vs 0.055 s measured). The files are
written as *unchecked-hash* pycs — valid whatever timestamps the zip gives
the sources — with source paths under ``/var/task`` so tracebacks name the
real location and the output does not depend on the staging folder.

A ``.pyc`` is only valid for the exact minor version that wrote it, so this
stage runs only when the build interpreter is the target's; otherwise it
says so (the Docker builder compiles inside the target image).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .target import Target, host_python

LAMBDA_TASK_ROOT = "/var/task"


@dataclass
class BytecodeResult:
    compiled: bool
    files: int
    failed: list[str]
    note: str

    def as_dict(self) -> dict[str, object]:
        return {
            "compiled": self.compiled,
            "files": self.files,
            "failed": self.failed,
            "note": self.note,
        }


def compile_tree(root: Path, target: Target) -> BytecodeResult:
    if host_python() != target.python:
        return BytecodeResult(
            compiled=False,
            files=0,
            failed=[],
            note=(
                f"no .pyc shipped: this build runs Python {host_python()}, the target is "
                f"{target.runtime}; every cold start will compile from source "
                f"(use --builder docker, or build with Python {target.python})"
            ),
        )
    sources = sorted(root.rglob("*.py"))
    # One fresh child process, files in sorted order, a fixed hash seed: marshal's
    # output depends on the process (whether a string is already interned decides
    # how it is written; set constants follow hash order). Compiling in the CLI
    # process, or in a worker pool, gives different bytes from build to build.
    # Same tree in, same .pyc out — and the same sha256 for deploy to compare.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compileall",
            "-q",
            "-f",
            "--invalidation-mode",
            "unchecked-hash",
            "-d",
            LAMBDA_TASK_ROOT,
            str(root),
        ],
        env=dict(os.environ, PYTHONHASHSEED="0"),
        capture_output=True,
        check=False,
    )
    # Files that are not Python 3 (templates, vendored py2 samples) are never
    # importable anyway; list them rather than fail the build.
    failed = [
        source.relative_to(root).as_posix()
        for source in sources
        if not Path(importlib.util.cache_from_source(str(source))).exists()
    ]
    return BytecodeResult(
        compiled=True,
        files=len(sources) - len(failed),
        failed=failed,
        note=f"unchecked-hash .pyc compiled by Python {host_python()}",
    )
