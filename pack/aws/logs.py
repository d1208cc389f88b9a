"""A function's log lines, from CloudWatch Logs: on AWS, and from the local endpoint,
where the local runtime writes each invocation's lines the way Lambda does."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator

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


# Lambda's platform lines: REPORT (an invocation; a cold start adds Init Duration, a SnapStart
# restore Restore Duration and Billed Restore Duration instead), INIT_REPORT (an init: with
# SnapStart, the version's, once, outside any invocation) and RESTORE_REPORT.
_FIELD = re.compile(r"([A-Za-z ]+): ([0-9.]+) (?:ms|MB)")  # one tab-separated field
_FIELDS = {
    "Duration": "duration_ms",
    "Billed Duration": "billed_ms",
    "Memory Size": "memory_mb",
    "Max Memory Used": "max_memory_mb",
    "Init Duration": "init_ms",
    "Restore Duration": "restore_ms",
    "Billed Restore Duration": "billed_restore_ms",
}


def platform_line(message: str) -> dict | None:
    """The figures of a REPORT, INIT_REPORT or RESTORE_REPORT line (either REPORT layout:
    with Init Duration, with Restore Duration, or warm), as ``{"kind": ..., "init_ms": ...}``;
    None for any other line."""
    kind, _, rest = message.partition(" ")
    if kind not in ("REPORT", "INIT_REPORT", "RESTORE_REPORT"):
        return None
    found: dict = {"kind": kind}
    for field in rest.split("\t"):
        match = _FIELD.fullmatch(field.strip())
        if match and match.group(1) in _FIELDS:
            found[_FIELDS[match.group(1)]] = float(match.group(2))
    return found


def start_summary(messages: Iterable[str]) -> dict:
    """How the invocations in ``messages`` started: warm, cold (REPORT with Init Duration) or
    restored from a SnapStart snapshot (REPORT with Restore Duration), and the inits
    reported apart (INIT_REPORT: SnapStart's, once per version), with each kind's times."""
    summary: dict = {"invocations": 0, "warm": 0, "init_ms": [], "restore_ms": [], "snapshot_init_ms": []}
    for message in messages:
        line = platform_line(message)
        if line is None:
            continue
        if line["kind"] == "INIT_REPORT" and "init_ms" in line:
            summary["snapshot_init_ms"].append(line["init_ms"])
        elif line["kind"] == "REPORT":
            summary["invocations"] += 1
            if "init_ms" in line:
                summary["init_ms"].append(line["init_ms"])
            elif "restore_ms" in line:
                summary["restore_ms"].append(line["restore_ms"])
            else:
                summary["warm"] += 1
    return summary
