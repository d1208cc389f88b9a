"""The local Lambda runtime (AWS's runtime interface client against
lambdapack's Runtime API) on hand-made function folders."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from lambdapack.local.lambda_runtime import runtime_boto3, runtime_interface_client
from lambdapack.local.sandbox import FunctionSpec, Sandbox

pytestmark = pytest.mark.functional

GOOD = """
import os, sys, time
COUNT = 0
def handler(event, context):
    global COUNT
    COUNT += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise ValueError("bad input")
    if event.get("crash"):
        os._exit(3)
    return {"count": COUNT, "request_id": context.aws_request_id, "name": context.function_name,
            "memory": context.memory_limit_in_mb, "tmp": os.environ["TMPDIR"],
            "path": [p for p in sys.path if "site-packages" in p], "env": os.environ.get("GREETING")}
"""


@pytest.fixture(scope="module")
def runtime_paths(cache_dir):
    return [runtime_boto3(cache_dir), runtime_interface_client(cache_dir)]


def sandbox(tmp_path, runtime_paths, source: str, timeout: float = 5, **spec) -> Sandbox:
    task = tmp_path / "task"
    task.mkdir(exist_ok=True)
    (task / "index.py").write_text(source)
    return Sandbox(
        FunctionSpec("fn", task, timeout=timeout, memory=256, **spec), runtime_paths, tmp_path / "sb"
    )


def call(box: Sandbox, event: dict):
    result = box.invoke(json.dumps(event).encode())
    return result, (json.loads(result.payload) if result.payload else None)


def test_cold_then_warm_with_a_full_context(tmp_path, runtime_paths):
    box = sandbox(tmp_path, runtime_paths, GOOD, environment={"GREETING": "hi"})
    try:
        first, body = call(box, {})
        assert first.ok and first.cold and first.init_ms > 0
        assert body["count"] == 1 and body["request_id"] == first.request_id
        assert body["name"] == "fn" and str(body["memory"]) == "256" and body["env"] == "hi"
        assert body["tmp"].startswith(str(box.workdir)) and body["path"] == []
        second, body = call(box, {})
        assert not second.cold and second.init_ms is None and body["count"] == 2
        assert "Init Duration" in first.report_line(box.spec.memory)
        assert "Init Duration" not in second.report_line(box.spec.memory)
    finally:
        box.stop()


def test_a_handler_exception_comes_back_in_lambdas_error_shape_and_the_process_stays(tmp_path, runtime_paths):
    box = sandbox(tmp_path, runtime_paths, GOOD)
    try:
        failed, _ = call(box, {"fail": True})
        assert failed.error["errorType"] == "ValueError" and failed.error["errorMessage"] == "bad input"
        assert "stackTrace" in failed.error and "bad input" in failed.logs
        after, body = call(box, {})
        assert after.ok and not after.cold and body["count"] == 2
    finally:
        box.stop()


def test_import_error_is_an_init_error(tmp_path, runtime_paths):
    box = sandbox(tmp_path, runtime_paths, "import not_a_module\ndef handler(e, c): return 1\n")
    try:
        result, _ = call(box, {})
        assert result.error["errorType"] == "Runtime.ImportModuleError"
        assert "not_a_module" in result.error["errorMessage"]
        assert not box.alive()
    finally:
        box.stop()


def test_missing_handler_function_is_reported(tmp_path, runtime_paths):
    box = sandbox(tmp_path, runtime_paths, "def other(e, c): return 1\n")
    try:
        result, _ = call(box, {})
        assert result.error["errorType"] == "Runtime.HandlerNotFound"
    finally:
        box.stop()


def test_a_timeout_kills_the_process_and_the_next_call_is_a_cold_start(tmp_path, runtime_paths):
    box = sandbox(tmp_path, runtime_paths, GOOD, timeout=1)
    try:
        call(box, {})
        slow, _ = call(box, {"sleep": 5})
        assert slow.error["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in slow.error["errorMessage"]
        assert not box.alive()
        again, body = call(box, {})
        assert again.ok and again.cold and body["count"] == 1
    finally:
        box.stop()


def test_a_crash_is_reported_and_the_next_call_recovers(tmp_path, runtime_paths):
    box = sandbox(tmp_path, runtime_paths, GOOD)
    try:
        crashed, _ = call(box, {"crash": True})
        assert (
            crashed.error["errorType"] == "Runtime.ExitError"
            and "exit status 3" in crashed.error["errorMessage"]
        )
        again, body = call(box, {})
        assert again.ok and again.cold and body["count"] == 1
    finally:
        box.stop()


TMP_KEEPER = """
import os
MARK = os.path.join(os.environ["TMPDIR"], "mark")
FOUND_AT_INIT = os.path.exists(MARK)
def handler(event, context):
    open(MARK, "w").write("x")
    if event.get("crash"):
        os._exit(3)
    return {"found_at_init": FOUND_AT_INIT}
"""


def test_a_reset_keeps_tmp_and_a_new_environment_starts_empty(tmp_path, runtime_paths):
    box = sandbox(tmp_path, runtime_paths, TMP_KEEPER)
    try:
        first, body = call(box, {"crash": True})
        assert first.error["errorType"] == "Runtime.ExitError"
        again, body = call(box, {})
        # Lambda's reset after a crash or timeout does not clear /tmp.
        assert again.cold and body["found_at_init"] is True
    finally:
        box.stop()
    fresh = sandbox(tmp_path, runtime_paths, TMP_KEEPER)
    try:
        _, body = call(fresh, {})
        assert body["found_at_init"] is False
    finally:
        fresh.stop()


def test_invoke_command_runs_the_packed_zip_and_prints_a_report_line(packed, cache_dir):
    from .conftest import ROOT, run_cli

    out, _, _ = packed
    proc = run_cli(
        "invoke",
        str(out / "function.zip"),
        "--event",
        str(ROOT / "tests" / "events" / "s3-test-event.json"),
        cache=cache_dir,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["processed"] == 0
    assert "REPORT RequestId:" in proc.stderr and "Init Duration:" in proc.stderr


FILL_TMP = """
import os
def handler(event, context):
    path = os.path.join(os.environ["TMPDIR"], "big")
    with open(path, "wb") as handle:
        handle.write(b"x" * event["bytes"])
    return {"written": os.path.getsize(path)}
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a size-limited /tmp needs root to mount a tmpfs")
def test_tmp_is_limited_to_the_ephemeral_storage_size(tmp_path, runtime_paths):
    box = sandbox(tmp_path, runtime_paths, FILL_TMP, ephemeral_mb=1)
    try:
        small, body = call(box, {"bytes": 512 * 1024})
        assert small.ok and body["written"] == 512 * 1024
        assert box.tmp_limited
        big, _ = call(box, {"bytes": 2 * 1024 * 1024})
        assert big.error["errorType"] == "OSError" and "No space left" in big.error["errorMessage"]
    finally:
        box.stop()
    assert not box.tmp_limited


def _dispatcher(tmp_path, runtime_paths, retry_delays, **options):
    from lambdapack.local.dispatcher import Dispatcher

    task = tmp_path / "task"
    task.mkdir()
    (task / "index.py").write_text(GOOD)
    spec = FunctionSpec("fn", task, timeout=5, memory=256)
    return Dispatcher(
        lambda arn, attempt: (spec, "sha"),
        lambda spec: (runtime_paths, None),
        tmp_path / "sb",
        1,
        retry_delays,
        **options,
    )


def test_an_event_older_than_its_maximum_age_is_not_retried_but_recorded(tmp_path, runtime_paths):
    """Lambda checks the event's age before each attempt: here the clock jumps past the maximum
    age (60 s, the least Lambda accepts) after the first attempt, so the retry never runs and
    the record goes to the destination with EventAgeExceeded."""
    from lambdapack.local.failures import AsyncConfig
    from lambdapack.records import reason

    delivered: list[tuple[str, dict]] = []
    skew = [0.0]
    dispatcher = _dispatcher(
        tmp_path,
        runtime_paths,
        (0.5,),  # the clock jumps well before the retry is due
        policy=lambda arn: AsyncConfig(retries=2, max_age_s=60, on_failure="arn:aws:sqs:us-east-1:1:q"),
        deliver=lambda destination, record: delivered.append((destination, record)) or "q",
        clock=lambda: time.time() + skew[0],
    )
    try:
        dispatcher.submit("arn:aws:lambda:us-east-1:123456789012:function:fn", {"fail": True})
        deadline = time.monotonic() + 60
        while not dispatcher.stats.records and time.monotonic() < deadline:
            time.sleep(0.01)
        skew[0] = 61.0
        assert dispatcher.wait_idle(60)
    finally:
        dispatcher.close()
    assert len(dispatcher.stats.records) == 1  # the retry did not run
    ((destination, record),) = delivered
    assert destination == "arn:aws:sqs:us-east-1:1:q" and reason(record) == "event too old"
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1


def test_a_retried_invocation_keeps_its_request_id(tmp_path, runtime_paths):
    dispatcher = _dispatcher(tmp_path, runtime_paths, (0.05, 0.05))
    try:
        dispatcher.submit("arn:aws:lambda:us-east-1:123456789012:function:fn", {"fail": True})
        assert dispatcher.wait_idle(60)
    finally:
        dispatcher.close()
    attempts = [record.request_id for record in dispatcher.stats.records]
    assert len(attempts) == 3 and len(set(attempts)) == 1
    (failure,) = dispatcher.stats.failures
    assert failure["request_id"] == attempts[0] and failure["attempts"] == 3


def test_stopping_with_a_retry_pending_records_it_as_given_up(tmp_path, runtime_paths):
    dispatcher = _dispatcher(tmp_path, runtime_paths, (60.0,))
    dispatcher.submit("arn:aws:lambda:us-east-1:123456789012:function:fn", {"fail": True})
    deadline = time.monotonic() + 60
    while not dispatcher.stats.records and time.monotonic() < deadline:
        time.sleep(0.05)
    dispatcher.close()
    (failure,) = dispatcher.stats.failures
    assert (
        failure["condition"] == failure["error"]["errorType"] == "EndpointStopped"
        and failure["attempts"] == 1
    )
    assert dispatcher.wait_idle(1), "a job was left pending"


def test_a_job_submitted_after_close_is_recorded_not_lost(tmp_path, runtime_paths):
    dispatcher = _dispatcher(tmp_path, runtime_paths, (0.05,))
    dispatcher.close()
    dispatcher.submit("arn:aws:lambda:us-east-1:123456789012:function:fn", {"late": True})
    (failure,) = dispatcher.stats.failures
    assert failure["condition"] == "EndpointStopped" and failure["event"] == {"late": True}
    assert failure["attempts"] == 0 and not dispatcher.stats.records
    assert dispatcher.wait_idle(1), "a job was left pending"


def test_invoke_image_classifies_local_files_without_an_s3_of_the_users(packed, cache_dir, tmp_path):
    """No endpoint, no credentials in the environment: a private S3 lives for the call only."""
    import subprocess
    import sys

    from .conftest import SAMPLE, heldout_labels

    out, _, _ = packed
    files = sorted((SAMPLE / "heldout").glob("*.png"))[:3]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lambdapack",
            "invoke",
            str(out / "function.zip"),
            *(f"--image={f}" for f in files),
        ],
        capture_output=True,
        text=True,
        env={**env, "LAMBDAPACK_CACHE": str(cache_dir)},
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["file"] for o in objects] == [str(f) for f in files]
    truth = heldout_labels()
    right = sum(o["top_k"][0]["label"] == truth[Path(o["file"]).name] for o in objects)
    assert right >= 2 and all(o["model"]["name"] and o["timings"]["inference_ms"] > 0 for o in objects)
    assert "REPORT RequestId" in proc.stderr


GC_PROBE = """
import gc
import index  # the packed handler's init, as Lambda runs it
def handler(event, context):
    return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count(), "init": index.INIT_MS}
"""


def test_the_packed_handler_turns_garbage_collection_back_on_after_its_init(packed, runtime_paths, tmp_path):
    """Init runs without cyclic GC (a faster cold start); warm invocations must have it back,
    or every reference cycle they make would stay in memory for the container's life."""
    import zipfile

    out, _, _ = packed
    task = tmp_path / "task"
    zipfile.ZipFile(out / "function.zip").extractall(task)
    (task / "probe.py").write_text(GC_PROBE)
    spec = FunctionSpec("fn", task, handler="probe.handler", memory=512)
    box = Sandbox(spec, runtime_paths, tmp_path / "sb")
    try:
        result, body = call(box, {})
    finally:
        box.stop()
    assert result.ok, result.error
    assert body["enabled"] is True
    assert body["frozen"] > 0  # what init made is out of later collections (gc.freeze)
    assert body["init"]["total_ms"] > 0


@pytest.mark.container
def test_a_containers_runtime_folders_are_compiled_by_its_own_python(tmp_path):
    """The runtime's boto3 is installed for python3.13 without .pyc (pip runs in this
    machine's Python); a container sees it read-only, so without compiling it once every
    cold start there compiled botocore again (about twice its import and client time)."""
    from lambdapack.local.lambda_runtime import LocalRuntimes
    from lambdapack.packing.target import Target

    folders, python = LocalRuntimes(tmp_path).for_target(Target("3.13", "x86_64"))
    assert python is not None and python.image, "python3.13 runs in its container here"
    for folder in folders:
        sources = {p.stem for p in (folder / "botocore").glob("*.py")} if "boto3" in folder.name else None
        compiled = list(folder.rglob("*.cpython-313.pyc"))
        assert compiled and (folder / ".compiled-3.13-x86_64").exists()
        if sources:  # every botocore module, not a few
            assert sources <= {p.name.split(".")[0] for p in (folder / "botocore" / "__pycache__").iterdir()}
