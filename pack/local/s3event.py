"""An S3 ObjectCreated event as S3 sends it, for running a function on keys locally
(``invoke --bucket/--key``, ``estimate``, the benchmarks)."""

from __future__ import annotations

import os
from urllib.parse import quote_plus

from ..limits import DEFAULT_REGION


def s3_event(bucket: str, keys: list[str]) -> dict:
    """An S3 ObjectCreated:Put notification, keys encoded as S3 encodes them."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": os.environ.get("AWS_REGION", DEFAULT_REGION),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/")},
                },
            }
            for key in keys
        ]
    }
