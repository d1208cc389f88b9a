"""Folders of packages the Lambda Python runtime provides beside ``/var/task``:
boto3 (and botocore) and the runtime interface client (awslambdaric). Local
runs of a zip put them on the path, so the function sees the zip, these and
the standard library — nothing else from the build machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..atomic import replaced_when_complete
from ..errors import InstallError
from ..packing.target import host_python

COMPLETE = ".complete"


def runtime_folder(cache_dir: Path, name: str, requirements: tuple[str, ...]) -> Path:
    """``requirements`` installed once into ``<cache>/runtime/<name>-python3.X``."""
    folder = cache_dir / "runtime" / f"{name}-python{host_python()}"
    if (folder / COMPLETE).exists():
        return folder
    with replaced_when_complete(folder, f".{name}-") as work:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--only-binary=:all:",
                "--target",
                str(work),
                *requirements,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise InstallError(
                f"could not install {' '.join(requirements)} for the local Lambda runtime",
                proc.stderr[-2000:],
            )
        (work / COMPLETE).write_text("")
    return folder


def runtime_boto3(cache_dir: Path) -> Path:
    return runtime_folder(cache_dir, "boto3", ("boto3",))


def runtime_interface_client(cache_dir: Path) -> Path:
    return runtime_folder(cache_dir, "awslambdaric", ("awslambdaric",))


def run_beside_runtime_boto3(
    code: str, task: Path, cache_dir: Path, args: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess:
    """Run ``code`` in a clean interpreter (``python -I -S -B``) from the unzipped
    ``task`` folder, as the packed handler runs without the runtime client:
    ``sys.argv[1:]`` is the task folder, the runtime's boto3 folder and ``args``;
    the environment is ``PATH``, ``LAMBDA_TASK_ROOT`` and ``env``."""
    return subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", code, str(task), str(runtime_boto3(cache_dir)), *args],
        cwd=task,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LAMBDA_TASK_ROOT": str(task), **env},
        capture_output=True,
        text=True,
        check=False,
    )
