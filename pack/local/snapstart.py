"""SnapStart in the local runtime: each version's init runs once, in a parked process, and
every new execution environment of that version is a ``fork`` of it — a parked,
initialised process, forked; not a memory snapshot (CRIU does not work on this kind of
machine, and nothing is written to disk).

Lambda initialises a SnapStart version when it is published, runs the before-snapshot
hooks, snapshots the microVM, and restores each new environment from that snapshot, where
the after-restore hooks run before its first event. Here the version's process runs AWS's
runtime interface client with ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`` (the client's
own SnapStart path: init, then the before-snapshot hooks of ``snapshot_restore_py``, then
``GET /runtime/restore/next``) under ``snaprt/lambdapack_snapstart.py``, which parks it in
that call and forks it for each restore order; the child returns from the call into the
client's code, runs the after-restore hooks and asks for its first event on the Runtime
API of its own sandbox. The restore is what the REPORT line's ``Restore Duration`` counts
(order to the first event asked for: fork and after-restore hooks); the init, once per
version, is written as ``INIT_REPORT`` in a log stream of its own.

Where it runs: the parked process runs where the version's environments would (this
machine's Python, or a container of the target's Python), so every target lambdapack runs
locally gets it. In a container, the restored environments share the parked process's
container (run with the host's PID namespace, so the sandbox watches, times out and kills
each by its PID): each environment's memory is watched per process, as on this machine's
fast path, but there is no per-environment CPU share, and its /tmp (a folder of its own,
``TMPDIR``) has no size limit. Unlike Lambda, the version is initialised when it is first
invoked, not when it is published; that wait is counted in no invocation.
"""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

from ..packing.interpreter import TargetPython
from ..resources import snapstart_runtime_dir
from .runtime_api import PREFIX, JSONHandler, _error, serve
from .sandbox import Credentials, FunctionSpec, Sandbox, SnapshotUnavailable

INIT_BUDGET_S = 130  # how long the parked process may take to init (more than Lambda's 10 s init phase)
FORK_WAIT_S = 30  # a restore order is forked at once; longer means the parked process is stuck
INITIALIZATION_TYPE = "snap-start"  # AWS_LAMBDA_INITIALIZATION_TYPE of a SnapStart function
# "not available in Lambda SnapStart functions" (AWS's snapstart-monitoring page)
NOT_IN_SNAPSTART = ("AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME")


class SnapshotAPI:
    """The parked process's Runtime API: init errors, ``restore/next`` (its first call: init and
    the before-snapshot hooks are done; then one restore order per reply), and lambdapack's own
    ``restore/forked`` and ``restore/exited`` (each child's PID, and how it ended)."""

    def __init__(self) -> None:
        self.orders: queue.Queue[dict] = queue.Queue()
        self.init_error: dict | None = None
        self.init_failed = threading.Event()
        self.first_poll: float | None = None  # when the snapshot was "taken"
        self.ready = threading.Event()
        self.changed = threading.Condition()
        self.forked: dict[int, int] = {}  # order -> PID
        self.exited: dict[int, int] = {}  # PID -> exit code (negative: the signal)
        api = self

        class Handler(JSONHandler):
            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/restore/next":
                    return self._reply(404, b'{"errorMessage": "a parked process takes no events"}')
                if api.first_poll is None:
                    api.first_poll = time.perf_counter()
                    api.ready.set()
                self._reply(200, json.dumps(api.orders.get()).encode())

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == f"{PREFIX}/init/error":
                    api.init_error = _error(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                    api.init_failed.set()
                elif self.path in (f"{PREFIX}/restore/forked", f"{PREFIX}/restore/exited"):
                    told = json.loads(body)
                    with api.changed:
                        if self.path.endswith("forked"):
                            api.forked[told["order"]] = told["pid"]
                        else:
                            api.exited[told["pid"]] = told["code"]
                        api.changed.notify_all()
                else:
                    return self._reply(404, b'{"errorMessage": "unknown path"}')
                self._reply(202, b'{"status": "OK"}')

        self.server, self.thread = serve(Handler, "snapshot-api")

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Parked(Sandbox):
    """The version's parked process: a sandbox whose process runs the client under
    ``lambdapack_snapstart`` and whose Runtime API is a ``SnapshotAPI``. In a container: no
    caps of one environment (its forks are the environments; each is watched per process),
    the host's PID namespace, and the sandboxes' folder mounted where it is here."""

    MODULE = "lambdapack_snapstart"

    def __init__(self, *args, sandboxes_dir: Path, capped: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sandboxes_dir = sandboxes_dir.resolve()
        self.capped = capped

    def _new_api(self):
        return SnapshotAPI()

    def environment(self, api_address: str) -> dict[str, str]:
        env = super().environment(api_address)
        for name in NOT_IN_SNAPSTART:
            env.pop(name, None)
        return env

    def _container_options(self, volumes: dict) -> dict:
        volumes[str(self.sandboxes_dir)] = {"bind": str(self.sandboxes_dir), "mode": "rw"}
        # ``capped``: one environment's memory cap and CPU share on the whole container, which
        # its forks share (estimate restores one at a time, so each has the share to itself).
        return {**(super()._container_options(volumes) if self.capped else {}), "pid_mode": "host"}


class _Restored:
    """A restored environment's process (a child of the parked one), seen like ``Popen``."""

    def __init__(self, pid: int, snapshot: Snapshot) -> None:
        self.pid = pid
        self.snapshot = snapshot
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            code = self.snapshot.exit_code(self.pid)
            if code is not None:
                self.returncode = code
            elif not _running(self.pid) and not self.snapshot.alive():  # /proc first: the
                # parked container's state is a call to the engine
                self.returncode = -signal.SIGKILL  # went with its parked process
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"restored environment {self.pid}", timeout or 0)
            time.sleep(0.005)
        return self.returncode or 0


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class Snapshot:
    """One SnapStart version's parked, initialised process: started at its first restore,
    once; ``restore`` forks it into a new environment."""

    def __init__(
        self,
        spec: FunctionSpec,
        runtime_paths: list[Path],
        workdir: Path,
        sandboxes_dir: Path,
        extra_env: dict[str, str] | None = None,
        python: TargetPython | None = None,
        credentials: Credentials | None = None,
        capped: bool = False,
    ) -> None:
        """``capped``: the parked process's container gets one environment's caps (memory and
        CPU share of ``spec.memory``), shared by its forks — for restores run one at a time
        (``estimate``); the local AWS runs several at once and leaves it uncapped."""
        env = {**(extra_env or {}), "AWS_LAMBDA_INITIALIZATION_TYPE": INITIALIZATION_TYPE}
        self.parked = _Parked(
            spec,
            [*runtime_paths, snapstart_runtime_dir()],
            workdir,
            env,
            python,
            credentials,
            sandboxes_dir=sandboxes_dir,
            capped=capped,
        )
        self.spec = spec
        self.lock = threading.Lock()
        self.init_ms: float | None = None
        self.init_logs = ""
        self.error: dict | None = None  # why there is no snapshot
        self.logged = False  # its INIT_REPORT written (by the local AWS)
        self._orders = 0

    @property
    def api(self) -> SnapshotAPI | None:
        return self.parked.api  # type: ignore[return-value]

    def alive(self) -> bool:
        return self.parked.alive()

    def exit_code(self, pid: int) -> int | None:
        api = self.api
        return None if api is None else api.exited.get(pid)

    def _take(self) -> None:
        """Init once: start the parked process and wait until it asks for its first restore."""
        parked = self.parked
        try:
            parked._start()
        except Exception as exc:
            self.error = {"errorType": "Runtime.Unknown", "errorMessage": f"could not start: {exc}"}
            return
        api = self.api
        deadline = time.monotonic() + INIT_BUDGET_S
        while not api.ready.wait(0.01):
            if api.init_failed.is_set() or not parked.alive() or time.monotonic() > deadline:
                break
        self.init_logs = parked._logs_since(0)
        if api.ready.is_set():
            self.init_ms = (api.first_poll - parked.started_at) * 1000
            return
        if api.init_failed.is_set():
            with contextlib.suppress(Exception):
                parked.process.wait(timeout=5)
            self.init_logs = parked._logs_since(0)
            self.error = api.init_error or {"errorType": "Runtime.Unknown", "errorMessage": "init failed"}
        elif not parked.alive():
            self.error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": "the parked process exited in init",
            }
        else:
            self.error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"init did not finish in {INIT_BUDGET_S} s",
            }
        parked.stop()

    def ready(self) -> None:
        """The snapshot, made once (init and the before-snapshot hooks; Lambda's happen when
        the version is published, so this wait is counted in no invocation); raises
        ``SnapshotUnavailable`` when it could not be made."""
        with self.lock:
            if self.init_ms is None and self.error is None:
                self._take()
            if self.error is not None:
                error = {
                    "errorType": self.error.get("errorType", "Runtime.Unknown"),
                    "errorMessage": "SnapStart: the version's snapshot could not be made: "
                    + str(self.error.get("errorMessage", "")),
                }
                raise SnapshotUnavailable(error, self.init_logs)

    def restore(self, order: dict) -> _Restored:
        """A new execution environment: the parked process forked (``order``: what it has of
        its own, see ``Sandbox._restore_order``); raises ``SnapshotUnavailable``."""
        with self.lock:
            if not self.alive():
                raise SnapshotUnavailable(
                    {"errorType": "Runtime.ExitError", "errorMessage": "SnapStart: the parked process ended"}
                )
            self._orders += 1
            number = self._orders
        api = self.api
        api.orders.put({**order, "order": number})
        deadline = time.monotonic() + FORK_WAIT_S
        with api.changed:
            while number not in api.forked:
                left = deadline - time.monotonic()
                if left <= 0 or not self.alive():
                    raise SnapshotUnavailable(
                        {
                            "errorType": "Runtime.Unknown",
                            "errorMessage": "SnapStart: the parked process did not fork",
                        }
                    )
                api.changed.wait(min(left, 0.1))
            return _Restored(api.forked[number], self)

    def stop(self) -> None:
        self.parked.stop()
