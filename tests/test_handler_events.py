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
