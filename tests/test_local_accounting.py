"""Every invocation accounted for by the local AWS: the function's asynchronous invocation
config (per alias) honoured, failures recorded in its on-failure destination with Lambda's
invocation record and their true reason, and nothing dropped when a function is deleted.
Functions run on this machine's Python (python3.11, the fast path) where a container is not
the point."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote_plus

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.wire import WireSettings, wire
from lambdapack.local import leftovers
from lambdapack.local.localaws import LocalAWS
from lambdapack.records import reason

from .conftest import SAMPLE, point_at
from .test_local_aws import FAILING, SLOW, function_zip
from .test_local_cli import EXPORTS, cli, start_local

pytestmark = pytest.mark.functional

SLEEPS = """
import time
def handler(event, context):
    time.sleep(30)
"""
GREEDY = """
def handler(event, context):
    hoard = []
    while True:
        hoard.append(bytearray(16 * 1024 * 1024))
"""
CRASHES = """
import os
def handler(event, context):
    os._exit(3)
"""


LOCAL_CONCURRENCY = 1


def deploy_with_destination(local, tmp_path, name: str, source: str, retries: int, **settings) -> str:
    """Deploy and wire ``source`` (S3 invokes the alias ``live``), with an SQS queue as the
    alias's on-failure destination and ``retries`` retry attempts; returns the queue's URL."""
    zip_path = function_zip(tmp_path / f"{name}.zip", source)
    deploy(
        DeploySettings(zip_path, name, bucket="photos", prefix="incoming/", **settings),
        AWSClient(),
        log=lambda _: None,
    )
    wire(WireSettings(name, "photos", prefix="incoming/"), AWSClient())
    sqs = local.client("sqs")
    url = sqs.create_queue(QueueName=f"{name}-failures")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    local.client("lambda").put_function_event_invoke_config(
        FunctionName=name,
        Qualifier="live",
        MaximumRetryAttempts=retries,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    return url


def records_in(local, url: str) -> list[dict]:
    sqs = local.client("sqs")
    found = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return found


def test_the_event_invoke_config_is_kept_per_alias_and_a_put_replaces_it(local, tmp_path):
    """moto alone ignores Qualifier and keeps answering the first put; Lambda keeps one
    config per version or alias, and a put replaces it (an update changes what it names)."""
    deploy_with_destination(local, tmp_path, "configured", FAILING, retries=1)
    lam = local.client("lambda")
    lam.put_function_event_invoke_config(FunctionName="configured", MaximumRetryAttempts=2)
    alias = lam.get_function_event_invoke_config(FunctionName="configured", Qualifier="live")
    assert alias["MaximumRetryAttempts"] == 1 and alias["FunctionArn"].endswith(":configured:live")
    latest = lam.get_function_event_invoke_config(FunctionName="configured")
    assert latest["MaximumRetryAttempts"] == 2 and "DestinationConfig" not in latest
    lam.put_function_event_invoke_config(FunctionName="configured", Qualifier="live", MaximumRetryAttempts=0)
    replaced = lam.get_function_event_invoke_config(FunctionName="configured", Qualifier="live")
    assert replaced["MaximumRetryAttempts"] == 0 and "DestinationConfig" not in replaced
    lam.update_function_event_invoke_config(
        FunctionName="configured", Qualifier="live", MaximumEventAgeInSeconds=120
    )
    updated = lam.get_function_event_invoke_config(FunctionName="configured", Qualifier="live")
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (0, 120)
    listed = lam.list_function_event_invoke_configs(FunctionName="configured")["FunctionEventInvokeConfigs"]
    assert len(listed) == 2
    lam.delete_function_event_invoke_config(FunctionName="configured")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName="configured")


def test_a_failing_invocation_is_retried_as_configured_then_its_record_is_in_the_queue(local, tmp_path):
    url = deploy_with_destination(local, tmp_path, "failing", FAILING, retries=1)
    local.client("s3").put_object(Bucket="photos", Key="incoming/cat 1.png", Body=b"x")
    assert local.wait_idle(60)
    assert [r.attempt for r in local.dispatcher.stats.records] == [0, 1]  # 1 retry, as configured
    (record,) = records_in(local, url)
    assert record["version"] == "1.0" and record["timestamp"].endswith("Z")
    context = record["requestContext"]
    assert context["condition"] == "RetriesExhausted" and context["approximateInvokeCount"] == 2
    assert context["functionArn"].endswith(":function:failing:live")
    assert context["requestId"] == local.dispatcher.stats.records[0].request_id
    (s3_record,) = record["requestPayload"]["Records"]
    assert unquote_plus(s3_record["s3"]["object"]["key"]) == "incoming/cat 1.png"
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "RuntimeError"
    assert record["responsePayload"]["errorMessage"] == "always fails"
    assert reason(record) == "function error"


def test_a_timeout_is_named_in_the_record_and_in_the_functions_log_with_the_key(local, tmp_path):
    url = deploy_with_destination(local, tmp_path, "sleepy", SLEEPS, retries=0, timeout=1)
    local.client("s3").put_object(Bucket="photos", Key="incoming/slow.png", Body=b"x")
    assert local.wait_idle(60)
    (record,) = records_in(local, url)
    assert reason(record) == "timeout" and record["requestContext"]["approximateInvokeCount"] == 1
    assert "Task timed out after 1.00 seconds" in record["responsePayload"]["errorMessage"]
    events = local.client("logs").filter_log_events(logGroupName="/aws/lambda/sleepy")["events"]
    lines = [event["message"] for event in events]
    assert any(
        line.endswith(f"{record['requestContext']['requestId']} Task timed out after 1.00 seconds")
        for line in lines
    )
    assert any("failed on incoming/slow.png: Sandbox.Timedout" in line for line in lines)


def test_out_of_memory_is_named_only_when_it_was(local, tmp_path):
    url = deploy_with_destination(local, tmp_path, "greedy", GREEDY, retries=0, memory=128)
    local.client("s3").put_object(Bucket="photos", Key="incoming/big.png", Body=b"x")
    assert local.wait_idle(60)
    (record,) = records_in(local, url)
    assert reason(record) == "out of memory"
    assert record["responsePayload"]["errorType"] == "Runtime.OutOfMemory"


def test_a_crash_is_named_a_crash(local, tmp_path):
    url = deploy_with_destination(local, tmp_path, "crashing", CRASHES, retries=0)
    local.client("s3").put_object(Bucket="photos", Key="incoming/c.png", Body=b"x")
    assert local.wait_idle(60)
    (record,) = records_in(local, url)
    assert reason(record) == "crashed" and "exit status 3" in record["responsePayload"]["errorMessage"]


def test_an_environment_killed_from_outside_is_killed_not_out_of_memory_and_its_retry_is_cold(
    cache_dir, tmp_path, monkeypatch
):
    lines: list[str] = []
    with LocalAWS(cache_dir, concurrency=1, retry_delays=(0.1,), log=lines.append) as local:
        point_at(local, monkeypatch)
        local.client("s3").create_bucket(Bucket="photos")
        url = deploy_with_destination(local, tmp_path, "victim", SLEEPS, retries=1, memory=1024, timeout=60)
        local.client("s3").put_object(Bucket="photos", Key="incoming/k.png", Body=b"x")
        for attempt in range(2):  # the first attempt, then its retry
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                boxes = [box for box in local.dispatcher.sandboxes() if box.alive()]
                if boxes and len(local.dispatcher.stats.records) == attempt:
                    break
                time.sleep(0.05)
            time.sleep(0.5)  # inside the handler's sleep
            (box,) = boxes
            os.kill(box.process.pid, signal.SIGKILL)  # as the OOM killer or an operator would
            deadline = time.monotonic() + 60
            while len(local.dispatcher.stats.records) == attempt and time.monotonic() < deadline:
                time.sleep(0.05)
        assert local.wait_idle(60)
        (record,) = records_in(local, url)
    assert reason(record) == "killed" and record["responsePayload"]["errorType"] == "Runtime.ExitError"
    assert "out of memory" not in record["responsePayload"]["errorMessage"]
    first, retry = local.dispatcher.stats.records
    assert first.cold and retry.cold  # the retry starts a fresh runtime
    assert ", cold start" in [line for line in lines if line.startswith("victim: ERROR")][1]
    (failed,) = [line for line in lines if line.startswith("victim: FAILED")]
    assert "incoming/k.png: killed after 2 attempt(s)" in failed and "recorded in SQS queue" in failed


def test_deleting_a_function_records_its_queued_invocations_and_ends_its_environments(local, tmp_path):
    url = deploy_with_destination(local, tmp_path, "doomed", SLOW, retries=2)
    s3 = local.client("s3")
    for number in range(6):
        s3.put_object(Bucket="photos", Key=f"incoming/{number}.png", Body=b"x")
    deadline = time.monotonic() + 60
    while not local.dispatcher.stats.records and time.monotonic() < deadline:
        time.sleep(0.02)
    local.client("lambda").delete_function(FunctionName="doomed")
    assert local.wait_idle(60)
    stats = local.dispatcher.stats
    done = {r.request_id for r in stats.records if r.ok}
    failed = stats.failures
    assert len(done) + len(failed) == 6 and failed
    assert {f["condition"] for f in failed} == {"FunctionDeleted"}
    records = records_in(local, url)
    assert sorted(r["requestContext"]["requestId"] for r in records) == sorted(
        f["request_id"] for f in failed
    )
    assert all(reason(r) == "function deleted" for r in records)
    assert not [box for box in local.dispatcher.sandboxes() if box.alive()]


def test_with_no_destination_a_failure_is_printed_at_once_with_its_key(cache_dir, tmp_path, monkeypatch):
    lines: list[str] = []
    with LocalAWS(cache_dir, concurrency=1, retry_delays=(0.05,), log=lines.append) as local:
        point_at(local, monkeypatch)
        local.client("s3").create_bucket(Bucket="photos")
        zip_path = function_zip(tmp_path / "f.zip", FAILING)
        deploy(DeploySettings(zip_path, "plain", bucket="photos", prefix="in/"), AWSClient(), log=lambda _: 0)
        # deploy always sets a failure destination: this one's was removed by hand.
        local.client("lambda").delete_function_event_invoke_config(FunctionName="plain", Qualifier="live")
        wire(WireSettings("plain", "photos", prefix="in/"), AWSClient())
        local.client("s3").put_object(Bucket="photos", Key="in/dog+2.png", Body=b"x")
        assert local.wait_idle(60)
        (failed,) = [line for line in lines if "FAILED" in line]  # before the endpoint stops
    assert failed.startswith("plain: FAILED in/dog+2.png: function error after 3 attempt(s)")
    assert "no on-failure destination" in failed


def children_of(pid: int) -> dict[int, str]:
    """The processes ``pid`` started that are running now, each with its start mark."""
    found = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                child = int(stat_file.parent.name)
                found[child] = leftovers.owner(child)
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_in_the_middle_of_200_images_leaves_each_classified_or_recorded(
    stop_signal, packed, cache_dir, tmp_path
):
    """``lambdapack local --concurrency 1`` stopped with SIGTERM while 200 images are queued:
    every image has a result or a record in the function's on-failure queue (EndpointStopped),
    the counts are printed, and no process it started outlives it.

    The queue lives in the endpoint's memory, gone once it exits, so the records are read
    while it stops (a reader drains the queue), and lambdapack's own line for each (printed
    when it is recorded, with the key and the SQS message id) accounts for the rest."""
    proc, endpoint = start_local(cache_dir, "--port", "0", "--bucket", "photos", "--concurrency", "1")
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        out, _, _ = packed
        deployed = cli(
            endpoint, "deploy", str(out / "function.zip"), "--function", "digits", "--bucket", "photos"
        )
        assert deployed.returncode == 0, deployed.stderr
        wired = cli(endpoint, "wire", "--function", "digits", "--bucket", "photos", "--prefix", "incoming/")
        assert wired.returncode == 0, wired.stderr
        client = lambda service: boto3.client(  # noqa: E731
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=EXPORTS[endpoint]["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EXPORTS[endpoint]["AWS_SECRET_ACCESS_KEY"],
        )
        sqs = client("sqs")
        url = sqs.create_queue(QueueName="lambdapack-digits-failures")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        client("lambda").put_function_event_invoke_config(
            FunctionName="digits",
            Qualifier="live",
            DestinationConfig={"OnFailure": {"Destination": queue_arn}},
        )
        queued: list[dict] = []

        def drain() -> None:
            with contextlib.suppress(Exception):  # until the endpoint is gone
                while True:
                    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                    for message in got.get("Messages", []):
                        queued.append(json.loads(message["Body"]))
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        images = sorted((SAMPLE / "heldout").glob("*.png"))
        keys = [f"incoming/img-{n:03d}.png" for n in range(200)]
        s3 = client("s3")
        for n, key in enumerate(keys):
            s3.put_object(Bucket="photos", Key=key, Body=images[n % len(images)].read_bytes())
        classified = lambda: [line for line in output if " -> " in line and line.startswith("digits:")]  # noqa: E731
        deadline = time.monotonic() + 120
        while len(classified()) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        # At once: on a quiet machine the warm function finished all 200 within the one second
        # this test used to wait here, so the signal came after the batch, not in its middle.
        started = children_of(proc.pid)
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=120) == 0
        reader.join(timeout=30)
        drainer.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = {line.split(": ", 1)[1].split(" -> ")[0] for line in classified()}
    failed = {}
    for line in output:
        if line.startswith("digits: FAILED "):
            key, rest = line.removeprefix("digits: FAILED ").split(": ", 1)
            failed[key] = rest
    assert 5 <= len(done) < 200, "SIGTERM did not come in the middle"
    assert set(keys) == done | set(failed), "an image with neither a result nor a record"
    odd = [
        rest
        for rest in failed.values()
        if not (rest.startswith("stopped after") and "recorded in SQS" in rest)
    ]
    assert not odd, odd[:3]
    in_queue = {
        unquote_plus(record["requestPayload"]["Records"][0]["s3"]["object"]["key"]) for record in queued
    }
    assert in_queue <= set(failed) and all(
        r["requestContext"]["condition"] == "EndpointStopped" for r in queued
    )
    text = "".join(output)
    assert (
        f"{len(failed)} failed: {len(failed)} recorded in their on-failure destination, 0 with none" in text
    )
    assert "queued," in text and "running — each recorded as failed" in text
    survivors = [pid for pid, mark in started.items() if leftovers.alive(mark)]
    assert not survivors, f"processes lambdapack local started outlived it: {survivors}"
    print(f"classified {len(done)}, recorded as failed {len(failed)}, read from the queue {len(in_queue)}")


def test_leftovers_are_removed_only_when_marked_and_their_owner_is_gone(tmp_path):
    """Only folders lambdapack marked, whose owning process (PID and start time) is gone."""
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    gone_owner = leftovers.owner(int(finished.stdout))  # start unknown now: None, never a live mark
    unmarked = tmp_path / f"{leftovers.WORKDIR_PREFIX}unmarked"
    mine_alive = tmp_path / f"{leftovers.WORKDIR_PREFIX}alive"
    dead = tmp_path / f"{leftovers.WORKDIR_PREFIX}dead"
    not_ours = tmp_path / "other-folder"
    for folder in (unmarked, mine_alive, dead, not_ours):
        (folder / "sandboxes" / "f-0").mkdir(parents=True)
    leftovers.mark_workdir(mine_alive)
    (dead / leftovers.OWNER_FILE).write_text(json.dumps({"owner": gone_owner}))
    (not_ours / leftovers.OWNER_FILE).write_text(json.dumps({"owner": gone_owner}))
    removed = leftovers.remove_leftovers(tmp_path, containers=False)
    assert (removed.folders, removed.processes) == (1, 0)
    assert not dead.exists() and unmarked.exists() and mine_alive.exists() and not_ours.exists()


def test_after_a_sigkill_the_next_local_removes_what_the_last_one_left(cache_dir, tmp_path):
    """A killed ``lambdapack local`` leaves its work folder (and the function's /tmp mount as
    root) and a warm function process; the next one removes them, by their marks."""
    import subprocess
    import sys

    from .conftest import ROOT

    proc, endpoint = start_local(cache_dir, "--port", "0", "--bucket", "photos")
    try:
        zip_path = function_zip(tmp_path / "slow.zip", SLOW)
        assert (
            cli(endpoint, "deploy", str(zip_path), "--function", "warm", "--bucket", "photos").returncode == 0
        )
        wired = cli(endpoint, "wire", "--function", "warm", "--bucket", "photos", "--prefix", "incoming/")
        assert wired.returncode == 0, wired.stderr
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=EXPORTS[endpoint]["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=EXPORTS[endpoint]["AWS_SECRET_ACCESS_KEY"],
        )
        s3.put_object(Bucket="photos", Key="incoming/1.png", Body=b"x")
        deadline = time.monotonic() + 60
        while True:  # the function ran (SLOW writes results/timing/KEY): it is warm
            with contextlib.suppress(Exception):
                s3.head_object(Bucket="photos", Key="results/timing/incoming/1.png")
                break
            assert time.monotonic() < deadline, "the function never wrote its result"
            time.sleep(0.1)
        (workdir,) = [
            folder
            for folder in Path(tempfile.gettempdir()).glob(f"{leftovers.WORKDIR_PREFIX}*")
            if (folder / leftovers.OWNER_FILE).exists()
            and json.loads((folder / leftovers.OWNER_FILE).read_text())["owner"].startswith(f"{proc.pid}:")
        ]
        (process_file,) = workdir.glob(f"sandboxes/*/{leftovers.PROCESS_FILE}")
        function_process = json.loads(process_file.read_text())["process"]
        time.sleep(0.3)
    finally:
        proc.kill()
        proc.wait()
    assert workdir.exists() and leftovers.alive(function_process)  # what the kill left
    env = dict(os.environ, LAMBDAPACK_CACHE=str(cache_dir), PYTHONUNBUFFERED="1")
    again = subprocess.Popen(
        [sys.executable, "-m", "lambdapack", "local", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines = []
    for line in again.stdout:
        lines.append(line)
        if line.startswith("local AWS endpoint:"):
            break
    again.send_signal(signal.SIGTERM)
    again.communicate(timeout=60)
    assert any(line.startswith("removed what a killed lambdapack local left") for line in lines), lines
    assert not workdir.exists() and not leftovers.alive(function_process)


def test_records_reach_an_sns_topic_and_an_s3_bucket_too(local, tmp_path):
    """The other destinations Lambda sends to: an SNS topic (read here through an SQS queue
    subscribed to it) and an S3 bucket (an object under aws/lambda/async/FUNCTION/)."""
    deploy_with_destination(local, tmp_path, "noisy", FAILING, retries=0)
    sqs, sns = local.client("sqs"), local.client("sns")
    url = sqs.create_queue(QueueName="from-topic")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name="failures")["TopicArn"]
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    local.client("s3").create_bucket(Bucket="failures")
    lam = local.client("lambda")
    for destination, key in ((topic, "incoming/a.png"), ("arn:aws:s3:::failures", "incoming/b.png")):
        lam.put_function_event_invoke_config(
            FunctionName="noisy",
            Qualifier="live",
            MaximumRetryAttempts=0,
            DestinationConfig={"OnFailure": {"Destination": destination}},
        )
        local.client("s3").put_object(Bucket="photos", Key=key, Body=b"x")
        assert local.wait_idle(60)
    (from_topic,) = records_in(local, url)
    assert unquote_plus(from_topic["requestPayload"]["Records"][0]["s3"]["object"]["key"]) == "incoming/a.png"
    (stored,) = local.client("s3").list_objects_v2(Bucket="failures")["Contents"]
    assert stored["Key"].startswith("aws/lambda/async/noisy/")
    body = json.loads(local.client("s3").get_object(Bucket="failures", Key=stored["Key"])["Body"].read())
    assert unquote_plus(body["requestPayload"]["Records"][0]["s3"]["object"]["key"]) == "incoming/b.png"
    assert reason(body) == "function error"


@pytest.mark.container
def test_stopping_ends_a_running_container_and_records_its_invocation(cache_dir, tmp_path, monkeypatch):
    """A function running in a container (python3.13) when the endpoint stops: the invocation
    is recorded as failed (EndpointStopped, in its queue), and no container it started is left."""
    import zipfile

    from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD
    from lambdapack.packing.interpreter import find_target_python
    from lambdapack.packing.target import Target

    if find_target_python(Target("3.13", "x86_64"))[0] is None:
        pytest.skip("no python3.13 image here (scripts/docker_setup.sh builds one)")
    import docker

    zip_path = tmp_path / "contained.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("index.py", SLEEPS)
        archive.writestr(
            BUILD_RECORD, json.dumps({"target": {"runtime": "python3.13", "architecture": "x86_64"}})
        )
    lines: list[str] = []
    mine = {"label": f"{leftovers.LABEL}={leftovers.owner()}"}
    with LocalAWS(cache_dir, concurrency=1, log=lines.append) as local:
        point_at(local, monkeypatch)
        local.client("s3").create_bucket(Bucket="photos")
        deploy(
            DeploySettings(zip_path, "contained", bucket="photos", prefix="incoming/", timeout=60),
            AWSClient(),
            log=lambda _: None,
        )
        wire(WireSettings("contained", "photos", prefix="incoming/"), AWSClient())
        url = local.client("sqs").create_queue(QueueName="stops")["QueueUrl"]
        arn = local.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        local.client("lambda").put_function_event_invoke_config(
            FunctionName="contained",
            Qualifier="live",
            DestinationConfig={"OnFailure": {"Destination": arn["Attributes"]["QueueArn"]}},
        )
        local.client("s3").put_object(Bucket="photos", Key="incoming/long.png", Body=b"x")
        deadline = time.monotonic() + 120
        while not docker.from_env().containers.list(filters=mine) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert docker.from_env().containers.list(filters=mine), "the function's container never started"
        time.sleep(2)
        local.dispatcher.close()  # what stop() does first, while the queue can still be read
        (record,) = records_in(local, url)
    assert record["requestContext"]["condition"] == "EndpointStopped" and reason(record) == "stopped"
    assert local.dispatcher.stats.stopped["running"] == 1
    assert not docker.from_env().containers.list(all=True, filters=mine)
    assert any(
        line.startswith("contained: FAILED incoming/long.png: stopped after 1 attempt(s)") for line in lines
    )
