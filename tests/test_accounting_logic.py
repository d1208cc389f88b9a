"""The pure parts of status, backfill and redrive: rates, batches, triggers, the ARN an
asynchronous Invoke names, formula cells, and reading failure records."""

from __future__ import annotations

import json

import pytest

from lambdapack.aws.backfill import batches, parse_rate
from lambdapack.aws.inventory import Trigger, covers_prefix, read_record
from lambdapack.csvfile import csv_cell
from lambdapack.errors import InputError
from lambdapack.local.motoseam import qualified_arn


@pytest.mark.parametrize(("text", "rate"), [("20/s", 20.0), ("2.5", 2.5), ("0.5/s", 0.5)])
def test_a_rate_is_invocations_a_second(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["0/s", "-1", "fast", "nan", "inf/s", ""])
def test_a_rate_that_is_not_a_positive_number_is_bad_input(text):
    with pytest.raises(InputError, match="--rate"):
        parse_rate(text)


def test_batches_keep_every_key_once_in_order():
    keys = [str(n) for n in range(23)]
    parts = batches(keys, 10)
    assert [len(p) for p in parts] == [10, 10, 3] and [k for p in parts for k in p] == keys


def test_a_trigger_covers_keys_and_prefixes_by_its_filter():
    trigger = Trigger("lambdapack-digits", "incoming/", ".png", "arn:aws:lambda:r:1:function:digits:live")
    assert trigger.covers("incoming/a.png") and not trigger.covers("incoming/a.jpg")
    assert not trigger.covers("other/a.png")
    assert covers_prefix(trigger, "incoming/cats/") and not covers_prefix(trigger, "in/")
    assert trigger.describe() == "lambdapack-digits (prefix 'incoming/', suffix '.png')"


@pytest.mark.parametrize(
    ("name", "qualifier", "arn"),
    [
        ("digits", "live", "arn:aws:lambda:us-east-1:123:function:digits:live"),
        ("digits", None, "arn:aws:lambda:us-east-1:123:function:digits"),
        ("digits:live", None, "arn:aws:lambda:us-east-1:123:function:digits:live"),
        (
            "arn:aws:lambda:us-east-1:123:function:digits",
            "3",
            "arn:aws:lambda:us-east-1:123:function:digits:3",
        ),
        (
            "arn:aws:lambda:us-east-1:123:function:digits:live",
            "live",
            "arn:aws:lambda:us-east-1:123:function:digits:live",
        ),
    ],
)
def test_an_asynchronous_invoke_names_the_arn_s3_would(name, qualifier, arn):
    assert qualified_arn("123", "us-east-1", name, qualifier) == arn


@pytest.mark.parametrize(
    ("cell", "written"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("cat", "cat"), (0.5, 0.5)],
)
def test_csv_cells_a_spreadsheet_would_run_are_kept_as_text(cell, written):
    assert csv_cell(cell) == written


def test_a_failure_record_names_its_objects_and_why():
    record = {
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": {
            "Records": [{"s3": {"bucket": {"name": "photos"}, "object": {"key": "incoming/cat+1.png"}}}]
        },
        "responsePayload": {"errorType": "Runtime.ExitError", "errorMessage": "signal: killed"},
    }
    read = read_record({"MessageId": "m", "ReceiptHandle": "r", "Body": json.dumps(record)})
    assert read.objects == [("photos", "incoming/cat 1.png")]
    assert read.reason == "killed (RetriesExhausted: Runtime.ExitError: signal: killed after 3 attempt(s))"
    timed_out = {
        **record,
        "responsePayload": {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"},
    }
    assert read_record(
        {"MessageId": "m", "ReceiptHandle": "r", "Body": json.dumps(timed_out)}
    ).reason.startswith("timeout (")
    other = read_record({"MessageId": "m", "ReceiptHandle": "r", "Body": "[1, 2]"})
    assert other.record == {} and other.objects == []
