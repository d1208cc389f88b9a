"""Which objects an invocation is about: S3 notification events or direct calls.

S3 sends ``{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket":
{"name": …}, "object": {"key": "incoming/cat+1.jpg", "eTag": …}}}, …]}``
with keys URL-encoded and ``+`` for spaces. A batch job may instead invoke
with ``{"bucket": B, "key": K}`` or ``{"bucket": B, "keys": [K, …]}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
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
    version_id: str | None = None  # the version S3 created (versioned buckets): the one to read


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
        raise EventError(f"'Records' must be a list, not {_kind(records)}")
    refs, skipped = [], []
    for index, record in enumerate(records):
        where = f"record {index}"
        if not isinstance(record, dict):
            raise EventError(f"{where} is {_kind(record)}, not an S3 record; expected {EXPECTED}")
        name = _optional_string(record, "eventName", where)
        s3 = _field(record, "s3", dict, where)
        bucket = _field(_field(s3, "bucket", dict, where, "s3."), "name", str, where, "s3.bucket.")
        obj = _field(s3, "object", dict, where, "s3.")
        raw_key = _field(obj, "key", str, where, "s3.object.")
        etag = _optional_string(obj, "eTag", where, "s3.object.")
        version_id = _optional_string(obj, "versionId", where, "s3.object.")
        if name and not name.startswith("ObjectCreated:"):
            skipped.append(f"{where}: {name} is not an object creation")
            continue
        refs.append(ObjectRef(bucket, unquote_plus(raw_key), etag, name, version_id))
    return refs, skipped


def _field(mapping: dict, name: str, kind: type, where: str, path: str = "") -> Any:
    """``mapping[name]``, which must be a ``kind`` (a string: not empty)."""
    if name not in mapping:
        raise EventError(f"{where} has no {path}{name}; expected {EXPECTED}")
    value = mapping[name]
    if not isinstance(value, kind) or (kind is str and not value):
        wanted = "a non-empty string" if kind is str else "an object"
        raise EventError(f"{where}: {path}{name} must be {wanted}, not {_kind(value)}")
    return value


def _optional_string(mapping: dict, name: str, where: str, path: str = "") -> str | None:
    """``mapping[name]`` when it is a non-empty string; None when absent, null or empty."""
    value = mapping.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventError(f"{where}: {path}{name} must be a string, not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    """How a wrong value is named in an error: its JSON type, and the value when short."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    kind = names.get(type(value)) or ("a number" if isinstance(value, int | float) else type(value).__name__)
    shown = repr(value)
    return kind if value is None or len(shown) > 40 else f"{kind} ({shown})"
