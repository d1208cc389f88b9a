"""The Lambda Runtime API for one sandbox, served on 127.0.0.1.

Documented and small: the function process asks for the next event
(``GET /2018-06-01/runtime/invocation/next``, which blocks until there is
one), then posts its response or error for that request id; an init failure
is posted to ``/runtime/init/error`` (and, in an environment restored from a SnapStart
snapshot, a failed after-restore hook to ``/runtime/restore/error``). Sockets get ``TCP_NODELAY``: without it
every call waited ~40 ms on delayed ACKs.
"""

from __future__ import annotations

import json
import queue
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


@dataclass
class Invocation:
    request_id: str
    event: bytes
    deadline_ms: int
    function_arn: str
    done: threading.Event = field(default_factory=threading.Event)
    started: float | None = None  # when the function received it
    finished: float | None = None
    response: bytes | None = None
    error: dict | None = None


class RuntimeAPI:
    """One server per sandbox: a queue of invocations the function process pulls."""

    def __init__(self) -> None:
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.inflight: dict[str, Invocation] = {}
        self.init_error: dict | None = None
        self.first_poll: float | None = None  # when init finished (first /next)
        self.init_failed = threading.Event()
        api = self

        class Handler(JSONHandler):
            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorMessage": "unknown path"}')
                if api.first_poll is None:
                    api.first_poll = time.perf_counter()
                invocation = api.pending.get()
                invocation.started = time.perf_counter()
                api.inflight[invocation.request_id] = invocation
                self._reply(
                    200,
                    invocation.event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                        "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
                        "Lambda-Runtime-Trace-Id": _trace_id(invocation.request_id),
                    },
                )

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path in (f"{PREFIX}/init/error", f"{PREFIX}/restore/error"):
                    api.init_error = _error(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                    api.init_failed.set()
                    return self._reply(202, b'{"status": "OK"}')
                parts = self.path[len(PREFIX) :].strip("/").split("/")
                if len(parts) != 3 or parts[0] != "invocation" or parts[2] not in ("response", "error"):
                    return self._reply(404, b'{"errorMessage": "unknown path"}')
                invocation = api.inflight.pop(parts[1], None)
                if invocation is None:
                    return self._reply(400, b'{"errorMessage": "unknown request id"}')
                invocation.finished = time.perf_counter()
                if parts[2] == "response":
                    invocation.response = body
                else:
                    invocation.error = _error(body, self.headers.get("Lambda-Runtime-Function-Error-Type"))
                invocation.done.set()
                self._reply(202, b'{"status": "OK"}')

        self.server, self.thread = serve(Handler, "runtime-api")

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def submit(self, invocation: Invocation) -> None:
        self.pending.put(invocation)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        """The function process going away mid-request (killed at a timeout, out of memory,
        or when its environment stops) is the sandbox's to report, not a traceback here."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class JSONHandler(BaseHTTPRequestHandler):
    """What the local Runtime API servers share: HTTP/1.1 keep-alive with no Nagle delay
    (the runtime client polls on one connection), no request log, JSON replies."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def serve(handler: type[JSONHandler], name: str) -> tuple[_Server, threading.Thread]:
    """``handler`` served on a free port of 127.0.0.1, on a daemon thread called ``name``."""
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return server, thread


def _trace_id(request_id: str) -> str:
    digits = request_id.replace("-", "")
    return f"Root=1-{digits[:8]}-{digits[8:32]}"


def _error(body: bytes, error_type: str | None) -> dict:
    try:
        error = json.loads(body or b"{}")
    except json.JSONDecodeError:
        error = {"errorMessage": body.decode(errors="replace")}
    if error_type and "errorType" not in error:
        error["errorType"] = error_type
    return error
