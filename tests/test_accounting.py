"""Every image accounted for: backfill, status and redrive through the local AWS (the
python3.11 sample zip run by the real runtime client), results reading only lambdapack's
results, and upload warning when no trigger covers its prefix."""

from __future__ import annotations

import csv
import json
import shutil

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.owner import failure_queue_name
from lambdapack.aws.wire import WireSettings, wire

from .conftest import SAMPLE, run_cli

pytestmark = pytest.mark.functional

IMAGES = sorted((SAMPLE / "heldout").glob("*.png"))


def status(local, location: str = "s3://photos/") -> dict:
    proc = run_cli("status", location, "--function", "digits", "--json", env=local.client_environment())
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    states = ("classified", "errors", "failed", "pending", "not_triggered")
    assert sum(report[state] for state in states) == report["inputs"]  # the totals add up
    return report


def invocation_record(function_arn: str, payload: dict) -> dict:
    """An on-failure invocation record as Lambda delivers it to an SQS destination (AWS's
    documented shape). Put into the queue by this test: the local AWS delivers such records
    only once the dispatcher's branch (accounting-local) is merged."""
    return {
        "version": "1.0",
        "timestamp": "2026-12-04T12:00:00.000Z",
        "requestContext": {
            "requestId": "0f1e2d3c-0000-4000-8000-000000000000",
            "functionArn": f"{function_arn}:live",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "1", "functionError": "Unhandled"},
        "responsePayload": {
            "errorType": "Sandbox.Timedout",
            "errorMessage": "Task timed out after 3.00 seconds",
        },
    }


def test_backfill_status_and_redrive_account_for_every_image(local, packed, tmp_path):
    out, _, _ = packed
    zip_path = shutil.copy(out / "function.zip", tmp_path / "function.zip")
    deploy(DeploySettings(zip_path, "digits", bucket="photos"), AWSClient(), log=lambda _: None)
    s3, env = local.client("s3"), local.client_environment()
    keys = [f"old/{n:04d}.png" for n in range(1000)]
    for number, key in enumerate(keys):
        s3.put_object(Bucket="photos", Key=key, Body=IMAGES[number % len(IMAGES)].read_bytes())
    s3.put_object(Bucket="photos", Key="old/broken.png", Body=b"not an image")

    before = status(local)
    assert (before["inputs"], before["not_triggered"], before["classified"]) == (1001, 1001, 0)

    dry = run_cli("backfill", "s3://photos/old/", "--function", "digits", "--dry-run", env=env)
    assert "1001 to classify in 101 invocations" in dry.stdout and local.wait_idle(10)
    assert local.dispatcher.stats.invocations == 0

    first = run_cli("backfill", "s3://photos/old/", "--function", "digits", "--rate", "50/s", env=env)
    assert first.returncode == 0, first.stderr
    assert "invoked digits 101 times for 1001 images" in first.stdout
    assert local.wait_idle(600)
    after = status(local)
    assert (after["classified"], after["errors"], after["keys"]["errors"]) == (1000, 1, ["old/broken.png"])
    invocations = local.dispatcher.stats.invocations
    assert invocations == 101

    second = run_cli("backfill", "s3://photos/old/", "--function", "digits", env=env)
    assert second.returncode == 0 and "1001 have a result, 0 to classify" in second.stdout
    assert "nothing to invoke" in second.stdout
    assert local.wait_idle(10) and local.dispatcher.stats.invocations == invocations  # invoked nothing

    # A re-uploaded image (another ETag) with its old result, then a trigger over old/
    # (S3 fires for new objects only: what is already there stays pending), an image no
    # trigger covers, and an image whose invocation failed (its record in the destination).
    s3.put_object(Bucket="photos", Key="old/0000.png", Body=IMAGES[1].read_bytes() + b"\0")
    s3.put_object(Bucket="photos", Key="other/y.png", Body=IMAGES[0].read_bytes())
    s3.put_object(Bucket="photos", Key="old/failed.png", Body=IMAGES[2].read_bytes())
    wire(WireSettings("digits", "photos", prefix="old/"), AWSClient())
    sqs, lam = local.client("sqs"), local.client("lambda")
    queue = sqs.create_queue(QueueName=failure_queue_name("digits"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    lam.put_function_event_invoke_config(
        FunctionName="digits",
        Qualifier="live",
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    function_arn = lam.get_function(FunctionName="digits")["Configuration"]["FunctionArn"]
    record = invocation_record(function_arn, {"bucket": "photos", "keys": ["old/failed.png"]})
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(record))

    mixed = status(local)
    assert mixed["inputs"] == 1003
    assert (mixed["classified"], mixed["errors"], mixed["failed"]) == (999, 1, 1)
    assert mixed["keys"]["failed"] == ["old/failed.png"]
    assert "RetriesExhausted" in mixed["failed_reasons"]["old/failed.png"]
    assert mixed["keys"]["pending"] == ["old/0000.png"]  # its result is for the old object
    assert mixed["keys"]["not_triggered"] == ["other/y.png"]
    text = run_cli("status", "s3://photos/", "--function", "digits", env=env).stdout
    assert text.startswith("1003 inputs: 999 classified, 1 errors, 1 failed, 1 pending, 1 not triggered")
    assert "lambdapack-digits (prefix 'old/')" in text  # the trigger that would cover it

    listed = run_cli("redrive", "--function", "digits", "--dry-run", env=env)
    assert "old/failed.png" in listed.stdout and "dry run: 1 records" in listed.stdout
    assert status(local)["failed"] == 1  # the dry run and status consumed nothing

    redriven = run_cli("redrive", "--function", "digits", env=env)
    assert redriven.returncode == 0 and "invoked 1 failed events again" in redriven.stdout
    assert local.wait_idle(120)
    final = status(local)
    assert (final["classified"], final["failed"]) == (1000, 0)
    assert "Messages" not in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)


def test_an_asynchronous_invoke_is_accepted_at_once_and_a_missing_function_is_not(local, tmp_path):
    from botocore.exceptions import ClientError

    from .test_local_aws import SLOW, function_zip

    deploy(
        DeploySettings(function_zip(tmp_path / "slow.zip", SLOW), "slow", bucket="photos"),
        AWSClient(),
        log=lambda _: None,
    )
    lam = local.client("lambda")
    event = {"Records": [{"s3": {"bucket": {"name": "photos"}, "object": {"key": "a.png"}}}]}
    answer = lam.invoke(
        FunctionName="slow", Qualifier="live", InvocationType="Event", Payload=json.dumps(event)
    )
    assert answer["StatusCode"] == 202
    assert local.wait_idle(60) and local.dispatcher.stats.invocations == 1
    timing = json.loads(
        local.client("s3").get_object(Bucket="photos", Key="results/timing/a.png")["Body"].read()
    )
    assert timing["end"] > timing["start"]
    with pytest.raises(ClientError, match="ResourceNotFound"):
        lam.invoke(FunctionName="gone", InvocationType="Event", Payload=b"{}")


def test_results_skip_json_that_is_not_lambdapacks_and_neutralise_formulas(aws, tmp_path):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="photos")
    for name, body in {"a": [1, 2], "b": {"error": "disk full"}, "c": {"top_k": [{}]}}.items():
        s3.put_object(Bucket="photos", Key=f"results/foreign/{name}.json", Body=json.dumps(body))
    s3.put_object(Bucket="photos", Key="results/other/z.json", Body=b"\xff not json")
    shaped = {
        "input": {"key": "incoming/=cmd.png", "etag": "e", "version_id": None},
        "top_k": [{"label": '=HYPERLINK("http://x")', "score": 0.5}],
    }
    s3.put_object(Bucket="photos", Key="results/incoming/=cmd.png.json", Body=json.dumps(shaped))
    for key in ("incoming/=cmd.png", "incoming/x.png", "incoming/y.png"):
        s3.put_object(Bucket="photos", Key=key, Body=b"image")
    proc = run_cli(
        "results",
        "s3://photos/results/",
        "--csv",
        str(tmp_path / "r.csv"),
        "--inputs",
        "s3://photos/incoming/",
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "1 classified, 0 errors" in proc.stdout
    assert "2 of 3 inputs under s3://photos/incoming/ have no result yet" in proc.stdout
    assert "skipped 4 objects" in proc.stdout
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert rows[0]["input"] == "incoming/=cmd.png"  # starts with a letter: as it is
    assert rows[0]["label"] == '\'=HYPERLINK("http://x")'


def test_upload_warns_when_no_trigger_covers_its_prefix(aws):
    boto3.client("s3").create_bucket(Bucket="photos")
    proc = run_cli("upload", str(SAMPLE / "heldout"), "s3://photos/unwired/")
    assert proc.returncode == 0
    warning = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "no trigger on s3://photos covers unwired/" in warning[0]
    assert "no Lambda trigger at all" in warning[0]


def test_expected_failures_are_one_line_with_their_exit_code(aws, tmp_path):
    from .test_local_aws import FAILING, function_zip

    boto3.client("s3").create_bucket(Bucket="photos")
    bad_rate = run_cli("backfill", "s3://photos/", "--function", "f", "--rate", "fast")
    assert bad_rate.returncode == 2 and "--rate 'fast'" in bad_rate.stderr
    bad_batch = run_cli("backfill", "s3://photos/", "--function", "f", "--batch", "0")
    assert bad_batch.returncode == 2 and "--batch" in bad_batch.stderr
    missing = run_cli("status", "s3://photos/", "--function", "nothere")
    assert missing.returncode == 9 and "function nothere:live does not exist" in missing.stderr
    deploy(
        DeploySettings(function_zip(tmp_path / "f.zip", FAILING), "f", bucket="photos"),
        AWSClient(),
        log=lambda _: None,
    )
    # deploy always sets a failure destination; one removed by hand leaves redrive nothing to read.
    boto3.client("lambda").delete_function_event_invoke_config(FunctionName="f", Qualifier="live")
    nowhere = run_cli("redrive", "--function", "f")
    assert nowhere.returncode == 9 and "f:live has no on-failure destination" in nowhere.stderr
    for proc in (bad_rate, bad_batch, missing, nowhere):
        assert "Traceback" not in proc.stderr
