"""``lambdapack deploy``, ``wire`` and ``unwire``: parse, call ``lambdapack.aws``, print.

``lambdapack.aws`` (and so boto3) is imported only when one of these runs: the
Docker builder runs ``lambdapack pack`` in an environment without boto3.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import click

from ..limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, MEMORY_MB, TIMEOUT_S
from ..render import echo, say
from .common import aws_options, env_pairs, err, required, session

# CloudWatch Logs keeps events ten years at the longest (3,653 days).
MAX_SINCE_S = 3653 * 86400


@click.command("deploy")
@click.argument("zip_path", metavar="[ZIP]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--function", "function", help="Lambda function name.")
@click.option("--role", help="Execution role ARN (default: create lambdapack-FUNCTION with least privilege).")
@click.option("--code-bucket", help="Upload the zip to this bucket and deploy from there.")
@click.option(
    "--deps",
    "deps_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip's staged dependencies (default: the deps.tar.zst pack wrote beside it).",
)
@click.option(
    "--memory",
    type=int,
    help=f"Memory in MB ({MEMORY_MB.low}–{MEMORY_MB.high}). Default {DEFAULT_MEMORY_MB}.",
)
@click.option(
    "--timeout",
    type=int,
    help=f"Timeout in seconds ({TIMEOUT_S.low}–{TIMEOUT_S.high}). Default {DEFAULT_TIMEOUT_S}.",
)
@click.option(
    "--ephemeral-storage",
    type=int,
    help="/tmp size in MB (512–10240). Default 512, or what staged dependencies need.",
)
@click.option(
    "--env", "env", multiple=True, metavar="KEY=VALUE", help="A function environment variable (repeatable)."
)
@click.option(
    "--alias",
    help="Alias to point at the published version: what wire makes S3 invoke. Default live; "
    "'' publishes no version and points no alias.",
)
@click.option("--bucket", help="The input bucket (limits the created role to it).")
@click.option("--prefix", help="The input prefix (limits the created role to it).")
@click.option("--output-bucket", help="Where results go (default: the input bucket).")
@click.option("--output-prefix", help="Prefix of result objects. Default results/.")
@click.option(
    "--adopt",
    is_flag=True,
    help="Take over an existing function lambdapack did not make: tag it, keep the settings not passed, "
    "merge its environment variables.",
)
@click.option(
    "--on-failure",
    metavar="ARN",
    help="Send failed asynchronous invocations to this SQS queue, SNS topic, S3 bucket or function "
    "(default: the queue lambdapack-FUNCTION-failures, created).",
)
@click.option(
    "--max-event-age",
    type=int,
    help="Seconds an event may wait for a retry before it goes to the failure destination (60–21600). "
    "Default 21600.",
)
@click.option(
    "--snapstart/--no-snapstart",
    default=None,
    help="SnapStart on published versions (python3.12+, at most 512 MB of ephemeral storage): each "
    "new environment is restored from a snapshot taken after init. Default: as the function has it.",
)
@click.option(
    "--keep-versions",
    type=click.IntRange(min=1),
    default=None,
    help="How many of lambdapack's newest versions to keep besides those an alias points at; older "
    "ones lambdapack published are deleted (never versions published by others). Default 3.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the plan and each change to an existing function's configuration (old → new); "
    "reads only, writes nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (the log goes to stderr).")
@aws_options
def deploy_command(
    zip_path,
    function,
    role,
    code_bucket,
    deps_path,
    memory,
    timeout,
    ephemeral_storage,
    env,
    alias,
    bucket,
    prefix,
    output_bucket,
    output_prefix,
    adopt,
    on_failure,
    max_event_age,
    snapstart,
    keep_versions,
    dry_run,
    as_json,
    profile,
    region,
) -> None:
    """Create or update the Lambda function from ZIP (default dist/function.zip)."""
    from ..aws.client import AWSClient
    from ..aws.deploy import KEPT_SETTINGS, DeploySettings, deploy, plan, preflight, preview
    from ..aws.settings import load_settings, pick
    from ..errors import AWSError

    file = load_settings()
    name = pick(function, file, "function")
    if not name:
        raise click.UsageError("no function name: pass --function or set function in lambdapack.toml")
    settings = DeploySettings(
        zip_path=Path(pick(zip_path, file, "zip", "dist/function.zip")),
        function=name,
        role=pick(role, file, "role"),
        code_bucket=pick(code_bucket, file, "code_bucket"),
        memory=int(pick(memory, file, "memory", DeploySettings.memory)),
        timeout=int(pick(timeout, file, "timeout", DeploySettings.timeout)),
        ephemeral_storage=int(
            pick(ephemeral_storage, file, "ephemeral_storage", DeploySettings.ephemeral_storage)
        ),
        env={**{k: str(v) for k, v in file.get("env", {}).items()}, **env_pairs(env)},
        alias=pick(alias, file, "alias", DeploySettings.alias) or None,
        bucket=pick(bucket, file, "bucket"),
        prefix=pick(prefix, file, "prefix", ""),
        output_bucket=pick(output_bucket, file, "output_bucket"),
        output_prefix=pick(output_prefix, file, "output_prefix", DeploySettings.output_prefix),
        deps_path=deps_path,
        adopt=adopt,
        explicit=_given(KEPT_SETTINGS, file),
        on_failure=pick(on_failure, file, "on_failure"),
        max_event_age=int(pick(max_event_age, file, "max_event_age", DeploySettings.max_event_age)),
        snapstart=pick(snapstart, file, "snapstart"),
        keep_versions=int(pick(keep_versions, file, "keep_versions", DeploySettings.keep_versions)),
    )
    if dry_run:
        check = preflight(settings)
        try:
            changes: list[str] | None = preview(settings, check, AWSClient(session(profile, region)))
            read = "reads only, nothing written"
        except AWSError as exc:  # a refusal (DeployError) is the answer; an unreadable function is not
            changes, read = None, f"the function could not be read ({exc}), so its changes are not shown"
        echo(
            f"dry run: {settings.zip_path} ({check.runtime}, {check.architecture}, "
            f"{check.zipped:,} bytes, {check.upload} upload) — {read}. Plan:"
        )
        for number, call in enumerate(plan(settings, check), 1):
            echo(f"  {number}. {call.describe()}")
        if changes:
            echo(f"changes to the configuration of {settings.function} (old → new):")
            for line in changes:
                echo(f"  {line}")
        elif changes == []:
            echo(f"no change to the configuration of {settings.function} (or it does not exist yet)")
        return
    log = (lambda message: echo(message, err=True)) if as_json else echo
    result = deploy(settings, AWSClient(session(profile, region)), log=log)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(result), indent=2, sort_keys=True))


def _given(names, file: dict) -> frozenset[str]:
    """The settings among ``names`` the user gave: on the command line (or through the
    environment), or in lambdapack.toml; not the defaults."""
    context = click.get_current_context()
    given = {
        name
        for name in names
        if context.get_parameter_source(name)
        in (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
        or name in file
    }
    return frozenset(given)


@click.command("wire")
@click.option("--function", "function", help="Lambda function name.")
@click.option("--bucket", help="Bucket whose new objects trigger the function.")
@click.option("--prefix", help="Only keys with this prefix (e.g. incoming/).")
@click.option("--suffix", help="Only keys with this suffix (e.g. .jpg).")
@click.option("--events", multiple=True, help="S3 event types (repeatable). Default s3:ObjectCreated:*.")
@click.option(
    "--allow-recursion",
    is_flag=True,
    help="Wire even though the function's results could trigger it again (not recommended).",
)
@click.option(
    "--alias",
    help="The alias S3 invokes, as deploy points it. Default live; '' for the function itself ($LATEST).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@aws_options
def wire_command(
    function, bucket, prefix, suffix, events, allow_recursion, alias, as_json, profile, region
) -> None:
    """Let S3 invoke the function's alias (default live) for new objects in BUCKET (merging,
    never overwriting)."""
    from ..aws.client import AWSClient
    from ..aws.settings import load_settings, pick
    from ..aws.wire import DEFAULT_ALIAS, DEFAULT_EVENTS, WireSettings, wire

    file = load_settings()
    settings = WireSettings(
        function=required(pick(function, file, "function"), "--function"),
        bucket=required(pick(bucket, file, "bucket"), "--bucket"),
        prefix=pick(prefix, file, "prefix", ""),
        suffix=pick(suffix, file, "suffix", ""),
        events=tuple(pick(events, file, "events", DEFAULT_EVENTS)),
        allow_recursion=allow_recursion,
        alias=pick(alias, file, "alias", DEFAULT_ALIAS) or None,
    )
    _check_names(function=settings.function, bucket=settings.bucket)
    result = wire(settings, AWSClient(session(profile, region)))
    if as_json:
        click.echo(json.dumps({**dataclasses.asdict(result), "changed": result.changed}, indent=2))
        return
    for warning in result.warnings:
        say(err, ("warning: ", "yellow"), warning)
    for action in result.actions:
        echo(action)
    if not result.changed:
        echo(
            f"{settings.function} is already wired to s3://{settings.bucket} (S3 invokes {result.target}): "
            "nothing to change"
        )


@click.command("unwire")
@click.option("--function", "function", help="Lambda function name.")
@click.option("--bucket", help="The wired bucket.")
@aws_options
def unwire_command(function, bucket, profile, region) -> None:
    """Remove only lambdapack's notification entry and its permission statements (on the
    function and on any alias)."""
    from ..aws.client import AWSClient
    from ..aws.settings import load_settings, pick
    from ..aws.wire import unwire

    file = load_settings()
    function = required(pick(function, file, "function"), "--function")
    bucket = required(pick(bucket, file, "bucket"), "--bucket")
    _check_names(function=function, bucket=bucket)
    result = unwire(function, bucket, AWSClient(session(profile, region)))
    for action in result.actions:
        echo(action)
    if not result.changed:
        echo("nothing to remove")


@click.command("destroy")
@click.option("--function", "function", help="Lambda function name.")
@click.option("--bucket", help="The wired bucket (its notification entry and permission go).")
@click.option(
    "--code-bucket", help="Where deploy uploaded code and staged dependencies (lambdapack/FUNCTION/)."
)
@click.option(
    "--delete-failures",
    is_flag=True,
    help="Delete the failure queue even if it still holds failed invocation records.",
)
@click.option("--yes", is_flag=True, help="Remove them; without it, only print the plan.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read everything and print what would be removed and what kept (and why); remove nothing.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan and what was removed as JSON.")
@aws_options
def destroy_command(
    function, bucket, code_bucket, delete_failures, yes, dry_run, as_json, profile, region
) -> None:
    """Remove what lambdapack created for a function (trigger, permission, function, its role,
    failure queue, uploaded objects) and carries its mark, and nothing else. Prints the plan;
    --dry-run reads and says what would go; --yes carries it out."""
    from ..aws.client import AWSClient
    from ..aws.destroy import DestroySettings, destroy, inspect, plan
    from ..aws.settings import load_settings, pick

    file = load_settings()
    settings = DestroySettings(
        function=required(pick(function, file, "function"), "--function"),
        bucket=pick(bucket, file, "bucket"),
        code_bucket=pick(code_bucket, file, "code_bucket"),
        delete_failures=delete_failures,
    )
    steps = [call.describe() for call in plan(settings)]
    if dry_run:
        decided = inspect(settings, AWSClient(session(profile, region)))
        removals = decided.removals(settings)
        if as_json:
            click.echo(json.dumps({"plan": steps, "would_remove": removals, "kept": decided.kept}, indent=2))
            return
        click.echo(f"destroy {settings.function} — dry run (reads only, nothing removed):")
        for line in removals:
            click.echo(f"  would remove: {line}")
        if not removals:
            click.echo(f"  nothing of {settings.function} to remove")
        for line in decided.kept:
            click.echo(f"  kept: {line}")
        return
    if not yes:
        if as_json:
            click.echo(json.dumps({"plan": steps, "removed": []}, indent=2))
            return
        echo(f"destroy {settings.function} — plan (no AWS call made):")
        for number, step in enumerate(steps, 1):
            echo(f"  {number}. {step}")
        click.echo("nothing removed: run again with --yes to carry it out")
        return
    log = (lambda message: echo(message, err=True)) if as_json else echo
    removed = destroy(settings, AWSClient(session(profile, region)), log=log)
    if as_json:
        click.echo(json.dumps({"plan": steps, "removed": removed}, indent=2))


@click.command("logs")
@click.argument("function")
@click.option(
    "--since",
    type=float,
    default=3600,
    show_default=True,
    callback=lambda ctx, param, value: _seconds_back(value),
    help=f"Seconds back (0 to {MAX_SINCE_S:,}: ten years, CloudWatch Logs' longest retention).",
)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@click.option(
    "--summary",
    is_flag=True,
    help="Then one line: invocations warm, cold (Init Duration) and restored from a SnapStart "
    "snapshot (Restore Duration), and the versions' inits (INIT_REPORT), with their times.",
)
@aws_options
def logs_command(function, since, follow, summary, profile, region) -> None:
    """Print FUNCTION's log lines (CloudWatch Logs on AWS; the local runtime's with lambdapack local)."""
    import datetime

    from ..aws.client import AWSClient
    from ..aws.logs import start_summary, tail

    messages: list[str] = []

    def emit(event: dict) -> None:
        when = datetime.datetime.fromtimestamp(event["timestamp"] / 1000, datetime.timezone.utc)
        messages.append(event["message"])
        echo(f"{when:%Y-%m-%d %H:%M:%S} {event['message'].rstrip()}")

    _check_names(FUNCTION=function)
    count = tail(AWSClient(session(profile, region)), function, since, follow, emit)
    if not count:
        say(err, f"no log lines of {function} in the last {since:g} s")
    elif summary:
        echo(_start_line(start_summary(messages)))


def _start_line(summary: dict) -> str:
    def times(values: list[float]) -> str:
        if not values:
            return ""
        return f" (median {statistics.median(values):,.0f} ms, {min(values):,.0f}–{max(values):,.0f})"

    return (
        f"{summary['invocations']} invocations: {summary['warm']} warm, "
        f"{len(summary['init_ms'])} cold starts{times(summary['init_ms'])}, "
        f"{len(summary['restore_ms'])} restored from a SnapStart snapshot{times(summary['restore_ms'])}; "
        f"{len(summary['snapshot_init_ms'])} SnapStart inits (INIT_REPORT)"
        f"{times(summary['snapshot_init_ms'])}"
    )


def _check_names(**given: str) -> None:
    """Names AWS would refuse, refused here in one line (exit 2) before any call."""
    from ..aws import names

    checks = {"function": names.function_problem, "bucket": names.bucket_problem}
    for option, value in given.items():
        if problem := checks[option.lower()](value):
            raise click.BadParameter(problem, param_hint=option if option.isupper() else f"--{option}")


def _seconds_back(value: float) -> float:
    if not math.isfinite(value) or not 0 <= value <= MAX_SINCE_S:
        raise click.BadParameter(f"{value:g} is not a number of seconds from 0 to {MAX_SINCE_S:,}")
    return value


def _alias_option(command):
    return click.option(
        "--alias",
        default=None,
        help="The alias S3 invokes, as deploy points it. Default live; '' for the function itself ($LATEST).",
    )(command)


def _alias(value: str | None) -> str | None:
    from ..limits import DEFAULT_ALIAS

    return (DEFAULT_ALIAS if value is None else value) or None


def _shown(keys: list[str], limit: int = 10) -> list[str]:
    return keys[:limit] + (
        [f"… and {len(keys) - limit} more (all of them: --json)"] if len(keys) > limit else []
    )


@click.command("status")
@click.argument("location", metavar="s3://BUCKET/PREFIX/")
@click.option("--function", "function", help="Lambda function name.")
@_alias_option
@click.option(
    "--json", "as_json", is_flag=True, help="Totals and the keys of every state but classified, as JSON."
)
@aws_options
def status_command(location, function, alias, as_json, profile, region) -> None:
    """One state for every image under s3://BUCKET/PREFIX/: classified, error result, failed
    (in the function's failure destination), pending, or not triggered."""
    from ..aws.client import AWSClient
    from ..aws.settings import load_settings, pick
    from ..aws.status import status
    from ..s3url import parse_s3_url

    bucket, prefix = parse_s3_url(location)
    name = required(pick(function, load_settings(), "function"), "--function")
    report = status(AWSClient(session(profile, region)), bucket, prefix, name, _alias(alias))
    if as_json:
        click.echo(json.dumps(report.as_json(), indent=2))
        return
    echo(
        f"{report.inputs} inputs: {report.count('classified')} classified, {report.count('errors')} errors, "
        f"{report.count('failed')} failed, {report.count('pending')} pending, "
        f"{report.count('not_triggered')} not triggered"
    )
    for key in _shown(report.keys["errors"]):
        echo(f"  error result: {key}")
    for key in _shown(report.keys["failed"]):
        echo(f"  failed: {key} — {report.reasons.get(key, '')}")
    if report.keys["failed"]:
        echo(f"  run them again once fixed: lambdapack redrive --function {name}")
    for key in _shown(report.keys["pending"]):
        echo(f"  pending: {key}")
    if report.keys["not_triggered"]:
        wired = ", ".join(t.describe() for t in report.triggers) or "none"
        echo(
            f"  not triggered ({report.count('not_triggered')}): no trigger of {name} on "
            f"s3://{bucket} covers them (its triggers: {wired}); classify them with: "
            f"lambdapack backfill {location} --function {name}"
        )
        for key in _shown(report.keys["not_triggered"]):
            echo(f"    {key}")
    if report.destination is None:
        echo(f"  note: {name} has no on-failure destination: an invocation that fails is dropped")
    elif not report.destination_read:
        echo(f"  note: failures go to {report.destination}, which status cannot read (not SQS)")
    if report.foreign:
        echo(f"  skipped {report.foreign} objects under the results prefix that are not lambdapack results")


@click.command("redrive")
@click.option("--function", "function", help="Lambda function name.")
@_alias_option
@click.option("--dry-run", is_flag=True, help="List the failed events; invoke nothing, delete nothing.")
@aws_options
def redrive_command(function, alias, dry_run, profile, region) -> None:
    """Invoke again every failed event in the function's failure destination (SQS), deleting
    each record once Lambda accepted its invocation."""
    from ..aws.client import AWSClient
    from ..aws.redrive import redrive
    from ..aws.settings import load_settings, pick

    name = required(pick(function, load_settings(), "function"), "--function")
    result = redrive(AWSClient(session(profile, region)), name, _alias(alias), dry_run, log=echo)
    if dry_run:
        for record in result.records:
            keys = ", ".join(key for _, key in record.objects) or "(not an invocation record)"
            echo(f"{record.message_id}: {keys} — {record.reason if record.record else ''}".rstrip(" —"))
        echo(f"dry run: {len(result.records)} records; nothing invoked or deleted")
        return
    echo(f"invoked {result.invoked} failed events again and deleted their records")
    if result.not_records:
        echo(f"left {result.not_records} messages that are not Lambda invocation records in the queue")
    for line in result.kept:
        echo(f"kept (not accepted): {line}")


@click.command("backfill")
@click.argument("location", metavar="s3://BUCKET/PREFIX/")
@click.option("--function", "function", help="Lambda function name.")
@_alias_option
@click.option(
    "--batch", type=click.IntRange(1, 100), default=10, show_default=True, help="Keys per invocation (1–100)."
)
@click.option(
    "--rate", default="10/s", show_default=True, help="At most this many invocations a second (N/s)."
)
@click.option("--dry-run", is_flag=True, help="Count what would be invoked; invoke nothing.")
@aws_options
def backfill_command(location, function, alias, batch, rate, dry_run, profile, region) -> None:
    """Classify the images already under s3://BUCKET/PREFIX/ (S3 triggers fire for new
    objects only): invokes the function asynchronously for those without a result for the
    same object. Safe to stop and run again."""
    from ..aws import backfill
    from ..aws.client import AWSClient
    from ..aws.settings import load_settings, pick
    from ..render import progress_bar
    from ..s3url import parse_s3_url

    bucket, prefix = parse_s3_url(location)
    name = required(pick(function, load_settings(), "function"), "--function")
    per_second = backfill.parse_rate(rate)
    aws = AWSClient(session(profile, region))
    work = backfill.plan(aws, bucket, prefix, name, _alias(alias))
    events = len(backfill.batches(work.todo, batch))
    summary = (
        f"{work.listed} images under {location}: {work.done} have a result, {len(work.todo)} to classify"
    )
    if dry_run:
        echo(f"{summary} in {events} invocations — dry run, nothing invoked")
        return
    echo(summary)
    if not work.todo:
        echo("nothing to invoke: every image has a result for the object there now")
        return
    with progress_bar() as progress:
        task = progress.add_task(f"invoking {name}", total=len(work.todo))
        backfill.run(
            aws,
            bucket,
            name,
            _alias(alias),
            work,
            batch,
            per_second,
            advance=lambda n: progress.advance(task, n),
        )
    echo(
        f"invoked {name} {work.invocations} times for {len(work.todo)} images; "
        f"follow them with: lambdapack status {location} --function {name}"
    )


@click.command("policy")
@click.option("--function", "function", help="Lambda function name.")
@click.option("--bucket", help="The input bucket (wire and unwire change its notifications).")
@click.option("--code-bucket", help="The bucket deploy uploads code to (lambdapack/FUNCTION/ only).")
@click.option(
    "--role", help="An existing execution role's ARN (deploy --role): no role is created or deleted."
)
@click.option("--account", default="*", show_default=True, help="The AWS account ID in every ARN.")
@click.option("--region", default="*", show_default=True, help="The region in every ARN.")
@click.option("--json", "as_json", is_flag=True, help="Print only the policy document, as JSON.")
def policy_command(function, bucket, code_bucket, role, account, region, as_json) -> None:
    """Print the least IAM policy a person needs to run deploy, wire, unwire, logs and destroy
    for FUNCTION: every resource named after it, iam:PassRole only for its role, to Lambda."""
    from ..aws.policy import PolicyTarget, person_policy
    from ..aws.settings import load_settings, pick

    file = load_settings()
    target = PolicyTarget(
        function=required(pick(function, file, "function"), "--function"),
        bucket=required(pick(bucket, file, "bucket"), "--bucket"),
        code_bucket=pick(code_bucket, file, "code_bucket"),
        role=pick(role, file, "role"),
        account=account,
        region=region,
    )
    document = person_policy(target)
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    err.print(
        f"IAM policy to deploy, wire, unwire, read the logs of and destroy {target.function}:",
        markup=False,
        highlight=False,
    )
    click.echo(json.dumps(document, indent=2))
    err.print("Attach it to whoever runs lambdapack: aws iam put-user-policy --policy-document file://…")


COMMANDS = (
    deploy_command,
    wire_command,
    unwire_command,
    destroy_command,
    logs_command,
    status_command,
    redrive_command,
    backfill_command,
    policy_command,
)
