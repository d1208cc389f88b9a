import pytest

from lambdapack_handler.events import EventError, parse_event


def s3_event(*keys, name="ObjectCreated:Put", bucket="photos"):
    return {
        "Records": [
            {"eventName": name, "s3": {"bucket": {"name": bucket}, "object": {"key": key, "eTag": "abc"}}}
            for key in keys
        ]
    }


def test_keys_are_url_decoded_with_plus_for_space():
    refs, skipped = parse_event(
        s3_event("incoming/cat+1.jpg", "incoming/a%2Bb.png", "incoming/%C3%A9t%C3%A9.jpg")
    )
    assert [r.key for r in refs] == ["incoming/cat 1.jpg", "incoming/a+b.png", "incoming/été.jpg"]
    assert refs[0].bucket == "photos" and refs[0].etag == "abc"
    assert skipped == []


@pytest.mark.parametrize(
    "name", ["ObjectCreated:Copy", "ObjectCreated:CompleteMultipartUpload", "ObjectCreated:Post"]
)
def test_every_object_created_event_is_processed(name):
    refs, _ = parse_event(s3_event("k.png", name=name))
    assert [r.event_name for r in refs] == [name]


def test_removal_events_are_skipped_with_a_note():
    refs, skipped = parse_event(s3_event("k.png", name="ObjectRemoved:Delete"))
    assert refs == [] and "not an object creation" in skipped[0]


def test_direct_invocations():
    assert [r.key for r in parse_event({"bucket": "b", "key": "k"})[0]] == ["k"]
    assert [r.key for r in parse_event({"bucket": "b", "keys": ["x", "y"]})[0]] == ["x", "y"]


def test_s3_test_event_is_ignored():
    refs, skipped = parse_event({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})
    assert refs == [] and "TestEvent" in skipped[0]


@pytest.mark.parametrize("event", [[], {"foo": 1}, {"Records": [{"nope": 1}]}, {"bucket": "b", "keys": "k"}])
def test_anything_else_is_a_clear_error_naming_what_was_expected(event):
    with pytest.raises(EventError, match=r"bucket|key"):
        parse_event(event)


def record(**object_fields) -> dict:
    return {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "photos"}, "object": object_fields}}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            {"Records": [record(key=123)]},
            r"record 0: s3\.object\.key must be a non-empty string, not a number",
        ),
        (
            {"Records": [record(key="")]},
            r"record 0: s3\.object\.key must be a non-empty string, not a string",
        ),
        (
            {"Records": [record(key="a.png"), {"s3": {"bucket": None, "object": {"key": "k"}}}]},
            r"record 1: s3\.bucket must be an object, not null",
        ),
        (
            {"Records": [{"s3": {"bucket": {"name": None}, "object": {"key": "k"}}}]},
            r"record 0: s3\.bucket\.name must be a non-empty string, not null",
        ),
        ({"Records": [["not", "a", "record"]]}, r"record 0 is a list .*, not an S3 record"),
        ({"Records": ["s3://photos/a.png"]}, r"record 0 is a string .*, not an S3 record"),
        (
            {"Records": [{**record(key="k"), "eventName": 7}]},
            r"record 0: eventName must be a string, not a number",
        ),
        ({"Records": [record(key="k", versionId=5)]}, r"record 0: s3\.object\.versionId must be a string"),
        ({"Records": {"s3": {}}}, r"'Records' must be a list, not an object"),
    ],
)
def test_wrong_field_types_are_a_clear_event_error_naming_the_field(event, message):
    with pytest.raises(EventError, match=message):
        parse_event(event)


def test_the_version_in_an_s3_record_is_kept():
    refs, _ = parse_event(
        {"Records": [record(key="a.png", versionId="3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"), record(key="b.png")]}
    )
    assert [r.version_id for r in refs] == ["3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", None]
