"""A function's log lines, from CloudWatch Logs: on AWS, and from the local endpoint,
where the local runtime writes each invocation's lines the way Lambda does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from .client import AWSClient, translated


def log_group(function: str) -> str:
    return f"/aws/lambda/{function}"


def events(aws: AWSClient, function: str, since_ms: int) -> Iterator[dict]:
    """Every event of the function's log group from ``since_ms``, oldest first; none if the
    group does not exist yet (the function never ran)."""
    logs = aws.client("logs")
    params = {"logGroupName": log_group(function), "startTime": since_ms}
    with translated(f"read the logs of {function}"):
        try:
            for page in logs.get_paginator("filter_log_events").paginate(**params):
                yield from page.get("events", [])
        except logs.exceptions.ResourceNotFoundException:
            return


def tail(
    aws: AWSClient,
    function: str,
    since_s: float,
    follow: bool,
    emit: Callable[[dict], None],
    poll_s: float = 2.0,
    until: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Emit the events of the last ``since_s`` seconds; with ``follow``, keep emitting new
    ones until ``until()``. Returns how many were emitted."""
    start = int((time.time() - since_s) * 1000)
    seen: set[str] = set()
    count = 0
    while True:
        for event in events(aws, function, start):
            if event["eventId"] in seen:
                continue
            seen.add(event["eventId"])
            start = max(start, event["timestamp"])
            emit(event)
            count += 1
        if not follow or until():
            return count
        sleep(poll_s)
