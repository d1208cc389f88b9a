"""moto's server in a process of its own: ``python -m lambdapack.local.motoprocess``.

The local AWS used to serve moto from the dispatcher's process, where every S3
request (the user's upload, the function's GET and PUT) held the same
interpreter lock as the runtime API that feeds the functions. Here moto has its
own interpreter; the local AWS (``localaws.LocalAWS``) talks to it by two pipes,
one JSON object per line:

- notices, this process -> the local AWS (a pipe whose descriptor is the first
  argument): ``{"ready": PORT}`` once serving, then ``{"invoke": ARN, "event":
  ..., "configuration": ..., "code": PATH, "invoke_config": ...}`` for each S3
  notification that names a function, and for each asynchronous Invoke
  (``InvocationType=Event``) (moto's own event, or the Invoke's payload; the function
  as deployed now, its zip written once per CodeSha256 under the code folder, the
  asynchronous invocation config of the version or alias the ARN names or null; or
  ``"error"`` instead when moto cannot read the function), ``{"code": PATH, "sha256": ...}``
  when a function's code is stored (so it is unzipped before it is first
  invoked), ``{"deleted": NAME}`` when a function is deleted (its execution
  environments end), and ``{"reply": ...}`` answers;
- requests, the local AWS -> this process (standard input), each with an
  ``"id"`` its answer repeats: ``{"sync": true}``,
  answered ``{"reply": "synced"}`` after every notice already sent (a barrier:
  when the local AWS reads the answer, it has queued every invocation that an S3
  request answered before it asked), ``{"function": ARN}``, answered ``{"reply":
  "function", "configuration": ..., "code": PATH, "invoke_config": ...}`` (what the ARN runs now: for a
  retry), ``{"logs": [account, region, group, stream, events]}``, answered
  ``{"reply": "ok"}``, and ``{"assume": ROLE ARN, "session": NAME, "duration": S}``,
  answered ``{"reply": "credentials", "credentials": ...}`` (the execution role's
  temporary keys, as Lambda gets them) or ``{"reply": "refused", "error": ...}``
  (the role is missing or does not trust Lambda); any but the barrier may be
  answered with an error.

moto's IAM access control is on from the first request: the local AWS starts
this process with ``INITIAL_NO_AUTH_ACTION_COUNT=0`` in its environment
(``motoseam.enforce_iam`` refuses to serve without it).

Standard input closing (the local AWS stopped or died) ends this process.
Standard output is not used: moto prints there now and then.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from ..atomic import write_whole
from . import motoseam


class Notices:
    """The pipe to the local AWS; moto's request threads write to it at once."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()

    def send(self, message: dict) -> None:
        line = json.dumps(message, default=str) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()


def code_name(code_sha256: str) -> str:
    """A CodeSha256 (base64) as a file or folder name."""
    return code_sha256.replace("/", "_").replace("+", "-").rstrip("=")


def deployed_function(function_arn: str, code_dir: Path) -> dict:
    """What the ARN runs now, as a notice's fields: its configuration, its zip as a file the
    local AWS unzips (written once per CodeSha256, whole or not at all), and the
    asynchronous invocation config of the version or alias it names (or null)."""
    function = motoseam.function(function_arn)
    configuration = function.get_configuration()
    path = code_dir / f"{code_name(configuration['CodeSha256'])}.zip"
    if not path.exists():
        write_whole(path, function.code_bytes or b"")
    invoke_config = motoseam.event_invoke_config(function_arn)
    return {"configuration": configuration, "code": str(path), "invoke_config": invoke_config}


def main() -> None:
    notice_fd, port, verbose, code_dir = sys.argv[1:5]
    verbose, code_dir = verbose == "1", Path(code_dir)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the local AWS, which ends this
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)
    notices = Notices(int(notice_fd))
    code_dir.mkdir(parents=True, exist_ok=True)

    def invoke(function_arn: str, event: dict) -> None:
        """Never fails the S3 request that caused it (as moto's own Lambda call does not): a
        function that is gone is the local AWS's to record as a failed invocation."""
        try:
            deployed = deployed_function(function_arn, code_dir)
        except Exception as exc:
            notices.send({"invoke": function_arn, "event": event, "error": f"{type(exc).__name__}: {exc}"})
            return
        notices.send({"invoke": function_arn, "event": event, **deployed})

    def stored(function_arn: str) -> None:
        deployed = deployed_function(function_arn, code_dir)
        notices.send({"code": deployed["code"], "sha256": deployed["configuration"]["CodeSha256"]})

    motoseam.install(invoke)
    motoseam.keep_event_invoke_configs()
    motoseam.keep_snapstart()
    motoseam.keep_version_numbers()
    motoseam.enforce_iam()
    admin = motoseam.create_admin()
    motoseam.watch_code(stored)
    motoseam.watch_deletes(lambda name: notices.send({"deleted": name}))
    server = motoseam.make_server("127.0.0.1", int(port))
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    notices.send({"ready": server.server_address[1], "admin": list(admin)})
    for line in sys.stdin:
        request = json.loads(line)
        number = request.get("id")
        if "sync" in request:  # after every notice sent before it, in the pipe's order
            notices.send({"reply": "synced", "id": number})
            continue
        try:
            if "assume" in request:  # the execution role's keys, as the Lambda service assumes it
                try:
                    credentials = motoseam.assume_for_lambda(
                        request["assume"], request["session"], request["duration"]
                    )
                except motoseam.RoleRefused as refused:
                    notices.send({"reply": "refused", "id": number, "error": str(refused)})
                    continue
                notices.send({"reply": "credentials", "id": number, "credentials": credentials})
            elif "function" in request:  # what the ARN runs now (a retry, as Lambda's)
                deployed = deployed_function(request["function"], code_dir)
                notices.send({"reply": "function", "id": number, **deployed})
            else:
                motoseam.write_log_events(*request["logs"])
                notices.send({"reply": "ok", "id": number})
        except Exception as exc:  # answered, never fatal
            notices.send({"reply": "error", "id": number, "error": f"{type(exc).__name__}: {exc}"})
    server.shutdown()


if __name__ == "__main__":
    main()
