"""lambdapack destroy against a real moto server: everything lambdapack made for the
function is gone, and nothing else is touched."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.wire import WireSettings, statement_id, wire

from .conftest import ROOT

pytestmark = pytest.mark.functional


def lambdapack(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lambdapack", *args], capture_output=True, text=True, env=os.environ, cwd=ROOT
    )


def test_destroy_plans_then_removes_only_what_lambdapack_made(packed, aws, tmp_path):
    out, _, _ = packed
    zip_path = shutil.copy(out / "function.zip", tmp_path / "function.zip")
    s3, sqs = boto3.client("s3"), boto3.client("sqs")
    for bucket in ("photos", "code"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="code", Key="someone-else/keep.zip", Body=b"not ours")
    queue = sqs.get_queue_url(QueueName=sqs.create_queue(QueueName="thumbs")["QueueUrl"].rsplit("/", 1)[1])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    theirs = {
        "Id": "thumbs",
        "QueueArn": queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "thumbs/"}]}},
    }
    s3.put_bucket_notification_configuration(
        Bucket="photos", NotificationConfiguration={"QueueConfigurations": [theirs]}
    )
    settings = DeploySettings(zip_path, "gone", bucket="photos", prefix="incoming/", code_bucket="code")
    deploy(settings, AWSClient(), log=lambda _: None)
    wired = wire(WireSettings("gone", "photos", prefix="incoming/"), AWSClient())
    assert wired.target == "arn:aws:lambda:us-east-1:123456789012:function:gone:live"
    assert s3.list_objects_v2(Bucket="code", Prefix="lambdapack/gone/")["KeyCount"] == 1

    dry = lambdapack("destroy", "--function", "gone", "--bucket", "photos", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    would = json.loads(dry.stdout)["would_remove"]
    # The dry run reads the wiring: it names the entry and the alias's permission, not "if any".
    assert "notification lambdapack-gone on s3://photos" in would
    assert f"permission {statement_id('photos')} on gone:live" in would

    planned = lambdapack("destroy", "--function", "gone", "--bucket", "photos", "--code-bucket", "code")
    assert planned.returncode == 0, planned.stderr
    assert "nothing removed" in planned.stdout and "lambda delete_function gone" in planned.stdout
    assert boto3.client("lambda").get_function(FunctionName="gone")  # still there

    done = lambdapack(
        "destroy", "--function", "gone", "--bucket", "photos", "--code-bucket", "code", "--yes", "--json"
    )
    assert done.returncode == 0, done.stderr
    removed = json.loads(done.stdout)["removed"]
    assert any("function gone deleted" in r for r in removed) and any(
        "role lambdapack-gone" in r for r in removed
    )
    # The permission wire put on the alias was found and removed before the function went.
    assert f"permission {statement_id('photos')} removed from gone:live" in removed
    assert [f["FunctionName"] for f in boto3.client("lambda").list_functions()["Functions"]] == []
    assert [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]] == []
    config = s3.get_bucket_notification_configuration(Bucket="photos")
    assert config.get("QueueConfigurations") == [theirs] and not config.get("LambdaFunctionConfigurations")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="code")["Contents"]] == ["someone-else/keep.zip"]

    again = lambdapack(
        "destroy", "--function", "gone", "--bucket", "photos", "--code-bucket", "code", "--yes"
    )
    assert again.returncode == 0 and "nothing of gone to remove" in again.stdout
    dry_again = lambdapack("destroy", "--function", "gone", "--bucket", "photos", "--dry-run")
    assert dry_again.returncode == 0 and "nothing of gone to remove" in dry_again.stdout
    assert "would remove" not in dry_again.stdout


def test_a_role_lambdapack_did_not_create_is_kept(aws):
    iam = boto3.client("iam")
    iam.create_role(RoleName="lambdapack-mine", AssumeRolePolicyDocument="{}", Description="made by hand")
    proc = lambdapack("destroy", "--function", "mine", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert "kept: role lambdapack-mine: not tagged lambdapack:function=mine" in proc.stdout
    assert iam.get_role(RoleName="lambdapack-mine")


def test_destroy_removes_an_alias_wiring_and_an_older_unqualified_one(packed, aws, tmp_path):
    out, _, _ = packed
    zip_path = shutil.copy(out / "function.zip", tmp_path / "function.zip")
    s3, lam = boto3.client("s3"), boto3.client("lambda")
    s3.create_bucket(Bucket="photos")
    deploy(
        DeploySettings(zip_path, "both", bucket="photos", prefix="incoming/"), AWSClient(), log=lambda _: None
    )
    wire(WireSettings("both", "photos", prefix="incoming/"), AWSClient())
    # A statement an earlier lambdapack left on the function itself ($LATEST), older id scheme.
    lam.add_permission(
        FunctionName="both",
        StatementId="lambdapack-s3-photos",
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn="arn:aws:s3:::photos",
    )
    done = lambdapack("destroy", "--function", "both", "--bucket", "photos", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert any("function and its aliases" in step for step in report["plan"])
    removed = report["removed"]
    assert removed[0] == "notification lambdapack-both removed from s3://photos"
    assert set(removed[1:3]) == {
        f"permission {statement_id('photos')} removed from both:live",
        "permission lambdapack-s3-photos removed from both ($LATEST)",
    }
    assert not s3.get_bucket_notification_configuration(Bucket="photos").get("LambdaFunctionConfigurations")
