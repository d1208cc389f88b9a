"""``lambdapack redrive``: invoke again every failed event in the function's on-failure
destination (an SQS queue), after a fix is deployed.

Each record's ``requestPayload`` (the event as first invoked) is invoked
asynchronously (``InvocationType=Event``) on the alias; the record is deleted once
Lambda accepted the invocation (202). If it fails again, Lambda puts a new record in
the destination: nothing is lost. Records are read once, before any invocation, so a
record an invocation of this run adds is left for the next run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import AWSError
from .client import AWSClient, translated
from .inventory import (
    FailureRecord,
    failure_destination,
    is_queue,
    make_visible,
    peek,
    queue_url,
    receive_all,
)

REDRIVE_VISIBILITY_S = 300  # records being redriven stay hidden this long (released if not deleted)


@dataclass
class Redrive:
    records: list[FailureRecord] = field(default_factory=list)
    invoked: int = 0
    not_records: int = 0  # messages that are not Lambda invocation records: left in the queue
    kept: list[str] = field(default_factory=list)  # invocations not accepted: why


def destination_queue(aws: AWSClient, function: str, alias: str | None) -> str:
    destination = failure_destination(aws, function, alias)
    label = f"{function}:{alias}" if alias else function
    if destination is None:
        raise AWSError(
            f"{label} has no on-failure destination: its failed events were not kept",
            "Deploy it again with lambdapack (which sets one), then redrive later failures.",
        )
    if not is_queue(destination):
        raise AWSError(
            f"{label}'s on-failure destination is {destination}, not an SQS queue",
            "redrive reads SQS queues only: redrive from that destination with its own tools.",
        )
    return queue_url(aws, destination)


def redrive(
    aws: AWSClient,
    function: str,
    alias: str | None,
    dry_run: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> Redrive:
    url = destination_queue(aws, function, alias)
    result = Redrive()
    if dry_run:
        result.records = peek(aws, url)
        return result
    records = receive_all(aws, url, REDRIVE_VISIBILITY_S)
    result.records = records
    lam, sqs = aws.client("lambda"), aws.client("sqs")
    release = []
    for record in records:
        if not record.record:
            result.not_records += 1
            release.append(record)
            continue
        params = {"FunctionName": function, **({"Qualifier": alias} if alias else {})}
        with translated(f"invoke {function}"):
            answer = lam.invoke(InvocationType="Event", Payload=json.dumps(record.payload), **params)
        if answer.get("StatusCode") != 202:
            result.kept.append(f"{record.message_id}: Lambda answered {answer.get('StatusCode')}")
            release.append(record)
            continue
        with translated("delete a redriven record"):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=record.receipt)
        result.invoked += 1
        log(f"invoked again: {', '.join(key for _, key in record.objects) or record.message_id}")
    make_visible(aws, url, release)
    return result
