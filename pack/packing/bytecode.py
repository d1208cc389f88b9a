"""The ``compile`` stage: compile bytecode the target interpreter will trust.

``/var/task`` is read-only, so Python on Lambda cannot cache what it
compiles: without shipped ``.pyc`` every cold start compiles every imported
module from source (numpy: 0.235 s vs 0.055 s measured). The files are
written as *unchecked-hash* pycs — valid whatever timestamps the zip gives
the sources — with source paths under ``/var/task`` so tracebacks name the
real location and the output does not depend on the staging folder.

A ``.pyc`` is only valid for the exact minor version that wrote it, so the
target's own Python compiles them (``interpreter.TargetPython``: this
machine's when it is the target's, else a container of it); with none at
hand the stage ships no ``.pyc`` and says so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .interpreter import TargetPython
from .target import Target

LAMBDA_TASK_ROOT = "/var/task"
COMPILE_TIMEOUT_S = 600  # emulated arm64 compiles slowly


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


def compile_tree(
    root: Path, target: Target, python: TargetPython | None, unavailable: str = ""
) -> BytecodeResult:
    """Compile every ``.py`` under ``root`` with ``python`` (the target's minor version);
    without one, ship no ``.pyc`` and say why (``unavailable``)."""
    if python is None:
        return BytecodeResult(
            compiled=False,
            files=0,
            failed=[],
            note=(
                f"no .pyc shipped: {unavailable}; every cold start will compile from source "
                f"(use --builder docker, --image, or build with Python {target.python})"
            ),
        )
    sources = sorted(root.rglob("*.py"))
    # One fresh child process, files in sorted order, a fixed hash seed: marshal's
    # output depends on the process (whether a string is already interned decides
    # how it is written; set constants follow hash order). Compiling in the CLI
    # process, or in a worker pool, gives different bytes from build to build.
    # Same tree in, same .pyc out — and the same sha256 for deploy to compare.
    python.run(
        [
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
        paths=[root],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONHASHSEED": "0"},
        cwd=root,
        timeout=COMPILE_TIMEOUT_S,
    )
    # Files that are not Python 3 (templates, vendored py2 samples) are never
    # importable anyway; list them rather than fail the build.
    tag = target.python_tag.replace("cp", "cpython-")
    failed = [
        source.relative_to(root).as_posix()
        for source in sources
        if not (source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc").exists()
    ]
    return BytecodeResult(
        compiled=True,
        files=len(sources) - len(failed),
        failed=failed,
        note=f"unchecked-hash .pyc compiled by {python.description}",
    )
