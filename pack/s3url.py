"""``s3://BUCKET/PREFIX`` as the commands take it."""

from __future__ import annotations

from urllib.parse import urlparse

from .errors import InputError


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix); InputError otherwise."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InputError(f"{url!r} is not s3://BUCKET/PREFIX")
    return parsed.netloc, parsed.path.lstrip("/")
