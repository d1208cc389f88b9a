"""Remove what lambdapack created for a function, and nothing else.

What carries lambdapack's mark for the function (``owner``: the tag
``lambdapack:function`` = NAME) goes; everything else stays, and destroy says why:

- the function, when tagged for it. A function without the tag is not lambdapack's:
  destroy refuses and changes nothing. A function taken over with ``deploy --adopt``
  is kept (it existed before lambdapack): its tags and the asynchronous invocation
  settings pointing at lambdapack's queue are removed;
- lambdapack's notification entry on the bucket and its permission statements for
  the bucket, on the function and on any alias, whatever wire targeted (``wire.unwire``);
- the role ``lambdapack-NAME``, when tagged for it, used by no other function, and
  holding no policy lambdapack did not put (a managed policy attached, an inline policy
  other than ``lambdapack``): otherwise kept, with the reason;
- the failure queue ``lambdapack-NAME-failures``, when tagged for it and empty (its
  messages are failed invocations: kept, with their count, unless --delete-failures);
- the objects under ``lambdapack/NAME/`` in the code bucket that deploy uploaded
  (tagged); any other object there stays.

Everything is read and decided first (``inspect``); only then does anything change,
so a refusal leaves everything as it was. The calls are a plan (``plan.Call``):
printed first, run only with ``--yes``; ``--dry-run`` reads and prints the decisions.
The log group ``/aws/lambda/NAME`` is Lambda's, not lambdapack's: it stays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import DestroyRefused, InputError
from . import names, owner
from .client import AWSClient
from .deploy import POLICY_NAME
from .owner import failure_queue_name, role_name, uploads_prefix
from .plan import Call, run_calls
from .wire import entry_id, unwire, wiring

SHOWN_KEYS = 5  # objects named in a "kept" line, at most


@dataclass
class DestroySettings:
    function: str
    bucket: str | None = None  # the wired bucket
    code_bucket: str | None = None  # where deploy uploaded code and staged dependencies
    delete_failures: bool = False  # delete the failure queue even when it holds messages


@dataclass
class Decisions:
    """What ``inspect`` found: what goes, and what stays (with why)."""

    function_arn: str | None = None  # set when the function is to be deleted
    adopted_arn: str | None = None  # an adopted function: kept, lambdapack's parts removed
    event_configs: list[str | None] = field(default_factory=list)  # qualifiers to clear (adopted)
    role: str | None = None  # the role to delete
    queue_url: str | None = None  # the queue to delete
    keys: list[str] = field(default_factory=list)  # objects to delete in the code bucket
    wiring: list[str] = field(default_factory=list)  # lambdapack's trigger and S3's permission
    kept: list[str] = field(default_factory=list)

    def removals(self, settings: DestroySettings) -> list[str]:
        lines = list(self.wiring)
        if self.function_arn:
            lines.append(f"function {settings.function} (with its versions and aliases)")
        if self.adopted_arn:
            lines.append(f"lambdapack's tags and failure settings on {settings.function} (adopted: kept)")
        if self.role:
            lines.append(f"role {self.role} and its inline policy {POLICY_NAME}")
        if self.queue_url:
            lines.append(f"queue {failure_queue_name(settings.function)}")
        if self.keys:
            lines.append(f"{len(self.keys)} objects deploy uploaded under s3://{settings.code_bucket}/")
        return lines


@dataclass
class DestroyRun:
    settings: DestroySettings
    aws: AWSClient
    log: Callable[[str], None]
    done: list[str] = field(default_factory=list)
    decided: Decisions | None = None

    def did(self, action: str) -> None:
        self.done.append(action)
        self.log(action)

    @property
    def decisions(self) -> Decisions:
        assert self.decided is not None, "inspect runs first"
        return self.decided


def plan(settings: DestroySettings) -> list[Call]:
    if problem := names.first_problem(settings.function, settings.bucket, settings.code_bucket):
        raise InputError(problem)
    name = settings.function
    mark = f"{owner.TAG_KEY}={name}"
    calls = [
        Call(
            "lambda get_function, list_tags, list_functions; iam get_role, list_role_policies, "
            "list_attached_role_policies; sqs get_queue_url, list_queue_tags, get_queue_attributes"
            + ("; s3 get_bucket_notification_configuration, lambda get_policy" if settings.bucket else "")
            + ("; s3 list_objects_v2, get_object_tagging" if settings.code_bucket else ""),
            name,
            detail="reads only: decide everything first; refuse (changing nothing) if the function "
            f"exists without the tag {mark}",
            run=_inspect,
        )
    ]
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
            "lambda delete_function_event_invoke_config, untag_resource",
            name,
            "if it was adopted (deploy --adopt): the function stays",
            "the asynchronous invocation settings that send failures to lambdapack's queue, and its tags",
            run=_release_adopted,
        ),
        Call(
            "lambda delete_function",
            name,
            f"if it exists, tagged {mark}, and not adopted",
            "with its versions and aliases",
            run=_delete_function,
        ),
        Call(
            "iam delete_role_policy, delete_role",
            role_name(name),
            f"if tagged {mark}, no other function uses it, and it holds no policy but {POLICY_NAME}",
            run=_delete_role,
        ),
        Call(
            "sqs delete_queue",
            failure_queue_name(name),
            f"if tagged {mark}, and empty" + (" or --delete-failures" if settings.delete_failures else ""),
            "the failure destination",
            run=_delete_queue,
        ),
    ]
    if settings.code_bucket:
        calls.append(
            Call(
                "s3 delete_objects",
                f"s3://{settings.code_bucket}/{uploads_prefix(name)}",
                f"the objects tagged {mark}",
                "the code and staged dependencies deploy uploaded; any other object stays",
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


def inspect(settings: DestroySettings, aws: AWSClient) -> Decisions:
    """Read everything destroy would touch and decide, changing nothing. Raises
    DestroyRefused for a function lambdapack did not make."""
    decided = Decisions()
    name = settings.function
    mark = f"{owner.TAG_KEY}={name}"
    function = aws.get_function(name)
    function_role = None
    if function is not None:
        arn = function["Configuration"]["FunctionArn"]
        tags = aws.function_tags(arn)
        if not owner.owned(tags, name):
            raise DestroyRefused(
                f"destroy refused, nothing changed: the function {name} exists and lambdapack did not make "
                f"it (no tag {mark})",
                "It is not lambdapack's to delete: delete it yourself (aws lambda delete-function), or, "
                f"if an earlier lambdapack deployed it, run lambdapack deploy --function {name} --adopt "
                "first (destroy then removes lambdapack's parts and keeps the function).",
            )
        if owner.adopted(tags):
            decided.adopted_arn = arn
            function_role = function["Configuration"].get("Role")
            decided.kept.append(f"function {name}: adopted (it existed before lambdapack), not deleted")
        else:
            decided.function_arn = arn
    queue = failure_queue_name(name)
    queue_url = aws.queue_url(queue)
    queue_arn = None
    if queue_url is not None:
        queue_arn, messages = aws.queue_arn_and_messages(queue_url)
        if not owner.owned(aws.queue_tags(queue_url), name):
            decided.kept.append(f"queue {queue}: not tagged {mark}, not lambdapack's")
        elif messages and not settings.delete_failures:
            decided.kept.append(
                f"queue {queue}: it holds {messages} failed invocation records; read or redrive them, or "
                "pass --delete-failures to delete them with it"
            )
        else:
            decided.queue_url = queue_url
    if decided.adopted_arn:
        for qualifier in [None, *aws.alias_names(name)]:
            config = aws.event_invoke_config(name, qualifier) or {}
            target = ((config.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            if queue_arn and target == queue_arn:
                decided.event_configs.append(qualifier)
    _inspect_role(settings, aws, decided, function_role)
    if settings.bucket:
        decided.wiring = wiring(name, settings.bucket, aws)
    if settings.code_bucket and aws.bucket_exists(settings.code_bucket):
        prefix = uploads_prefix(name)
        theirs = []
        for key in aws.keys_under(settings.code_bucket, prefix):
            if owner.owned(aws.object_tags(settings.code_bucket, key), name):
                decided.keys.append(key)
            else:
                theirs.append(key)
        if theirs:
            shown = ", ".join(theirs[:SHOWN_KEYS]) + (" …" if len(theirs) > SHOWN_KEYS else "")
            decided.kept.append(
                f"{len(theirs)} objects under s3://{settings.code_bucket}/{prefix} that lambdapack did not "
                f"upload (no tag {mark}): {shown}"
            )
    return decided


def _inspect_role(settings: DestroySettings, aws: AWSClient, decided: Decisions, function_role: str | None):
    name = settings.function
    role_ = role_name(name)
    role = aws.role(role_)
    if role is None:
        return
    if not owner.owned(role.get("Tags"), name):
        decided.kept.append(f"role {role_}: not tagged {owner.TAG_KEY}={name}, not lambdapack's")
        return
    reasons = []
    users = [f for f in aws.functions_using_role(role["Arn"]) if f != name or role["Arn"] == function_role]
    if users:
        reasons.append(f"used by {', '.join(sorted(users))}")
    attached = aws.attached_policies(role_)
    if attached:
        reasons.append(f"managed policies attached that lambdapack did not attach: {', '.join(attached)}")
    inline = [p for p in aws.role_policy_names(role_) if p != POLICY_NAME]
    if inline:
        reasons.append(f"inline policies lambdapack did not put: {', '.join(inline)}")
    if reasons:
        decided.kept.append(f"role {role_}: " + "; ".join(reasons))
    else:
        decided.role = role_


def _inspect(run: DestroyRun) -> None:
    run.decided = inspect(run.settings, run.aws)
    for line in run.decided.kept:
        run.log(f"kept: {line}")


def _unwire(run: DestroyRun) -> None:
    assert run.settings.bucket is not None
    if not run.aws.bucket_exists(run.settings.bucket):
        return
    for action in unwire(run.settings.function, run.settings.bucket, run.aws).actions:
        run.did(action)


def _release_adopted(run: DestroyRun) -> None:
    arn = run.decisions.adopted_arn
    if not arn:
        return
    name = run.settings.function
    for qualifier in run.decisions.event_configs:
        run.aws.delete_event_invoke_config(name, qualifier)
        run.did(f"asynchronous invocation settings of {name}{':' + qualifier if qualifier else ''} removed")
    run.aws.untag_function(arn, [owner.TAG_KEY, owner.ADOPTED_KEY])
    run.did(f"lambdapack's tags removed from {name} (adopted: the function stays)")


def _delete_function(run: DestroyRun) -> None:
    if run.decisions.function_arn:
        run.aws.delete_function(run.settings.function)
        run.did(f"function {run.settings.function} deleted")


def _delete_role(run: DestroyRun) -> None:
    if run.decisions.role:
        run.aws.delete_role(run.decisions.role)
        run.did(f"role {run.decisions.role} deleted")


def _delete_queue(run: DestroyRun) -> None:
    url = run.decisions.queue_url
    if not url:
        return
    name = failure_queue_name(run.settings.function)
    # Read again: deleting the function records its cut-off invocations there (as failed), so a
    # queue that was empty when destroy decided may hold records now.
    _, messages = run.aws.queue_arn_and_messages(url)
    if messages and not run.settings.delete_failures:
        run.log(
            f"kept: queue {name} — {messages} failed invocations arrived while the function was "
            f"deleted (read them with: aws sqs receive-message --queue-url {url}; "
            "--delete-failures deletes the queue anyway)"
        )
        return
    run.aws.delete_queue(url)
    run.did(f"queue {name} deleted")


def _delete_uploads(run: DestroyRun) -> None:
    keys = run.decisions.keys
    if keys:
        run.aws.delete_keys(run.settings.code_bucket or "", keys)
        run.did(
            f"{len(keys)} objects deleted under s3://{run.settings.code_bucket}/"
            f"{uploads_prefix(run.settings.function)}"
        )
