import pytest

from lambdapack.aws.deploy import configuration_changes
from lambdapack.aws.wire import (
    WireSettings,
    events_overlap,
    filters_overlap,
    merge,
    our_entry,
    recursion_risk,
    remove,
    statement_id,
)
from lambdapack.errors import WireError

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"


def test_event_overlap():
    assert events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put")
    assert events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:*")
    assert not events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:Copy")
    assert not events_overlap("s3:ObjectCreated:*", "s3:ObjectRemoved:*")


@pytest.mark.parametrize(
    ("one", "other", "overlap"),
    [
        (("incoming/", ""), ("incoming/cats/", ""), True),
        (("incoming/", ""), ("other/", ""), False),
        (("", ".jpg"), ("", ".png"), False),
        (("", ".jpg"), ("", "cat.jpg"), True),
        (("", ""), ("x/", ".png"), True),
    ],
)
def test_filter_overlap(one, other, overlap):
    assert filters_overlap(one, other) is overlap


@pytest.mark.parametrize(
    ("env", "prefix", "suffix", "risky"),
    [
        ({}, "", "", True),  # results/ in the same bucket, whole bucket triggers
        ({}, "incoming/", "", False),
        ({}, "results/", "", True),
        ({}, "res", "", True),
        ({}, "", ".jpg", False),  # results end in .json
        ({}, "", ".json", True),
        ({"OUTPUT_BUCKET": "elsewhere"}, "", "", False),
        ({"OUTPUT_PREFIX": "incoming/results/"}, "incoming/", "", True),
    ],
)
def test_recursion_risk(env, prefix, suffix, risky):
    assert (recursion_risk(env, "photos", prefix, suffix) is not None) is risky


def test_merge_adds_replaces_and_keeps_others():
    others = {
        "QueueConfigurations": [
            {
                "Id": "q",
                "QueueArn": "arn:q",
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "logs/"}]}},
            }
        ]
    }
    entry = our_entry(ARN, WireSettings("f", "photos", prefix="incoming/"))
    merged, change = merge(others, entry)
    assert change == "added" and merged["QueueConfigurations"] == others["QueueConfigurations"]
    again, change = merge(merged, entry)
    assert change == "unchanged" and again == merged
    moved = our_entry(ARN, WireSettings("f", "photos", prefix="uploads/"))
    replaced, change = merge(merged, moved)
    assert change == "replaced" and replaced["LambdaFunctionConfigurations"] == [moved]
    removed, done = remove(replaced, "f")
    assert done and removed == others


def test_merge_refuses_an_overlapping_entry_and_names_it():
    other = {
        "LambdaFunctionConfigurations": [
            {"Id": "thumbnails", "LambdaFunctionArn": "arn:other", "Events": ["s3:ObjectCreated:Put"]}
        ]
    }
    with pytest.raises(WireError, match="thumbnails"):
        merge(other, our_entry(ARN, WireSettings("f", "photos", prefix="incoming/")))


def test_statement_id_is_valid_for_dotted_bucket_names_and_unique_per_bucket():
    import re

    sid = statement_id("my.photos-2026")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", sid) and sid.startswith("lambdapack-s3-my-photos-2026-")
    # '.' folds into '-' in the readable part; the hash keeps the two buckets apart.
    assert statement_id("my.photos") != statement_id("my-photos")
    assert statement_id("my.photos") == statement_id("my.photos")


def test_configuration_changes_only_lists_what_differs():
    current = {
        "MemorySize": 1024,
        "Timeout": 60,
        "Environment": {"Variables": {"A": "1"}},
        "EphemeralStorage": {"Size": 512},
        "Runtime": "python3.11",
    }
    desired = {
        "MemorySize": 1024,
        "Timeout": 30,
        "Environment": {"Variables": {"A": "1"}},
        "EphemeralStorage": {"Size": 512},
        "Runtime": "python3.11",
    }
    assert configuration_changes(current, desired) == {"Timeout": 30}
    assert configuration_changes({**current, "Environment": None}, {"Environment": {"Variables": {}}}) == {}
