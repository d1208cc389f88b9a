"""Fetch the model from S3 (``MODEL_BUCKET``/``MODEL_KEY``) into the temp
directory, once per container, never trusting a partial file.

The object is downloaded to a temporary name in the cache folder, checked
(its size against S3's, and its sha256 against ``MODEL_SHA256`` when given,
else its MD5 against a single-part ETag), and only then renamed into place.
A timeout or a full disk mid-download leaves at most a temporary file that
no later invocation reads; leftovers are removed on the next fetch.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
_SINGLE_PART_ETAG = re.compile(r"^[0-9a-f]{32}$")


class ModelFetchError(RuntimeError):
    """The model object could not be fetched or failed verification."""


@dataclass(frozen=True)
class FetchedModel:
    path: Path
    sha256: str
    downloaded: bool


def cache_root() -> Path:
    return Path(tempfile.gettempdir()) / "lambdapack-model"


def fetch_model(
    s3, bucket: str, key: str, expected_sha256: str | None = None, root: Path | None = None
) -> FetchedModel:
    root = root or cache_root()
    if expected_sha256:
        folder = root / expected_sha256.lower()
        final = folder / "model.tflite"
        if final.exists():
            return FetchedModel(final, expected_sha256.lower(), False)
        etag = None
    else:
        head = s3.head_object(Bucket=bucket, Key=key)
        etag = head["ETag"].strip('"')
        folder = root / hashlib.sha256(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:32]
        final = folder / "model.tflite"
        if final.exists():
            return FetchedModel(final, sha256_file(final), False)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    handle, temp_name = tempfile.mkstemp(prefix=".partial-", dir=folder)
    temp = Path(temp_name)
    try:
        sha256, md5, size, expected_size, etag = _download(s3, bucket, key, handle, etag)
        if size != expected_size:
            raise ModelFetchError(f"s3://{bucket}/{key}: got {size} bytes, S3 says {expected_size}")
        if expected_sha256 and sha256 != expected_sha256.lower():
            raise ModelFetchError(
                f"s3://{bucket}/{key}: sha256 {sha256} does not match MODEL_SHA256 {expected_sha256}"
            )
        if not expected_sha256 and etag and _SINGLE_PART_ETAG.match(etag) and md5 != etag:
            raise ModelFetchError(f"s3://{bucket}/{key}: MD5 {md5} does not match the ETag {etag}")
        os.replace(temp, final)
    finally:
        if temp.exists():
            temp.unlink()
    return FetchedModel(final, sha256, True)


def _download(s3, bucket, key, handle, etag):
    sha256, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    kwargs = {"Bucket": bucket, "Key": key}
    if etag:
        kwargs["IfMatch"] = etag  # the object we named the cache after, not a newer one
    response = s3.get_object(**kwargs)
    with os.fdopen(handle, "wb") as out:
        for block in response["Body"].iter_chunks(CHUNK):
            out.write(block)
            sha256.update(block)
            md5.update(block)
            size += len(block)
        out.flush()
        os.fsync(out.fileno())
    return sha256.hexdigest(), md5.hexdigest(), size, response["ContentLength"], response["ETag"].strip('"')


def _remove_leftovers(folder: Path) -> None:
    for leftover in folder.glob(".partial-*"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
