"""Remove what lambdapack created for a function, and nothing else: its
notification entry on the bucket and its permission statements for the bucket,
on the function and on any alias, whatever wire targeted (``wire.unwire``),
the function (with its versions and aliases), the role ``lambdapack-NAME`` when
lambdapack created it (its description says so), and the objects deploy
uploaded under ``lambdapack/NAME/`` in the code bucket.

The calls are a plan (``plan.Call``): printed first, run only with ``--yes``.
The log group ``/aws/lambda/NAME`` is Lambda's, not lambdapack's: it stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import InputError
from . import names
from .client import ROLE_DESCRIPTION, AWSClient
from .deploy import role_name
from .plan import Call, run_calls
from .wire import entry_id, unwire


@dataclass
class DestroySettings:
    function: str
    bucket: str | None = None  # the wired bucket
    code_bucket: str | None = None  # where deploy uploaded code and staged dependencies


@dataclass
class DestroyRun:
    settings: DestroySettings
    aws: AWSClient
    log: Callable[[str], None]
    done: list[str] = field(default_factory=list)

    def did(self, action: str) -> None:
        self.done.append(action)
        self.log(action)


def uploads_prefix(function: str) -> str:
    return f"lambdapack/{function}/"


def plan(settings: DestroySettings) -> list[Call]:
    for value, check in (
        (settings.function, names.function_problem),
        (settings.bucket, names.bucket_problem),
        (settings.code_bucket, names.bucket_problem),
    ):
        if value and (problem := check(value)):
            raise InputError(problem)
    name = settings.function
    calls = []
    if settings.bucket:
        calls.append(
            Call(
                "s3 put_bucket_notification_configuration, lambda remove_permission",
                f"s3://{settings.bucket}",
                "if lambdapack wired it",
                f"only the entry {entry_id(name)} and lambdapack's statements for the bucket, on the "
                "function and its aliases; every other entry stays",
                run=_unwire,
            )
        )
    calls += [
        Call(
            "lambda delete_function",
            name,
            "if it exists",
            "with its versions and aliases",
            run=_delete_function,
        ),
        Call(
            "iam delete_role",
            role_name(name),
            "if lambdapack created it (its description says so)",
            "and its inline policies",
            run=_delete_role,
        ),
    ]
    if settings.code_bucket:
        calls.append(
            Call(
                "s3 delete_objects",
                f"s3://{settings.code_bucket}/{uploads_prefix(name)}",
                "every object under it",
                "the code and staged dependencies deploy uploaded",
                run=_delete_uploads,
            )
        )
    return calls


def destroy(settings: DestroySettings, aws: AWSClient, log: Callable[[str], None] = print) -> list[str]:
    """Run the plan; return what was removed."""
    run = DestroyRun(settings, aws, log)
    run_calls(plan(settings), run)
    if not run.done:
        log(f"nothing of {settings.function} to remove")
    log(f"kept: the log group /aws/lambda/{settings.function} (Lambda's, not lambdapack's)")
    return run.done


def _unwire(run: DestroyRun) -> None:
    assert run.settings.bucket is not None
    if not run.aws.bucket_exists(run.settings.bucket):
        return
    for action in unwire(run.settings.function, run.settings.bucket, run.aws).actions:
        run.did(action)


def _delete_function(run: DestroyRun) -> None:
    if run.aws.get_function(run.settings.function) is not None:
        run.aws.delete_function(run.settings.function)
        run.did(f"function {run.settings.function} deleted")


def _delete_role(run: DestroyRun) -> None:
    name = role_name(run.settings.function)
    role = run.aws.role(name)
    if role is None:
        return
    if role.get("Description") != ROLE_DESCRIPTION:
        run.log(f"role {name} was not created by lambdapack: kept")
        return
    run.aws.delete_role(name)
    run.did(f"role {name} deleted")


def _delete_uploads(run: DestroyRun) -> None:
    bucket = run.settings.code_bucket
    assert bucket is not None
    if not run.aws.bucket_exists(bucket):
        return
    count = run.aws.delete_prefix(bucket, uploads_prefix(run.settings.function))
    if count:
        run.did(f"{count} objects deleted under s3://{bucket}/{uploads_prefix(run.settings.function)}")
