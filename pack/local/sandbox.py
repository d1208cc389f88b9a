"""One Lambda execution environment: a function process under AWS's runtime
interface client, fed by its own Runtime API server.

Isolation like ``/var/task``: the process starts from a scrubbed environment
with ``python -s -S`` and a ``PYTHONPATH`` of the (read-only) task folder,
a boto3 standing in for the runtime's and the runtime client — nothing else
from this machine is importable. It gets Lambda's environment variables, the
function's own, and a temp folder of its own. The process is reused for
warm invocations; a timeout kills it (reported as Lambda does) and the next
invocation starts a new one (a cold start), as does a crash or an init error.
Like Lambda's reset, such a restart keeps the temp folder as it was: code that
unpacks into /tmp must not trust what an interrupted start left there.

Where this machine's Python is not the target's, the process runs in a container
of the target's Python (``python``: a ``TargetPython`` with an image), with
Lambda's limits enforced: the code at ``/var/task`` read-only on a read-only root,
``/tmp`` the sandbox's temp folder (a tmpfs of the function's ephemeral size),
memory capped at the function's memory size with no swap, and a CPU share of
memory / 1,769 MB (capped at this machine's cores). A process on this machine (the fast
path) gets the memory cap only: the sandbox kills it once the memory it allocated
(resident, less file-backed pages) passes the function's memory size.

Each failure names its real reason, as Lambda does: a timeout (``Sandbox.Timedout``,
"Task timed out after N seconds", also written to the function's log), out of memory
(``Runtime.OutOfMemory``; only when it was: the engine's ``OOMKilled`` for a container,
the memory watch for a process here), killed from outside (``Runtime.ExitError``,
"signal: killed": exit 137 or SIGKILL without an out-of-memory kill), a crash
(``Runtime.ExitError``, "exit status N"). ``interrupt`` ends an invocation from the
local AWS (the endpoint stopping, the function deleted): reported as killed, with why.
Containers carry the label ``lambdapack.owner`` and processes here a ``process.json``
(``leftovers``), so what a killed ``lambdapack local`` left can be found and removed.

SnapStart (``snapshot``, ``snapstart.py``): a new environment of a SnapStart version is not
started but restored — forked from the version's parked, initialised process — and then
watched, timed out and killed by its PID like a process here; its REPORT line carries
``Restore Duration`` instead of ``Init Duration``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lambdapack.handler.lambdapack_handler.contract import LAMBDA_TASK_ROOT

from ..limits import DEFAULT_MEMORY_MB, DEFAULT_REGION, EPHEMERAL_MB, ONE_VCPU_MB
from ..packing.interpreter import CONTAINER_PATH, TargetPython
from ..records import EXITED, OUT_OF_MEMORY, TIMED_OUT
from . import leftovers
from .runtime_api import Invocation, RuntimeAPI

POLL_S = 0.005
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass
class FunctionSpec:
    name: str
    task_dir: Path  # the unzipped code
    handler: str = "index.handler"
    runtime: str = "python3.11"
    memory: int = DEFAULT_MEMORY_MB
    timeout: float = 60.0
    environment: dict[str, str] = field(default_factory=dict)
    region: str = DEFAULT_REGION
    account: str = "123456789012"
    version: str = "$LATEST"
    ephemeral_mb: int = EPHEMERAL_MB.low  # the size of /tmp
    architecture: str = "x86_64"
    role: str = ""  # the execution role's ARN
    snapstart: bool = False  # a published version with SnapStart on: environments are restored

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.name}"


class SnapshotUnavailable(Exception):
    """A SnapStart version's snapshot could not be made (its init or a before-snapshot hook
    failed, or its process could not start): ``error`` is what each invocation reports."""

    def __init__(self, error: dict, logs: str = "") -> None:
        super().__init__(error.get("errorMessage", ""))
        self.error = error
        self.logs = logs


@dataclass
class Result:
    request_id: str
    payload: bytes | None
    error: dict | None
    cold: bool
    init_ms: float | None
    duration_ms: float
    max_memory_mb: int | None
    logs: str = ""
    restore_ms: float | None = None  # a new environment restored from a SnapStart snapshot

    @property
    def restored(self) -> bool:
        return self.restore_ms is not None

    @property
    def ok(self) -> bool:
        return self.error is None

    def report_line(self, memory_mb: int) -> str:
        line = (
            f"REPORT RequestId: {self.request_id}\tDuration: {self.duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, round(self.duration_ms + 0.5))} ms\tMemory Size: {memory_mb} MB"
        )
        if self.max_memory_mb is not None:
            line += f"\tMax Memory Used: {self.max_memory_mb} MB"
        if self.init_ms is not None:
            line += f"\tInit Duration: {self.init_ms:.2f} ms"
        if self.restore_ms is not None:  # SnapStart: no Init Duration (that is in INIT_REPORT)
            line += (
                f"\tRestore Duration: {self.restore_ms:.2f} ms"
                f"\tBilled Restore Duration: {max(1, round(self.restore_ms + 0.5))} ms"
            )
        return line


TASK_IN_CONTAINER = "/var/task"
RUNTIME_IN_CONTAINER = "/opt/lambdapack"
LOG_IN_CONTAINER = "/var/log/lambdapack-function.log"
CREDENTIALS_MARGIN_S = 60  # a warm environment restarts when its role's keys expire sooner (+ the timeout)

# The execution role's temporary keys for a function: (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_SESSION_TOKEN as variables, when they expire as a time.time()); raises when the role
# cannot be assumed (the invocation fails).
Credentials = Callable[[FunctionSpec], tuple[dict[str, str], float]]


class _Container:
    """A started container, seen like ``subprocess.Popen``: poll, wait, kill."""

    def __init__(self, container) -> None:
        self.container = container
        self.returncode: int | None = None
        self.oom_killed = False
        self._checked = 0.0

    def poll(self) -> int | None:
        # The engine is asked at most every 50 ms (the sandbox polls every few ms).
        if self.returncode is None and time.monotonic() - self._checked > 0.05:
            self._checked = time.monotonic()
            self.container.reload()
            state = self.container.attrs["State"]
            if state["Status"] in ("exited", "dead"):
                self.returncode = int(state["ExitCode"])
                self.oom_killed = bool(state.get("OOMKilled"))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("container", timeout or 0)
            time.sleep(0.02)
        return self.returncode or 0

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.container.kill()
        self.wait(30)

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.container.remove(force=True)

    def peak_memory_mb(self) -> int | None:
        """The high-water mark of the container's memory (while it exists), from its cgroup:
        v2 (systemd or cgroupfs driver) or v1."""
        for path in (
            Path(f"/sys/fs/cgroup/system.slice/docker-{self.container.id}.scope/memory.peak"),
            Path(f"/sys/fs/cgroup/docker/{self.container.id}/memory.peak"),
            Path(f"/sys/fs/cgroup/memory/docker/{self.container.id}/memory.max_usage_in_bytes"),
        ):
            with contextlib.suppress(OSError, ValueError):
                return int(path.read_text()) // (1024 * 1024)
        return None


class Sandbox:
    MODULE = "awslambdaric"  # what the function process runs: AWS's runtime interface client

    def __init__(
        self,
        spec: FunctionSpec,
        runtime_paths: list[Path],
        workdir: Path,
        extra_env: dict[str, str] | None = None,
        python: TargetPython | None = None,
        credentials: Credentials | None = None,
        snapshot=None,  # a SnapStart ``snapstart.Snapshot``: new environments are forked from it
    ) -> None:
        spec.task_dir = spec.task_dir.resolve()
        self.spec = spec
        self.runtime_paths = [path.resolve() for path in runtime_paths]
        self.workdir = workdir.resolve()
        self.extra_env = extra_env or {}
        self.python = python if python is not None and python.image else None  # None: this process's
        self.tmp = workdir / "tmp"
        self.log_path = workdir / "function.log"
        self.process: subprocess.Popen | _Container | None = None
        self.api: RuntimeAPI | None = None
        self.started_at = 0.0
        self.lock = threading.Lock()
        self.tmp_limited = False  # /tmp is limited to the function's ephemeral storage size
        self.tmp_ready = False  # /tmp exists for this execution environment
        self.memory_killed = False  # the process went past its memory size (this machine's: see _over_memory)
        self.interrupted: str | None = None  # ended by the local AWS (why); never reused after
        self.credentials = credentials
        self._role_env: dict[str, str] = {}  # the role's keys this process started with
        self._role_expires = float("inf")
        self.snapshot = snapshot

    # --- lifecycle -------------------------------------------------------------

    def _runtime_paths_seen(self) -> list[str]:
        if self.python is None:
            return [str(p) for p in self.runtime_paths]
        return [f"{RUNTIME_IN_CONTAINER}/{index}" for index in range(len(self.runtime_paths))]

    def environment(self, api_address: str) -> dict[str, str]:
        spec = self.spec
        task = TASK_IN_CONTAINER if self.python else str(spec.task_dir)
        runtime = self._runtime_paths_seen()
        env = {
            "PATH": CONTAINER_PATH if self.python else "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join([task, *runtime]),
            LAMBDA_TASK_ROOT: task,
            "LAMBDA_RUNTIME_DIR": runtime[-1],
            "_HANDLER": spec.handler,
            "AWS_LAMBDA_RUNTIME_API": api_address,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/{self.workdir.name}",
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "TMPDIR": "/tmp" if self.python else str(self.tmp),
            "HOME": "/tmp" if self.python else str(self.tmp),
        }
        env.update(self.extra_env)
        env.update(spec.environment)
        env.update(self._role_env)  # reserved on Lambda: the function's own variables cannot set them
        return env

    def _start(self) -> None:
        self._reset()
        if self.credentials is not None:  # first: a role that cannot be assumed starts nothing
            self._role_env, self._role_expires = self.credentials(self.spec)
        if not self.tmp_ready:  # a new execution environment starts with an empty /tmp
            if self.tmp.exists():
                shutil.rmtree(self.tmp)
            self.tmp.mkdir(parents=True)
            # A restored environment in a container is a fork in the parked process's container,
            # which would not see a file system mounted here now: its /tmp has no size limit.
            contained_fork = self.snapshot is not None and self.snapshot.parked.python is not None
            self.tmp_limited = False if contained_fork else self._limit_tmp()
            self.tmp_ready = True
        self.api = self._new_api()
        if self.snapshot is not None:  # SnapStart: restored from the version's parked process
            self.snapshot.ready()
            self.started_at = time.perf_counter()
            self.process = self.snapshot.restore(self._restore_order())
            if self.snapshot.parked.python is None:  # a process here (a container's go with it)
                leftovers.mark_process(self.workdir, self.process.pid)
            return
        self.started_at = time.perf_counter()
        if self.python is not None:
            self.process = self._start_container()
            return
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-s", "-S", "-m", self.MODULE, self.spec.handler],
            cwd=self.spec.task_dir,
            env=self.environment(self.api.address),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a timeout kills all of it
        )
        log.close()
        leftovers.mark_process(self.workdir, self.process.pid)

    def _new_api(self):
        return RuntimeAPI()

    def _restore_order(self) -> dict:
        """What a restored environment has of its own: its Runtime API, log, /tmp and role
        keys (paths on this machine: the parked process sees them at the same place)."""
        assert self.api is not None
        self.log_path.touch()
        return {
            "log": str(self.log_path.resolve()),
            "env": {
                "AWS_LAMBDA_RUNTIME_API": self.api.address,
                "TMPDIR": str(self.tmp.resolve()),
                "HOME": str(self.tmp.resolve()),
                **self._role_env,
            },
        }

    def _container_options(self, volumes: dict) -> dict:
        """Lambda's caps for one execution environment: memory (no swap) and a CPU share of
        memory / 1,769 MB."""
        cpus = min(self.spec.memory / ONE_VCPU_MB, os.cpu_count() or 1)
        return {
            "mem_limit": f"{self.spec.memory}m",
            "memswap_limit": f"{self.spec.memory}m",
            "nano_cpus": int(cpus * 1e9),
        }

    def _start_container(self) -> _Container:
        import docker

        spec, python = self.spec, self.python
        assert python is not None and python.image and self.api is not None
        self.log_path.touch()
        volumes = {
            str(spec.task_dir): {"bind": TASK_IN_CONTAINER, "mode": "ro"},
            str(self.tmp.resolve()): {"bind": "/tmp", "mode": "rw"},
            str(self.log_path.resolve()): {"bind": LOG_IN_CONTAINER, "mode": "rw"},
        }
        for index, path in enumerate(self.runtime_paths):
            volumes[str(path)] = {"bind": f"{RUNTIME_IN_CONTAINER}/{index}", "mode": "ro"}
        options = self._container_options(volumes)
        # The shell only appends the function's output to the log, then becomes Python.
        command = ["/bin/sh", "-c", f'exec "$0" -s -S -m {self.MODULE} "$1" >> "$2" 2>&1']
        command += [f"python{python.python}", spec.handler, LOG_IN_CONTAINER]
        try:
            container = docker.from_env().containers.run(
                python.image,
                command=command,
                entrypoint=[],
                detach=True,
                volumes=volumes,
                working_dir=TASK_IN_CONTAINER,
                environment=self.environment(self.api.address),
                user=f"{os.getuid()}:{os.getgid()}",
                network_mode="host",  # the Runtime API and the local AWS are on 127.0.0.1
                read_only=True,
                labels={leftovers.LABEL: leftovers.owner()},
                platform=f"linux/{'amd64' if python.arch == 'x86_64' else 'arm64'}",
                **options,
            )
        except docker.errors.DockerException as exc:
            raise RuntimeError(f"could not start {python.description}: {exc}") from exc
        return _Container(container)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _reset(self) -> None:
        """Lambda's reset after a crash or a timeout: the runtime process is replaced, and
        /tmp is kept as it is for the next init (as AWS documents), half-written files too."""
        if isinstance(self.process, _Container):
            self.process.kill()
            self.process.remove()
        elif self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
        self.memory_killed = False
        if self.api is not None:
            self.api.close()
            self.api = None

    def interrupt(self, why: str) -> None:
        """End this environment now, from another thread: a running invocation fails as
        killed (``why``), and the environment is never used again."""
        self.interrupted = why
        process = self.process
        if isinstance(process, _Container):
            with contextlib.suppress(Exception):
                process.container.kill()
        elif process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def stop(self) -> None:
        """The end of this execution environment, /tmp included."""
        self._reset()
        if self.tmp_limited:
            subprocess.run(["umount", str(self.tmp)], capture_output=True, check=False)
            (self.workdir / "tmp.ext4").unlink(missing_ok=True)
            self.tmp_limited = False
        self.tmp_ready = False

    def _limit_tmp(self) -> bool:
        """Where practical (root, mount), /tmp gets Lambda's size limit; elsewhere it is an
        ordinary folder with no limit. For a process on this machine, a tmpfs of that size.
        For a container, whose memory is capped, a file system of that size on disk (a
        loop-mounted ext4 image): on Lambda /tmp is ephemeral storage, not memory, and a
        tmpfs's pages would be charged to the container's memory (staged TensorFlow
        unpacking 880 MB was killed at 1,024 MB)."""
        if os.geteuid() != 0 or shutil.which("mount") is None:
            return False
        if self.python is not None and shutil.which("mkfs.ext4"):
            image = self.workdir / "tmp.ext4"
            with image.open("wb") as handle:
                handle.truncate(self.spec.ephemeral_mb * 1024 * 1024)  # sparse: no disk used yet
            made = subprocess.run(
                ["mkfs.ext4", "-q", "-F", "-m", "0", str(image)], capture_output=True, check=False
            )
            if made.returncode == 0:
                mounted = subprocess.run(
                    ["mount", "-o", "loop", str(image), str(self.tmp)], capture_output=True, check=False
                )
                if mounted.returncode == 0:
                    self.tmp.chmod(0o1777)
                    return True
            image.unlink(missing_ok=True)
        proc = subprocess.run(
            [
                "mount",
                "-t",
                "tmpfs",
                "-o",
                f"size={self.spec.ephemeral_mb}m,mode=1777",
                "tmpfs",
                str(self.tmp),
            ],
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    # --- invoking --------------------------------------------------------------

    def invoke(self, event: bytes, request_id: str | None = None) -> Result:
        with self.lock:
            return self._invoke(event, request_id or str(uuid.uuid4()))

    def _invoke(self, event: bytes, request_id: str) -> Result:
        if self.interrupted:
            message = f"RequestId: {request_id} Error: {self.interrupted}"
            error = {"errorType": EXITED, "errorMessage": message}
            return Result(request_id, None, error, False, None, 0.0, None)
        if self.alive() and self._role_expires - time.time() < self.spec.timeout + CREDENTIALS_MARGIN_S:
            self._reset()  # its role's keys would expire during this invocation: a new environment
        cold = not self.alive()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        if cold:
            try:
                self._start()
            except SnapshotUnavailable as exc:  # the version's snapshot could not be made
                return Result(request_id, None, exc.error, True, None, 0.0, None, exc.logs)
        assert self.api is not None and self.process is not None
        api = self.api
        deadline = time.time() + self.spec.timeout
        invocation = Invocation(request_id, event, int(deadline * 1000), self.spec.arn)
        api.submit(invocation)
        submitted = time.perf_counter()
        while not invocation.done.wait(POLL_S):
            if (
                self.interrupted
                or api.init_failed.is_set()
                or self.process.poll() is not None
                or self._over_memory()
            ):
                return self._failed(invocation, cold, submitted, log_offset)
            began = invocation.started or submitted
            # Lambda's init phase has its own 10 s budget; the timeout runs from the event.
            if invocation.started is not None and time.perf_counter() - began > self.spec.timeout:
                return self._timed_out(invocation, cold, log_offset)
            if invocation.started is None and time.perf_counter() - submitted > self.spec.timeout + 10:
                return self._timed_out(invocation, cold, log_offset)
        init_ms, restore_ms = self._start_ms(cold)
        duration = ((invocation.finished or time.perf_counter()) - (invocation.started or submitted)) * 1000
        return Result(
            request_id,
            invocation.response,
            invocation.error,
            cold,
            init_ms,
            duration,
            self._max_memory_mb(),
            self._logs_since(log_offset),
            restore_ms,
        )

    def _start_ms(self, cold: bool) -> tuple[float | None, float | None]:
        """(init, restore) milliseconds of a cold start, until the function first asked for an
        event: a new process's init, or (SnapStart) the restore — fork and after-restore hooks
        (or until it failed)."""
        api = self.api
        if not cold or api is None:
            return None, None
        if self.snapshot is not None:  # a failed restore (after-restore hook) took until it failed
            return None, ((api.first_poll or time.perf_counter()) - self.started_at) * 1000
        if api.first_poll is None:
            return None, None
        return (api.first_poll - self.started_at) * 1000, None

    def _failed(self, invocation: Invocation, cold: bool, submitted: float, log_offset: int) -> Result:
        api, process = self.api, self.process
        assert api is not None and process is not None
        if api.init_failed.is_set():
            # The client exits by itself after posting an init error: let it finish its log.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            error = api.init_error or {"errorType": "Runtime.Unknown", "errorMessage": "init failed"}
        else:
            if self.interrupted:  # being killed: its exit status is on the way
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
            kind, why = self._exit_reason(process)
            error = {
                "errorType": kind,
                "errorMessage": f"RequestId: {invocation.request_id} Error: Runtime exited with error: {why}",
            }
        init_ms, restore_ms = self._start_ms(cold)
        self._reset()
        return Result(
            invocation.request_id,
            None,
            error,
            cold,
            init_ms,
            (time.perf_counter() - submitted) * 1000,
            None,
            self._logs_since(log_offset),
            restore_ms,
        )

    def _exit_reason(self, process) -> tuple[str, str]:
        """(errorType, what Lambda says) for a runtime process that ended mid-invocation."""
        code = process.returncode
        if isinstance(process, _Container):
            out_of_memory, killed = process.oom_killed, code == 137
        else:
            out_of_memory, killed = self.memory_killed, code == -signal.SIGKILL
        if out_of_memory:
            return OUT_OF_MEMORY, f"signal: killed (out of memory: {self.spec.memory} MB)"
        if self.interrupted:
            return EXITED, f"signal: killed ({self.interrupted})"
        if killed:
            return EXITED, "signal: killed (from outside)"
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return EXITED, f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return EXITED, f"exit status {code}"

    def _timed_out(self, invocation: Invocation, cold: bool, log_offset: int) -> Result:
        init_ms, restore_ms = self._start_ms(cold)
        self._reset()
        message = f"Task timed out after {self.spec.timeout:.2f} seconds"
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        return Result(
            invocation.request_id,
            None,
            {"errorType": TIMED_OUT, "errorMessage": f"RequestId: {invocation.request_id} Error: {message}"},
            cold,
            init_ms,
            self.spec.timeout * 1000,
            None,
            self._logs_since(log_offset) + f"{stamp} {invocation.request_id} {message}\n",
            restore_ms,
        )

    def _over_memory(self) -> bool:
        """A process on this machine has no cgroup to cap it: once the memory it allocated
        (resident and anonymous: file-backed pages such as libraries and a mapped model
        are left out, as a cgroup would reclaim them before it kills) passes the function's
        memory size, checked every poll (a few ms apart), the sandbox kills it (``_failed``
        resets the environment) as Lambda's cap would. A container's cap is the kernel's."""
        process = self.process
        if process is None or isinstance(process, _Container):
            return False
        try:
            pages = Path(f"/proc/{process.pid}/statm").read_text().split()
            allocated = (int(pages[1]) - int(pages[2])) * PAGE_BYTES  # resident less file-backed/shared
        except (OSError, IndexError, ValueError):
            return False
        self.memory_killed = allocated > self.spec.memory * 1024 * 1024  # _failed's reset kills it
        return self.memory_killed

    def _max_memory_mb(self) -> int | None:
        if self.process is None:
            return None
        if isinstance(self.process, _Container):
            return self.process.peak_memory_mb()
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
        except OSError:
            return None
        return None

    def _logs_since(self, offset: int) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""
