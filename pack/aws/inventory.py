"""What status, redrive and backfill read: the inputs under a prefix, their results
(by ``contract.result_key``, and only for the same object: ``contract.Result.is_for``),
the bucket's triggers of a function, and the failure records in the function's
on-failure destination (an SQS queue, read without consuming its messages).

A failure record is Lambda's invocation record: ``requestContext`` (``condition``,
``approximateInvokeCount``), ``requestPayload`` (the event as invoked: S3's records
or ``{"bucket", "keys"}``), ``responseContext`` and ``responsePayload`` (the error).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from botocore.exceptions import ClientError

from lambdapack.handler.lambdapack_handler.contract import KeyFilter, Outputs, Result, read_result, result_key
from lambdapack.handler.lambdapack_handler.events import EventError, parse_event

from .. import records
from ..errors import AWSError
from ..images import IMAGE_SUFFIXES
from .client import AWSClient, translated
from .wire import filter_of

PEEK_VISIBILITY_S = 30  # how long a peeked message is hidden before it is made visible again


@dataclass(frozen=True)
class Input:
    key: str
    etag: str | None = None  # as S3 lists it, quotes removed


def list_inputs(aws: AWSClient, bucket: str, prefix: str, outputs: Outputs) -> list[Input]:
    """The images under ``prefix`` (by their suffix), leaving out the function's own results."""
    aws.require_bucket(bucket)
    found = []
    with translated(f"list s3://{bucket}/{prefix}"):
        for page in aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if PurePosixPath(key).suffix.lower() in IMAGE_SUFFIXES and not outputs.is_own_result(
                    bucket, key
                ):
                    found.append(Input(key, (item.get("ETag") or "").strip('"') or None))
    return found


def function_outputs(aws: AWSClient, function: str, alias: str | None) -> Outputs:
    """Where the function (as the alias runs it) writes its results."""
    found = aws.get_function(function, alias)
    if found is None:
        label = f"{function}:{alias}" if alias else function
        raise AWSError(f"function {label} does not exist", "Deploy it first: lambdapack deploy.")
    environment = (found["Configuration"].get("Environment") or {}).get("Variables", {})
    return Outputs.from_env(environment)


@dataclass
class Results:
    """The inputs' results: ``found`` by input key (for the same object only), and how many
    objects under the results prefix were not lambdapack's results (skipped)."""

    found: dict[str, Result] = field(default_factory=dict)
    foreign: int = 0
    stale: int = 0  # results of an earlier object under the same key (re-uploaded since)


def read_results(
    aws: AWSClient, bucket: str, outputs: Outputs, inputs: list[Input], workers: int = 8
) -> Results:
    """One listing of the results prefix, then a GET of each result an input has."""
    out_bucket = outputs.bucket_for(bucket)
    s3 = aws.client("s3")
    present = set()
    with translated(f"list s3://{out_bucket}/{outputs.prefix}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=out_bucket, Prefix=outputs.prefix):
            present.update(item["Key"] for item in page.get("Contents", []))
    wanted = [(item, result_key(outputs.prefix, item.key)) for item in inputs]
    wanted = [(item, key) for item, key in wanted if key in present]

    def read(pair: tuple[Input, str]) -> tuple[Input, Result | None]:
        item, key = pair
        with translated(f"read s3://{out_bucket}/{key}"):
            try:
                raw = s3.get_object(Bucket=out_bucket, Key=key)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                    return item, None  # removed since the listing
                raise
        try:
            return item, read_result(json.loads(raw))
        except ValueError:
            return item, None

    results = Results()
    with ThreadPoolExecutor(workers) as pool:
        for item, result in pool.map(read, wanted):
            if result is None or result.key != item.key:
                results.foreign += 1
            elif not result.is_for(item.etag):
                results.stale += 1
            else:
                results.found[item.key] = result
    return results


# --- triggers -------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    id: str
    prefix: str
    suffix: str
    target: str  # the ARN S3 invokes

    def covers(self, key: str) -> bool:
        return KeyFilter(self.prefix, self.suffix).matches(key)

    def describe(self) -> str:
        parts = [f"prefix {self.prefix!r}" if self.prefix else "every key"]
        if self.suffix:
            parts.append(f"suffix {self.suffix!r}")
        return f"{self.id} ({', '.join(parts)})"


def triggers_of(aws: AWSClient, bucket: str, function: str | None = None) -> list[Trigger]:
    """The bucket's Lambda notification entries (those that invoke ``function``, by its
    name in the ARN, any alias or version, when one is named)."""
    config = aws.notification(bucket)
    found = []
    for entry in config.get("LambdaFunctionConfigurations", []):
        arn = entry.get("LambdaFunctionArn", "")
        if function is not None and arn.split(":")[6:7] != [function]:
            continue
        prefix, suffix = filter_of(entry)
        found.append(Trigger(entry.get("Id", "?"), prefix, suffix, arn))
    return found


def covers_prefix(trigger: Trigger, prefix: str) -> bool:
    """Every key under ``prefix`` that ends with the trigger's suffix invokes it."""
    return prefix.startswith(trigger.prefix)


# --- the failure destination -------------------------------------------------------


def failure_destination(aws: AWSClient, function: str, alias: str | None) -> str | None:
    """The on-failure destination ARN of the asynchronous invocation config of what S3
    invokes (the alias), or None when there is none."""
    params = {"FunctionName": function, **({"Qualifier": alias} if alias else {})}
    config = aws._read(
        f"read the asynchronous invocation config of {function}",
        "lambda",
        "get_function_event_invoke_config",
        "ResourceNotFoundException",
        **params,
    )
    return ((config or {}).get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination") or None


def is_queue(arn: str | None) -> bool:
    return bool(arn) and arn.startswith("arn:aws:sqs:")


def queue_url(aws: AWSClient, arn: str) -> str:
    _, _, _, _, account, name = arn.split(":", 5)
    with translated(f"find the queue {name}"):
        return aws.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


@dataclass
class FailureRecord:
    message_id: str
    receipt: str
    record: dict  # Lambda's invocation record; {} when the message is not one
    objects: list[tuple[str, str]]  # (bucket, key) the invocation was about

    @property
    def payload(self) -> object:
        return self.record.get("requestPayload")

    @property
    def reason(self) -> str:
        """Why, in a word (``records.reason``), then Lambda's own words: the condition, the
        error, and how many attempts were made."""
        context = self.record.get("requestContext") or {}
        response = self.record.get("responsePayload")
        why = context.get("condition", "failed")
        if isinstance(response, dict) and (response.get("errorType") or response.get("errorMessage")):
            why += f": {response.get('errorType', '')}: {response.get('errorMessage', '')}".rstrip(": ")
        attempts = context.get("approximateInvokeCount")
        detail = why + (f" after {attempts} attempt(s)" if attempts else "")
        return f"{records.reason(self.record)} ({detail})"


def read_record(message: dict) -> FailureRecord:
    try:
        record = json.loads(message.get("Body") or "")
    except ValueError:
        record = None
    if not isinstance(record, dict) or "requestPayload" not in record:
        record = {}
    objects: list[tuple[str, str]] = []
    if record:
        try:
            refs, _ = parse_event(record["requestPayload"])
            objects = [(ref.bucket, ref.key) for ref in refs]
        except EventError:
            pass
    return FailureRecord(message["MessageId"], message["ReceiptHandle"], record, objects)


def receive_all(aws: AWSClient, url: str, visibility: int) -> list[FailureRecord]:
    """Every message in the queue now, each hidden for ``visibility`` seconds. Long polls of
    1 s: SQS's short poll samples some of its servers and may answer empty while messages
    remain, a long poll asks them all."""
    sqs = aws.client("sqs")
    seen: dict[str, FailureRecord] = {}
    with translated("read the failure queue"):
        while True:
            messages = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=visibility, WaitTimeSeconds=1
            ).get("Messages", [])
            if not messages:
                return list(seen.values())
            for message in messages:
                seen.setdefault(message["MessageId"], read_record(message))


def make_visible(aws: AWSClient, url: str, records: Iterable[FailureRecord]) -> None:
    sqs = aws.client("sqs")
    with translated("release the failure queue's messages"):
        for record in records:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record.receipt, VisibilityTimeout=0)


def peek(aws: AWSClient, url: str) -> list[FailureRecord]:
    """The queue's messages without consuming them: received (hidden for a moment), then
    made visible again at once."""
    records = receive_all(aws, url, PEEK_VISIBILITY_S)
    make_visible(aws, url, records)
    return records
