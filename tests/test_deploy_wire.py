"""deploy, wire and unwire against a real moto server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, code_key, deploy
from lambdapack.aws.wire import WireSettings, statement_id, unwire, wire
from lambdapack.errors import AWSError, DeployError, WireError
from lambdapack.packing.zipper import digest

from .conftest import run_cli

pytestmark = pytest.mark.functional
FUNCTION = "digits"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"


def client(service: str):
    return boto3.client(service)


@pytest.fixture
def zip_path(packed, tmp_path):
    out, _, _ = packed
    path = tmp_path / "function.zip"
    shutil.copy(out / "function.zip", path)
    return path


@pytest.fixture
def photos(aws):
    client("s3").create_bucket(Bucket="photos")
    return "photos"


def settings(zip_path, **changes) -> DeploySettings:
    values = {"zip_path": zip_path, "function": FUNCTION, "bucket": "photos", "prefix": "incoming/"}
    values.update(changes)
    return DeploySettings(**values)


def test_create_then_noop_then_update_code_and_configuration(zip_path, photos):
    lines: list[str] = []
    first = deploy(settings(zip_path), AWSClient(), log=lines.append)
    assert first.changed and first.version == "1"
    config = client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]
    assert config["Runtime"] == "python3.11" and config["Handler"] == "index.handler"
    assert config["Architectures"] == ["x86_64"]
    assert config["Environment"]["Variables"] == {"OUTPUT_PREFIX": "results/"}
    assert client("lambda").get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"] == "1"
    assert not [line for line in lines if line.startswith("warning:")]  # a new function's alias is expected

    lines.clear()
    again = deploy(settings(zip_path), AWSClient(), log=lines.append)
    assert not again.changed and "nothing to change" in lines[-1]

    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr("extra.txt", "a change of code")
    lines.clear()
    updated = deploy(settings(zip_path, memory=2048), AWSClient(), log=lines.append)
    assert updated.changed
    assert any("updated the code" in line for line in lines)
    assert any("updated the configuration" in line and "MemorySize" in line for line in lines)
    config = client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]
    assert config["MemorySize"] == 2048
    assert config["CodeSha256"] == digest(zip_path).code_sha256
    assert (
        client("lambda").get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"] == updated.version
    )


def test_the_created_role_has_a_least_privilege_policy(zip_path, photos):
    result = deploy(
        settings(zip_path, env={"MODEL_BUCKET": "models", "MODEL_KEY": "m/model.tflite"}),
        AWSClient(),
        log=lambda _: None,
    )
    iam = client("iam")
    trust = iam.get_role(RoleName=f"lambdapack-{FUNCTION}")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    document = iam.get_role_policy(RoleName=f"lambdapack-{FUNCTION}", PolicyName="lambdapack")[
        "PolicyDocument"
    ]
    policy = json.loads(document) if isinstance(document, str) else document
    assert policy == result.policy
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["ReadInputs"]["Resource"] == [
        "arn:aws:s3:::photos/incoming/*",
        "arn:aws:s3:::models/m/model.tflite",
    ]
    assert by_sid["WriteResults"]["Action"] == "s3:PutObject"
    assert by_sid["WriteResults"]["Resource"] == "arn:aws:s3:::photos/results/*"
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        assert "*" not in resources and all(not a.endswith(":*") for a in actions)
        assert all(r.startswith("arn:aws:") for r in resources)
    assert "/aws/lambda/digits" in by_sid["WriteLogs"]["Resource"]


def test_a_zip_over_the_direct_upload_limit_goes_through_s3(zip_path, photos):
    with zipfile.ZipFile(zip_path, "a") as archive:
        archive.writestr(zipfile.ZipInfo("padding.bin"), os.urandom(30 * 1024 * 1024))
    with pytest.raises(DeployError, match="over the 52,428,800-byte direct upload limit") as refused:
        deploy(settings(zip_path), AWSClient(), log=lambda _: None)
    assert "--code-bucket" in refused.value.hint
    client("s3").create_bucket(Bucket="code")
    deploy(settings(zip_path, code_bucket="code"), AWSClient(), log=lambda _: None)
    local = digest(zip_path)
    head = client("s3").head_object(Bucket="code", Key=code_key(FUNCTION, local.sha256))
    assert head["ContentLength"] == local.size
    assert (
        client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]["CodeSha256"]
        == local.code_sha256
    )


def test_preflight_refuses_bad_settings_before_any_call(zip_path, tmp_path):
    for change, message in (
        ({"memory": 64}, "memory 64"),
        ({"timeout": 901}, "timeout 901"),
        ({"ephemeral_storage": 100}, "ephemeral storage 100"),
    ):
        with pytest.raises(DeployError, match=message):
            deploy(settings(zip_path, **change), AWSClient(session=None), log=lambda _: None)
    no_handler = tmp_path / "bad.zip"
    with zipfile.ZipFile(no_handler, "w") as archive:
        archive.writestr("main.py", "x = 1")
    with pytest.raises(DeployError, match=r"no index\.py"):
        deploy(settings(no_handler), AWSClient(), log=lambda _: None)


class Counter(BaseHTTPRequestHandler):
    """An endpoint that answers every request with an error, and counts them."""

    requests = 0
    writes = 0  # anything but a read (GET/HEAD)

    def do_GET(self):
        Counter.requests += 1
        self.send_response(404)
        self.end_headers()

    def do_POST(self):
        Counter.writes += 1
        self.do_GET()

    do_HEAD = do_GET
    do_PUT = do_DELETE = do_POST

    def log_message(self, *args):
        pass


def test_dry_run_prints_the_plan_and_writes_nothing(zip_path, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_port}",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "AWS_REGION": "us-east-1",
        }
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            proc = run_cli("deploy", str(zip_path), "--function", FUNCTION, "--bucket", "photos", "--dry-run")
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "reads only, nothing written" not in out and "could not be read" in out
    assert "create_function" in out and "put_function_event_invoke_config" in out
    assert "sqs create_queue lambdapack-digits-failures" in out
    assert Counter.writes == 0 and Counter.requests >= 1  # it read the function (and nothing else)


def test_missing_credentials_and_bucket_are_clear_errors(zip_path, tmp_path, moto_endpoint):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=moto_endpoint,
    )
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lambdapack",
            "deploy",
            str(zip_path),
            "--function",
            FUNCTION,
            "--bucket",
            "photos",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 9
    assert "no AWS credentials found" in proc.stderr and "Traceback" not in proc.stderr


def test_wire_on_a_missing_bucket_says_so(aws):
    with pytest.raises(AWSError, match="bucket nope-bucket does not exist"):
        wire(WireSettings(FUNCTION, "nope-bucket"), AWSClient())


def test_role_not_yet_assumable_is_retried_with_backoff():
    # Stubbed: moto never answers "cannot be assumed" (real IAM does for seconds after create_role).
    from botocore.stub import Stubber

    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    aws_client = AWSClient(session=session, sleep=sleeps.append)
    lam = aws_client.client("lambda")
    with Stubber(lam) as stub:
        for _ in range(2):
            stub.add_client_error(
                "create_function",
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
            )
        stub.add_response("create_function", {"FunctionName": "f", "FunctionArn": "arn:f"})
        created = aws_client.create_function(FunctionName="f", Role="arn:r", Code={"ZipFile": b"x"})
    assert created["FunctionArn"] == "arn:f"
    assert sleeps == [2, 4]


sleeps: list[float] = []


# --- wire ---------------------------------------------------------------------


@pytest.fixture
def deployed(zip_path, photos):
    deploy(settings(zip_path), AWSClient(), log=lambda _: None)
    return FUNCTION


def others_config(sqs_arn: str, other_arn: str) -> dict:
    return {
        "QueueConfigurations": [
            {
                "Id": "audit-queue",
                "QueueArn": sqs_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "audit/"}]}},
            }
        ],
        "LambdaFunctionConfigurations": [
            {
                "Id": "thumbnails",
                "LambdaFunctionArn": other_arn,
                "Events": ["s3:ObjectCreated:Put"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "thumbs/"}]}},
            }
        ],
    }


@pytest.fixture
def busy_bucket(deployed, zip_path):
    """The bucket already notifies an SQS queue and another function."""
    sqs = client("sqs")
    queue = sqs.create_queue(QueueName="audit")["QueueUrl"]
    sqs_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    deploy(settings(zip_path, function="thumbnails"), AWSClient(), log=lambda _: None)
    other_arn = client("lambda").get_function(FunctionName="thumbnails")["Configuration"]["FunctionArn"]
    config = others_config(sqs_arn, other_arn)
    client("s3").put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration=config)
    return _notification()


def _notification() -> dict:
    config = client("s3").get_bucket_notification_configuration(Bucket="photos")
    config.pop("ResponseMetadata")
    return config


def test_wire_merges_and_keeps_every_other_entry_exactly(busy_bucket):
    result = wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient())
    assert result.changed
    after = _notification()
    assert after["QueueConfigurations"] == busy_bucket["QueueConfigurations"]
    ours = [e for e in after["LambdaFunctionConfigurations"] if e["Id"] == "lambdapack-digits"]
    theirs = [e for e in after["LambdaFunctionConfigurations"] if e["Id"] != "lambdapack-digits"]
    assert theirs == busy_bucket["LambdaFunctionConfigurations"]
    assert ours[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]
    statements = json.loads(client("lambda").get_policy(FunctionName=FUNCTION, Qualifier="live")["Policy"])[
        "Statement"
    ]
    assert len(statements) == 1
    assert statements[0]["Resource"] == f"{FUNCTION_ARN}:live"
    assert statements[0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statements[0]["Condition"]["ArnLike"]["AWS:SourceArn"] == "arn:aws:s3:::photos"
    assert statements[0]["Condition"]["StringEquals"]["AWS:SourceAccount"] == "123456789012"

    second = wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient())
    assert not second.changed
    assert len(AWSClient().policy_statements(FUNCTION, "live")) == 1
    assert _notification() == after

    unwire(FUNCTION, "photos", AWSClient())
    assert _notification() == busy_bucket
    assert AWSClient().policy_statements(FUNCTION) == []
    assert AWSClient().policy_statements(FUNCTION, "live") == []


def test_an_overlapping_filter_is_refused_naming_the_other_entry(busy_bucket):
    with pytest.raises(WireError, match="thumbnails"):
        wire(WireSettings(FUNCTION, "photos", prefix="thumbs/big/"), AWSClient())
    assert _notification() == busy_bucket


def test_a_trigger_that_would_see_the_results_is_refused_unless_overridden(deployed):
    with pytest.raises(WireError, match="invoke it again"):
        wire(WireSettings(FUNCTION, "photos"), AWSClient())
    assert _notification() == {}
    result = wire(WireSettings(FUNCTION, "photos", allow_recursion=True), AWSClient())
    assert any("recursion allowed" in w for w in result.warnings)


def test_the_cli_wires_from_the_project_settings_file(deployed, tmp_path, aws):
    (tmp_path / "lambdapack.toml").write_text(
        f'function = "{FUNCTION}"\nbucket = "photos"\nprefix = "incoming/"\n'
    )
    import subprocess
    import sys

    env = dict(os.environ)
    first = subprocess.run(
        [sys.executable, "-m", "lambdapack", "wire"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert first.returncode == 0, first.stderr
    assert "notification lambdapack-digits added" in first.stdout
    second = subprocess.run(
        [sys.executable, "-m", "lambdapack", "wire"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert "nothing to change" in second.stdout


def test_an_update_in_progress_is_a_clear_error():
    # Stubbed: moto never answers ResourceConflictException (real Lambda does while an update runs).
    from botocore.stub import Stubber

    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    aws_client = AWSClient(session=session)
    with Stubber(aws_client.client("lambda")) as stub:
        stub.add_client_error(
            "update_function_code",
            "ResourceConflictException",
            "The operation cannot be performed at this time. An update is in progress.",
        )
        with pytest.raises(AWSError, match="ResourceConflictException") as caught:
            aws_client.update_function_code("f", ZipFile=b"x")
    assert "in progress" in caught.value.hint


# --- issue 14: names, permissions from the effective configuration, verified uploads ----


@pytest.mark.parametrize(
    ("changes", "wrong"),
    [
        ({"function": "a.b"}, "not a Lambda function name"),
        ({"function": "f" * 60}, "not an IAM role name"),  # lambdapack-<60> is over IAM's 64
        ({"bucket": "My_Photos"}, "not an S3 bucket name"),
        ({"output_bucket": "192.168.1.1"}, "IP address"),
        ({"alias": "123"}, "not a Lambda alias name"),
    ],
)
def test_names_are_checked_before_the_first_call(zip_path, photos, changes, wrong):
    with pytest.raises(DeployError, match=wrong) as refused:
        deploy(settings(zip_path, **changes), AWSClient(), log=lambda _: None)
    assert "Nothing was created" in refused.value.hint
    assert client("iam").list_roles()["Roles"] == []
    assert client("lambda").list_functions()["Functions"] == []


def test_the_policy_follows_the_functions_environment_whoever_set_it(zip_path, photos):
    result = deploy(
        settings(zip_path, env={"OUTPUT_BUCKET": "elsewhere", "OUTPUT_PREFIX": "out/"}),
        AWSClient(),
        log=lambda _: None,
    )
    by_sid = {s["Sid"]: s for s in result.policy["Statement"]}
    assert by_sid["WriteResults"]["Resource"] == "arn:aws:s3:::elsewhere/out/*"
    environment = client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]["Environment"]
    assert environment["Variables"]["OUTPUT_BUCKET"] == "elsewhere"
    # Reading a deleted key answers 404 (not 403) only with ListBucket, scoped to the inputs.
    assert by_sid["ListInputs"] == {
        "Sid": "ListInputs",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": "arn:aws:s3:::photos",
        "Condition": {"StringLike": {"s3:prefix": ["incoming/*"]}},
    }
    assert "s3:GetObjectVersion" in by_sid["ReadInputs"]["Action"]


def test_an_object_planted_under_the_code_key_is_replaced_not_deployed(zip_path, photos):
    client("s3").create_bucket(Bucket="code")
    key = code_key(FUNCTION, digest(zip_path).sha256)
    client("s3").put_object(Bucket="code", Key=key, Body=b"PK\x05\x06" + bytes(130))  # 134 bytes
    lines: list[str] = []
    deploy(settings(zip_path, code_bucket="code"), AWSClient(), log=lines.append)
    assert any("holds other bytes" in line for line in lines)
    stored = client("s3").get_object(Bucket="code", Key=key)["Body"].read()
    assert stored == zip_path.read_bytes()
    config = client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]
    assert config["CodeSha256"] == digest(zip_path).code_sha256
    # The code is now the zip's: the next deploy changes nothing and uploads nothing.
    lines.clear()
    deploy(settings(zip_path, code_bucket="code"), AWSClient(), log=lines.append)
    assert any("nothing to change" in line for line in lines)
    assert not any("uploaded" in line for line in lines)


def test_lambda_reporting_other_code_than_the_zip_is_an_error(zip_path, photos):
    # A stub: no real endpoint can be made to take other bytes than it was sent.
    class OtherCode(AWSClient):
        def create_function(self, **params):
            answer = super().create_function(**params)
            return {**answer, "CodeSha256": "not-the-zip"}

    with pytest.raises(AWSError, match="the code it took is not this zip"):
        deploy(settings(zip_path), OtherCode(), log=lambda _: None)


def test_deploy_refuses_outputs_that_the_existing_trigger_would_see(deployed, zip_path):
    wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient())
    before = client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]
    with pytest.raises(DeployError, match="invoke it again"):
        deploy(settings(zip_path, output_prefix="incoming/results/"), AWSClient(), log=lambda _: None)
    after = client("lambda").get_function(FunctionName=FUNCTION)["Configuration"]
    assert after["Environment"] == before["Environment"]
    # Results under the input prefix are fine when the trigger's suffix never matches them.
    unwire(FUNCTION, "photos", AWSClient())
    wire(WireSettings(FUNCTION, "photos", prefix="incoming/", suffix=".png"), AWSClient())
    deploy(settings(zip_path, output_prefix="incoming/results/"), AWSClient(), log=lambda _: None)


def test_buckets_whose_names_differ_only_by_a_dot_keep_their_own_permissions(deployed):
    for bucket in ("my.photos", "my-photos"):
        client("s3").create_bucket(Bucket=bucket)
        wire(WireSettings(FUNCTION, bucket, prefix="incoming/"), AWSClient())
    sources = lambda: sorted(  # noqa: E731
        s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in AWSClient().policy_statements(FUNCTION)
    )
    assert sources() == ["arn:aws:s3:::my-photos", "arn:aws:s3:::my.photos"]
    unwire(FUNCTION, "my.photos", AWSClient())
    assert sources() == ["arn:aws:s3:::my-photos"]


# --- wire targets the alias deploy points, not $LATEST ----------------------------------


def _ours() -> list[dict]:
    return [
        e for e in _notification().get("LambdaFunctionConfigurations", []) if e["Id"] == "lambdapack-digits"
    ]


def _grants() -> list[tuple[str, str]]:
    """(Sid, Resource) of every statement in the function's policy and in the alias's, once each.
    (moto 5.2 keeps ONE policy for the function and its aliases, and answers it for either;
    AWS keeps one per alias. The Resource says which one a statement belongs to on AWS.)"""
    found = set()
    for qualifier in (None, "live"):
        found |= {(s["Sid"], s["Resource"]) for s in AWSClient().policy_statements(FUNCTION, qualifier)}
    return sorted(found)


def test_wire_targets_the_alias_and_puts_the_permission_on_it(deployed):
    result = wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient())
    assert result.target == f"{FUNCTION_ARN}:live"
    assert [e["LambdaFunctionArn"] for e in _ours()] == [f"{FUNCTION_ARN}:live"]
    policy = json.loads(client("lambda").get_policy(FunctionName=FUNCTION, Qualifier="live")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Sid"] == statement_id("photos")
    assert statement["Resource"] == f"{FUNCTION_ARN}:live"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == "arn:aws:s3:::photos"
    assert any(f"may invoke {FUNCTION}:live" in a for a in result.actions)

    again = wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient())
    assert not again.changed and again.target == result.target
    assert _grants() == [(statement_id("photos"), f"{FUNCTION_ARN}:live")]

    done = unwire(FUNCTION, "photos", AWSClient())
    assert f"permission {statement_id('photos')} removed from {FUNCTION}:live" in done.actions
    assert _ours() == [] and _grants() == []
    for qualifier in ({}, {"Qualifier": "live"}):
        with pytest.raises(client("lambda").exceptions.ResourceNotFoundException):
            client("lambda").get_policy(FunctionName=FUNCTION, **qualifier)


def test_an_older_unqualified_wiring_is_replaced_cleanly(deployed):
    lam = client("lambda")
    # What an earlier lambdapack made: the entry and the statements on the function itself
    # (both of its statement-id schemes).
    for sid in (statement_id("photos"), "lambdapack-s3-photos"):
        lam.add_permission(
            FunctionName=FUNCTION,
            StatementId=sid,
            Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com",
            SourceArn="arn:aws:s3:::photos",
            SourceAccount="123456789012",
        )
    old = {
        "Id": "lambdapack-digits",
        "LambdaFunctionArn": FUNCTION_ARN,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
    }
    client("s3").put_bucket_notification_configuration(
        Bucket="photos", NotificationConfiguration={"LambdaFunctionConfigurations": [old]}
    )
    result = wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient())
    assert _ours() == [{**old, "LambdaFunctionArn": f"{FUNCTION_ARN}:live"}]
    assert _grants() == [(statement_id("photos"), f"{FUNCTION_ARN}:live")]
    assert (
        f"notification lambdapack-digits replaced on s3://photos: invokes {FUNCTION_ARN}:live"
        in result.actions
    )
    assert sum("removed from digits ($LATEST)" in a for a in result.actions) == 2
    assert not wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient()).changed


def test_alias_empty_wires_latest_and_back(deployed):
    latest = wire(WireSettings(FUNCTION, "photos", prefix="incoming/", alias=""), AWSClient())
    assert latest.target == FUNCTION_ARN
    assert [e["LambdaFunctionArn"] for e in _ours()] == [FUNCTION_ARN]
    assert _grants() == [(statement_id("photos"), FUNCTION_ARN)]
    live = wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient())
    assert live.target == f"{FUNCTION_ARN}:live"
    assert _grants() == [(statement_id("photos"), f"{FUNCTION_ARN}:live")]


def test_a_missing_alias_is_a_one_line_error_until_deploy_makes_it(zip_path, photos):
    deploy(settings(zip_path, alias=None), AWSClient(), log=lambda _: None)  # no version, no alias
    proc = run_cli("wire", "--function", FUNCTION, "--bucket", "photos", "--prefix", "incoming/")
    assert proc.returncode == 9, proc.stderr
    first, *hint = proc.stderr.strip().splitlines()
    assert first == "error: function digits has no alias live, so S3 cannot be wired to it"
    hint = " ".join(hint)
    assert "lambdapack deploy" in hint and "--alias ''" in hint
    assert _notification() == {} and _grants() == []
    # The code is unchanged, but deploy still makes the missing alias (else its advice would loop).
    lines: list[str] = []
    deploy(settings(zip_path), AWSClient(), log=lines.append)
    assert any("alias live created" in line for line in lines)
    # On an existing function a new alias may replace a deleted one, whose policy held S3's
    # permission: deploy says to wire again.
    assert any(line.startswith("warning: alias live is new on an existing function") for line in lines)
    wired = run_cli("wire", "--function", FUNCTION, "--bucket", "photos", "--prefix", "incoming/", "--json")
    assert wired.returncode == 0, wired.stderr
    assert json.loads(wired.stdout)["target"] == f"{FUNCTION_ARN}:live"
    latest = run_cli(
        "wire", "--function", FUNCTION, "--bucket", "photos", "--prefix", "incoming/", "--alias", ""
    )
    assert latest.returncode == 0, latest.stderr
    assert f"invokes {FUNCTION_ARN}\n" in latest.stdout and "removed from digits:live" in latest.stdout


def test_deploy_wires_again_when_it_recreates_a_deleted_alias(deployed, zip_path):
    """Someone deleted the alias S3 invokes; on AWS its policy (S3's permission) went with it,
    and every upload would fail to invoke. The next deploy recreates the alias and wires it
    again from the bucket's entry. (moto keeps one policy for all aliases, so the test
    removes the alias's statement itself, as AWS's delete_alias would.)"""
    wire(WireSettings(FUNCTION, "photos", prefix="incoming/", suffix=".png"), AWSClient())
    entry_before = _ours()
    lam = client("lambda")
    lam.delete_alias(FunctionName=FUNCTION, Name="live")
    lam.remove_permission(FunctionName=FUNCTION, Qualifier="live", StatementId=statement_id("photos"))
    assert _grants() == []
    lines: list[str] = []
    deploy(settings(zip_path), AWSClient(), log=lines.append)
    assert any("alias live created" in line for line in lines)
    assert (
        f"alias live was recreated; wired again: permission {statement_id('photos')}: s3.amazonaws.com may "
        f"invoke {FUNCTION}:live for arn:aws:s3:::photos" in lines
    )
    assert not any(line.startswith("warning:") for line in lines)
    assert _grants() == [(statement_id("photos"), f"{FUNCTION_ARN}:live")]
    assert _ours() == entry_before  # the same prefix, suffix and events


def test_a_recreated_alias_that_cannot_be_wired_again_is_a_warning_after_a_good_deploy(
    deployed, zip_path, monkeypatch
):
    """The deploy itself succeeded; S3's permission could not be granted again (here a stub
    refuses AddPermission, as IAM would for a deployer without lambda:AddPermission: moto
    enforces no IAM). deploy says so, and what to run."""
    from lambdapack.errors import AWSError

    wire(WireSettings(FUNCTION, "photos", prefix="incoming/"), AWSClient())
    lam = client("lambda")
    lam.delete_alias(FunctionName=FUNCTION, Name="live")
    lam.remove_permission(FunctionName=FUNCTION, Qualifier="live", StatementId=statement_id("photos"))

    def refused(self, *args, **kwargs):
        raise AWSError("AccessDenied: not authorized to perform lambda:AddPermission")

    monkeypatch.setattr(AWSClient, "add_permission", refused)
    lines: list[str] = []
    result = deploy(settings(zip_path), AWSClient(), log=lines.append)
    assert (
        result.version
        and lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"] == result.version
    )
    assert [line for line in lines if line.startswith("warning:")] == [
        "warning: alias live was recreated and S3's permission went with the old one; wiring it again "
        "failed (AccessDenied: not authorized to perform lambda:AddPermission): run lambdapack wire "
        f"--function {FUNCTION} --bucket photos --prefix 'incoming/'"
    ]


def test_what_moto_does_with_alias_permissions(deployed):
    """What lambdapack's tests can and cannot show with moto 5.2 (checked here, so an
    upgrade that changes it is noticed)."""
    lam = client("lambda")
    grant = dict(
        Action="lambda:InvokeFunction", Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::photos"
    )
    # As AWS: get_alias answers the alias's ARN; a missing alias is ResourceNotFoundException,
    # for get_alias and for add_permission with that Qualifier.
    assert lam.get_alias(FunctionName=FUNCTION, Name="live")["AliasArn"] == f"{FUNCTION_ARN}:live"
    for call in (
        lambda: lam.get_alias(FunctionName=FUNCTION, Name="nope"),
        lambda: lam.add_permission(FunctionName=FUNCTION, Qualifier="nope", StatementId="x", **grant),
    ):
        with pytest.raises(lam.exceptions.ResourceNotFoundException):
            call()
    # As AWS: a statement added with Qualifier names the alias's ARN as its Resource.
    lam.add_permission(FunctionName=FUNCTION, Qualifier="live", StatementId="on-alias", **grant)
    lam.add_permission(FunctionName=FUNCTION, StatementId="on-function", **grant)
    resources = lambda **q: {  # noqa: E731
        s["Sid"]: s["Resource"]
        for s in json.loads(lam.get_policy(FunctionName=FUNCTION, **q)["Policy"])["Statement"]
    }
    expected = {"on-alias": f"{FUNCTION_ARN}:live", "on-function": FUNCTION_ARN}
    # NOT as AWS: moto keeps one policy for the function and all its aliases and versions, so
    # get_policy answers both statements with or without Qualifier (AWS: one each), ...
    assert resources() == expected and resources(Qualifier="live") == expected
    # ... remove_permission ignores Qualifier (AWS: ResourceNotFoundException for a statement
    # not in that alias's policy), ...
    lam.remove_permission(FunctionName=FUNCTION, Qualifier="live", StatementId="on-function")
    assert resources() == {"on-alias": f"{FUNCTION_ARN}:live"}
    # ... and S3 accepts a notification for an alias that does not exist, or one S3 has no
    # permission to invoke (AWS validates the destination: "Unable to validate the following
    # destination configurations"). tests/test_wire_logic.py's FakeAWS keeps AWS's rules.
    client("s3").put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {"LambdaFunctionArn": f"{FUNCTION_ARN}:nope", "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )
