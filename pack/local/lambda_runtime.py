"""Folders of packages the Lambda Python runtime provides beside ``/var/task``:
boto3 (and botocore) and the runtime interface client (awslambdaric). Local
runs of a zip put them on the path, so the function sees the zip, these and
the standard library — nothing else from the build machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lambdapack.handler.lambdapack_handler.contract import LAMBDA_TASK_ROOT

from ..atomic import built_once
from ..errors import InstallError, ToolError
from ..packing.install import platform_args
from ..packing.interpreter import TargetPython, find_target_python
from ..packing.target import Target, host_can_run, host_python

COMPLETE = ".complete"
COMPILE_TIMEOUT_S = 600.0


def runtime_folder(
    cache_dir: Path, name: str, requirements: tuple[str, ...], target: Target | None = None
) -> Path:
    """``requirements`` installed once into ``<cache>/runtime/<name>-python3.X[-arch]``:
    for this interpreter, or (``target``) for another Python and architecture, as the
    zip's own dependencies are (pip --platform; awslambdaric has native code)."""
    suffix = f"python{host_python()}" if target is None else target.key()
    folder = cache_dir / "runtime" / f"{name}-{suffix}"
    platform = [] if target is None else platform_args(target)

    def install(work: Path) -> None:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-compile",
                "--only-binary=:all:",
                *platform,
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

    # Once: functions starting at the same moment (or another lambdapack) wait for the first
    # install and run from it; a folder a function runs from is never replaced under it.
    built_once(folder, install, complete=lambda path: (path / COMPLETE).exists())
    return folder


def runtime_boto3(cache_dir: Path, target: Target | None = None) -> Path:
    return runtime_folder(cache_dir, "boto3", ("boto3",), target)


def runtime_interface_client(cache_dir: Path, target: Target | None = None) -> Path:
    return runtime_folder(cache_dir, "awslambdaric", ("awslambdaric",), target)


class LocalRuntimes:
    """Where each function runs locally: this machine's Python when it is the target's
    (the fast path), else a container of the target's Python (``TargetPython``), with
    the runtime's boto3 and awslambdaric installed for that target."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._chosen: dict[tuple[Target, bool], tuple[list[Path], TargetPython | None]] = {}

    def for_runtime(self, runtime: str, architecture: str) -> tuple[list[Path], TargetPython | None]:
        """The same, for Lambda's names (``python3.13``, ``arm64``)."""
        return self.for_target(Target(runtime.removeprefix("python"), architecture))

    def for_target(self, target: Target, contained: bool = False) -> tuple[list[Path], TargetPython | None]:
        """(runtime folders, the container's Python or None for this process's); ToolError
        when no interpreter of the target can be had here. ``contained``: a container even
        for this machine's own Python, when an image of it is here (memory and CPU capped)."""
        key = (target, contained)
        if key not in self._chosen:
            python, why = None, ""
            if contained or not host_can_run(target):
                python, why = find_target_python(target, contained=contained)
                if python is not None and python.image is None:
                    python = None  # no image here: this machine's own Python, no CPU share
            if python is None and host_can_run(target):
                chosen = [runtime_boto3(self.cache_dir), runtime_interface_client(self.cache_dir)], None
            else:
                if python is None:
                    raise ToolError(
                        f"cannot run a {target.runtime} {target.arch} function here: {why}",
                        "Run scripts/docker_setup.sh (Docker, QEMU and local images of each Python), "
                        "or docker pull the AWS Lambda image of that runtime.",
                    )
                folders = [
                    runtime_boto3(self.cache_dir, target),
                    runtime_interface_client(self.cache_dir, target),
                ]
                for folder in folders:
                    compile_once(folder, python)
                chosen = folders, python
            self._chosen[key] = chosen
        return self._chosen[key]


def compile_once(folder: Path, python: TargetPython) -> None:
    """Byte-compile a runtime folder with the target's own Python, once. pip installs it
    with --no-compile (for another Python than pip's), and containers see it read-only,
    so without this every cold start in a container compiled botocore from source again:
    measured in the python3.13 container at a 0.58-CPU share, botocore's import and S3
    client took 574–608 ms as installed against 296–368 ms compiled (three runs each).
    Not compiled (a failure here) only means slower starts."""
    marker = folder / f".compiled-{python.python}-{python.arch}"
    if marker.exists():
        return
    try:
        proc = python.run(
            ["-m", "compileall", "-q", str(folder)],
            paths=[folder],
            env={},
            cwd=folder,
            timeout=COMPILE_TIMEOUT_S,
        )
    except (subprocess.TimeoutExpired, ToolError):
        return
    if proc.returncode == 0:
        marker.write_text("")  # compileall writes each .pyc atomically: a second one is harmless


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
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), LAMBDA_TASK_ROOT: str(task), **env},
        capture_output=True,
        text=True,
        check=False,
    )
