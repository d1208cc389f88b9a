"""``lambdapack status``: one state for every input under a prefix.

- classified / error result: its result exists and is for this very object
  (ETag or version recorded in the result; a re-uploaded image with an old result
  is not done);
- failed: a record for it is in the function's on-failure destination (SQS, read
  without consuming);
- pending: none of those, and a trigger of the function covers the key;
- not triggered: none of those, and no trigger covers it (nothing will run it:
  ``lambdapack backfill`` will).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .client import AWSClient
from .inventory import (
    Trigger,
    failure_destination,
    function_outputs,
    is_queue,
    list_inputs,
    peek,
    queue_url,
    read_results,
    triggers_of,
)

STATES = ("classified", "errors", "failed", "pending", "not_triggered")


@dataclass
class Status:
    inputs: int = 0
    keys: dict[str, list[str]] = field(default_factory=lambda: {state: [] for state in STATES})
    reasons: dict[str, str] = field(default_factory=dict)  # failed key -> why
    triggers: list[Trigger] = field(default_factory=list)
    destination: str | None = None
    destination_read: bool = False
    foreign: int = 0  # objects where a result would be that are not lambdapack's results
    stale: int = 0  # results of an earlier object under the same key

    def count(self, state: str) -> int:
        return len(self.keys[state])

    def as_json(self) -> dict:
        totals = {"inputs": self.inputs, **{state: self.count(state) for state in STATES}}
        return {
            **totals,
            "keys": {state: self.keys[state] for state in STATES if state != "classified"},
            "failed_reasons": self.reasons,
            "destination": self.destination,
        }


def status(aws: AWSClient, bucket: str, prefix: str, function: str, alias: str | None) -> Status:
    outputs = function_outputs(aws, function, alias)
    inputs = list_inputs(aws, bucket, prefix, outputs)
    results = read_results(aws, bucket, outputs, inputs)
    report = Status(inputs=len(inputs), foreign=results.foreign, stale=results.stale)
    report.triggers = triggers_of(aws, bucket, function)
    report.destination = failure_destination(aws, function, alias)
    failed: dict[str, str] = {}
    if is_queue(report.destination):
        for record in peek(aws, queue_url(aws, report.destination)):
            for record_bucket, key in record.objects:
                if record_bucket == bucket:
                    failed[key] = record.reason
        report.destination_read = True
    for item in inputs:
        result = results.found.get(item.key)
        if result is not None:
            report.keys["errors" if result.error else "classified"].append(item.key)
        elif item.key in failed:
            report.keys["failed"].append(item.key)
            report.reasons[item.key] = failed[item.key]
        elif any(trigger.covers(item.key) for trigger in report.triggers):
            report.keys["pending"].append(item.key)
        else:
            report.keys["not_triggered"].append(item.key)
    return report
