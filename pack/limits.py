"""AWS Lambda's numbers, in one place (AWS Lambda quotas page, checked 2026-11),
and lambdapack's defaults for them (memory, timeout, alias, Region).

moto enforces none of them, so lambdapack checks each before any AWS call;
pack, report, deploy and the staged-dependency sizing all read them here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Range:
    low: int
    high: int
    unit: str

    def __contains__(self, value: int) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        return f"{self.low:,}–{self.high:,} {self.unit}"


MEMORY_MB = Range(128, 10_240, "MB")
TIMEOUT_S = Range(1, 900, "s")
EPHEMERAL_MB = Range(512, 10_240, "MB")  # /tmp
ONE_VCPU_MB = 1_769  # memory at which a function gets one full vCPU
DEFAULT_MEMORY_MB = 1_024
DEFAULT_TIMEOUT_S = 60
DEFAULT_ALIAS = "live"  # the alias deploy points at each new version and S3 invokes
DEFAULT_REGION = "us-east-1"  # the local AWS's Region, and the one whose prices lambdapack has
DEFAULT_CONCURRENCY = 1_000  # per Region, per account
# Asynchronous invocation (PutFunctionEventInvokeConfig): Lambda's own defaults, set explicitly.
EVENT_AGE_S = Range(60, 21_600, "s")
DEFAULT_EVENT_AGE_S = 21_600
ASYNC_RETRY_ATTEMPTS = 2

DIRECT_ZIP_BYTES = 50 * MiB  # ZipFile in the request
REQUEST_BYTES = 70_167_211  # the whole CreateFunction/UpdateFunctionCode body
UNZIPPED_BYTES = 262_144_000  # function and all layers, unzipped


def request_bytes(zipped: int) -> int:
    """Size of the zip once base64-encoded into an UpdateFunctionCode/CreateFunction body."""
    return 4 * math.ceil(zipped / 3)


def fits_direct_upload(zipped: int) -> bool:
    return zipped <= DIRECT_ZIP_BYTES and request_bytes(zipped) <= REQUEST_BYTES


@dataclass(frozen=True)
class SizeLimit:
    name: str
    limit: int
    measure: str  # "zipped", "request" or "unzipped"
    fatal: bool
    remedy: str


SIZE_LIMITS = (
    SizeLimit(
        "direct upload (zipped)",
        DIRECT_ZIP_BYTES,
        "zipped",
        False,
        "over it, deploy uploads the zip to S3 first (--code-bucket)",
    ),
    SizeLimit(
        "direct upload request (base64)",
        REQUEST_BYTES,
        "request",
        False,
        "over it, deploy uploads the zip to S3 first (--code-bucket)",
    ),
    SizeLimit(
        "unzipped (function + layers)", UNZIPPED_BYTES, "unzipped", True, "Lambda refuses the function"
    ),
)


# SnapStart (AWS Lambda Developer Guide, "Improving startup performance with Lambda
# SnapStart", checked 2026-11): Python from 3.12, published versions only, zip functions.
SNAPSTART_MIN_PYTHON = (3, 12)
SNAPSTART_MAX_EPHEMERAL_MB = 512


def snapstart_problem(runtime: str, ephemeral_mb: int = EPHEMERAL_MB.low) -> str | None:
    """Why Lambda would refuse SnapStart for this function (None: it allows it). Container
    images, EFS and provisioned concurrency are refused too; lambdapack makes none of them."""
    try:
        version = tuple(int(part) for part in runtime.removeprefix("python").split("."))
    except ValueError:
        return f"SnapStart is for Python runtimes; {runtime} is not one"
    if version < SNAPSTART_MIN_PYTHON:
        return f"SnapStart needs python3.12 or later; this zip is for {runtime}"
    if ephemeral_mb > SNAPSTART_MAX_EPHEMERAL_MB:
        return (
            f"SnapStart does not work with more than {SNAPSTART_MAX_EPHEMERAL_MB} MB of ephemeral storage; "
            f"this function needs {ephemeral_mb:,} MB (staged dependencies)"
        )
    return None
