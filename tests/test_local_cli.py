"""The local commands as a user runs them: lambdapack local in its own
process, then upload and results against it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys

import boto3
import botocore.exceptions
import pytest

from .conftest import ROOT, SAMPLE

pytestmark = pytest.mark.functional


EXPORTS: dict[str, dict[str, str]] = {}  # endpoint -> the exports it printed (its administrator's keys)


def start_local(cache_dir, *args: str) -> tuple[subprocess.Popen, str]:
    """``lambdapack local ARGS`` in its own process, once it says where it serves and has
    printed its exports (kept in EXPORTS)."""
    env = dict(os.environ, LAMBDAPACK_CACHE=str(cache_dir), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lambdapack", "local", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    endpoint = None
    output = []
    for line in proc.stdout:
        output.append(line)
        if line.startswith("local AWS endpoint:"):
            endpoint = line.split()[3]
        elif endpoint and line.strip().startswith("export "):
            key, _, value = line.strip().removeprefix("export ").partition("=")
            EXPORTS.setdefault(endpoint, {})[key] = value
        elif endpoint:
            break
    assert endpoint and endpoint.startswith("http://127.0.0.1:"), f"lambdapack local did not start: {output}"
    assert EXPORTS[endpoint]["AWS_ENDPOINT_URL"] == endpoint
    return proc, endpoint


@pytest.fixture
def local_endpoint(cache_dir):
    proc, endpoint = start_local(cache_dir, "--port", "0", "--bucket", "photos")
    yield proc, endpoint
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def s3_at(endpoint: str, key_id: str | None = None, secret: str | None = None):
    """An S3 client with the keys ``lambdapack local`` printed (or the ones given)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id or EXPORTS[endpoint]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or EXPORTS[endpoint]["AWS_SECRET_ACCESS_KEY"],
    )


def test_local_starts_again_on_its_port_right_after_it_stopped(cache_dir):
    """Stopping closes kept-alive connections from the server's side, which leaves the port
    in TIME-WAIT for a minute: the next start on that port must not call it busy."""
    proc, endpoint = start_local(cache_dir, "--port", "0", "--bucket", "photos")
    try:
        s3 = s3_at(endpoint)
        assert s3.list_buckets()["Buckets"]  # a connection the server will close
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    port = endpoint.rsplit(":", 1)[1]
    again, endpoint_again = start_local(cache_dir, "--port", port)
    again.send_signal(signal.SIGTERM)
    again.communicate(timeout=60)
    assert endpoint_again == endpoint and again.returncode == 0


def test_local_refuses_a_bad_bucket_name_before_it_starts(cache_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "lambdapack", "local", "--port", "0", "--bucket", "b2"],
        capture_output=True,
        text=True,
        env=dict(os.environ, LAMBDAPACK_CACHE=str(cache_dir)),
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2 and "--bucket" in proc.stderr and "b2" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "local AWS endpoint" not in proc.stdout


def cli(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, **EXPORTS[endpoint], COLUMNS="160")  # the exports, pasted
    env.pop("AWS_DEFAULT_REGION", None)
    return subprocess.run(
        [sys.executable, "-m", "lambdapack", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )


def test_local_serves_an_endpoint_that_upload_and_results_use_then_stops_cleanly(local_endpoint, tmp_path):
    proc, endpoint = local_endpoint
    s3 = s3_at(endpoint)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["photos"]  # made by --bucket
    with pytest.raises(botocore.exceptions.ClientError) as refused:  # IAM enforced: any other key
        s3_at(endpoint, "testing", "testing").list_buckets()
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    uploaded = cli(endpoint, "upload", str(SAMPLE / "samples"), "s3://photos/incoming")
    assert uploaded.returncode == 0, uploaded.stderr
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="photos", Prefix="incoming/")["Contents"])
    assert keys == sorted(f"incoming/{p.name}" for p in (SAMPLE / "samples").glob("*.png"))

    s3.put_object(
        Bucket="photos",
        Key="results/incoming/a.png.json",
        Body=json.dumps({"input": {"key": "incoming/a.png"}, "top_k": [{"label": "7", "score": 0.9}]}),
    )
    s3.put_object(
        Bucket="photos",
        Key="results/incoming/b.png.json",
        Body=json.dumps(
            {"input": {"key": "incoming/b.png"}, "error": {"type": "NotAnImage", "message": "not an image"}}
        ),
    )
    table = cli(endpoint, "results", "s3://photos/results/", "--csv", str(tmp_path / "r.csv"))
    assert table.returncode == 0, table.stderr
    assert "1 classified, 1 errors" in table.stdout
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["input"], r["label"], r["error"]) for r in rows] == [
        ("incoming/a.png", "7", ""),
        ("incoming/b.png", "", "NotAnImage: not an image"),
    ]

    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0
    assert "0 invocations, 0 cold starts" in output
    # Quiet by default: no HTTP access-log line for the dozens of requests above (--verbose shows them).
    assert not [line for line in output.splitlines() if "HTTP/1.1" in line]
