"""results --wait: until every uploaded image has its result (contract.result_key),
or the time runs out with the missing ones named (exit 12). Against a real moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import boto3
import pytest

from lambdapack.aws.objects import output_prefixes, wait_for_results

from .conftest import ROOT

pytestmark = pytest.mark.functional


@pytest.fixture
def photos(aws):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="photos")
    for name in ("a.png", "b.jpg"):
        s3.put_object(Bucket="photos", Key=f"incoming/{name}", Body=b"image bytes")
    s3.put_object(Bucket="photos", Key="incoming/notes.txt", Body=b"not an image: no result expected")
    s3.put_object(
        Bucket="photos", Key="results/incoming/a.png.json", Body=json.dumps({"input": {"key": "a"}})
    )
    return s3


def test_waits_for_a_result_that_arrives_and_names_one_that_never_does(photos):
    timer = threading.Timer(
        0.5,
        photos.put_object,
        kwargs={"Bucket": "photos", "Key": "results/incoming/b.jpg.json", "Body": b"{}"},
    )
    timer.start()
    seen = []
    missing = wait_for_results(
        photos,
        ("photos", "incoming/"),
        ("photos", "results/"),
        timeout=20,
        poll=0.1,
        progress=lambda *a: seen.append(a),
    )
    assert missing == [] and seen[-1] == (2, 2) and seen[0][1] == 2
    photos.delete_object(Bucket="photos", Key="results/incoming/b.jpg.json")
    assert wait_for_results(
        photos, ("photos", "incoming/"), ("photos", "results/"), timeout=0.3, poll=0.1
    ) == ["incoming/b.jpg"]


def test_the_command_exits_12_naming_what_is_missing(photos):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lambdapack",
            "results",
            "s3://photos/results/",
            "--wait",
            "0.5",
            "--inputs",
            "s3://photos/incoming/",
        ],
        capture_output=True,
        text=True,
        env=os.environ,
        cwd=ROOT,
    )
    assert proc.returncode == 12, proc.stderr
    assert "1 images have no result after 0.5 s: incoming/b.jpg" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


def test_a_narrower_results_location_finds_the_results_there(photos):
    """results s3://photos/results/incoming/ (not the output prefix itself) waits for the
    same keys: the location is the output prefix plus the start of the inputs' prefix."""
    photos.put_object(Bucket="photos", Key="results/incoming/b.jpg.json", Body=b"{}")
    for location in ("results/", "results/incoming/", "results/inc"):
        assert (
            wait_for_results(photos, ("photos", "incoming/"), ("photos", location), timeout=0, poll=0.1) == []
        )
    photos.delete_object(Bucket="photos", Key="results/incoming/b.jpg.json")
    assert wait_for_results(
        photos, ("photos", "incoming/"), ("photos", "results/incoming/"), timeout=0, poll=0.1
    ) == ["incoming/b.jpg"]


def test_output_prefixes():
    # Every reading where the location is an output prefix plus the start of the inputs' prefix.
    assert output_prefixes("results/incoming/bad/", "incoming/bad/") == ["results/", "results/incoming/bad/"]
    assert output_prefixes("results/", "incoming/") == ["results/"]
    assert output_prefixes("out/in", "incoming/") == ["out/", "out/in"]
    # An output prefix that itself looks like the start of the inputs' prefix: both readings.
    assert output_prefixes("in/", "in/x/") == ["", "in/"]
