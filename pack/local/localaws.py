"""A local AWS: moto's server on 127.0.0.1, plus lambdapack's dispatcher so
that objects created in a wired bucket run the deployed function's code.

``deploy`` and ``wire`` talk to it unchanged through ``AWS_ENDPOINT_URL``.
The function that runs is the one deployed: its configuration is read with
``get_function`` at each invocation, its code from moto (by CodeSha256,
unzipped once, read-only like ``/var/task``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import stat
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import boto3

from ..errors import ToolError
from . import motoseam
from .dispatcher import Dispatcher
from .lambda_runtime import LocalRuntimes
from .sandbox import FunctionSpec

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"


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
        self.server = None
        self.dispatcher: Dispatcher | None = None
        self._original = None
        self._code_lock = threading.RLock()
        self._clients: dict[str, object] = {}

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> LocalAWS:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ToolError(
                "the local AWS endpoint needs moto's server",
                'Install it with: pip install "lambdapack[local]"',
            ) from exc

        runtimes = LocalRuntimes(self.cache_dir)
        logging.getLogger("werkzeug").setLevel(logging.INFO if self.verbose else logging.WARNING)
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        motoseam.remember_backends(self.server)
        # moto keeps its state per process: a new local AWS starts empty.
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).read()
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
        self._original = motoseam.install(self.dispatcher.submit)
        return self

    def stop(self) -> None:
        if self._original is not None:
            motoseam.uninstall(self._original)
            self._original = None
        if self.dispatcher is not None:
            self.dispatcher.close()
        if self.server is not None:
            self.server.stop()
            self.server = None
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
        assert self.server is not None
        host, port = self.server.get_host_and_port()
        return f"http://{host}:{port}"

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
        with self._code_lock, contextlib.suppress(Exception):  # logs never fail an invocation
            motoseam.write_log_events(spec.account, spec.region, f"/aws/lambda/{spec.name}", stream, events)

    # --- the deployed function -------------------------------------------------------

    def _resolve(self, function_arn: str) -> tuple[FunctionSpec, str]:
        config = motoseam.configuration(function_arn)
        parts = config["FunctionArn"].split(":")
        region, account = parts[3], parts[4]
        code_sha256 = config["CodeSha256"]
        task = self._task_dir(account, region, config["FunctionName"], code_sha256)
        spec = FunctionSpec(
            name=config["FunctionName"],
            task_dir=task,
            handler=config["Handler"],
            runtime=config["Runtime"],
            memory=config.get("MemorySize", 128),
            timeout=float(config.get("Timeout", 3)),
            environment=(config.get("Environment") or {}).get("Variables", {}),
            region=region,
            account=account,
            ephemeral_mb=(config.get("EphemeralStorage") or {}).get("Size", 512),
            architecture=(config.get("Architectures") or ["x86_64"])[0],
        )
        return spec, code_sha256

    def _task_dir(self, account: str, region: str, function: str, code_sha256: str) -> Path:
        folder = self.workdir / "code" / code_sha256.replace("/", "_").replace("+", "-").rstrip("=")
        with self._code_lock:
            if not folder.exists():
                data = motoseam.code_bytes(account, region, function)
                pending = folder.with_name(folder.name + ".partial")
                if pending.exists():
                    shutil.rmtree(pending)
                with zipfile.ZipFile(io.BytesIO(data)) as archive:
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
