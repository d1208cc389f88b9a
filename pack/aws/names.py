"""AWS's naming rules, checked before the first call: moto enforces none of them,
and AWS would refuse a bad name only after lambdapack had already made other
resources (``--function a.b`` used to create the role, then fail).

Each check returns what is wrong, or None; the caller raises its own error.
"""

from __future__ import annotations

import ipaddress
import re

FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a name, not an ARN
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
ALIAS_NAME = re.compile(r"(?!^[0-9]+$)[A-Za-z0-9_-]{1,128}")


def function_problem(name: str) -> str | None:
    if not FUNCTION_NAME.fullmatch(name):
        return (
            f"{name!r} is not a Lambda function name: 1 to 64 letters, digits, '-' or '_' "
            f"({len(name)} characters given)"
        )
    return None


def role_problem(name: str) -> str | None:
    if not ROLE_NAME.fullmatch(name):
        return f"{name!r} is not an IAM role name: at most 64 letters, digits and +=,.@_- ({len(name)} given)"
    return None


def bucket_problem(name: str) -> str | None:
    if not BUCKET_NAME.fullmatch(name):
        return (
            f"{name!r} is not an S3 bucket name: 3 to 63 lowercase letters, digits, '.' or '-', "
            "starting and ending with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        return f"{name!r} is not an S3 bucket name: no '..', '.-' or '-.'"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3", "--x-s3")):
        return f"{name!r} is not an S3 bucket name: that prefix or suffix is reserved by S3"
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return None
    return f"{name!r} is not an S3 bucket name: it looks like an IP address"


def alias_problem(name: str) -> str | None:
    if not ALIAS_NAME.fullmatch(name):
        return f"{name!r} is not a Lambda alias name: 1 to 128 letters, digits, '-' or '_', not only digits"
    return None


def first_problem(function: str | None = None, *buckets: str | None) -> str | None:
    """What is wrong with the first of a function name and bucket names that AWS would
    refuse (None where every name given is right; None values are skipped)."""
    checks = [(function, function_problem), *((bucket, bucket_problem) for bucket in buckets)]
    return next((problem for value, check in checks if value and (problem := check(value))), None)
