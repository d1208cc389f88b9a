"""Only what it made: deploy and destroy against foreign resources on a real moto server.

A hand-made function with its own variables, a role another function shares, a user's
own object under lambdapack's code prefix, a role with a managed policy someone else
attached and an inline policy of the user's: each deploy/destroy refuses, or leaves
them byte-for-byte as they were. Plus the failure destination deploy always sets, and
the KMS grants for encrypted buckets."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.owner import TAG_KEY, failure_queue_name
from lambdapack.errors import DeployError

from .conftest import run_cli

pytestmark = pytest.mark.functional
ACCOUNT = "123456789012"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@pytest.fixture
def zip_path(packed, tmp_path):
    out, _, _ = packed
    return shutil.copy(out / "function.zip", tmp_path / "function.zip")


@pytest.fixture
def buckets(aws):
    for bucket in ("photos", "code"):
        boto3.client("s3").create_bucket(Bucket=bucket)


def quiet_deploy(zip_path, function, **changes):
    values = {"bucket": "photos", "prefix": "incoming/"} | changes
    return deploy(DeploySettings(zip_path, function, **values), AWSClient(), log=lambda _: None)


def hand_made_function(name: str) -> dict:
    """A function made with boto3, as a user would: own role, own settings and variables."""
    iam, lam = boto3.client("iam"), boto3.client("lambda")
    role = iam.create_role(RoleName=f"{name}-own-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("app.py", "def main(event, context):\n    return 'mine'\n")
    return lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.main",
        Code={"ZipFile": code.getvalue()},
        MemorySize=256,
        Timeout=30,
        Environment={"Variables": {"DB_PASSWORD_REF": "ssm:/prod/db", "FEATURE": "on"}},
    )


def function_state(name: str) -> dict:
    """What a user would check is unchanged: configuration (without the read's timestamps) and tags."""
    found = boto3.client("lambda").get_function(FunctionName=name)
    config = {k: v for k, v in found["Configuration"].items() if k not in ("LastUpdateStatus", "State")}
    return {"config": config, "tags": found.get("Tags", {})}


def role_state(name: str) -> dict:
    iam = boto3.client("iam")
    inline = {
        policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    }
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    return {"role": iam.get_role(RoleName=name)["Role"], "inline": inline, "attached": attached}


def queue_urls() -> list[str]:
    return boto3.client("sqs").list_queues().get("QueueUrls", [])


def test_deploy_marks_everything_it_makes_and_sets_a_failure_destination(zip_path, buckets):
    result = quiet_deploy(zip_path, "classify", code_bucket="code")
    lam, iam, s3, sqs = (boto3.client(s) for s in ("lambda", "iam", "s3", "sqs"))
    mark = {TAG_KEY: "classify"}
    assert lam.get_function(FunctionName="classify")["Tags"] == mark
    assert lam.list_tags(Resource=result.function_arn)["Tags"] == mark
    role = iam.get_role(RoleName="lambdapack-classify")["Role"]
    assert role["Tags"] == [{"Key": TAG_KEY, "Value": "classify"}]
    (uploaded,) = s3.list_objects_v2(Bucket="code", Prefix="lambdapack/classify/")["Contents"]
    assert s3.get_object_tagging(Bucket="code", Key=uploaded["Key"])["TagSet"] == [
        {"Key": TAG_KEY, "Value": "classify"}
    ]
    queue = sqs.get_queue_url(QueueName=failure_queue_name("classify"))["QueueUrl"]
    assert failure_queue_name("classify") == "lambdapack-classify-failures"
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == mark
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT}:lambdapack-classify-failures"
    # What S3 invokes (the alias live) retries twice, then sends the event to the queue.
    config = lam.get_function_event_invoke_config(FunctionName="classify", Qualifier="live")
    assert config["MaximumRetryAttempts"] == 2 and config["MaximumEventAgeInSeconds"] == 21600
    assert config["DestinationConfig"]["OnFailure"] == {"Destination": queue_arn}
    # The role may send to exactly that queue, nothing more.
    (grant,) = [s for s in result.policy["Statement"] if s["Sid"] == "DeliverFailures"]
    assert grant["Action"] == "sqs:SendMessage" and grant["Resource"] == queue_arn
    # A second deploy changes nothing and keeps every mark.
    again = quiet_deploy(zip_path, "classify", code_bucket="code")
    assert not again.changed and len(queue_urls()) == 1


def test_deploy_refuses_a_hand_made_function_and_adopt_keeps_its_settings(zip_path, buckets):
    made = hand_made_function("userfn")
    before = function_state("userfn")
    refused = run_cli("deploy", str(zip_path), "--function", "userfn", "--bucket", "photos")
    assert refused.returncode == DeployError.exit_code == 10, refused.stdout + refused.stderr
    message = " ".join(refused.stderr.split())
    assert "deploy refused before any AWS write" in message and "--adopt" in message
    assert "Traceback" not in refused.stderr
    assert function_state("userfn") == before  # byte-for-byte the same
    assert queue_urls() == []  # nothing else was made either
    assert [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"]] == ["userfn-own-role"]

    # The dry run reads, refuses the same way without --adopt, and with it shows each change.
    planned = run_cli(
        "deploy", str(zip_path), "--function", "userfn", "--bucket", "photos", "--adopt", "--dry-run"
    )
    assert planned.returncode == 0, planned.stderr
    shown = planned.stdout
    assert "variable OUTPUT_PREFIX: (none) → results/" in shown
    assert "Handler: app.main → index.handler" in shown and "Runtime: python3.12 → python3.11" in shown
    assert "MemorySize" not in shown and "Timeout" not in shown and "Role:" not in shown
    assert "DB_PASSWORD_REF" not in shown  # untouched, so not a change
    assert function_state("userfn") == before

    adopted = run_cli(
        "deploy", str(zip_path), "--function", "userfn", "--bucket", "photos", "--adopt", "--timeout", "90"
    )
    assert adopted.returncode == 0, adopted.stderr
    after = boto3.client("lambda").get_function(FunctionName="userfn")
    config = after["Configuration"]
    assert config["Environment"]["Variables"] == {
        "DB_PASSWORD_REF": "ssm:/prod/db",
        "FEATURE": "on",
        "OUTPUT_PREFIX": "results/",
    }
    assert config["MemorySize"] == 256 and config["Timeout"] == 90  # kept, and the one passed
    assert config["Role"] == made["Role"] and config["Handler"] == "index.handler"
    assert after["Tags"] == {TAG_KEY: "userfn", "lambdapack:adopted": "true"}
    assert "keeping the role of userfn" in adopted.stdout
    # Adopted stays adopted: a later deploy (no --adopt) still keeps what it is not given.
    later = run_cli("deploy", str(zip_path), "--function", "userfn", "--bucket", "photos", "--env", "TOP_K=3")
    assert later.returncode == 0, later.stderr
    config = boto3.client("lambda").get_function(FunctionName="userfn")["Configuration"]
    assert config["MemorySize"] == 256 and config["Timeout"] == 90
    assert config["Environment"]["Variables"]["DB_PASSWORD_REF"] == "ssm:/prod/db"
    assert config["Environment"]["Variables"]["TOP_K"] == "3"

    # destroy keeps an adopted function (it was the user's first): only lambdapack's parts go.
    done = run_cli("destroy", "--function", "userfn", "--yes")
    assert done.returncode == 0, done.stderr
    kept = boto3.client("lambda").get_function(FunctionName="userfn")
    assert kept.get("Tags", {}) == {}
    assert kept["Configuration"]["Environment"]["Variables"]["DB_PASSWORD_REF"] == "ssm:/prod/db"
    assert "adopted" in done.stdout and queue_urls() == []
    assert boto3.client("iam").get_role(RoleName="userfn-own-role")


def test_destroy_refuses_a_hand_made_function_and_changes_nothing(zip_path, buckets):
    hand_made_function("userfn")
    # lambdapack's own role and queue for that name exist too: the refusal must not touch them.
    quiet_deploy(zip_path, "other")
    before = function_state("userfn")
    s3 = boto3.client("s3")
    s3.put_object(Bucket="code", Key="lambdapack/userfn/README-mine.txt", Body=b"my notes")
    for flag in ("--dry-run", "--yes"):
        proc = run_cli("destroy", "--function", "userfn", "--code-bucket", "code", flag)
        assert proc.returncode == 10, proc.stdout + proc.stderr
        message = " ".join(proc.stderr.split())
        assert "destroy refused, nothing changed" in message and "lambdapack did not make it" in message
        assert "Traceback" not in proc.stderr
    assert function_state("userfn") == before
    assert s3.get_object(Bucket="code", Key="lambdapack/userfn/README-mine.txt")["Body"].read() == b"my notes"


def test_destroy_keeps_a_shared_role_foreign_policies_and_the_users_objects(zip_path, buckets):
    iam, s3, lam = boto3.client("iam"), boto3.client("s3"), boto3.client("lambda")
    quiet_deploy(zip_path, "classify", code_bucket="code")
    role_arn = iam.get_role(RoleName="lambdapack-classify")["Role"]["Arn"]
    quiet_deploy(zip_path, "classify2", role=role_arn)  # a second function on the same role
    # Someone else's managed policy and the user's own inline policy on lambdapack's role.
    policy = iam.create_policy(
        PolicyName="audit",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="lambdapack-classify", PolicyArn=policy)
    iam.put_role_policy(
        RoleName="lambdapack-classify",
        PolicyName="mine",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}],
            }
        ),
    )
    s3.put_object(Bucket="code", Key="lambdapack/classify/README-mine.txt", Body=b"do not delete\n")
    role_before, other_before = role_state("lambdapack-classify"), function_state("classify2")

    planned = run_cli("destroy", "--function", "classify", "--code-bucket", "code", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "would remove: function classify" in planned.stdout
    assert "would remove: 1 objects deploy uploaded" in planned.stdout
    assert lam.get_function(FunctionName="classify")  # a dry run removes nothing

    done = run_cli("destroy", "--function", "classify", "--code-bucket", "code", "--yes")
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "function classify deleted" in out
    assert "kept: role lambdapack-classify: used by classify2" in out
    assert f"managed policies attached that lambdapack did not attach: {policy}" in out
    assert "inline policies lambdapack did not put: mine" in out
    assert "README-mine.txt" in out  # named as kept
    assert role_state("lambdapack-classify") == role_before
    assert function_state("classify2") == other_before
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="code")["Contents"]]
    assert keys == ["lambdapack/classify/README-mine.txt"]
    assert s3.get_object(Bucket="code", Key=keys[0])["Body"].read() == b"do not delete\n"
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["classify2"]


def test_destroy_keeps_a_failure_queue_that_holds_records(zip_path, buckets):
    quiet_deploy(zip_path, "classify")
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="lambdapack-classify-failures")["QueueUrl"]
    sqs.send_message(
        QueueUrl=url, MessageBody=json.dumps({"requestContext": {"condition": "RetriesExhausted"}})
    )
    kept = run_cli("destroy", "--function", "classify", "--yes")
    assert kept.returncode == 0, kept.stderr
    assert "queue lambdapack-classify-failures: it holds 1 failed invocation records" in " ".join(
        kept.stdout.split()
    )
    assert queue_urls() == [url]
    gone = run_cli("destroy", "--function", "classify", "--yes", "--delete-failures")
    assert gone.returncode == 0, gone.stderr
    assert "queue lambdapack-classify-failures deleted" in gone.stdout and queue_urls() == []


@pytest.mark.parametrize("service", ["sqs", "sns"])
def test_on_failure_uses_the_users_destination_and_grants_it(zip_path, buckets, service):
    if service == "sqs":
        sqs = boto3.client("sqs")
        url = sqs.create_queue(QueueName="my-failures")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        action = "sqs:SendMessage"
    else:
        arn = boto3.client("sns").create_topic(Name="my-failures")["TopicArn"]
        action = "sns:Publish"
    result = quiet_deploy(zip_path, "classify", on_failure=arn, alias=None, max_event_age=600)
    (grant,) = [s for s in result.policy["Statement"] if s["Sid"] == "DeliverFailures"]
    assert grant == {"Sid": "DeliverFailures", "Effect": "Allow", "Action": action, "Resource": arn}
    config = boto3.client("lambda").get_function_event_invoke_config(FunctionName="classify")
    assert config["DestinationConfig"]["OnFailure"] == {"Destination": arn}
    assert config["MaximumEventAgeInSeconds"] == 600
    # No queue of lambdapack's: the user's destination is the only one.
    assert all("lambdapack-" not in url for url in queue_urls())


def test_an_on_failure_that_is_not_a_destination_and_a_queue_name_too_long_are_refused(zip_path, aws):
    with pytest.raises(DeployError, match="is not an on-failure destination"):
        quiet_deploy(zip_path, "classify", on_failure="arn:aws:dynamodb:us-east-1:1:table/t")
    # A 64-character function name is valid (with a role of the user's: lambdapack-NAME would
    # be too long too), but its queue's name would pass SQS's 80.
    with pytest.raises(DeployError, match="over SQS's 80") as refused:
        quiet_deploy(zip_path, "f" * 64, role=f"arn:aws:iam::{ACCOUNT}:role/mine")
    assert "--on-failure" in refused.value.hint
    assert queue_urls() == [] and boto3.client("lambda").list_functions()["Functions"] == []


def test_sse_kms_buckets_get_their_keys_granted(zip_path, buckets):
    kms, s3 = boto3.client("kms"), boto3.client("s3")
    s3.create_bucket(Bucket="labels")
    keys = {}
    for bucket in ("photos", "labels"):
        key = kms.create_key()["KeyMetadata"]
        keys[bucket] = key["Arn"]
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": key["KeyId"],
                        }
                    }
                ]
            },
        )
    result = quiet_deploy(zip_path, "classify", output_bucket="labels")
    by_sid = {s["Sid"]: s for s in result.policy["Statement"]}
    assert by_sid["DecryptInputs"] == {
        "Sid": "DecryptInputs",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": keys["photos"],
    }
    assert by_sid["EncryptResults"]["Action"] == ["kms:GenerateDataKey", "kms:Decrypt"]
    assert by_sid["EncryptResults"]["Resource"] == keys["labels"]
    # An unencrypted bucket gets no KMS grant.
    s3.create_bucket(Bucket="plain")
    plain = quiet_deploy(zip_path, "plain", bucket="plain")
    assert not [s for s in plain.policy["Statement"] if "kms" in json.dumps(s["Action"])]


@pytest.mark.parametrize("foreign", ["role", "queue"])
def test_a_foreign_role_or_queue_under_lambdapacks_name_is_refused_before_any_write(
    zip_path, buckets, foreign
):
    if foreign == "role":
        boto3.client("iam").create_role(RoleName="lambdapack-classify", AssumeRolePolicyDocument=TRUST)
    else:
        boto3.client("sqs").create_queue(QueueName="lambdapack-classify-failures")
    roles_before = boto3.client("iam").list_roles()["Roles"]
    with pytest.raises(DeployError, match=f"deploy refused before any AWS write: the {foreign}") as refused:
        quiet_deploy(zip_path, "classify")
    assert "--adopt" in refused.value.hint if foreign == "role" else "--on-failure" in refused.value.hint
    assert boto3.client("lambda").list_functions()["Functions"] == []
    assert boto3.client("iam").list_roles()["Roles"] == roles_before
    assert len(queue_urls()) == (1 if foreign == "queue" else 0)
    if foreign == "role":
        assert boto3.client("iam").list_role_policies(RoleName="lambdapack-classify")["PolicyNames"] == []
