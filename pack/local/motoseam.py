"""The one place lambdapack reaches into moto (pinned: moto 5.2.x).

moto's S3 applies a bucket's real notification configuration (events,
prefix and suffix filters) and, for each Lambda entry that matches, calls
``moto.s3.notifications._invoke_awslambda(account_id, event_body, fn_arn,
region)`` — which would run the code in Docker, or nowhere. ``install``
routes those calls to lambdapack's dispatcher instead, with moto's own
event JSON. ``configuration`` and ``code_bytes`` read a deployed function's
configuration and zip from moto's Lambda backend (what GetFunction returns,
without an HTTP round trip per invocation); ``write_log_events`` puts a
function's log lines into moto's CloudWatch Logs backend, as moto's own Lambda
does. ``remember_backends`` caches the server's host → service lookup, which
moto does per request by listing its package folder (a quarter of its time
per request). Tests pin all of them (tests/test_local_aws.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

SEAM = "_invoke_awslambda"


class SeamError(RuntimeError):
    pass


def install(submit: Callable[[str, dict], None]) -> Callable:
    from moto.s3 import notifications

    original = getattr(notifications, SEAM, None)
    if original is None:
        raise SeamError(
            f"this moto has no moto.s3.notifications.{SEAM}: lambdapack's local runtime supports moto 5.2.x"
        )

    def invoke(account_id: str, event_body: dict, fn_arn: str, region_name: str) -> None:
        submit(fn_arn, event_body)

    setattr(notifications, SEAM, invoke)
    return original


def uninstall(original: Callable) -> None:
    from moto.s3 import notifications

    setattr(notifications, SEAM, original)


def _function(account_id: str, region: str, function: str):
    from moto.awslambda.utils import get_backend

    return get_backend(account_id, region).get_function(function)


def configuration(function_arn: str) -> dict:
    """What GetFunction returns as Configuration, read in-process (no HTTP round trip)."""
    _, _, _, region, account_id, _, name = function_arn.split(":")[:7]
    return _function(account_id, region, name).get_configuration()


def code_bytes(account_id: str, region: str, function: str) -> bytes:
    return _function(account_id, region, function).code_bytes


def write_log_events(account_id: str, region: str, group: str, stream: str, events: list[dict]) -> None:
    """Into moto's CloudWatch Logs in this process (no HTTP round trip per invocation),
    creating the group and the stream the first time, as Lambda does."""
    from moto.logs.models import logs_backends

    backend = logs_backends[account_id][region]
    backend.ensure_log_group(group)
    backend.ensure_log_stream(group, stream)
    backend.put_log_events(group, stream, events)


def remember_backends(server) -> None:
    """Cache which moto service answers a host: the same host always maps to the same
    service, and moto works it out again on every request."""
    app = server._server.app
    app.get_backend_for_host = functools.lru_cache(maxsize=1024)(app.get_backend_for_host)
