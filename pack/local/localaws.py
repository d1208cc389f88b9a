"""A local AWS: moto's server on 127.0.0.1, plus lambdapack's dispatcher so
that objects created in a wired bucket run the deployed function's code.

``deploy`` and ``wire`` talk to it unchanged through ``AWS_ENDPOINT_URL``.
moto serves from a process of its own (``motoprocess``), so S3 requests do not
share an interpreter lock with the dispatcher and the runtime API that feed the
functions. Each S3 notification arrives with the function as deployed at that
moment (configuration, and the zip by CodeSha256, unzipped once, read-only like
``/var/task``); an alias or version in the notification's ARN runs that version.
A retry asks moto again: it runs what the ARN names at the retry.

The function's asynchronous invocation config (PutFunctionEventInvokeConfig, for the
version or alias the ARN names) comes with each notice: its retry attempts and maximum
event age apply, and a failed invocation's record goes to its on-failure destination
(an SQS queue, SNS topic, S3 bucket or function of this endpoint), as on Lambda.

IAM is enforced (``motoprocess``): every request must be signed by a key moto
knows. Each start makes an administrator with fresh keys (``credentials``,
printed by ``client_environment``); a function runs with its execution role's
temporary keys, assumed through moto's STS as the Lambda service assumes them
(``_role_credentials``), so what its role does not allow fails here as on AWS.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
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

from ..atomic import built_once
from ..errors import ToolError
from ..limits import DEFAULT_REGION as REGION
from . import leftovers
from .dispatcher import Dispatcher
from .failures import AsyncConfig, event_keys
from .lambda_runtime import LocalRuntimes
from .motoprocess import code_name
from .sandbox import CREDENTIALS_MARGIN_S, FunctionSpec
from .taskdir import make_read_only

ROLE_CREDENTIALS_S = 3600  # how long a role's temporary keys last (STS AssumeRole's default)
ROLE_REFRESH_S = 900  # new keys for new environments once the cached ones have less left
START_TIMEOUT_S = 60
REQUEST_TIMEOUT_S = 30  # moto's process answers at once; longer means it is stuck


def _stderr_or_devnull():
    """moto's own prints go to this process's standard error when it has a real one."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL
    return sys.stderr


class ExecutionRoleRefused(RuntimeError):
    """Lambda cannot assume the function's role (missing, or not trusting lambda.amazonaws.com):
    the invocation fails, as Lambda's does."""


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
        role_credentials_s: int = ROLE_CREDENTIALS_S,
    ) -> None:
        self.cache_dir = cache_dir
        self.port = port
        self.concurrency = concurrency or os.cpu_count() or 1
        self.retry_delays = retry_delays
        self.log = log
        self.verbose = verbose  # moto's HTTP access log (one line per request) only when asked
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix=leftovers.WORKDIR_PREFIX))
        if self._own_workdir:
            leftovers.mark_workdir(self.workdir)  # found and removed by the next run if this one is killed
        self.moto: subprocess.Popen | None = None  # moto's server, in a process of its own
        self._notices = None
        self._replies: queue.Queue[dict] = queue.Queue()
        self._request_lock = threading.Lock()  # one request waiting for its reply at a time
        self._request_ids = itertools.count()
        self._moto_gone = threading.Event()  # its notices ended: requests fail at once
        self._bound_port: int | None = None
        self.dispatcher: Dispatcher | None = None
        # ARN -> the function as its last notice had it (configuration, zip), or why moto could not say
        self._deployed: dict[str, tuple[dict, Path] | str] = {}
        self._async: dict[str, AsyncConfig] = {}  # ARN -> its asynchronous invocation config, last seen
        self._submitted = 0  # invocations handed to the dispatcher
        self._clients_lock = threading.Lock()
        self._clients: dict[tuple[str, str], object] = {}
        self._reader: threading.Thread | None = None
        self._unpacking: list[threading.Thread] = []
        self._stopped = False
        self._log_queue: queue.Queue[dict | None] = queue.Queue()  # written by a thread of its own
        self._log_writer: threading.Thread | None = None
        self._admin: tuple[str, str] | None = None  # this start's administrator keys
        self.role_credentials_s = role_credentials_s
        self._roles_lock = threading.Lock()
        self._roles: dict[str, tuple[dict[str, str], float]] = {}  # role ARN -> its keys, their expiry

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> LocalAWS:
        if importlib.util.find_spec("moto") is None or importlib.util.find_spec("moto.server") is None:
            raise ToolError(
                "the local AWS endpoint needs moto's server",
                'Install it with: pip install "lambdapack[local]"',
            )
        try:
            self._start()
        except BaseException:
            self.stop()  # nothing started is left running
            raise
        return self

    def _start(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            self._notices = os.fdopen(read_fd, encoding="utf-8")
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
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
                stdout=_stderr_or_devnull(),  # moto prints now and then; the command's output stays clean
                pass_fds=(write_fd,),
                text=True,
                env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},  # IAM checked from the first request
            )
        finally:
            os.close(write_fd)
        ready = self._first_notice()
        self._bound_port, self._admin = ready["ready"], tuple(ready["admin"])
        runtimes = LocalRuntimes(self.cache_dir)
        self.dispatcher = Dispatcher(
            self._resolve,
            lambda spec: runtimes.for_runtime(spec.runtime, spec.architecture),
            self.workdir / "sandboxes",
            self.concurrency,
            self.retry_delays,
            extra_env={"AWS_ENDPOINT_URL": self.endpoint},
            log=self.log,
            on_result=self._write_logs,
            policy=lambda arn: self._async.get(arn) or AsyncConfig(),
            deliver=self._deliver,
            credentials=self._role_credentials,
        )
        self._reader = threading.Thread(target=self._read_notices, name="moto-notices", daemon=True)
        self._reader.start()
        self._log_writer = threading.Thread(target=self._send_logs, name="moto-logs", daemon=True)
        self._log_writer.start()

    def wait_idle(self, timeout: float) -> bool:
        """Until every invocation an S3 request has started so far is done (none queued,
        running or waiting for a retry; those a function's own writes start included) and
        their log lines are in CloudWatch Logs; False on timeout. moto notifies by a pipe: a
        barrier makes sure the dispatcher has every notice sent before it, and is asked again
        after the dispatcher is idle, until no new invocation came in meanwhile."""
        deadline = time.monotonic() + timeout
        left = lambda: max(0.0, deadline - time.monotonic())  # noqa: E731
        self._request({"sync": True}, left())
        while True:
            if not self.dispatcher.wait_idle(left()):
                return False
            seen = self._submitted
            self._request({"sync": True}, left())
            if self._submitted == seen:
                break
        while self._log_queue.unfinished_tasks:
            if not left():
                return False
            time.sleep(0.01)
        return True

    def _first_notice(self) -> dict:
        ready, _, _ = select.select([self._notices], [], [], START_TIMEOUT_S)
        line = self._notices.readline() if ready else ""
        if not line:
            code = self.moto.poll()
            raise ToolError(
                "the local AWS endpoint (moto's server) did not start"
                + (f": it exited with code {code}" if code is not None else f" in {START_TIMEOUT_S} s"),
                "Its messages are above; check that moto[server] is installed and the port is free.",
            )
        return json.loads(line)

    def _read_notices(self) -> None:
        """moto's notices: a function to invoke (the dispatcher runs it), code to unzip, or a
        reply. When they end (moto's process stopped or died), waiting requests fail."""
        try:
            for line in self._notices:
                notice = json.loads(line)
                if "reply" in notice:  # first: a reply may carry a function's code too
                    self._replies.put(notice)
                elif "invoke" in notice:
                    arn = notice["invoke"]
                    self._remember(arn, notice)
                    self._submitted += 1
                    self.dispatcher.submit(arn, notice["event"])
                elif "deleted" in notice:  # its invocations so far are cancelled, its environments end
                    threading.Thread(
                        target=self.dispatcher.retire,
                        args=(notice["deleted"], self.dispatcher.last_submitted),
                        daemon=True,
                    ).start()
                elif "code" in notice and not self._stopped:  # unzipped now, not in the first invocation
                    unpack = threading.Thread(
                        target=self._task_dir, args=(Path(notice["code"]), notice["sha256"]), daemon=True
                    )
                    self._unpacking.append(unpack)
                    unpack.start()
        except (OSError, ValueError):  # the pipe closed under us: stopping
            pass
        finally:
            self._moto_gone.set()
            self._replies.put({"gone": True})

    def _request(self, request: dict, timeout: float = REQUEST_TIMEOUT_S) -> dict:
        """Send one request to moto's process and wait for its answer (matched by id)."""
        with self._request_lock:
            if self._moto_gone.is_set():
                raise ToolError("the local AWS endpoint (moto's server) has stopped")
            number = next(self._request_ids)
            self.moto.stdin.write(json.dumps({**request, "id": number}) + "\n")
            self.moto.stdin.flush()
            deadline = time.monotonic() + min(timeout, REQUEST_TIMEOUT_S)
            while True:
                try:
                    reply = self._replies.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    raise ToolError("the local AWS endpoint (moto's server) did not answer in time") from None
                if reply.get("gone"):
                    raise ToolError("the local AWS endpoint (moto's server) has stopped")
                if reply.get("id") == number:  # an answer that came after its request gave up is dropped
                    return reply

    def stop(self) -> None:
        """Running invocations finish while moto still serves them; notices that arrive meanwhile
        are recorded as given up (the dispatcher is closed); then moto's process ends, its
        notices with it, and only then is anything removed."""
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
        if self._reader is not None:
            self._reader.join(timeout=10)  # ends with moto's notices
            self._reader = None
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

    @property
    def credentials(self) -> dict[str, str]:
        """This start's administrator keys (any other key is refused)."""
        assert self._admin is not None, "start() first"
        return {"AWS_ACCESS_KEY_ID": self._admin[0], "AWS_SECRET_ACCESS_KEY": self._admin[1]}

    def client_environment(self) -> dict[str, str]:
        """What a shell (or boto3) needs to talk to this endpoint, as its administrator."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            **self.credentials,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def client(self, service: str, region: str = REGION):
        """A boto3 client for this endpoint, created once (clients are thread-safe)."""
        with self._clients_lock:
            if (service, region) not in self._clients:
                self._clients[(service, region)] = boto3.client(
                    service,
                    endpoint_url=self.endpoint,
                    region_name=region,
                    aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
                )
            return self._clients[(service, region)]

    # --- the function's logs, where Lambda puts them -----------------------------------

    def _write_logs(self, spec: FunctionSpec, sandbox, result, event: dict) -> None:
        """Each invocation's lines into this endpoint's CloudWatch Logs, as Lambda writes them
        (group /aws/lambda/NAME, a stream per execution environment), so ``lambdapack logs``
        reads them here as it does on AWS. A failed invocation gets one more line, naming the
        event's object keys and the error (Lambda's own "Task timed out" line names only
        the request id)."""
        stream = f"{time.strftime('%Y/%m/%d')}/[{spec.version}]{sandbox.workdir.name}"
        group = f"/aws/lambda/{spec.name}"
        runtime = f"Runtime Version: {spec.runtime.replace('python', 'python:')}"
        lines = []
        snapshot = sandbox.snapshot
        with snapshot.lock if snapshot is not None else contextlib.nullcontext():
            first = snapshot is not None and snapshot.init_ms is not None and not snapshot.logged
            if first:
                snapshot.logged = True
        if first:
            # SnapStart: the version's init, once, in a stream of its own (Lambda's at publish)
            init = [f"INIT_START {runtime}"]
            init += [line for line in snapshot.init_logs.splitlines() if line.strip()]
            init.append(f"INIT_REPORT Init Duration: {snapshot.init_ms:.2f} ms")
            init_stream = f"{time.strftime('%Y/%m/%d')}/[{spec.version}]{snapshot.parked.workdir.name}"
            now = int(time.time() * 1000)
            init_events = [{"timestamp": now, "message": line} for line in init]
            self._log_queue.put({"logs": [spec.account, spec.region, group, init_stream, init_events]})
        if result.restored:
            lines += [
                f"RESTORE_START {runtime}",
                f"RESTORE_REPORT Restore Duration: {result.restore_ms:.2f} ms",
            ]
        lines.append(f"START RequestId: {result.request_id} Version: {spec.version}")
        lines += [line for line in result.logs.splitlines() if line.strip()]
        if result.error is not None:
            keys = ", ".join(event_keys(event)) or "(no object keys in the event)"
            lines.append(
                f"[lambdapack local] RequestId: {result.request_id} failed on {keys}: "
                f"{result.error.get('errorType')}: {result.error.get('errorMessage')}"
            )
        lines += [f"END RequestId: {result.request_id}", result.report_line(spec.memory)]
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": line} for line in lines]
        self._log_queue.put({"logs": [spec.account, spec.region, group, stream, events]})

    def _send_logs(self) -> None:
        """Log lines go to moto's process from here, not from the dispatcher's workers: an
        invocation never waits for its logs to be written (on Lambda neither)."""
        while (request := self._log_queue.get()) is not None:
            with contextlib.suppress(Exception):  # logs never fail an invocation
                self._request(request)
            self._log_queue.task_done()
        self._log_queue.task_done()

    # --- the function's identity -----------------------------------------------------

    def _role_credentials(self, spec: FunctionSpec) -> tuple[dict[str, str], float]:
        """The execution role's temporary keys for a new process of ``spec``, as Lambda passes
        them (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), and their expiry.
        Assumed through moto's STS once per role and again when less than ROLE_REFRESH_S (or
        half their life) would be left past the function's timeout; a role that is missing or
        does not trust Lambda fails the invocation."""
        with self._roles_lock:
            cached = self._roles.get(spec.role)
            # reused while a new environment could still run a while on them before it must
            # restart (the sandbox restarts one whose keys end within its timeout + a margin)
            needed_s = spec.timeout + CREDENTIALS_MARGIN_S + min(ROLE_REFRESH_S, self.role_credentials_s / 2)
            if cached is not None and cached[1] - time.time() > needed_s:
                return cached
            reply = self._request(
                {"assume": spec.role, "session": spec.name, "duration": self.role_credentials_s}
            )
            if reply["reply"] != "credentials":
                raise ExecutionRoleRefused(reply["error"])
            keys = reply["credentials"]
            found = (
                {
                    "AWS_ACCESS_KEY_ID": keys["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": keys["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": keys["SessionToken"],
                },
                float(keys["Expiration"]),
            )
            self._roles[spec.role] = found
            return found

    # --- the deployed function -------------------------------------------------------

    def _resolve(self, function_arn: str, attempt: int = 0) -> tuple[FunctionSpec, str]:
        """The function as moto had it deployed when it last asked for this ARN's invocation;
        for a retry, as moto has it now (Lambda's retry runs what the alias points at then)."""
        if attempt or function_arn not in self._deployed:  # a retry, or a function as a destination
            self._remember(function_arn, self._request({"function": function_arn}))
        deployed = self._deployed[function_arn]
        if isinstance(deployed, str):  # moto could not read the function it was wired to
            raise LookupError(deployed)
        config, code = deployed
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
            role=config.get("Role", ""),
            # a published version whose snapshot Lambda has made: its environments are restored
            snapstart=(config.get("SnapStart") or {}).get("OptimizationStatus") == "On",
        )
        return spec, code_sha256

    def _remember(self, function_arn: str, notice: dict) -> None:
        """The function an ARN names as a notice or reply has it (or why moto could not say);
        its asynchronous invocation config is kept even when the function is gone, so that its
        cancelled invocations still reach its destination."""
        if "configuration" in notice:
            self._deployed[function_arn] = (notice["configuration"], Path(notice["code"]))
            self._async[function_arn] = AsyncConfig.from_api(notice.get("invoke_config"))
        else:
            self._deployed[function_arn] = notice.get("error") or "moto could not read the function"

    def _deliver(self, destination: str, record: dict) -> str:
        """An invocation record to an on-failure destination of this endpoint, as Lambda sends
        it: an SQS message, an SNS message, an S3 object (``aws/lambda/async/FUNCTION/…``), or
        an asynchronous invocation of a function. Returns where it went; raises if it could not."""
        parts = destination.split(":")
        service, region, account = parts[2], parts[3] or REGION, parts[4]
        body = json.dumps(record)
        if service == "sqs":
            sqs = self.client("sqs", region)
            url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=account)["QueueUrl"]
            message = sqs.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
            return f"SQS queue {parts[5]} (message {message})"
        if service == "sns":
            self.client("sns", region).publish(TopicArn=destination, Message=body)
            return f"SNS topic {parts[5]}"
        if service == "s3":
            function = record["requestContext"]["functionArn"].split(":")[6]
            stamp = record["timestamp"][:19].replace(":", ".")
            key = f"aws/lambda/async/{function}/{stamp[:13].replace('-', '/').replace('T', '/')}/"
            key += f"{stamp}-{record['requestContext']['requestId']}"
            self.client("s3").put_object(Bucket=parts[5], Key=key, Body=body.encode())
            return f"s3://{parts[5]}/{key}"
        if service == "lambda":
            self.dispatcher.submit(destination, record)
            return f"function {parts[6]} (invoked)"
        raise ValueError(f"{service} is not a destination the local AWS delivers to")

    def _task_dir(self, code: Path, code_sha256: str) -> Path:
        """The code unzipped once, read-only, as /var/task (other code and invocations are
        not held up while it unzips)."""

        def unzip(work: Path) -> None:
            with zipfile.ZipFile(code) as archive:
                archive.extractall(work)
            make_read_only(work)

        folder = self.workdir / "code" / code_name(code_sha256)
        built_once(folder, unzip)
        return folder


def _make_writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
