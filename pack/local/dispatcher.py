"""Asynchronous invocations, as Lambda runs them for S3: at most N at once,
warm sandboxes reused, errors retried twice, then recorded.

A job names a function (by ARN) and an event, and keeps its request id across
retries, as Lambda's asynchronous invocations do. Closing the dispatcher never
loses a job: retries still waiting, and jobs submitted after it, are recorded as
given up, with the reason. The resolver turns the ARN and the attempt into the
function as deployed (code, handler, timeout, memory, environment; for the local
AWS, as of the ARN's latest S3 notice, and for a retry as of the retry — an alias
may have moved meanwhile, as on Lambda); sandboxes are pooled per code and
configuration, so an update means fresh sandboxes — cold starts, as on Lambda.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..packing.interpreter import TargetPython
from .sandbox import Credentials, FunctionSpec, Result, Sandbox

# Where a function runs: (runtime folders, the container's Python or None for this process's).
Runtimes = Callable[[FunctionSpec], tuple[list[Path], TargetPython | None]]

RETRIES = 2  # Lambda retries a failed asynchronous invocation twice


@dataclass
class Job:
    function_arn: str
    event: dict
    attempt: int = 0
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Record:
    function: str
    request_id: str
    attempt: int
    ok: bool
    cold: bool
    init_ms: float | None
    duration_ms: float
    error: dict | None
    finished: float


@dataclass
class Stats:
    invocations: int = 0
    cold_starts: int = 0
    errors: int = 0
    retries: int = 0
    max_concurrent: int = 0
    records: list[Record] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)  # gave up after the retries


def spec_key(spec: FunctionSpec, code_sha256: str) -> str:
    config = json.dumps(
        [
            spec.name,
            spec.handler,
            spec.runtime,
            spec.architecture,
            spec.memory,
            spec.timeout,
            sorted(spec.environment.items()),
            spec.role,
            code_sha256,
        ]
    )
    return hashlib.sha256(config.encode()).hexdigest()[:16]


class Dispatcher:
    def __init__(
        self,
        resolver: Callable[[str, int], tuple[FunctionSpec, str]],  # (ARN, attempt) -> (spec, CodeSha256)
        runtimes: Runtimes,
        workdir: Path,
        concurrency: int,
        retry_delays: tuple[float, ...] = (1.0, 2.0),
        extra_env: dict[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        on_result: Callable[[FunctionSpec, Sandbox, Result], None] | None = None,
        credentials: Credentials | None = None,  # the execution role's keys for each new process
    ) -> None:
        self.resolver = resolver
        self.runtimes = runtimes
        self.workdir = workdir
        self.concurrency = concurrency
        self.retry_delays = retry_delays
        self.extra_env = extra_env or {}
        self.log = log or (lambda _: None)
        self.on_result = on_result  # e.g. the local AWS writing the function's log lines
        self.credentials = credentials
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.stats = Stats()
        self._lock = threading.Lock()
        self._idle: dict[str, list[Sandbox]] = {}
        self._current_key: dict[str, str] = {}
        self._all: list[Sandbox] = []
        self._active = 0
        self._pending = 0  # queued, running or waiting to be retried
        self._changed = threading.Condition(self._lock)
        self._retries: dict[threading.Timer, Job] = {}  # waiting to run again
        self._closed = False
        self._workers = [
            threading.Thread(target=self._work, name=f"dispatch-{n}", daemon=True) for n in range(concurrency)
        ]
        for worker in self._workers:
            worker.start()

    # --- public ------------------------------------------------------------------

    def submit(self, function_arn: str, event: dict) -> None:
        """Queue an invocation; once closed, it is recorded as given up instead (never lost)."""
        with self._lock:
            self._pending += 1
            closed = self._closed
        if closed:
            stopped = {"errorType": "Stopped", "errorMessage": "the local endpoint was stopping"}
            return self._give_up(Job(function_arn, event), stopped, attempts=0)
        self.jobs.put(Job(function_arn, event))

    def wait_idle(self, timeout: float) -> bool:
        """Until nothing is queued, running or waiting for a retry; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
        return True

    def sandboxes(self) -> list[Sandbox]:
        """Every execution environment started so far (warm or stopped)."""
        with self._lock:
            return list(self._all)

    def retire(self, name: str) -> None:
        """The function ``name`` was deleted: its idle environments stop now, busy ones when
        their invocation ends (they no longer match its current code)."""
        with self._lock:
            key = self._current_key.pop(name, None)
            idle = self._idle.pop(key, []) if key else []
        for sandbox in idle:
            sandbox.stop()

    def close(self) -> None:
        """Stop: retries still waiting are given up (and recorded), running jobs finish."""
        with self._lock:
            self._closed = True
            waiting = list(self._retries.items())
            self._retries.clear()
        for timer, job in waiting:
            timer.cancel()
            stopped = {"errorType": "Stopped", "errorMessage": "the local endpoint stopped before the retry"}
            self._give_up(job, stopped, attempts=job.attempt)  # the retry itself never ran
        for _ in self._workers:
            self.jobs.put(None)
        for worker in self._workers:
            worker.join(timeout=5)
        for sandbox in self._all:
            sandbox.stop()

    # --- workers -----------------------------------------------------------------

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            try:
                self._run(job)
            except Exception as exc:  # a resolver failure: the function is gone or unreadable
                self._finish(job, None, {"errorType": type(exc).__name__, "errorMessage": str(exc)})

    def _run(self, job: Job) -> None:
        spec, code_sha256 = self.resolver(job.function_arn, job.attempt)
        sandbox = self._acquire(spec, code_sha256)
        with self._lock:
            self._active += 1
            self.stats.max_concurrent = max(self.stats.max_concurrent, self._active)
        try:
            result = sandbox.invoke(json.dumps(job.event).encode(), job.request_id)
        finally:
            with self._lock:
                self._active -= 1
            self._release(sandbox, spec, code_sha256)
        if self.on_result is not None:
            self.on_result(spec, sandbox, result)
        self._finish(job, result, result.error)

    def _finish(self, job: Job, result: Result | None, error: dict | None) -> None:
        name = function_name(job.function_arn)
        with self._lock:
            if result is not None:
                self.stats.invocations += 1
                self.stats.cold_starts += int(result.cold)
                self.stats.records.append(
                    Record(
                        name,
                        result.request_id,
                        job.attempt,
                        result.ok,
                        result.cold,
                        result.init_ms,
                        result.duration_ms,
                        result.error,
                        time.time(),
                    )
                )
        if result is not None:
            self.log(invocation_line(name, result))
        if error is None:
            return self._done()
        with self._lock:
            self.stats.errors += 1
        if job.attempt < RETRIES and result is not None:
            delay = self.retry_delays[min(job.attempt, len(self.retry_delays) - 1)]
            retry = Job(job.function_arn, job.event, job.attempt + 1, job.request_id)
            with self._lock:
                if not self._closed:
                    self.stats.retries += 1
                    timer = threading.Timer(delay, self._retry, args=(retry,))
                    timer.daemon = True
                    self._retries[timer] = retry
                    timer.start()
                    return
        self._give_up(job, error, attempts=job.attempt + 1)

    def _retry(self, job: Job) -> None:
        with self._lock:
            for timer, waiting in list(self._retries.items()):
                if waiting is job:
                    del self._retries[timer]
        self.jobs.put(job)

    def _give_up(self, job: Job, error: dict, attempts: int) -> None:
        name = function_name(job.function_arn)
        with self._lock:
            self.stats.failures.append(
                {
                    "function": name,
                    "request_id": job.request_id,
                    "attempts": attempts,
                    "error": error,
                    "event": job.event,
                }
            )
        self.log(f"{name}: gave up after {attempts} attempts: {error.get('errorType')}")
        self._done()

    def _done(self) -> None:
        with self._changed:
            self._pending -= 1
            self._changed.notify_all()

    # --- sandboxes ---------------------------------------------------------------

    def _acquire(self, spec: FunctionSpec, code_sha256: str) -> Sandbox:
        key = spec_key(spec, code_sha256)
        paths, python = self.runtimes(spec)  # may install the runtime's folders once: not under the lock
        stale: list[Sandbox] = []
        with self._lock:
            if self._current_key.get(spec.name) != key:
                # New code or configuration: old environments are never reused.
                old = self._current_key.get(spec.name)
                stale = self._idle.pop(old, []) if old else []
                self._current_key[spec.name] = key
            idle = self._idle.setdefault(key, [])
            sandbox = idle.pop() if idle else None
            if sandbox is None:
                workdir = self.workdir / f"{spec.name}-{len(self._all)}"
                sandbox = Sandbox(spec, paths, workdir, self.extra_env, python, self.credentials)
                self._all.append(sandbox)
        for old_sandbox in stale:
            old_sandbox.stop()
        return sandbox

    def _release(self, sandbox: Sandbox, spec: FunctionSpec, code_sha256: str) -> None:
        key = spec_key(spec, code_sha256)
        with self._lock:
            if self._current_key.get(spec.name) == key:
                self._idle.setdefault(key, []).append(sandbox)
                return
        sandbox.stop()


def function_name(function_arn: str) -> str:
    """NAME in arn:aws:lambda:REGION:ACCOUNT:function:NAME[:VERSION or ALIAS]."""
    return function_arn.split(":")[6]


def invocation_line(name: str, result: Result) -> str:
    """One line an invocation: what it classified (key, top-1 label and score, or the
    error), how long it took, cold or warm."""
    timing = f"{result.duration_ms:.1f} ms" + (
        f", cold start {result.init_ms:.0f} ms" if result.cold and result.init_ms else ", warm"
    )
    if result.error is not None:
        return f"{name}: ERROR {result.error.get('errorType')}: {result.error.get('errorMessage')} ({timing})"
    try:
        records = json.loads(result.payload or b"{}").get("results", [])
    except (ValueError, AttributeError):
        records = []
    if not records:
        return f"{name}: {result.request_id} ({timing})"
    parts = []
    for record in records:
        if record.get("ok"):
            parts.append(f"{record.get('key')} -> {record.get('top1')} {record.get('score', 0):.3f}")
        else:
            error = record.get("error") or {}
            parts.append(f"{record.get('key')} -> {error.get('type', 'error')}")
    return f"{name}: {'; '.join(parts)} ({timing})"
