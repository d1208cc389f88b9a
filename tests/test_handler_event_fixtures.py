"""Event parsing against stored S3 event JSON and against the events a real
S3 endpoint (moto on 127.0.0.1) sends through an SQS notification."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from lambdapack_handler.events import parse_event

EVENTS = Path(__file__).parent / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    ("fixture", "keys", "names"),
    [
        ("s3-put.json", ["incoming/cat.jpg"], ["ObjectCreated:Put"]),
        (
            "s3-multi-record.json",
            ["incoming/a.jpg", "incoming/b.png", "incoming/c.webp"],
            ["ObjectCreated:Put", "ObjectCreated:Put", "ObjectCreated:Post"],
        ),
        (
            "s3-encoded-keys.json",
            ["incoming/cat 1.jpg", "incoming/a+b.jpg", "incoming/été 猫.png", "incoming/100%.png"],
            ["ObjectCreated:Put"] * 4,
        ),
        ("s3-copy.json", ["incoming/copied.jpg"], ["ObjectCreated:Copy"]),
        ("s3-multipart.json", ["incoming/big.jpg"], ["ObjectCreated:CompleteMultipartUpload"]),
        ("s3-delete.json", [], []),
        ("s3-test-event.json", [], []),
    ],
)
def test_stored_events(fixture, keys, names):
    refs, _ = parse_event(load(fixture))
    assert [r.key for r in refs] == keys
    assert [r.event_name for r in refs] == names
    assert all(r.bucket == "photos" for r in refs)


@pytest.fixture
def clients(aws):
    return boto3.client("s3"), boto3.client("sqs")


@pytest.mark.functional
def test_events_sent_by_a_real_s3_endpoint_decode_to_the_original_keys(clients):
    s3, sqs = clients
    s3.create_bucket(Bucket="photos")
    queue = sqs.create_queue(QueueName="events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket="photos",
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    odd = "incoming/cat 1+été 猫 100%.png"
    s3.put_object(Bucket="photos", Key=odd, Body=b"x")
    s3.copy_object(
        Bucket="photos", Key="incoming/copy of cat.png", CopySource={"Bucket": "photos", "Key": odd}
    )
    upload = s3.create_multipart_upload(Bucket="photos", Key="incoming/multi part.jpg")
    part = s3.upload_part(
        Bucket="photos",
        Key="incoming/multi part.jpg",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"y" * 1024,
    )
    s3.complete_multipart_upload(
        Bucket="photos",
        Key="incoming/multi part.jpg",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    seen = {}
    for _ in range(10):
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            refs, _ = parse_event(json.loads(message["Body"]))
            seen.update({ref.key: ref.event_name for ref in refs})
        if len(seen) == 3:
            break
    assert seen == {
        odd: "ObjectCreated:Put",
        "incoming/copy of cat.png": "ObjectCreated:Copy",
        "incoming/multi part.jpg": "ObjectCreated:CompleteMultipartUpload",
    }
