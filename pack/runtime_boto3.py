"""A folder holding only boto3 and its dependencies: what the Lambda Python
runtime puts beside ``/var/task``. Local runs of a zip put it on the path,
so the function sees the zip, this boto3 and the standard library — nothing
else from the build machine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .errors import InstallError
from .target import host_python

COMPLETE = ".complete"


def runtime_boto3(cache_dir: Path) -> Path:
    folder = cache_dir / "runtime" / f"boto3-python{host_python()}"
    if (folder / COMPLETE).exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".boto3-", dir=folder.parent))
    try:
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
                "boto3",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise InstallError("could not install boto3 for the local Lambda runtime", proc.stderr[-2000:])
        (work / COMPLETE).write_text("")
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return folder
