"""The handler's S3 behaviour against a real moto server on 127.0.0.1: result
objects at deterministic keys, bad images recorded without stopping the
batch, retries that overwrite, and the recursion guard.

The handler's App is imported here (these tests are about its S3 logic);
the packed zip itself is run in a clean interpreter by test_pack_functional."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from PIL import Image

from lambdapack_handler.app import App, Settings
from lambdapack_handler.classifier import Classifier
from lambdapack_handler.loader import load_classifier

from .conftest import SAMPLE, heldout_labels

pytestmark = pytest.mark.functional
BUCKET = "uploads"


@pytest.fixture
def s3(moto_endpoint, moto_keys):
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


@pytest.fixture(scope="module")
def classifier(sample_model_dir) -> Classifier:
    return load_classifier({"MODEL_DIR": str(sample_model_dir), "MAX_IMAGE_PIXELS": "1000000"})


def event(*keys: str, name: str = "ObjectCreated:Put") -> dict:
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventName": name,
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": quote_plus(key, safe="/")}},
            }
            for key in keys
        ]
    }


def result(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"results/{key}.json")["Body"].read())


def digit(name: str) -> bytes:
    return (SAMPLE / "heldout" / name).read_bytes()


def all_keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_each_image_gets_a_result_at_a_key_derived_from_its_own(s3, classifier):
    rows = list(heldout_labels().items())[:3]
    keys = {}
    for number, (name, label) in enumerate(rows):
        key = ["incoming/cat 1.png", "incoming/a+b.png", "incoming/été.png"][number]
        s3.put_object(Bucket=BUCKET, Key=key, Body=digit(name))
        keys[key] = label
    app = App(classifier, Settings(None, "results/", 3), s3)
    summary = app.handle(event(*keys), type("Context", (), {"aws_request_id": "req-1"})())
    assert summary["processed"] == 3 and summary["ok"] == 3
    for key, label in keys.items():
        body = result(s3, key)
        assert body["input"]["key"] == key and body["input"]["etag"]
        assert body["model"]["sha256"] == classifier.model_sha256
        assert len(body["top_k"]) == 3 and body["top_k"][0]["label"] == label
        assert body["request_id"] == "req-1"
        assert set(body["timings"]) == {"download_ms", "decode_ms", "inference_ms"}


def test_bad_images_get_error_results_and_do_not_stop_the_others(s3, classifier):
    noise = Image.new("L", (2000, 2000))
    big = io.BytesIO()
    noise.save(big, format="PNG")
    s3.put_object(Bucket=BUCKET, Key="in/text.png", Body=b"not an image at all")
    s3.put_object(Bucket=BUCKET, Key="in/empty.png", Body=b"")
    s3.put_object(Bucket=BUCKET, Key="in/bomb.png", Body=big.getvalue())
    s3.put_object(Bucket=BUCKET, Key="in/good.png", Body=digit("digit-0021.png"))
    app = App(classifier, Settings(None, "results/", 1), s3)
    summary = app.handle(event("in/text.png", "in/empty.png", "in/bomb.png", "in/good.png"))
    assert (summary["ok"], summary["errors"]) == (1, 3)
    assert result(s3, "in/text.png")["error"]["type"] == "NotAnImage"
    assert result(s3, "in/empty.png")["error"]["type"] == "EmptyImage"
    assert result(s3, "in/bomb.png")["error"]["type"] == "ImageTooLarge"
    assert "top_k" in result(s3, "in/good.png")


def test_a_retried_event_overwrites_instead_of_duplicating(s3, classifier):
    s3.put_object(Bucket=BUCKET, Key="in/one.png", Body=digit("digit-0021.png"))
    app = App(classifier, Settings(None, "results/", 1), s3)
    first = app.handle(event("in/one.png"))
    keys_after_first = all_keys(s3)
    second = app.handle(event("in/one.png"))
    assert all_keys(s3) == keys_after_first == ["in/one.png", "results/in/one.png.json"]
    assert first["results"][0]["top1"] == second["results"][0]["top1"]


def test_keys_under_the_output_prefix_are_never_processed(s3, classifier):
    s3.put_object(Bucket=BUCKET, Key="results/in/x.png.json", Body=b"{}")
    app = App(classifier, Settings(None, "results/", 1), s3)
    summary = app.handle(event("results/in/x.png.json"))
    assert summary["processed"] == 0 and "output prefix" in summary["skipped"][0]
    assert all_keys(s3) == ["results/in/x.png.json"]


def test_an_object_deleted_before_it_is_read_gets_an_error_result(s3, classifier):
    app = App(classifier, Settings(None, "results/", 1), s3)
    summary = app.handle(event("in/not-there.png"))
    assert summary["errors"] == 1
    assert result(s3, "in/not-there.png")["error"]["type"] == "NoSuchKey"


def test_throttling_raises_so_lambda_retries_and_nothing_is_written(s3, classifier):
    # Stubbed: no real part here can make S3 answer SlowDown (botocore's Stubber).
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_object", service_error_code="SlowDown", http_status_code=503)
        app = App(classifier, Settings(None, "results/", 1), client)
        with pytest.raises(Exception, match="SlowDown"):
            app.handle(event("in/one.png"))
        stub.assert_no_pending_responses()
    assert all_keys(s3) == []
