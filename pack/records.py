"""Lambda's asynchronous invocation records, as the on-failure destination receives them:
their conditions, the platform's error types, and why one failed in a word a user reads
(timeout, out of memory, killed, crashed, init error, function error, event too old,
stopped, function deleted). One home for the local AWS that writes them
(``local.failures``) and for ``lambdapack status``/``redrive`` that read them.
"""

from __future__ import annotations

RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
ENDPOINT_STOPPED = "EndpointStopped"  # local only: lambdapack local stopped first
FUNCTION_DELETED = "FunctionDeleted"  # local only: the function was deleted first

# errorType of failures the platform reports (not the handler's own exceptions)
TIMED_OUT = "Sandbox.Timedout"
OUT_OF_MEMORY = "Runtime.OutOfMemory"
EXITED = "Runtime.ExitError"


def reason(record: dict) -> str:
    """One word or two for why the invocation a record describes failed."""
    condition = (record.get("requestContext") or {}).get("condition")
    if condition == EVENT_AGE_EXCEEDED:
        return "event too old"
    if condition == ENDPOINT_STOPPED:
        return "stopped"
    if condition == FUNCTION_DELETED:
        return "function deleted"
    return error_reason(record.get("responsePayload") or {})


def error_reason(error: dict) -> str:
    """The same, for the error of one attempt."""
    kind, message = str(error.get("errorType", "")), str(error.get("errorMessage", ""))
    if kind == TIMED_OUT or "Task timed out after" in message:
        return "timeout"
    if kind == OUT_OF_MEMORY:
        return "out of memory"
    if kind == EXITED:
        return "killed" if "signal: killed" in message else "crashed"
    if kind.startswith("Runtime.") and kind != "Runtime.Unknown":
        return "init error"  # Runtime.ImportModuleError, Runtime.HandlerNotFound, …
    return "function error"
