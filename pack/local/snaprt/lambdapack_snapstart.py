"""SnapStart in the local runtime: a parked, initialised process, forked for each new
execution environment (not a memory snapshot: nothing is written to disk).

Run as ``python -s -S -m lambdapack_snapstart HANDLER`` in place of ``-m awslambdaric``,
with ``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``. AWS's runtime interface client then
does what Lambda's python3.12+ runtime does: init (the handler module is imported), the
before-snapshot hooks (``snapshot_restore_py``), then ``GET /runtime/restore/next``, which
on Lambda returns in each environment restored from the snapshot, where the after-restore
hooks run before the first event. Here that call parks the process: each restore order
(the reply to ``restore/next`` from the parked process's own Runtime API) is served by a
``fork``; the child becomes the new environment — its own session, log, /tmp, role keys and
Runtime API — and returns from ``restore_next`` into the client's code, so the after-restore
hooks run in it, as they do on Lambda. The parent reports each child's PID
(``restore/forked``) and, when it ends, its exit status (``restore/exited``): lambdapack's
own local additions to the Runtime API, which the parked process's server alone answers.

Standard library only: this file runs in the target's Python, beside the runtime client.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sys

PREFIX = "/2018-06-01/runtime"


def _call(address: str, method: str, path: str, body: dict | None = None) -> dict:
    """A JSON call to the snapshot API (the parked process's own)."""
    data = None if body is None else json.dumps(body).encode()
    payload, _ = _Transport(address).request(method, path, data, {"Content-Type": "application/json"})
    return json.loads(payload or b"{}")


def _reaper(address: str):
    def reap(_signum, _frame) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            told = {"pid": pid, "code": os.waitstatus_to_exitcode(status)}
            with contextlib.suppress(Exception):  # the server is going away: nothing left to tell
                _call(address, "POST", "/restore/exited", told)

    return reap


def _become(client, order: dict) -> None:
    """In the child: the new execution environment's own session, log, variables and
    Runtime API (the C client is made anew: it read the address when it was created)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()  # its own process group: the sandbox kills all of it at a timeout
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.update(order["env"])
    client.lambda_runtime_address = order["env"]["AWS_LAMBDA_RUNTIME_API"]
    from awslambdaric import lambda_runtime_client

    # The client's C transport keeps the address it was made with (made anew, it still asked
    # the parked process's): the environment's own calls go through this one instead.
    lambda_runtime_client.runtime_client = _Transport(client.lambda_runtime_address)


class _Transport:
    """The three calls awslambdaric makes through its C ``runtime_client`` (next event,
    response, error), over ``http.client`` to the environment's own Runtime API."""

    def __init__(self, address: str) -> None:
        self.address = address

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """One call on a connection of its own: (payload, headers); RuntimeError on an error status."""
        connection = http.client.HTTPConnection(self.address)
        try:
            connection.request(method, PREFIX + path, body, headers or {})
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {response.status} {payload[:200]!r}")
        return payload, dict(response.getheaders())

    def next(self):
        return self.request("GET", "/invocation/next")

    def post_invocation_result(self, invoke_id, result, content_type="application/json", invocation_id=None):
        self.request("POST", f"/invocation/{invoke_id}/response", result, {"Content-Type": content_type})

    def post_error(self, invoke_id, error_response_data, xray_fault="", invocation_id=None):
        try:
            kind = json.loads(error_response_data).get("errorType") or "Unhandled"
        except (ValueError, AttributeError):
            kind = "Unhandled"
        data = error_response_data.encode() if isinstance(error_response_data, str) else error_response_data
        headers = {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": kind}
        self.request("POST", f"/invocation/{invoke_id}/error", data, headers)


def _parked_restore_next(client) -> None:
    """Init and the before-snapshot hooks are done: wait for restore orders; each is a fork.
    Returns only in a child (a restored environment)."""
    address = client.lambda_runtime_address
    signal.signal(signal.SIGCHLD, _reaper(address))
    while True:
        order = _call(address, "GET", "/restore/next")
        sys.stdout.flush()
        sys.stderr.flush()
        # Python reseeds ``random`` in a forked child (os.register_at_fork); a restored snapshot
        # holds a copy of the init's random state: the child gets that copy back.
        rnd = sys.modules.get("random")
        state = rnd.getstate() if rnd is not None else None
        pid = os.fork()
        if pid == 0:
            if state is not None:
                rnd.setstate(state)
            _become(client, order)
            return
        _call(address, "POST", "/restore/forked", {"order": order["order"], "pid": pid})


def main(argv: list[str]) -> None:
    from awslambdaric import __main__ as ric
    from awslambdaric.lambda_runtime_client import LambdaRuntimeClient

    LambdaRuntimeClient.restore_next = _parked_restore_next
    ric.main(argv)


if __name__ == "__main__":
    main(sys.argv)
