"""A local AWS: moto's server on 127.0.0.1, plus lambdapack's dispatcher so
that objects created in a wired bucket run the deployed function's code.

``deploy`` and ``wire`` talk to it unchanged through ``AWS_ENDPOINT_URL``.
moto serves from a process of its own (``motoprocess``), so S3 requests do not
share an interpreter lock with the dispatcher and the runtime API that feed the
functions. Each S3 notification arrives with the function as deployed at that
moment (configuration, and the zip by CodeSha256, unzipped once, read-only like
``/var/task``); an alias or version in the notification's ARN runs that version.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import boto3

from ..errors import ToolError
from .dispatcher import Dispatcher
from .lambda_runtime import LocalRuntimes
from .sandbox import FunctionSpec

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"
START_TIMEOUT_S = 60


class LocalAWS:
    def __init__(
        self,
        cache_dir: Path,
        port: int = 0,
        concurrency: int | None = None,
        retry_delays: tuple[float, ...] = (1.0, 2.0),
        workdir: Path | None = None,
        log: Callable[[str], None] | None = None,
        verbose: bool = False,
    ) -> None:
        self.cache_dir = cache_dir
        self.port = port
        self.concurrency = concurrency or os.cpu_count() or 1
        self.retry_delays = retry_delays
        self.log = log
        self.verbose = verbose  # moto's HTTP access log (one line per request) only when asked
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="lambdapack-local-"))
        self.moto: subprocess.Popen | None = None  # moto's server, in a process of its own
        self._notices = None
        self._replies: queue.Queue[dict] = queue.Queue()
        self._request_lock = threading.Lock()  # one request waiting for its reply at a time
        self._bound_port: int | None = None
        self.dispatcher: Dispatcher | None = None
        self._deployed: dict[str, tuple[dict, Path]] = {}  # ARN -> (configuration, zip) when last invoked
        self._code_lock = threading.RLock()
        self._clients: dict[str, object] = {}
        self._reader: threading.Thread | None = None
        self._unpacking: list[threading.Thread] = []
        self._stopped = False
        self._log_queue: queue.Queue[dict | None] = queue.Queue()  # written by a thread of its own
        self._log_writer: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> LocalAWS:
        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("moto.server") is None:
            raise ToolError(
                "the local AWS endpoint needs moto's server",
                'Install it with: pip install "lambdapack[local]"',
            )
        read_fd, write_fd = os.pipe()
        try:
            self.moto = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "lambdapack.local.motoprocess",
                    str(write_fd),
                    str(self.port),
                    "1" if self.verbose else "0",
                    str(self.workdir / "code" / "zips"),
                ],
                stdin=subprocess.PIPE,
                stdout=sys.stderr,  # moto prints now and then; the command's own output stays clean
                pass_fds=(write_fd,),
                text=True,
            )
        finally:
            os.close(write_fd)
        self._notices = os.fdopen(read_fd, encoding="utf-8")
        self._bound_port = self._first_notice()["ready"]
        runtimes = LocalRuntimes(self.cache_dir)
        self.dispatcher = Dispatcher(
            self._resolve,
            lambda spec: runtimes.for_runtime(spec.runtime, spec.architecture),
            self.workdir / "sandboxes",
            self.concurrency,
            self.retry_delays,
            extra_env={"AWS_ENDPOINT_URL": self.endpoint, **CREDENTIALS},
            log=self.log,
            on_result=self._write_logs,
        )
        self._reader = threading.Thread(target=self._read_notices, name="moto-notices", daemon=True)
        self._reader.start()
        self._log_writer = threading.Thread(target=self._send_logs, name="moto-logs", daemon=True)
        self._log_writer.start()
        return self

    def wait_idle(self, timeout: float) -> bool:
        """Until every invocation an S3 request has started so far is done (none queued,
        running or waiting for a retry) and their log lines are in CloudWatch Logs; False
        on timeout. moto notifies by a pipe: the barrier makes sure the dispatcher has every
        notice sent before this call."""
        self._request({"sync": True})
        if not self.dispatcher.wait_idle(timeout):
            return False
        self._log_queue.join()
        return True

    def _first_notice(self) -> dict:
        ready, _, _ = select.select([self._notices], [], [], START_TIMEOUT_S)
        line = self._notices.readline() if ready else ""
        if not line:
            code = self.moto.poll()
            self.stop()
            raise ToolError(
                "the local AWS endpoint (moto's server) did not start"
                + (f": it exited with code {code}" if code is not None else f" in {START_TIMEOUT_S} s"),
                "Its messages are above; check that moto[server] is installed and the port is free.",
            )
        return json.loads(line)

    def _read_notices(self) -> None:
        """moto's notices: a function to invoke (the dispatcher runs it), or a reply."""
        for line in self._notices:
            notice = json.loads(line)
            if "invoke" in notice:
                arn = notice["invoke"]
                self._deployed[arn] = (notice["configuration"], Path(notice["code"]))
                self.dispatcher.submit(arn, notice["event"])
            elif "code" in notice:  # unzipped now, not in the first invocation
                unpack = threading.Thread(
                    target=self._task_dir, args=(Path(notice["code"]), notice["sha256"]), daemon=True
                )
                self._unpacking.append(unpack)
                unpack.start()
            elif "reply" in notice:
                self._replies.put(notice)

    def _request(self, request: dict) -> dict:
        with self._request_lock:
            self.moto.stdin.write(json.dumps(request) + "\n")
            self.moto.stdin.flush()
            return self._replies.get(timeout=30)

    def stop(self) -> None:
        if self.dispatcher is not None and not self._stopped:
            self.dispatcher.close()  # kept: its stats are read after the stop
        self._stopped = True
        if self._log_writer is not None:
            self._log_queue.put(None)  # after the lines already queued
            self._log_writer.join(timeout=30)
            self._log_writer = None
        if self.moto is not None:
            with contextlib.suppress(OSError):
                self.moto.stdin.close()  # moto's process ends when its input does
            try:
                self.moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.moto.kill()
                self.moto.wait()
            self.moto = None
        if self._notices is not None:
            self._notices.close()
            self._notices = None
        for unpack in self._unpacking:
            unpack.join()
        self._clients.clear()
        if self._own_workdir and self.workdir.exists():
            _make_writable(self.workdir)
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalAWS:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        assert self._bound_port is not None, "start() first"
        return f"http://127.0.0.1:{self._bound_port}"

    def client_environment(self) -> dict[str, str]:
        """What a shell (or boto3) needs to talk to this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            **CREDENTIALS,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def client(self, service: str):
        """A boto3 client for this endpoint, created once (clients are thread-safe)."""
        with self._code_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(
                    service,
                    endpoint_url=self.endpoint,
                    region_name=REGION,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                )
            return self._clients[service]

    # --- the function's logs, where Lambda puts them -----------------------------------

    def _write_logs(self, spec: FunctionSpec, sandbox, result) -> None:
        """Each invocation's lines into this endpoint's CloudWatch Logs, as Lambda writes them
        (group /aws/lambda/NAME, a stream per execution environment), so ``lambdapack logs``
        reads them here as it does on AWS."""
        stream = f"{time.strftime('%Y/%m/%d')}/[{spec.version}]{sandbox.workdir.name}"
        lines = [f"START RequestId: {result.request_id} Version: {spec.version}"]
        lines += [line for line in result.logs.splitlines() if line.strip()]
        lines += [f"END RequestId: {result.request_id}", result.report_line(spec.memory)]
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines]
        group = f"/aws/lambda/{spec.name}"
        self._log_queue.put({"logs": [spec.account, spec.region, group, stream, events]})

    def _send_logs(self) -> None:
        """Log lines go to moto's process from here, not from the dispatcher's workers: an
        invocation never waits for its logs to be written (on Lambda neither)."""
        while (request := self._log_queue.get()) is not None:
            with contextlib.suppress(Exception):  # logs never fail an invocation
                self._request(request)
            self._log_queue.task_done()
        self._log_queue.task_done()

    # --- the deployed function -------------------------------------------------------

    def _resolve(self, function_arn: str) -> tuple[FunctionSpec, str]:
        """The function as moto had it deployed when it last asked for this ARN's invocation."""
        config, code = self._deployed[function_arn]
        parts = config["FunctionArn"].split(":")
        region, account = parts[3], parts[4]
        code_sha256 = config["CodeSha256"]
        spec = FunctionSpec(
            name=config["FunctionName"],
            task_dir=self._task_dir(code, code_sha256),
            handler=config["Handler"],
            runtime=config["Runtime"],
            memory=config.get("MemorySize", 128),
            timeout=float(config.get("Timeout", 3)),
            environment=(config.get("Environment") or {}).get("Variables", {}),
            region=region,
            account=account,
            version=config.get("Version", "$LATEST"),
            ephemeral_mb=(config.get("EphemeralStorage") or {}).get("Size", 512),
            architecture=(config.get("Architectures") or ["x86_64"])[0],
        )
        return spec, code_sha256

    def _task_dir(self, code: Path, code_sha256: str) -> Path:
        folder = self.workdir / "code" / code_sha256.replace("/", "_").replace("+", "-").rstrip("=")
        with self._code_lock:
            if not folder.exists():
                pending = folder.with_name(folder.name + ".partial")
                if pending.exists():
                    shutil.rmtree(pending)
                with zipfile.ZipFile(code) as archive:
                    archive.extractall(pending)
                _make_read_only(pending)
                pending.rename(folder)
        return folder


def _make_read_only(root: Path) -> None:
    """/var/task is read-only on Lambda; a function that writes there fails here too."""
    for path in [*root.rglob("*"), root]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
