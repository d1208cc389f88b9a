"""What a local run leaves when it is killed (SIGKILL, a crash): its work folder (with
loop or tmpfs mounts of the functions' /tmp), function processes on this machine and
containers. Each is marked with its owner — the lambdapack process, as its PID and that
process's start time (a PID alone may be reused) — so the next ``lambdapack local``
removes only what lambdapack made and whose owner is gone, nothing else:

- work folders ``<tmp>/lambdapack-local-*`` holding an ``owner.json``;
- function processes named in ``<sandbox>/process.json`` inside them (still running with
  the same start time);
- containers labelled ``lambdapack.owner``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

WORKDIR_PREFIX = "lambdapack-local-"
OWNER_FILE = "owner.json"
PROCESS_FILE = "process.json"
LABEL = "lambdapack.owner"


def started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), or None when there is none — or
    only its zombie (killed, not yet reaped by whichever process adopted it)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat_line.rsplit(")", 1)[1].split()  # the name in () may hold spaces
    return None if fields[0] in ("Z", "X") else fields[19]  # field 3, the state; field 22


def owner(pid: int | None = None) -> str:
    """This process (or ``pid``) as an owner mark: ``PID:START``."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{started(pid)}"


def alive(mark: str) -> bool:
    pid, _, start = mark.partition(":")
    return pid.isdigit() and started(int(pid)) == start


def mark_workdir(workdir: Path) -> None:
    (workdir / OWNER_FILE).write_text(json.dumps({"owner": owner()}))


def mark_process(folder: Path, pid: int) -> None:
    """A function process on this machine, to end if its owner dies without ending it."""
    with contextlib.suppress(OSError):
        (folder / PROCESS_FILE).write_text(json.dumps({"process": owner(pid)}))


@dataclass
class Removed:
    folders: int = 0
    mounts: int = 0
    processes: int = 0
    containers: int = 0

    def __bool__(self) -> bool:
        return bool(self.folders or self.mounts or self.processes or self.containers)

    def __str__(self) -> str:
        return (
            f"{self.containers} container(s), {self.processes} function process(es), "
            f"{self.mounts} mount(s), {self.folders} work folder(s)"
        )


def remove_leftovers(root: Path | None = None, containers: bool = True) -> Removed:
    """Remove what local runs whose owner is gone left under ``root`` (the temp folder)."""
    removed = Removed()
    root = Path(tempfile.gettempdir()) if root is None else root
    for folder in sorted(root.glob(f"{WORKDIR_PREFIX}*")):
        try:
            mark = json.loads((folder / OWNER_FILE).read_text())["owner"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not marked: not provably lambdapack's
        if alive(mark):
            continue
        for record in folder.glob(f"*/*/{PROCESS_FILE}"):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                process = json.loads(record.read_text())["process"]
                if alive(process):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(int(process.split(":")[0]), signal.SIGKILL)  # its own session
                    removed.processes += 1
        for mount in _mounts_under(folder):
            if subprocess.run(["umount", "-l", mount], capture_output=True, check=False).returncode == 0:
                removed.mounts += 1
        _make_writable(folder)
        shutil.rmtree(folder, ignore_errors=True)
        removed.folders += not folder.exists()
    if containers:
        removed.containers = _remove_containers()
    return removed


def _mounts_under(folder: Path) -> list[str]:
    """Mount points inside ``folder``, deepest first (from /proc/self/mountinfo)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    inside = str(folder.resolve()) + "/"
    points = [line.split()[4].encode().decode("unicode_escape") for line in lines]
    return sorted((p for p in points if p.startswith(inside)), key=len, reverse=True)


def _remove_containers() -> int:
    """Containers labelled by a lambdapack process that is gone (when Docker is here)."""
    try:
        import docker

        client = docker.from_env(timeout=10)
        found = client.containers.list(all=True, filters={"label": LABEL})
    except Exception:  # no Docker SDK, no engine: nothing of ours can be running there
        return 0
    count = 0
    for container in found:
        if not alive(container.labels.get(LABEL, "")):
            with contextlib.suppress(Exception):
                container.remove(force=True)
                count += 1
    return count


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IWUSR)
