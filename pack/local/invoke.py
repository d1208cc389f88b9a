"""Run a packed zip once, locally: ``lambdapack invoke``.

``ZipFunction`` unzips the zip (once: ``taskdir.unzipped`` keeps it in the cache for
the next run of the same zip), reads its build record for the runtime and
architecture, and runs it in the local runtime where its target runs (this
machine's Python or a container of the target's, see ``LocalRuntimes``).

``classify_files`` classifies image files from this machine with the zip's own
handler code and no S3 of the user's: a private S3 (``private_s3.PrivateS3``, moto's
server on 127.0.0.1, for this call only) holds the images, the function is invoked with the S3 event
an upload would send, and the result objects it writes are returned — the same
objects it would write to a real bucket.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lambdapack.handler.lambdapack_handler.contract import (
    DEFAULT_OUTPUT_PREFIX,
    OUTPUT_BUCKET,
    OUTPUT_PREFIX,
    result_key,
)

from .. import limits
from ..errors import InputError
from ..packing.report import build_record_in
from ..packing.target import host_arch, host_python
from .lambda_runtime import LocalRuntimes
from .private_s3 import PrivateS3
from .s3event import s3_event
from .sandbox import FunctionSpec, Result, Sandbox
from .taskdir import unzipped


@dataclass
class InvokeOptions:
    cache_dir: Path
    timeout: float = 60.0
    memory: int = limits.DEFAULT_MEMORY_MB
    environment: dict[str, str] = field(default_factory=dict)
    passed: dict[str, str] = field(default_factory=dict)  # e.g. AWS_ENDPOINT_URL and credentials
    region: str = limits.DEFAULT_REGION


class ZipFunction:
    """A zip, unzipped (or found unzipped) in the cache and run in its own sandbox."""

    def __init__(self, zip_path: Path, options: InvokeOptions) -> None:
        if not zipfile.is_zipfile(zip_path):
            raise InputError(f"{zip_path} is not a zip file", "Pack one first: lambdapack pack MODEL.")
        self.zip_path = zip_path
        self.options = options
        with zipfile.ZipFile(zip_path) as archive:
            target = build_record_in(archive).get("target") or {}
        # A zip lambdapack did not pack names no target: run it in this machine's Python.
        runtime = target.get("runtime", f"python{host_python()}")
        architecture = target.get("architecture", host_arch() or "x86_64")
        paths, python = LocalRuntimes(options.cache_dir).for_runtime(runtime, architecture)
        self._held = contextlib.ExitStack()  # the unzipped code, in use until close()
        task = self._held.enter_context(unzipped(zip_path, options.cache_dir))
        self._work = tempfile.TemporaryDirectory(prefix="lambdapack-invoke-")
        self.spec = FunctionSpec(
            name=zip_path.stem,
            task_dir=task,
            timeout=options.timeout,
            memory=options.memory,
            environment=dict(options.environment),
            region=options.region,
            runtime=runtime,
            architecture=architecture,
        )
        self.sandbox = Sandbox(self.spec, paths, Path(self._work.name) / "sandbox", options.passed, python)

    def invoke(self, event: dict) -> Result:
        return self.sandbox.invoke(json.dumps(event).encode())

    def close(self) -> None:
        self.sandbox.stop()
        self._held.close()
        self._work.cleanup()

    def __enter__(self) -> ZipFunction:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


BATCH = 25  # images per invocation: a folder of thousands never meets the function's timeout at once


def classify_files(
    zip_path: Path, files: list[Path], options: InvokeOptions, batch: int = BATCH
) -> tuple[list[dict], list[Result]]:
    """The result object the function writes for each file, in order, and the invocations
    (``batch`` images each, one warm execution environment). An image whose invocation failed
    gets an error object (``NoResult``) naming why."""
    for path in files:
        if not path.is_file():
            raise InputError(f"{path} is not a file")
    with PrivateS3(options.region) as s3:
        keys = s3.upload(files, "images/")
        private = dataclasses.replace(
            options,
            # Results go where this call can read them: the private bucket, not one of the user's.
            environment={k: v for k, v in options.environment.items() if k != OUTPUT_BUCKET},
            passed=s3.function_environment(),
        )
        prefix = private.environment.get(OUTPUT_PREFIX, DEFAULT_OUTPUT_PREFIX)
        results: list[Result] = []
        why: dict[str, str] = {}
        with ZipFunction(zip_path, private) as function:
            for start in range(0, len(keys), batch):
                chunk = keys[start : start + batch]
                result = function.invoke(s3_event(s3.bucket, chunk))
                results.append(result)
                if not result.ok:
                    failed = result.error or {}
                    reason = f"{failed.get('errorType', 'Error')}: {failed.get('errorMessage', '')}".rstrip(
                        ": "
                    )
                    why.update(dict.fromkeys(chunk, f"the invocation failed ({reason})"))
        client, objects = s3.client(), []
        for key in keys:
            try:
                body = client.get_object(Bucket=s3.bucket, Key=result_key(prefix, key))["Body"].read()
                objects.append(json.loads(body))
            except client.exceptions.NoSuchKey:
                message = why.get(key, "no result")
                objects.append({"input": {"key": key}, "error": {"type": "NoResult", "message": message}})
        return objects, results


def passed_environment() -> dict[str, str]:
    """What of this shell's AWS settings the function sees (a local endpoint and its keys)."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")
    return {name: os.environ[name] for name in names if name in os.environ}
