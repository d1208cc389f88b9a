"""The packed zip's handler, end to end against a real moto server: the
held-out digits are uploaded, the handler runs from the unzipped zip in a
clean interpreter (the task folder, a boto3 standing in for the runtime's,
and the standard library), and every result object is read back."""

from __future__ import annotations

import json
import zipfile
from urllib.parse import quote_plus

import boto3
import pytest

from lambdapack.local.lambda_runtime import run_beside_runtime_boto3
from lambdapack.packing.target import Target, host_can_run

from .conftest import SAMPLE, heldout_labels

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(not host_can_run(Target("3.11", "x86_64")), reason="needs Python 3.11 on x86_64"),
]

INVOKE = """
import json, sys
task, boto3_dir, events_path = sys.argv[1:4]
sys.path[:0] = [task, boto3_dir]
import index

class Context:
    def __init__(self, number):
        self.aws_request_id = f"req-{number}"

summaries = []
with open(events_path) as handle:
    for number, event in enumerate(json.load(handle)):
        summaries.append(index.handler(event, Context(number)))
outside = sorted(n for n, m in sys.modules.items() if "site-packages" in (getattr(m, "__file__", None) or ""))
print(json.dumps({"summaries": summaries, "outside": outside}))
"""


def s3_event(bucket: str, keys: list[str]) -> dict:
    """An S3 notification as S3 sends it: keys URL-encoded, spaces as '+'."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "lambdapack",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": 1},
                },
            }
            for key in keys
        ]
    }


def test_every_heldout_digit_gets_one_correct_enough_result(packed, aws, moto_endpoint, cache_dir, tmp_path):
    out, _, _ = packed
    env = {key: value for key, value in aws.items() if key != "AWS_ENDPOINT_URL"}
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="digits")
    truth = {f"incoming/digit {name}": label for name, label in heldout_labels().items()}
    for key in truth:
        s3.put_object(Bucket="digits", Key=key, Body=(SAMPLE / "heldout" / key.split(" ", 1)[1]).read_bytes())
    keys = sorted(truth)
    events = [s3_event("digits", keys[i : i + 25]) for i in range(0, len(keys), 25)]
    events.append(s3_event("digits", keys[:5]))  # a retried event: must overwrite, not duplicate
    (tmp_path / "events.json").write_text(json.dumps(events))

    task = tmp_path / "task"
    zipfile.ZipFile(out / "function.zip").extractall(task)
    proc = run_beside_runtime_boto3(
        INVOKE, task, cache_dir, [str(tmp_path / "events.json")], {"AWS_ENDPOINT_URL": moto_endpoint, **env}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["outside"] == []
    assert sum(s["processed"] for s in outcome["summaries"]) == len(truth) + 5
    # one structured log line per record
    logs = [json.loads(line) for line in proc.stdout.strip().splitlines()[:-1] if line.startswith("{")]
    assert len(logs) == len(truth) + 5 and {"request_id", "key", "outcome"} <= set(logs[0])

    results = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="digits", Prefix="results/"):
        for item in page["Contents"]:
            results[item["Key"]] = json.loads(s3.get_object(Bucket="digits", Key=item["Key"])["Body"].read())
    assert sorted(results) == sorted(f"results/{key}.json" for key in truth)
    correct = sum(
        results[f"results/{key}.json"]["top_k"][0]["label"] == label for key, label in truth.items()
    )
    accuracy = correct / len(truth)
    print(f"end-to-end top-1 accuracy on {len(truth)} held-out digits: {accuracy:.3f}")
    assert accuracy >= 0.95
