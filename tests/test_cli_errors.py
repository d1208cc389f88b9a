"""Expected failures of every command are one message with what to do and a
documented exit code, never a traceback (the real CLI, in a subprocess)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile

import pytest

from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD

from .conftest import ROOT

pytestmark = pytest.mark.functional


def lambdapack(*args: str, env: dict | None = None, cwd=ROOT) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "lambdapack", *args],
        capture_output=True,
        text=True,
        env={**base, "COLUMNS": "200", **(env or {})},
        cwd=cwd,
    )


def assert_clean_failure(proc: subprocess.CompletedProcess, code: int, words: str) -> None:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert words in proc.stderr, proc.stderr


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "one.png").write_bytes(b"\x89PNG not really")
    return folder


def test_upload_to_a_missing_bucket(aws, images):
    upload = lambdapack("upload", str(images), "s3://no-such-bucket/in/", env=aws)
    assert_clean_failure(upload, 9, "bucket no-such-bucket does not exist")
    results = lambdapack("results", "s3://no-such-bucket/results/", env=aws)
    assert_clean_failure(results, 9, "bucket no-such-bucket does not exist")


def test_upload_says_which_files_it_skipped(aws, images):
    import boto3

    boto3.client("s3").create_bucket(Bucket="photos")
    (images / "readme.txt").write_text("notes")
    (images / "._photo.png").write_bytes(b"\0\5\26\7")  # macOS's resource fork: hidden, no image
    upload = lambdapack("upload", str(images), "s3://photos/in/", env=aws)
    assert upload.returncode == 0, upload.stderr
    assert upload.stdout.splitlines()[-2:] == [
        "uploaded 1 images to s3://photos/in/",
        "skipped 2 files that are not images by their name, or hidden: ._photo.png, readme.txt",
    ]


def test_upload_and_results_with_the_endpoint_down(images):
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    assert_clean_failure(
        lambdapack("upload", str(images), "s3://photos/in/", env=env), 9, "could not connect"
    )
    assert_clean_failure(lambdapack("results", "s3://photos/results/", env=env), 9, "could not connect")


def test_results_without_credentials(moto_endpoint, tmp_path):
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    assert_clean_failure(lambdapack("results", "s3://photos/results/", env=env), 9, "no AWS credentials")


def test_a_bad_s3_url_is_bad_input(images):
    assert_clean_failure(lambdapack("upload", str(images), "photos/in/"), 2, "is not s3://BUCKET/PREFIX")


def test_zip_commands_refuse_what_is_not_a_zip(tmp_path):
    not_zip = tmp_path / "function.zip"
    not_zip.write_text("not a zip")
    assert_clean_failure(lambdapack("report", str(not_zip)), 2, "is not a zip file")
    assert_clean_failure(lambdapack("compare", str(not_zip), str(not_zip)), 2, "is not a zip file")
    assert_clean_failure(lambdapack("invoke", str(not_zip), "--bucket", "b", "--key", "k"), 2, "is not a zip")


def test_a_malformed_build_record_is_named(tmp_path):
    broken = tmp_path / "function.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 1\n")
        archive.writestr(BUILD_RECORD, "{not json")
    assert_clean_failure(lambdapack("report", str(broken)), 2, "is not valid JSON")
    deploy = lambdapack("deploy", str(broken), "--function", "f", "--bucket", "photos", "--dry-run")
    assert_clean_failure(deploy, 2, "is not valid JSON")


def test_an_event_file_that_is_not_json(tmp_path, packed):
    out, _, _ = packed
    event = tmp_path / "event.json"
    event.write_text("{")
    assert_clean_failure(
        lambdapack("invoke", str(out / "function.zip"), "--event", str(event)), 2, "is not a JSON event"
    )


def test_a_model_file_that_is_not_its_format_is_one_line_exit_2(tmp_path):
    """Keras answered a .keras file that is not a zip with "File not found"."""
    junk = tmp_path / "junk.keras"
    junk.write_text("a text file named like a model")
    for command in (("init", str(junk)), ("pack", str(junk), "--out", str(tmp_path / "dist"))):
        proc = lambdapack(*command)
        assert_clean_failure(proc, 2, "junk.keras is not a Keras 3 .keras file (a zip archive)")
        assert proc.stderr.startswith("error") and "File not found" not in proc.stderr


def test_local_refuses_a_concurrency_below_one():
    assert_clean_failure(lambdapack("local", "--port", "0", "--concurrency", "0"), 2, "--concurrency")


def test_an_unknown_profile_is_named(tmp_path, images):
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "creds"),
    }
    proc = lambdapack("upload", str(images), "s3://photos/in/", "--profile", "nobody", env=env)
    assert_clean_failure(proc, 9, "no AWS profile named 'nobody'")


def test_region_and_profile_reach_every_aws_call(aws, tmp_path, images, packed):
    """A named profile supplies the credentials (none in the environment) and --region
    wins over AWS_REGION: the function lands in eu-west-1."""
    out, _, _ = packed
    config = tmp_path / "config"
    config.write_text("[profile local]\nregion = us-west-2\n")
    creds = tmp_path / "creds"
    creds.write_text(  # the keys of the endpoint's administrator, in the profile only
        f"[local]\naws_access_key_id = {aws['AWS_ACCESS_KEY_ID']}\n"
        f"aws_secret_access_key = {aws['AWS_SECRET_ACCESS_KEY']}\n"
    )
    env = {
        "AWS_ENDPOINT_URL": aws["AWS_ENDPOINT_URL"],
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(creds),
        "AWS_REGION": "us-east-1",
    }
    import boto3

    boto3.client("s3").create_bucket(Bucket="photos")
    common = ["--profile", "local", "--region", "eu-west-1"]
    upload = lambdapack("upload", str(images), "s3://photos/in/", *common, env=env)
    assert upload.returncode == 0, upload.stderr
    deploy = lambdapack(
        "deploy", str(out / "function.zip"), "--function", "regional", "--bucket", "photos", *common, env=env
    )
    assert deploy.returncode == 0, deploy.stderr
    arn = boto3.client("lambda", region_name="eu-west-1").get_function(FunctionName="regional")
    assert ":eu-west-1:" in arn["Configuration"]["FunctionArn"]
