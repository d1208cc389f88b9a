"""Why an asynchronous invocation failed, the function's asynchronous invocation config,
and the invocation record Lambda sends to an on-failure destination.

Lambda retries a failed asynchronous invocation (``MaximumRetryAttempts``, 0–2, default
2) while the event is younger than ``MaximumEventAgeInSeconds`` (60 s – 6 h, default 6 h);
then it sends this record to the on-failure destination of the version or alias it was
invoked through (``PutFunctionEventInvokeConfig`` with ``Qualifier``), or drops the event:

    {"version": "1.0", "timestamp": "…Z",
     "requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "requestPayload": <the event>,
     "responseContext": {"statusCode", "executedVersion", "functionError"},
     "responsePayload": <the error: {"errorType", "errorMessage", …}>}

``condition`` is ``RetriesExhausted`` or ``EventAgeExceeded`` on Lambda. The local AWS
adds two conditions of its own: ``EndpointStopped`` (``lambdapack local`` stopped while
the invocation was queued, waiting for a retry or running) and ``FunctionDeleted``
(``destroy`` deleted the function first). Those conditions, the platform's error types
and ``reason`` (one word a user reads for a record) live in ``lambdapack.records``, which
``lambdapack status`` reads records with too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..handler.lambdapack_handler.events import EventError, parse_event

DEFAULT_RETRIES = 2
DEFAULT_MAX_AGE_S = 6 * 3600


@dataclass(frozen=True)
class AsyncConfig:
    """A function's asynchronous invocation config, for one version or alias."""

    retries: int = DEFAULT_RETRIES
    max_age_s: float = DEFAULT_MAX_AGE_S
    on_failure: str | None = None  # a destination ARN (SQS queue, SNS topic, S3 bucket, function)

    @classmethod
    def from_api(cls, config: dict | None) -> AsyncConfig:
        """From what GetFunctionEventInvokeConfig returns (None: Lambda's defaults)."""
        if not config:
            return cls()
        destination = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        return cls(
            retries=int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES)),
            max_age_s=float(config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_AGE_S)),
            on_failure=destination or None,
        )


def invocation_record(
    request_id: str,
    function_arn: str,
    condition: str,
    attempts: int,
    event: dict,
    error: dict,
    executed_version: str | None,
    now: float | None = None,
) -> dict:
    """The record Lambda sends to an on-failure destination."""
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    return {
        "version": "1.0",
        "timestamp": stamp,
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200 if attempts else 0,
            "executedVersion": executed_version,
            "functionError": "Unhandled" if attempts else None,
        },
        "responsePayload": error,
    }


def event_keys(event: object) -> list[str]:
    """The object keys an event names (S3's, decoded, or ``{bucket, key(s)}``); [] for others."""
    try:
        refs, _ = parse_event(event)
    except (EventError, TypeError, AttributeError):
        return []
    return [ref.key for ref in refs]
