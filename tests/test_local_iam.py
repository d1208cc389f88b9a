"""IAM in the local AWS, as AWS enforces it: unknown keys refused, each service's calls
checked against the caller's policies, a function running as its execution role, and
the policy ``lambdapack policy`` prints enough for every command it names."""

from __future__ import annotations

import io
import json
import shutil
import urllib.error
import urllib.request
import zipfile

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdapack.aws.deploy import POLICY_NAME
from lambdapack.aws.owner import role_name
from lambdapack.local.localaws import LocalAWS

from .conftest import SAMPLE, run_cli

pytestmark = pytest.mark.functional

ACCOUNT = "123456789012"  # moto's
TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


LOCAL_CONCURRENCY = 1


def client_as(local, service: str, key_id: str, secret: str, token: str | None = None):
    return boto3.client(
        service,
        endpoint_url=local.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=token,
    )


def user_with_policy(local, name: str, document: dict | None) -> dict[str, str]:
    """An IAM user (made with the administrator's keys) holding only ``document``: its keys."""
    iam = local.client("iam")
    iam.create_user(UserName=name)
    if document is not None:
        iam.put_user_policy(UserName=name, PolicyName="only", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


# One call per service: (service, call) — each must be refused to a key moto does not know and
# to a user with no policy, and allowed to the administrator.
CALLS = {
    "s3": lambda c: c.list_objects_v2(Bucket="photos"),
    "lambda": lambda c: c.list_functions(),
    "iam": lambda c: c.list_roles(),
    "sts": lambda c: c.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/someone", RoleSessionName="me"),
    "sqs": lambda c: c.list_queues(),
    "kms": lambda c: c.list_keys(),
    "logs": lambda c: c.describe_log_groups(),
}


@pytest.mark.parametrize("service", sorted(CALLS))
def test_each_service_refuses_unknown_keys_and_ungranted_calls(local, service):
    call = CALLS[service]
    with pytest.raises(ClientError) as unknown:
        call(client_as(local, service, "testing", "testing"))
    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    keys = user_with_policy(local, f"nobody-{service}", None)
    with pytest.raises(ClientError) as denied:
        call(client_as(local, service, keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"]))
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert denied.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException")
    if service != "sts":  # the administrator may assume no role that does not trust it
        call(local.client(service))


def test_a_policy_scoped_to_one_function_log_group_and_queue_allows_only_those(local):
    """moto checks Lambda and Logs actions (and SQS on a queue not made yet) against the
    resource *; the local AWS checks them against the function's, the log group's and the
    queue's ARN, as AWS does."""
    local.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("index.py", "def handler(event, context):\n    return 1\n")
    for name in ("mine", "theirs"):
        local.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role=f"arn:aws:iam::{ACCOUNT}:role/r",
            Handler="index.handler",
            Code={"ZipFile": archive.getvalue()},
        )
        local.client("logs").create_log_group(logGroupName=f"/aws/lambda/{name}")
    function = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:mine"
    group = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/mine"
    keys = user_with_policy(
        local,
        "scoped",
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "lambda:GetFunction", "Resource": [function, f"{function}:*"]},
                {"Effect": "Allow", "Action": "logs:FilterLogEvents", "Resource": group},
                {
                    "Effect": "Allow",
                    "Action": ["sqs:CreateQueue", "sqs:GetQueueUrl"],
                    "Resource": f"arn:aws:sqs:us-east-1:{ACCOUNT}:mine",
                },
            ],
        },
    )
    lam = client_as(local, "lambda", keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"])
    logs = client_as(local, "logs", keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"])
    assert lam.get_function(FunctionName="mine")["Configuration"]["FunctionName"] == "mine"
    logs.filter_log_events(logGroupName="/aws/lambda/mine")
    sqs = client_as(local, "sqs", keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"])
    sqs.create_queue(QueueName="mine")
    assert sqs.get_queue_url(QueueName="mine")["QueueUrl"].endswith("/mine")
    for refused in (
        lambda: sqs.create_queue(QueueName="theirs"),
        lambda: lam.get_function(FunctionName="theirs"),
        lambda: lam.delete_function(FunctionName="mine"),
        lambda: logs.filter_log_events(logGroupName="/aws/lambda/theirs"),
    ):
        with pytest.raises(ClientError) as denied:
            refused()
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert denied.value.response["Error"]["Code"] in ("AccessDeniedException", "AccessDenied")


def test_motos_own_api_and_unsigned_requests_are_refused(local):
    """/moto-api/ would reset the access control (or dump every key) to anyone."""
    for path, data in (("/moto-api/reset-auth", b"inf"), ("/moto-api/data.json", None), ("/photos", None)):
        request = urllib.request.Request(local.endpoint + path, data=data, method="POST" if data else "GET")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403
    with pytest.raises(ClientError):  # still enforced
        client_as(local, "s3", "testing", "testing").list_buckets()


def test_each_start_has_new_administrator_keys(cache_dir, local):
    with LocalAWS(cache_dir, concurrency=1) as other:
        assert other.credentials["AWS_ACCESS_KEY_ID"] != local.credentials["AWS_ACCESS_KEY_ID"]
        with pytest.raises(ClientError):  # one endpoint's keys are nothing to the other
            client_as(other, "s3", *local.credentials.values()).list_buckets()


def deploy_cli(zip_path, function: str, *extra: str, env: dict | None = None):
    return run_cli(
        "deploy",
        str(zip_path),
        "--function",
        function,
        "--bucket",
        "photos",
        "--prefix",
        "incoming/",
        *extra,
        env=env,
    )


def test_a_role_without_put_object_fails_every_result_with_access_denied(local, packed, tmp_path):
    """The function runs with its execution role's keys: take s3:PutObject out of the role
    deploy made, and each upload's result fails (AccessDenied), in its log and as a failed
    invocation — as on AWS."""
    out, _, _ = packed
    zip_path = shutil.copy(out / "function.zip", tmp_path / "function.zip")
    assert deploy_cli(zip_path, "digits").returncode == 0
    assert (
        run_cli("wire", "--function", "digits", "--bucket", "photos", "--prefix", "incoming/").returncode == 0
    )
    iam = local.client("iam")
    policy = iam.get_role_policy(RoleName=role_name("digits"), PolicyName=POLICY_NAME)["PolicyDocument"]
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "WriteResults"]
    assert not any("s3:PutObject" in json.dumps(s) for s in policy["Statement"])
    iam.put_role_policy(
        RoleName=role_name("digits"), PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy)
    )

    image = (SAMPLE / "heldout" / "digit-0021.png").read_bytes()
    local.client("s3").put_object(Bucket="photos", Key="incoming/a.png", Body=image)
    assert local.wait_idle(120)
    stats = local.dispatcher.stats
    assert stats.invocations == 3 and not any(r.ok for r in stats.records)  # the first try, two retries
    (failure,) = stats.failures
    assert "AccessDenied" in json.dumps(failure["error"])
    listed = local.client("s3").list_objects_v2(Bucket="photos", Prefix="results/").get("KeyCount", 0)
    assert listed == 0
    logs = run_cli("logs", "digits")
    assert logs.returncode == 0 and "AccessDenied" in logs.stdout, logs.stdout + logs.stderr

    # The same role with s3:PutObject back: the next upload's result is written.
    iam.put_role_policy(
        RoleName=role_name("digits"),
        PolicyName="results",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::photos/results/*"}
                ],
            }
        ),
    )
    local.client("s3").put_object(Bucket="photos", Key="incoming/b.png", Body=image)
    assert local.wait_idle(120)
    assert local.client("s3").head_object(Bucket="photos", Key="results/incoming/b.png.json")


def test_a_role_that_does_not_trust_lambda_fails_the_invocation(local, packed, tmp_path):
    """Lambda cannot assume it: no process starts, the invocation is recorded as failed
    (given up at once: no retry can succeed), naming the role."""
    out, _, _ = packed
    zip_path = shutil.copy(out / "function.zip", tmp_path / "function.zip")
    assert deploy_cli(zip_path, "digits").returncode == 0
    assert (
        run_cli("wire", "--function", "digits", "--bucket", "photos", "--prefix", "incoming/").returncode == 0
    )
    trust_someone_else = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    local.client("iam").update_assume_role_policy(
        RoleName=role_name("digits"), PolicyDocument=json.dumps(trust_someone_else)
    )
    local.client("s3").put_object(Bucket="photos", Key="incoming/a.png", Body=b"x")
    assert local.wait_idle(60)
    (failure,) = local.dispatcher.stats.failures
    assert failure["error"]["errorType"] == "ExecutionRoleRefused"
    assert "does not trust lambda.amazonaws.com" in failure["error"]["errorMessage"]
    assert local.dispatcher.stats.invocations == 0


def test_the_function_gets_its_roles_temporary_keys_and_new_ones_before_they_expire(local, tmp_path):
    """AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN of an assumed-role session,
    never the administrator's. Keys that last 62 s end within the function's timeout (3 s) +
    60 s: each invocation finds its warm environment's keys too close to expiry, so the
    environment restarts (a cold start) with new ones — as it would after 59 minutes with
    the default hour-long keys."""
    from lambdapack.aws.client import AWSClient
    from lambdapack.aws.deploy import DeploySettings, deploy
    from lambdapack.aws.wire import WireSettings, wire

    from .test_local_aws import function_zip

    whoami = """
import boto3, os
from urllib.parse import unquote_plus
s3 = boto3.client("s3")
def handler(event, context):
    me = boto3.client("sts").get_caller_identity()["Arn"]
    key = "results/" + unquote_plus(event["Records"][0]["s3"]["object"]["key"])
    s3.put_object(Bucket="photos", Key=key, Body=me + " " + os.environ["AWS_ACCESS_KEY_ID"])
"""
    settings = DeploySettings(
        function_zip(tmp_path / "w.zip", whoami), "whoami", bucket="photos", prefix="incoming/"
    )
    deploy(settings, AWSClient(), log=lambda _: None)
    wire(WireSettings("whoami", "photos", prefix="incoming/"), AWSClient())
    local.role_credentials_s = 62
    s3 = local.client("s3")
    seen = []
    for number in (1, 2, 3):
        s3.put_object(Bucket="photos", Key=f"incoming/{number}", Body=b"x")
        assert local.wait_idle(60)
        seen.append(
            s3.get_object(Bucket="photos", Key=f"results/incoming/{number}")["Body"].read().decode().split()
        )
    assert {arn for arn, _ in seen} == {f"arn:aws:sts::{ACCOUNT}:assumed-role/{role_name('whoami')}/whoami"}
    keys = [key for _, key in seen]
    assert len(set(keys)) == 3 and local.credentials["AWS_ACCESS_KEY_ID"] not in keys
    stats = local.dispatcher.stats
    assert all(r.ok for r in stats.records) and [r.cold for r in stats.records] == [True, True, True]


def test_each_command_runs_under_only_the_policy_lambdapack_policy_prints(local, packed, tmp_path):
    out, _, _ = packed
    zip_path = shutil.copy(out / "function.zip", tmp_path / "function.zip")
    local.client("s3").create_bucket(Bucket="code")
    printed = run_cli(
        "policy",
        "--function",
        "digits",
        "--bucket",
        "photos",
        "--code-bucket",
        "code",
        "--account",
        ACCOUNT,
        "--region",
        "us-east-1",
        "--json",
    )
    assert printed.returncode == 0, printed.stderr
    document = json.loads(printed.stdout)
    person = {**local.client_environment(), **user_with_policy(local, "deployer", document)}
    steps = [
        (
            "deploy",
            str(zip_path),
            "--function",
            "digits",
            "--bucket",
            "photos",
            "--prefix",
            "incoming/",
            "--code-bucket",
            "code",
        ),
        ("wire", "--function", "digits", "--bucket", "photos", "--prefix", "incoming/"),
        ("logs", "digits"),
        ("unwire", "--function", "digits", "--bucket", "photos"),
        ("destroy", "--function", "digits", "--bucket", "photos", "--code-bucket", "code", "--yes"),
    ]
    for step in steps:
        if step[0] == "logs":  # something to read: one upload, its result, its log lines
            image = (SAMPLE / "heldout" / "digit-0021.png").read_bytes()
            local.client("s3").put_object(Bucket="photos", Key="incoming/a.png", Body=image)
            assert local.wait_idle(120)
        ran = run_cli(*step, env=person)
        assert ran.returncode == 0, f"{step[0]} as the policy's user: {ran.stdout}\n{ran.stderr}"
        if step[0] == "logs":
            assert "START RequestId" in ran.stdout
    assert local.client("lambda").list_functions()["Functions"] == []
    # and nothing beyond it: another function's name is refused
    other = run_cli(*steps[0][:3], "other", *steps[0][4:], env=person)
    assert other.returncode != 0 and "AccessDenied" in other.stderr
