"""Asynchronous invocations, as Lambda runs them for S3: at most N at once, warm
sandboxes reused, failures retried as the function's asynchronous invocation config
says, then recorded in its on-failure destination.

A job names a function (by ARN) and an event, and keeps its request id across
retries, as Lambda's asynchronous invocations do. ``policy`` gives the config of the
version or alias the ARN names (``failures.AsyncConfig``: retry attempts, maximum
event age, on-failure destination); ``deliver`` sends an invocation record to a
destination. An invocation that fails every attempt (``RetriesExhausted``), or waits
longer than the event's maximum age (``EventAgeExceeded``), is recorded: its record
delivered, and one line printed at once with the event's object keys. Retries wait
``retry_delays`` (Lambda waits about 1 and then 2 minutes; shortened here).

Nothing is ever dropped silently. Closing the dispatcher stops taking work, then
records every queued invocation, every one waiting for a retry and every running one
(its environment is ended at once) as failed with the local condition
``EndpointStopped``; jobs submitted after it too. ``retire`` (the function was deleted)
does the same for that function's invocations, condition ``FunctionDeleted``.

The resolver turns the ARN and the attempt into the function as deployed (code,
handler, timeout, memory, environment; for the local AWS, as of the ARN's latest S3
notice, and for a retry as of the retry — an alias may have moved meanwhile, as on
Lambda); sandboxes are pooled per code and configuration, so an update means fresh
sandboxes — cold starts, as on Lambda.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..packing.interpreter import TargetPython
from ..records import ENDPOINT_STOPPED, EVENT_AGE_EXCEEDED, FUNCTION_DELETED, RETRIES_EXHAUSTED, reason
from .failures import AsyncConfig, event_keys, invocation_record
from .sandbox import Credentials, FunctionSpec, Result, Sandbox
from .snapstart import Snapshot

# Where a function runs: (runtime folders, the container's Python or None for this process's).
Runtimes = Callable[[FunctionSpec], tuple[list[Path], TargetPython | None]]

WHY = {
    ENDPOINT_STOPPED: "the local endpoint stopped",
    FUNCTION_DELETED: "the function was deleted",
}
_numbers = itertools.count(1)


@dataclass(eq=False)
class Job:
    function_arn: str
    event: dict
    attempt: int = 0
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    queued_at: float = field(default_factory=time.time)  # when Lambda's queue took it (its age)
    number: int = field(default_factory=lambda: next(_numbers))  # the order it was submitted in
    cancelled: str | None = None  # a local condition: it must not run (again)
    executed_version: str | None = None


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
    failures: list[dict] = field(default_factory=list)  # recorded as failed (see _give_up)
    stopped: dict[str, int] = field(default_factory=dict)  # what close() found: queued, retrying, running


def spec_key(spec: FunctionSpec, code_sha256: str) -> str:
    """What decides whether a warm environment may serve: the function's configuration and
    code. Any change (memory, timeout, /tmp size, variables, role, code) makes a new key,
    and the old environments are retired."""
    config = json.dumps(
        [
            spec.name,
            spec.handler,
            spec.runtime,
            spec.architecture,
            spec.memory,
            spec.timeout,
            spec.ephemeral_mb,  # a new /tmp size needs new environments, as on Lambda
            sorted(spec.environment.items()),
            spec.role,
            spec.snapstart,
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
        on_result: Callable[[FunctionSpec, Sandbox, Result, dict], None] | None = None,
        policy: Callable[[str], AsyncConfig] | None = None,
        deliver: Callable[[str, dict], str] | None = None,
        clock: Callable[[], float] = time.time,
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
        self.policy = policy or (lambda _arn: AsyncConfig())
        self.deliver = deliver  # (destination ARN, record) -> where it went; raises when it could not
        self.clock = clock
        self.credentials = credentials
        self.stats = Stats()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # pending went down
        self._wake = threading.Condition(self._lock)  # a job was queued, or closing
        self._queue: collections.deque[Job] = collections.deque()
        self._running: dict[Job, Sandbox | None] = {}
        self._idle: dict[str, list[Sandbox]] = {}
        self._current_key: dict[str, str] = {}
        self._all: list[Sandbox] = []
        self._snapshots: dict[str, Snapshot] = {}  # SnapStart: a parked process per version (key)
        self._retiring: list[Snapshot] = []  # of code or configuration replaced: stopped once unused
        self._active = 0
        self._pending = 0  # queued, running or waiting to be retried
        self._retries: dict[threading.Timer, Job] = {}  # waiting to run again
        self._closed = False
        self.last_submitted = 0  # the number of the last job submitted
        self._workers = [
            threading.Thread(target=self._work, name=f"dispatch-{n}", daemon=True) for n in range(concurrency)
        ]
        for worker in self._workers:
            worker.start()

    # --- public ------------------------------------------------------------------

    def submit(self, function_arn: str, event: dict) -> None:
        """Queue an invocation; once closed, it is recorded as failed instead (never lost)."""
        job = Job(function_arn, event)
        with self._lock:
            self._pending += 1
            self.last_submitted = job.number
            if not self._closed:
                self._queue.append(job)
                self._wake.notify()
                return
        self._give_up(job, self._stopped_error(job, ENDPOINT_STOPPED), ENDPOINT_STOPPED)

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

    def retire(self, name: str, submitted_before: int | None = None) -> None:
        """The function ``name`` was deleted: its invocations submitted before (job numbers up to
        ``submitted_before``; all when None) are recorded as failed (``FunctionDeleted``) —
        queued ones, those waiting for a retry and running ones, whose environments end now —
        and its idle environments stop."""

        def mine(job: Job) -> bool:
            earlier = submitted_before is None or job.number <= submitted_before
            return earlier and function_name(job.function_arn) == name

        with self._lock:
            key = self._current_key.pop(name, None)
            idle = self._idle.pop(key, []) if key else []
            queued = [job for job in self._queue if mine(job)]
            for job in queued:
                self._queue.remove(job)
            waiting = [(timer, job) for timer, job in self._retries.items() if mine(job)]
            for timer, _ in waiting:
                del self._retries[timer]
            running = [(job, sandbox) for job, sandbox in self._running.items() if mine(job)]
            for job, _ in running:
                job.cancelled = FUNCTION_DELETED
        self._cancel(queued, waiting, running, FUNCTION_DELETED)
        for sandbox in idle:
            sandbox.stop()
        with self._lock:
            gone = [key for key, snapshot in self._snapshots.items() if snapshot.spec.name == name]
            snapshots = [self._snapshots.pop(key) for key in gone]
        for snapshot in snapshots:  # environments still running from it end with it or by themselves
            snapshot.stop()

    def close(self) -> None:
        """Stop: no new work; every queued invocation, every one waiting for a retry and every
        running one (its environment ended now) is recorded as failed (``EndpointStopped``);
        then every environment ends. ``stats.stopped`` counts what was found."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            queued = list(self._queue)
            self._queue.clear()
            waiting = list(self._retries.items())
            self._retries.clear()
            running = list(self._running.items())
            for job, _ in running:
                job.cancelled = ENDPOINT_STOPPED
            self.stats.stopped = {"queued": len(queued), "retrying": len(waiting), "running": len(running)}
            self._wake.notify_all()
        self._cancel(queued, waiting, running, ENDPOINT_STOPPED)
        for worker in self._workers:
            worker.join(timeout=60)  # each ends once its (interrupted) invocation has returned
        for sandbox in self.sandboxes():
            sandbox.stop()
        with self._lock:
            snapshots, self._snapshots = [*self._snapshots.values(), *self._retiring], {}
            self._retiring = []
        for snapshot in snapshots:
            snapshot.stop()

    def _cancel(self, queued: list[Job], waiting: list, running: list, condition: str) -> None:
        for sandbox in {id(sb): sb for _, sb in running if sb is not None}.values():
            sandbox.interrupt(WHY[condition])  # the worker records its job when invoke returns
        for timer, _job in waiting:
            timer.cancel()
        for job in [*queued, *(job for _, job in waiting)]:
            self._give_up(job, self._stopped_error(job, condition), condition)

    @staticmethod
    def _stopped_error(job: Job, condition: str) -> dict:
        when = "before its retry" if job.attempt else "before it ran"
        return {"errorType": condition, "errorMessage": f"{WHY[condition]} {when}"}

    # --- workers -----------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return  # close() recorded what is left in the queue
                job = self._queue.popleft()
                self._running[job] = None
            try:
                self._run(job)
            except Exception as exc:  # a resolver failure: the function is gone or unreadable
                self._finish(job, None, {"errorType": type(exc).__name__, "errorMessage": str(exc)})
            finally:
                with self._lock:
                    self._running.pop(job, None)

    def _run(self, job: Job) -> None:
        spec, code_sha256 = self.resolver(job.function_arn, job.attempt)
        job.executed_version = spec.version
        max_age = self.policy(job.function_arn).max_age_s
        if self.clock() - job.queued_at > max_age:  # Lambda checks before each attempt
            error = {
                "errorType": EVENT_AGE_EXCEEDED,
                "errorMessage": f"the event waited longer than its maximum age ({max_age:g} s)",
            }
            return self._give_up(job, error, EVENT_AGE_EXCEEDED)
        sandbox = self._acquire(spec, code_sha256)
        with self._lock:
            cancelled = job.cancelled
            if not cancelled:
                self._running[job] = sandbox
                self._active += 1
                self.stats.max_concurrent = max(self.stats.max_concurrent, self._active)
        if cancelled:  # closed or deleted while it was being prepared: it never ran
            self._release(sandbox, spec, code_sha256)
            return self._give_up(job, self._stopped_error(job, cancelled), cancelled)
        try:
            result = sandbox.invoke(json.dumps(job.event).encode(), job.request_id)
        finally:
            with self._lock:
                self._active -= 1
            self._release(sandbox, spec, code_sha256)
        if self.on_result is not None:
            self.on_result(spec, sandbox, result, job.event)
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
        attempts = job.attempt + (result is not None)
        if job.cancelled:
            return self._give_up(job, error, job.cancelled, attempts)
        if result is not None and job.attempt < self.policy(job.function_arn).retries:
            delay = self.retry_delays[min(job.attempt, len(self.retry_delays) - 1)]
            retry = Job(
                job.function_arn, job.event, job.attempt + 1, job.request_id, job.queued_at, job.number
            )
            with self._lock:
                if not self._closed:
                    self.stats.retries += 1
                    timer = threading.Timer(delay, self._retry, args=(retry,))
                    timer.daemon = True
                    self._retries[timer] = retry
                    timer.start()
                    return
            stopped = self._stopped_error(retry, ENDPOINT_STOPPED)
            return self._give_up(retry, stopped, ENDPOINT_STOPPED, attempts)
        self._give_up(job, error, RETRIES_EXHAUSTED, attempts)

    def _retry(self, job: Job) -> None:
        with self._lock:
            timers = [timer for timer, waiting in self._retries.items() if waiting is job]
            if not timers:
                return  # closed or deleted meanwhile: already recorded
            del self._retries[timers[0]]
            self._queue.append(job)
            self._wake.notify()

    def _give_up(self, job: Job, error: dict, condition: str, attempts: int | None = None) -> None:
        """Record a failed invocation: its record to the destination of the ARN's config (or
        nowhere, as Lambda drops it), and one line now, naming its keys and why."""
        attempts = job.attempt if attempts is None else attempts
        name = function_name(job.function_arn)
        record = invocation_record(
            job.request_id, job.function_arn, condition, attempts, job.event, error, job.executed_version
        )
        keys = event_keys(job.event)
        destination = self.policy(job.function_arn).on_failure
        delivered, where = False, "no on-failure destination: dropped, as Lambda drops it"
        if destination and self.deliver is not None:
            try:
                where, delivered = f"recorded in {self.deliver(destination, record)}", True
            except Exception as exc:
                where = f"NOT recorded: {destination} refused it: {type(exc).__name__}: {exc}"
        why = reason(record)
        with self._lock:
            self.stats.failures.append(
                {
                    "function": name,
                    "request_id": job.request_id,
                    "attempts": attempts,
                    "error": error,
                    "event": job.event,
                    "keys": keys,
                    "condition": condition,
                    "reason": why,
                    "destination": destination,
                    "delivered": delivered,
                }
            )
        shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        self.log(
            f"{name}: FAILED {shown or job.request_id}: {why} after {attempts} attempt(s) ({condition}: "
            f"{error.get('errorType')}: {error.get('errorMessage')}); {where}"
        )
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
                if old in self._snapshots:
                    self._retiring.append(self._snapshots.pop(old))
                self._current_key[spec.name] = key
            idle = self._idle.setdefault(key, [])
            sandbox = idle.pop() if idle else None
            if sandbox is None:
                workdir = self.workdir / f"{spec.name}-{len(self._all)}"
                snapshot = None
                if spec.snapstart:  # each new environment is restored from the version's snapshot
                    snapshot = self._snapshots.get(key)
                    if snapshot is None:
                        snapshot = self._snapshots[key] = Snapshot(
                            spec,
                            paths,
                            self.workdir / f"{spec.name}-snapshot-{len(self._snapshots)}",
                            self.workdir,
                            self.extra_env,
                            python,
                            self.credentials,
                        )
                sandbox = Sandbox(spec, paths, workdir, self.extra_env, python, self.credentials, snapshot)
                self._all.append(sandbox)
        for old_sandbox in stale:
            old_sandbox.stop()
        self._stop_unused_snapshots()
        return sandbox

    def _stop_unused_snapshots(self, done: Sandbox | None = None) -> None:
        """A replaced version's parked process ends once no invocation runs in a fork of it
        (they finish, as on Lambda; its idle environments are stopped already). ``done``: a
        sandbox whose invocation has just returned."""
        with self._lock:
            running = [sandbox for sandbox in self._running.values() if sandbox not in (None, done)]
            busy = {id(sandbox.snapshot) for sandbox in running}
            unused = [snapshot for snapshot in self._retiring if id(snapshot) not in busy]
            self._retiring = [snapshot for snapshot in self._retiring if id(snapshot) in busy]
        for snapshot in unused:
            snapshot.stop()

    def _release(self, sandbox: Sandbox, spec: FunctionSpec, code_sha256: str) -> None:
        key = spec_key(spec, code_sha256)
        with self._lock:
            if self._current_key.get(spec.name) == key and not sandbox.interrupted and not self._closed:
                self._idle.setdefault(key, []).append(sandbox)
                return
        sandbox.stop()
        if sandbox.snapshot is not None:
            self._stop_unused_snapshots(done=sandbox)


def function_name(function_arn: str) -> str:
    """NAME in arn:aws:lambda:REGION:ACCOUNT:function:NAME[:VERSION or ALIAS]."""
    return function_arn.split(":")[6]


def invocation_line(name: str, result: Result) -> str:
    """One line an invocation: what it classified (key, top-1 label and score, or the
    error), how long it took, cold or warm."""
    cold = f", cold start {result.init_ms:.0f} ms" if result.init_ms else ", cold start"
    if result.restored:
        cold = f", restored from the SnapStart snapshot in {result.restore_ms:.0f} ms"
    timing = f"{result.duration_ms:.1f} ms" + (cold if result.cold else ", warm")
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
