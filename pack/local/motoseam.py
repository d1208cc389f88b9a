"""The one place lambdapack reaches into moto (pinned: moto 5.2.x).

moto's S3 applies a bucket's real notification configuration (events,
prefix and suffix filters) and, for each Lambda entry that matches, calls
``moto.s3.notifications._invoke_awslambda(account_id, event_body, fn_arn,
region)`` — which would run the code in Docker, or nowhere. ``install``
routes those calls to lambdapack's dispatcher instead, with moto's own
event JSON. ``configuration`` and ``code_bytes`` read a deployed function's
configuration and zip from moto's Lambda backend (what GetFunction returns,
without an HTTP round trip per invocation). Tests pin both (tests/test_local_aws.py).
"""

from __future__ import annotations

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
