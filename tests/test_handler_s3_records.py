"""Per-record outcomes against a real moto S3 on 127.0.0.1: objects over the
limits refused before they are read or decoded while the other records of the
event go on, the version an event names, archived objects, AccessDenied
retried with a clear log line, and result keys within S3's 1,024 bytes."""

from __future__ import annotations

import hashlib
import io
import json
import os
from urllib.parse import quote_plus

import boto3
import pytest
from PIL import Image

from lambdapack_handler import contract
from lambdapack_handler.app import App, Settings
from lambdapack_handler.loader import load_classifier

from .conftest import SAMPLE, heldout_labels

pytestmark = pytest.mark.functional
BUCKET = "uploads"
MAX_BYTES = 200_000


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture(scope="module")
def classifier(sample_model_dir):
    env = {
        "MODEL_DIR": str(sample_model_dir),
        "MAX_IMAGE_BYTES": str(MAX_BYTES),
        "MAX_DECODE_BYTES": "2000000",
    }
    return load_classifier(env)


class CountingBody:
    """A real response body, counting the bytes it hands out."""

    def __init__(self, body, counts: dict, key: str):
        self.body, self.counts, self.key = body, counts, key
        counts[key] = 0

    def read(self, *args, **kwargs) -> bytes:
        chunk = self.body.read(*args, **kwargs)
        self.counts[self.key] += len(chunk)
        return chunk

    def close(self) -> None:
        self.body.close()


class ReadCounter:
    """The real moto client, observing how many bytes the handler reads from each object (no
    real part reports that); every call goes to moto unchanged."""

    def __init__(self, client):
        self.client, self.read = client, {}

    def __getattr__(self, name):
        return getattr(self.client, name)

    def get_object(self, **kwargs):
        response = self.client.get_object(**kwargs)
        response["Body"] = CountingBody(response["Body"], self.read, kwargs["Key"])
        return response


def event(*records: tuple[str, str | None]) -> dict:
    """An S3 event for (key, versionId) pairs, keys URL-encoded as S3 sends them."""
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": BUCKET},
                    "object": {
                        "key": quote_plus(key, safe="/"),
                        **({"versionId": version} if version else {}),
                    },
                },
            }
            for key, version in records
        ]
    }


def result(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"results/{key}.json")["Body"].read())


def digit(name: str = "digit-0021.png") -> bytes:
    return (SAMPLE / "heldout" / name).read_bytes()


def label(name: str) -> str:
    return heldout_labels()[name]


def test_objects_over_the_limits_are_refused_unread_and_undecoded_and_the_others_go_on(s3, classifier):
    wide = io.BytesIO()
    Image.new("RGB", (1000, 1000), (40, 40, 40)).save(wide, format="PNG")  # 4 MB decoded: over 2 MB
    s3.put_object(Bucket=BUCKET, Key="in/a.png", Body=digit("digit-0021.png"))
    s3.put_object(Bucket=BUCKET, Key="in/huge.png", Body=os.urandom(MAX_BYTES + 100_000))
    s3.put_object(Bucket=BUCKET, Key="in/wide.png", Body=wide.getvalue())
    s3.put_object(Bucket=BUCKET, Key="in/b.png", Body=digit("digit-0024.png"))
    counter = ReadCounter(s3)
    app = App(classifier, Settings(None, "results/", 1), counter)
    keys = ["in/a.png", "in/huge.png", "in/wide.png", "in/b.png"]
    summary = app.handle(event(*((key, None) for key in keys)))
    assert (summary["processed"], summary["ok"], summary["errors"]) == (4, 2, 2)
    huge, wide_result = result(s3, "in/huge.png"), result(s3, "in/wide.png")
    assert (
        huge["error"]["type"] == "ImageTooLarge"
        and f"over the limit of {MAX_BYTES}" in huge["error"]["message"]
    )
    assert counter.read["in/huge.png"] == 0  # refused from its Content-Length: not a byte read
    assert (
        wide_result["error"]["type"] == "ImageTooLarge" and "decode budget" in wide_result["error"]["message"]
    )
    assert "decode_ms" not in wide_result["timings"]
    assert result(s3, "in/a.png")["top_k"][0]["label"] == label("digit-0021.png")
    assert result(s3, "in/b.png")["top_k"][0]["label"] == label("digit-0024.png")


def test_the_version_an_event_names_is_the_one_read_and_recorded(s3, classifier):
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="in/v.png", Body=digit("digit-0028.png"))["VersionId"]
    latest = s3.put_object(Bucket=BUCKET, Key="in/v.png", Body=b"not an image")["VersionId"]
    app = App(classifier, Settings(None, "results/", 1), s3)

    app.handle(event(("in/v.png", first)))
    named = result(s3, "in/v.png")
    assert named["input"]["version_id"] == first and named["top_k"][0]["label"] == label("digit-0028.png")

    app.handle(event(("in/v.png", None)))  # no version named: the latest, and which one it was
    unnamed = result(s3, "in/v.png")
    assert unnamed["input"]["version_id"] == latest and unnamed["error"]["type"] == "NotAnImage"

    s3.delete_object(Bucket=BUCKET, Key="in/v.png", VersionId=first)
    summary = app.handle(event(("in/v.png", first)))
    gone = result(s3, "in/v.png")
    assert summary["errors"] == 1 and gone["error"]["type"] == "NoSuchVersion"
    assert gone["input"]["version_id"] == first


def test_an_archived_object_gets_an_error_result_instead_of_retries(s3, classifier):
    s3.put_object(Bucket=BUCKET, Key="in/cold.png", Body=digit(), StorageClass="GLACIER")
    s3.put_object(Bucket=BUCKET, Key="in/warm.png", Body=digit())
    app = App(classifier, Settings(None, "results/", 1), s3)
    summary = app.handle(event(("in/cold.png", None), ("in/warm.png", None)))
    assert (summary["ok"], summary["errors"]) == (1, 1)
    cold = result(s3, "in/cold.png")
    assert cold["error"]["type"] == "InvalidObjectState" and "restore" in cold["error"]["message"]
    assert "top_k" in result(s3, "in/warm.png")


def test_access_denied_is_retried_and_the_log_says_what_permission_is_missing(s3, classifier, capsys):
    # Stubbed: moto on 127.0.0.1 does not enforce IAM here, so nothing real answers AccessDenied.
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_object", service_error_code="AccessDenied", http_status_code=403)
        app = App(classifier, Settings(None, "results/", 1), client)
        with pytest.raises(Exception, match="AccessDenied"):
            app.handle(event(("in/secret.png", None)), type("Context", (), {"aws_request_id": "req-9"})())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [(line["outcome"], line["error"], line["request_id"]) for line in lines] == [
        ("retry", "AccessDenied", "req-9")
    ]
    assert "s3://uploads/in/secret.png" in lines[0]["why"] and "s3:GetObject" in lines[0]["why"]
    assert "s3:ListBucket" in lines[0]["why"]  # a missing key also answers 403 without it
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0


def test_a_key_too_long_for_its_result_key_gets_a_hashed_one_that_retries_overwrite(s3, classifier):
    key = "incoming/" + "é" * 500 + ".png"  # 1,013 bytes: results/ + key + .json would be 1,026
    s3.put_object(Bucket=BUCKET, Key=key, Body=digit())
    app = App(classifier, Settings(None, "results/", 1), s3)
    first = app.handle(event((key, None)))
    second = app.handle(event((key, None)))
    written = first["results"][0]["result_key"]
    assert written == contract.result_key("results/", key) and contract.is_hashed_result("results/", written)
    assert second["results"][0]["result_key"] == written
    results = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/")["Contents"]]
    assert results == [written]
    body = json.loads(s3.get_object(Bucket=BUCKET, Key=written)["Body"].read())
    assert body["input"]["key"] == key and body["top_k"][0]["label"] == label("digit-0021.png")
    assert app.handle(event((written, None)))["processed"] == 0  # the recursion guard knows it


def test_the_two_colliding_long_keys_get_two_results(s3, classifier):
    """Issue 20: 1,023- and 1,011-byte keys, the second equal to the first's old shortened
    result key (less prefix and .json): one result overwrote the other; now two results,
    each naming its own input."""
    first = "incoming/" + "a" * 1010 + ".png"
    tail = f"-{hashlib.sha256(first.encode()).hexdigest()}"
    second = first[: 1024 - len("results/") - len(tail) - len(".json")] + tail
    assert (len(first.encode()), len(second.encode())) == (1023, 1011)
    for key in (first, second):
        s3.put_object(Bucket=BUCKET, Key=key, Body=digit())
    summary = App(classifier, Settings(None, "results/", 1), s3).handle(event((first, None), (second, None)))
    written = [r["result_key"] for r in summary["results"]]
    assert len(set(written)) == 2
    inputs = {json.loads(s3.get_object(Bucket=BUCKET, Key=k)["Body"].read())["input"]["key"] for k in written}
    assert inputs == {first, second}
