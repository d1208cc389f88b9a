"""The target's own Python, wherever it can be had.

A ``.pyc`` is valid only for the Python minor version that wrote it, and only
the target's interpreter on the target's architecture proves that a zip
imports and classifies. So the compile stage and the smoke run use a
``TargetPython``: this machine's interpreter when it is the target's, else a
container of the target's Python (docker SDK): AWS's own Lambda base image for
the runtime when it is on this machine (``docker pull`` it where a registry is
reachable), else an image built locally from Debian's packages by
``scripts/docker_setup.sh`` (no registry is needed), or ``--image``. arm64
images run under QEMU user emulation (binfmt_misc), slowly but for real.

Debian's images have a newer glibc than Lambda's OS: there the ELF check
(``compat``), not the container, vouches for the runtime's libraries.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolError
from .target import PYTHON_VERSIONS, Target, host_arch, host_python

# AWS's Lambda base image of each runtime (multi-architecture).
OFFICIAL_IMAGES = {python: f"public.ecr.aws/lambda/python:{python}" for python in PYTHON_VERSIONS}
# Built from Debian's packages by scripts/docker_setup.sh, per (python, arch).
LOCAL_IMAGES = {
    ("3.11", "x86_64"): "lambdapack-base:bookworm",
    ("3.13", "x86_64"): "lambdapack-base:trixie",
    ("3.14", "x86_64"): "lambdapack-base:forky",
    ("3.13", "arm64"): "lambdapack-base:trixie-arm64",
}
BINFMT = {"arm64": "/proc/sys/fs/binfmt_misc/qemu-aarch64", "x86_64": "/proc/sys/fs/binfmt_misc/qemu-x86_64"}
# Lambda images keep Python in /var/lang/bin; Debian's in /usr/bin.
CONTAINER_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin:/bin"


def candidate_images(python: str, arch: str) -> list[str]:
    """Images that may hold ``python`` for ``arch``, preferred first."""
    found = [OFFICIAL_IMAGES[python]] if python in OFFICIAL_IMAGES else []
    if (python, arch) in LOCAL_IMAGES:
        found.append(LOCAL_IMAGES[(python, arch)])
    return found


@dataclass(frozen=True)
class TargetPython:
    """``python3.X`` of the target: this process's interpreter (``image`` None) or a container's."""

    python: str
    arch: str
    image: str | None = None

    @property
    def description(self) -> str:
        if self.image is None:
            return f"this machine's Python {host_python()}"
        return f"python{self.python} ({self.arch}) in the container image {self.image}"

    def run(
        self,
        args: Sequence[str],
        *,
        paths: Sequence[Path],
        env: Mapping[str, str],
        cwd: Path,
        timeout: float,
    ) -> subprocess.CompletedProcess:
        """Run ``python ARGS``. Every folder in ``paths`` is visible at the same path (a
        container gets each mounted there, and no network)."""
        if self.image is None:
            return subprocess.run(
                [sys.executable, *args],
                cwd=cwd,
                env=dict(env),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        return _run_in_container(self, args, paths, env, cwd, timeout)


def find_target_python(
    target: Target, image: str | None = None, same_arch: bool = True, contained: bool = False
) -> tuple[TargetPython | None, str]:
    """The interpreter to run ``target``'s code with, or None; and a note saying which
    (or why there is none). ``same_arch=False`` asks only for the Python version
    (bytecode is the same on every architecture); ``contained`` prefers a container
    even when this machine's Python is the target's (to cap its memory and CPU)."""
    arches = [target.arch] if same_arch else list(dict.fromkeys([host_arch() or target.arch, target.arch]))
    host: tuple[TargetPython | None, str] | None = None
    if host_python() == target.python and host_arch() in arches:
        host = (
            TargetPython(target.python, host_arch() or target.arch),
            f"this machine's Python {host_python()}",
        )
        if not contained:
            return host
    client, why = _docker()
    if client is None:
        return host or (None, why)
    wanted = (
        [(image, target.arch)]
        if image
        else [(i, a) for a in arches for i in candidate_images(target.python, a)]
    )
    for candidate, arch in wanted:
        if not _has_image(client, candidate):
            continue
        if arch != host_arch() and not os.path.exists(BINFMT[arch]):
            why = f"{candidate} is {arch}, and QEMU user emulation (binfmt_misc) is not set up here"
            continue
        python = TargetPython(target.python, arch, candidate)
        return python, python.description
    if host is not None:
        return host
    if image:
        return None, f"the image {image} is not on this machine"
    tried = ", ".join(i for a in arches for i in candidate_images(target.python, a)) or "none known"
    return None, (
        f"no {target.runtime} {'/'.join(arches)} interpreter here: this machine runs Python "
        f"{host_python()} on {host_arch()}, and no image of it is on this machine (looked for {tried}; "
        "docker pull the AWS image, run scripts/docker_setup.sh, or pass --image)"
    )


def _docker():
    try:
        import docker
    except ImportError:
        return None, "the docker SDK is not installed"
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure to reach an engine means: no containers here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"no Docker engine answers ({first})"
    return client, ""


def _has_image(client, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def _run_in_container(
    python: TargetPython,
    args: Sequence[str],
    paths: Sequence[Path],
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
) -> subprocess.CompletedProcess:
    import docker
    import requests

    client = docker.from_env()
    volumes = {str(p.resolve()): {"bind": str(p.resolve()), "mode": "rw"} for p in paths}
    command = [f"python{python.python}", *args]
    try:
        container = client.containers.create(
            python.image,
            command=command,
            entrypoint=[],
            volumes=volumes,
            working_dir=str(cwd.resolve()),
            environment={**env, "PATH": CONTAINER_PATH},
            user=f"{os.getuid()}:{os.getgid()}",
            network_mode="none",
            platform=f"linux/{'amd64' if python.arch == 'x86_64' else 'arm64'}",
        )
    except docker.errors.DockerException as exc:
        raise ToolError(f"could not start {python.description}: {exc}") from exc
    try:
        container.start()
        try:
            status = container.wait(timeout=timeout)
        except requests.exceptions.ConnectionError as exc:  # the wait timed out
            container.kill()
            raise subprocess.TimeoutExpired(command, timeout) from exc
        stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
        stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
        return subprocess.CompletedProcess(command, int(status.get("StatusCode", 1)), stdout, stderr)
    finally:
        container.remove(force=True)
