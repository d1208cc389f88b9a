"""``s3://BUCKET/PREFIX`` as the commands take it."""

from __future__ import annotations

from .errors import InputError


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix); InputError otherwise, and for a bucket name
    AWS would refuse. Split by hand: urllib reads ``[…]`` in the host as an IPv6 address and
    raises."""
    from .aws import names

    bucket, _, prefix = url[5:].partition("/") if url.startswith("s3://") else ("", "", "")
    if not bucket:
        raise InputError(f"{url!r} is not s3://BUCKET/PREFIX")
    if problem := names.bucket_problem(bucket):
        raise InputError(problem, f"Check the bucket in {url}.")
    return bucket, prefix
