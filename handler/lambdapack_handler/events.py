"""Which objects an invocation is about: S3 notification events or direct calls.

S3 sends ``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket":
{"name": …}, "object": {"key": "incoming/cat+1.jpg", "eTag": …}}}, …]}``
with keys URL-encoded and ``+`` for spaces. A batch job may instead invoke
with ``{"bucket": B, "key": K}`` or ``{"bucket": B, "keys": [K, …]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

EXPECTED = (
    'an S3 event ({"Records": [{"s3": {"bucket": {"name": …}, "object": {"key": …}}}]}) '
    'or {"bucket": "…", "key": "…"} or {"bucket": "…", "keys": ["…"]}'
)


class EventError(ValueError):
    """The event is not one this handler understands."""


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    etag: str | None = None
    event_name: str | None = None


def parse_event(event: object) -> tuple[list[ObjectRef], list[str]]:
    """The objects to classify, and notes on records that were skipped."""
    if not isinstance(event, dict):
        raise EventError(f"expected {EXPECTED}, got {type(event).__name__}")
    if "Records" in event:
        return _s3_records(event["Records"])
    if "bucket" in event and ("key" in event or "keys" in event):
        bucket = event["bucket"]
        keys = [event["key"]] if "key" in event else event["keys"]
        if not isinstance(bucket, str) or not bucket:
            raise EventError("'bucket' must be a non-empty string")
        if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
            raise EventError("'key' must be a non-empty string and 'keys' a list of them")
        return [ObjectRef(bucket, key) for key in keys], []
    if event.get("Event") == "s3:TestEvent":
        return [], ["s3:TestEvent (sent when a notification is configured) ignored"]
    raise EventError(f"expected {EXPECTED}; got keys {sorted(event)}")


def _s3_records(records: object) -> tuple[list[ObjectRef], list[str]]:
    if not isinstance(records, list):
        raise EventError("'Records' must be a list")
    refs, skipped = [], []
    for index, record in enumerate(records):
        try:
            name = record.get("eventName", "")
            s3 = record["s3"]
            bucket = s3["bucket"]["name"]
            raw_key = s3["object"]["key"]
        except (AttributeError, KeyError, TypeError):
            raise EventError(f"record {index} is not an S3 record; expected {EXPECTED}") from None
        if name and not name.startswith("ObjectCreated:"):
            skipped.append(f"record {index}: {name} is not an object creation")
            continue
        refs.append(ObjectRef(bucket, unquote_plus(raw_key), s3["object"].get("eTag"), name or None))
    return refs, skipped
