"""S3 as the local loop uses it: build an S3 event, upload a folder of images,
collect the result objects. Library code: the CLI and scripts/demo.py call it."""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote_plus, urlparse

from botocore.exceptions import ClientError

from lambdapack.handler.lambdapack_handler.contract import RESULT_SUFFIX, read_result, result_key

from ..aws.client import NOT_FOUND, translated
from ..errors import AWSError, InputError, ToolError
from ..packing.model import IMAGE_SUFFIXES


def s3_event(bucket: str, keys: list[str]) -> dict:
    """An S3 ObjectCreated:Put notification, keys encoded as S3 encodes them."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
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


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET/PREFIX`` -> (bucket, prefix); InputError otherwise."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise InputError(f"{url!r} is not s3://BUCKET/PREFIX")
    return parsed.netloc, parsed.path.lstrip("/")


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def other_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that ``image_files`` leaves out (by their suffix)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES)


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


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet would read as a formula, kept as text: a leading quote."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["input", "label", "score", "error", "result"])
        writer.writeheader()
        writer.writerows({name: csv_cell(value) for name, value in row.items()} for row in rows)


class PrivateS3:
    """An S3 of this call's own: moto's server on 127.0.0.1 with one bucket, for commands
    that run a function on local files (invoke --image, estimate). No access log."""

    bucket = "lambdapack-private"
    credentials: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }

    def __init__(self, region: str) -> None:
        self.region = region
        self.server = None
        self.endpoint = ""

    def __enter__(self) -> PrivateS3:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as exc:
            raise ToolError(
                "this command needs moto's server for its private S3",
                'Install lambdapack with its local extra: pip install "lambdapack[local]".',
            ) from exc
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.stop()

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.credentials["AWS_SECRET_ACCESS_KEY"],
        )

    def upload(self, images: list[Path], prefix: str) -> list[str]:
        """Each file under ``prefix``, numbered so that equal names stay apart; the keys."""
        client = self.client()
        keys = []
        for index, path in enumerate(images):
            key = f"{prefix}{index:04d}-{path.name}"
            client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
            keys.append(key)
        return keys

    def function_environment(self) -> dict[str, str]:
        """What the function needs to reach this S3 (and nothing else)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **self.credentials}
