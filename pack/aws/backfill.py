"""``lambdapack backfill``: classify objects already in a bucket (S3 notifications fire
for new objects only).

It lists the images under the prefix, skips each one whose result exists for the same
object (ETag or version recorded in the result), and invokes the function's alias
asynchronously (``InvocationType=Event``, the path S3's invocations take: retries, the
on-failure destination, ``status``) with several keys per event (``{"bucket": B,
"keys": [...]}``), at most ``rate`` invocations a second. Stopped and run again, it
invokes only what still has no result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import AWSError, InputError
from .client import AWSClient, translated
from .inventory import function_outputs, list_inputs, read_results

MAX_BATCH = 100  # keys per event: well under the 1 MB asynchronous payload limit


def parse_rate(text: str) -> float:
    """``"20/s"`` or ``"20"`` -> 20.0 invocations a second."""
    number = text[:-2] if text.endswith("/s") else text
    try:
        rate = float(number)
    except ValueError:
        rate = 0.0
    if not rate > 0 or rate != rate or rate == float("inf"):
        raise InputError(f"--rate {text!r} is not a positive number of invocations a second, e.g. 20/s")
    return rate


@dataclass
class Backfill:
    listed: int = 0
    done: int = 0  # already have a result for the same object
    todo: list[str] = field(default_factory=list)
    invocations: int = 0
    foreign: int = 0


def plan(aws: AWSClient, bucket: str, prefix: str, function: str, alias: str | None) -> Backfill:
    outputs = function_outputs(aws, function, alias)
    inputs = list_inputs(aws, bucket, prefix, outputs)
    results = read_results(aws, bucket, outputs, inputs)
    todo = [item.key for item in inputs if item.key not in results.found]
    return Backfill(listed=len(inputs), done=len(inputs) - len(todo), todo=todo, foreign=results.foreign)


def batches(keys: list[str], size: int) -> list[list[str]]:
    return [keys[start : start + size] for start in range(0, len(keys), size)]


def run(
    aws: AWSClient,
    bucket: str,
    function: str,
    alias: str | None,
    work: Backfill,
    batch: int,
    rate: float,
    advance: Callable[[int], None] = lambda _: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Backfill:
    """Invoke the function for ``work.todo``, ``batch`` keys an event, ``rate`` events a second."""
    if not 1 <= batch <= MAX_BATCH:
        raise InputError(f"--batch {batch} is out of range: 1 to {MAX_BATCH} keys per invocation")
    lam = aws.client("lambda")
    params = {"FunctionName": function, **({"Qualifier": alias} if alias else {})}
    start = clock()
    for number, keys in enumerate(batches(work.todo, batch)):
        wait = start + number / rate - clock()
        if wait > 0:
            sleep(wait)
        with translated(f"invoke {function}"):
            answer = lam.invoke(
                InvocationType="Event", Payload=json.dumps({"bucket": bucket, "keys": keys}), **params
            )
        if answer.get("StatusCode") != 202:
            raise AWSError(
                f"invoke {function}: Lambda answered {answer.get('StatusCode')} instead of 202",
                "Run backfill again: it skips what already has a result.",
            )
        work.invocations += 1
        advance(len(keys))
    return work
