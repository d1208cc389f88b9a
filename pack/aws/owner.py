"""What lambdapack owns, and how it knows: one home for its mark and its names.

Everything lambdapack creates for a function carries the tag ``lambdapack:function``
= the function's name: the function itself, the role ``lambdapack-NAME``, the failure
queue ``lambdapack-NAME-failures``, and every object deploy uploads under
``lambdapack/NAME/`` (S3 object tags). deploy and destroy act on a resource only
when it carries that mark for that function; anything else is the user's.

A function made by someone else and taken over with ``deploy --adopt`` also carries
``lambdapack:adopted``: deploy keeps its settings that the user does not pass, and
destroy leaves the function itself in place.
"""

from __future__ import annotations

TAG_KEY = "lambdapack:function"  # value: the function's name
ADOPTED_KEY = "lambdapack:adopted"  # value: "true" on a function taken over with --adopt
SQS_QUEUE_NAME_MAX = 80


def tags(function: str) -> dict[str, str]:
    """The mark, as a {key: value} map (Lambda's and SQS's tag format)."""
    return {TAG_KEY: function}


def tag_list(function: str) -> list[dict[str, str]]:
    """The mark as IAM's and S3's [{"Key", "Value"}] list."""
    return [{"Key": key, "Value": value} for key, value in tags(function).items()]


def as_map(tag_set: list[dict] | dict | None) -> dict[str, str]:
    """A tag list ([{"Key", "Value"}]) or map, as a map."""
    if not tag_set:
        return {}
    if isinstance(tag_set, dict):
        return dict(tag_set)
    return {item["Key"]: item["Value"] for item in tag_set}


def owned(tag_set: list[dict] | dict | None, function: str) -> bool:
    """Whether the tags mark the resource as lambdapack's, for this function."""
    return as_map(tag_set).get(TAG_KEY) == function


def adopted(tag_set: list[dict] | dict | None) -> bool:
    return as_map(tag_set).get(ADOPTED_KEY) == "true"


def role_name(function: str) -> str:
    return f"lambdapack-{function}"


def uploads_prefix(function: str) -> str:
    """Where deploy uploads the function's code and staged dependencies in the code bucket."""
    return f"lambdapack/{function}/"


def failure_queue_name(function: str) -> str:
    """The SQS queue deploy creates as the function's on-failure destination (the one rule:
    deploy, destroy, and whatever reads the failures use this)."""
    return f"lambdapack-{function}-failures"


def failure_queue_problem(function: str) -> str | None:
    name = failure_queue_name(function)
    if len(name) > SQS_QUEUE_NAME_MAX:
        return (
            f"the failure queue's name {name!r} would be {len(name)} characters, over SQS's "
            f"{SQS_QUEUE_NAME_MAX}"
        )
    return None
