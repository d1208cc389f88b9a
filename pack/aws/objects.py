"""Images and results in S3, on AWS or the local AWS alike: upload a folder of images,
list and read the result objects (``contract.read_result``: JSON that is not
lambdapack's is counted and skipped), and wait until every input has its result.
Library code: the CLI and scripts/demo.py call it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.exceptions import ClientError

from lambdapack.handler.lambdapack_handler.contract import RESULT_SUFFIX, read_result, result_key

from ..errors import AWSError
from ..images import IMAGE_SUFFIXES, image_files
from .client import NOT_FOUND, translated


def upload_folder(
    folder: Path,
    bucket: str,
    prefix: str,
    client,
    workers: int = 8,
    advance: Callable[[], None] | None = None,
) -> list[str]:
    """Upload every image under ``folder`` to ``prefix`` + its relative path; return the keys."""
    files = image_files(folder)
    keys = [prefix + p.relative_to(folder).as_posix() for p in files]

    def put(item: tuple[Path, str]) -> None:
        path, key = item
        with translated(f"upload {path.name} to s3://{bucket}/{key}"):
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        if advance is not None:
            advance()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(put, zip(files, keys, strict=True)))
    return keys


def require_bucket(client, bucket: str) -> None:
    with translated(f"read bucket {bucket}"):
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in NOT_FOUND:
                raise AWSError(
                    f"bucket {bucket} does not exist",
                    f"Check its name and region; or create it first (aws s3 mb s3://{bucket}).",
                ) from exc
            raise


def list_results(bucket: str, prefix: str, client) -> list[str]:
    require_bucket(client, bucket)
    keys = []
    with translated(f"list s3://{bucket}/{prefix}"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [item["Key"] for item in page.get("Contents", []) if item["Key"].endswith(RESULT_SUFFIX)]
    return keys


def collect_results(bucket: str, prefix: str, client, workers: int = 8) -> list[dict]:
    """One row per result object under ``prefix``: input, top-1 label and score, or the error."""
    return read_result_rows(bucket, prefix, client, workers)[0]


def read_result_rows(bucket: str, prefix: str, client, workers: int = 8) -> tuple[list[dict], int]:
    """The rows of ``collect_results``, and how many objects under ``prefix`` ending in
    .json were not lambdapack results (``contract.read_result``): counted and skipped."""

    def read(key: str) -> dict | None:
        with translated(f"read s3://{bucket}/{key}"):
            raw = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            result = read_result(json.loads(raw))
        except ValueError:  # not JSON (nor UTF-8)
            return None
        if result is None:
            return None
        return {
            "result": key,
            "input": result.key,
            "label": result.label or "",
            "score": result.score if result.score is not None else "",
            "error": result.error or "",
        }

    with ThreadPoolExecutor(workers) as pool:
        read_back = list(pool.map(read, list_results(bucket, prefix, client)))
    rows = sorted((row for row in read_back if row is not None), key=lambda r: r["input"])
    return rows, len(read_back) - len(rows)


def list_inputs(bucket: str, prefix: str, client) -> list[str]:
    """The image keys under ``prefix`` (what a trigger on it would have processed)."""
    require_bucket(client, bucket)
    keys = []
    with translated(f"list s3://{bucket}/{prefix}"):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [
                item["Key"]
                for item in page.get("Contents", [])
                if Path(item["Key"]).suffix.lower() in IMAGE_SUFFIXES
            ]
    return keys


def wait_for_results(
    client,
    inputs: tuple[str, str],
    results: tuple[str, str],
    timeout: float,
    poll: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Wait until every input image under ``inputs`` (bucket, prefix) has its result under
    ``results`` (bucket, prefix: the function's output prefix, or a narrower one such as
    ``results/incoming/cats/``) — the key ``contract.result_key`` names — or ``timeout``
    seconds pass; return the input keys still without a result."""
    (in_bucket, in_prefix), (out_bucket, location) = inputs, results
    prefixes = output_prefixes(location, in_prefix)
    expected = {
        key: {result_key(prefix, key) for prefix in prefixes}
        for key in list_inputs(in_bucket, in_prefix, client)
    }
    deadline = clock() + timeout
    while True:
        present = set(list_results(out_bucket, location, client))
        missing = sorted(key for key, results_of in expected.items() if not results_of & present)
        if progress is not None:
            progress(len(expected) - len(missing), len(expected))
        if not missing or clock() >= deadline:
            return missing
        sleep(min(poll, max(0.0, deadline - clock())))


def output_prefixes(location: str, input_prefix: str) -> list[str]:
    """The output prefixes results listed under ``location`` can have been written with: a
    result is OUTPUT_PREFIX + input key + ".json", so the location is an output prefix
    followed by the start of the inputs' prefix — ``results/`` and ``results/incoming/``
    both hold the results of inputs under ``incoming/`` written with ``results/``."""
    return [location[:cut] for cut in range(len(location) + 1) if input_prefix.startswith(location[cut:])]
