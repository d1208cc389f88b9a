"""Deploy a packed zip: pre-flight checks, then create or update, version, alias.

Pipeline:
    preflight  the zip and the settings, against Lambda's real limits — before
               any AWS call (moto checks none of these; AWS would, with a
               less helpful message)
    role       reuse --role, or create ``lambdapack-<function>`` trusted by
               Lambda with a least-privilege inline policy computed here
    code       direct upload, or through S3 (content-addressed key) when the
               zip is over the direct-upload limits or --code-bucket is given;
               a zip packed with --stage-deps s3 also has its deps.tar.zst
               uploaded (content-addressed), named in DEPS_BUCKET/DEPS_KEY/
               DEPS_SHA256, and gets the ephemeral storage it needs to unpack
    function   create, or update code and configuration, waiting for each
               update to finish; nothing when code and configuration match
    version    publish a version and point the alias at it
    failures   the asynchronous invocation settings of what S3 invokes (the alias,
               or $LATEST): 2 retries, the maximum event age, and an on-failure
               destination: lambdapack's SQS queue ``lambdapack-NAME-failures``
               (created, tagged, granted in the role) or the user's --on-failure ARN

Ownership (``owner``): everything deploy creates carries the tag
``lambdapack:function`` = NAME. An existing function without it is refused
before any write unless --adopt; an adopted function keeps the settings the
user does not pass. Variables are merged: deploy sets only its own keys and
those the user passes, and never removes anyone else's.

The calls are data: ``plan`` lists them (``Call``: API, target, condition)
from the settings and the zip alone; ``execute`` runs that very list, and
``--dry-run`` prints it and writes nothing (``preview`` reads the function once, to
show each configuration change, old → new).
"""

from __future__ import annotations

import ast
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

from lambdapack.handler.lambdapack_handler.contract import (
    BUILD_RECORD,
    DEFAULT_OUTPUT_PREFIX,
    DEPS_BUCKET,
    DEPS_KEY,
    DEPS_SHA256,
    HANDLER,
    MODEL_BUCKET,
    MODEL_KEY,
    OUTPUT_BUCKET,
    OUTPUT_PREFIX,
    KeyFilter,
    Outputs,
)
from lambdapack.handler.lambdapack_handler.modelstore import sha256_file

from .. import limits
from ..errors import AWSError, DeployError, PackError
from ..packing.report import build_record_in, read_member
from ..packing.target import LIFECYCLE, Target
from ..packing.zipper import digest
from . import names, owner
from .client import ROLE_DESCRIPTION, AWSClient
from .owner import failure_queue_name, role_name
from .plan import Call, run_calls
from .wire import WireSettings, entry_id, filter_of, wire, wired_entry

POLICY_NAME = "lambdapack"  # the role's inline policy: lambdapack's own, any other is the user's
# The variables deploy itself sets (the user's own --env keys are set, never removed).
OWN_VARIABLES = frozenset({OUTPUT_PREFIX, OUTPUT_BUCKET, DEPS_BUCKET, DEPS_KEY, DEPS_SHA256})
# Settings an adopted function keeps unless the user passes them (DeploySettings.explicit).
KEPT_SETTINGS = {
    "role": "Role",
    "memory": "MemorySize",
    "timeout": "Timeout",
    "ephemeral_storage": "EphemeralStorage",
}
# An on-failure destination's service, and what the role needs to deliver to it.
DESTINATION_GRANTS = {
    "sqs": ["sqs:SendMessage"],
    "sns": ["sns:Publish"],
    "s3": ["s3:PutObject", "s3:ListBucket"],
    "lambda": ["lambda:InvokeFunction"],
}


# What deploy writes in the description of each version it publishes: the versions that
# start with it are lambdapack's, and only those are ever deleted (--keep-versions).
VERSION_MARK = "lambdapack "
DEFAULT_KEEP_VERSIONS = 3


@dataclass
class DeploySettings:
    zip_path: Path
    function: str
    role: str | None = None
    code_bucket: str | None = None
    memory: int = limits.DEFAULT_MEMORY_MB
    timeout: int = limits.DEFAULT_TIMEOUT_S
    ephemeral_storage: int = limits.EPHEMERAL_MB.low
    env: dict[str, str] = field(default_factory=dict)
    alias: str | None = limits.DEFAULT_ALIAS
    bucket: str | None = None  # the input bucket (for the role's policy)
    prefix: str = ""
    output_bucket: str | None = None
    output_prefix: str = DEFAULT_OUTPUT_PREFIX
    deps_path: Path | None = None  # default: the archive the zip names, beside the zip
    adopt: bool = False  # take over an existing function lambdapack did not make
    # The settings the user gave (command line or lambdapack.toml), by field name; None:
    # all of them. An adopted function keeps the others (KEPT_SETTINGS).
    explicit: frozenset[str] | None = None
    on_failure: str | None = None  # the user's on-failure destination ARN (default: lambdapack's queue)
    max_event_age: int = limits.DEFAULT_EVENT_AGE_S
    snapstart: bool | None = None  # SnapStart on published versions; None: leave it as it is
    keep_versions: int = DEFAULT_KEEP_VERSIONS  # lambdapack's older versions kept for rollback
    today: date = field(default_factory=date.today)  # for the runtime's lifecycle dates

    def environment(self) -> dict[str, str]:
        """The function's variables: the user's, plus where results go (wire reads them back)."""
        variables = dict(self.env)
        variables.setdefault(OUTPUT_PREFIX, self.output_prefix)
        if self.output_bucket:
            variables.setdefault(OUTPUT_BUCKET, self.output_bucket)
        return variables


@dataclass(frozen=True)
class StagedDeps:
    """The dependency archive a zip packed with ``--stage-deps s3`` needs."""

    path: Path
    sha256: str
    size: int
    ephemeral_mb: int

    def key(self, function: str) -> str:
        return f"lambdapack/{function}/deps-{self.sha256}.tar.zst"


@dataclass(frozen=True)
class Preflight:
    runtime: str
    architecture: str
    sha256: str
    code_sha256: str
    zipped: int
    unzipped: int
    upload: str  # "direct" or "s3"
    ephemeral_storage: int = limits.EPHEMERAL_MB.low
    deps: StagedDeps | None = None

    def environment(self, settings: DeploySettings) -> dict[str, str]:
        """The settings' variables, plus where the staged dependencies are."""
        variables = settings.environment()
        if self.deps is not None:
            variables |= {
                DEPS_BUCKET: settings.code_bucket or "",
                DEPS_KEY: self.deps.key(settings.function),
                DEPS_SHA256: self.deps.sha256,
            }
        return variables


def preflight(settings: DeploySettings) -> Preflight:
    """Everything that can be checked without AWS. Raises DeployError."""
    _check_names(settings)
    _check_ranges(settings)
    path = settings.zip_path
    if not path.is_file():
        raise DeployError(f"{path} does not exist", "Build it first: lambdapack pack MODEL.")
    if not zipfile.is_zipfile(path):
        raise DeployError(f"{path} is not a zip file")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        module, function = HANDLER.split(".")
        if f"{module}.py" not in names:
            raise DeployError(
                f"the zip has no {module}.py, so Lambda cannot find the handler {HANDLER}",
                "Pack it with lambdapack pack, which adds the handler.",
            )
        if not _defines(read_member(archive, f"{module}.py"), function):
            raise DeployError(f"{module}.py in the zip does not define {function}(event, context)")
        build = build_record_in(archive)  # checked against its schema: InputError (exit 2) if not
        if not build:
            raise DeployError(
                "the zip carries no build record, so its runtime and architecture are unknown",
                "Pack it with lambdapack pack.",
            )
        target = build.get("target") if isinstance(build, dict) else None
        if not isinstance(target, dict) or not {"runtime", "architecture"} <= set(target):
            raise DeployError(
                f"the zip's build record {BUILD_RECORD} names no runtime and architecture",
                "Pack it again with lambdapack pack.",
            )
        unzipped = sum(info.file_size for info in archive.infolist())
    digest_ = digest(path)
    if unzipped > limits.UNZIPPED_BYTES:
        raise DeployError(
            f"the zip unpacks to {unzipped:,} bytes, over Lambda's limit of {limits.UNZIPPED_BYTES:,}",
            "Pack with the LiteRT runtime, quantize the model, or drop requirements.",
        )
    direct = limits.fits_direct_upload(digest_.size)
    if not direct and not settings.code_bucket:
        raise DeployError(
            f"the zip is {digest_.size:,} bytes: over the {limits.DIRECT_ZIP_BYTES:,}-byte direct upload "
            f"limit (or the {limits.REQUEST_BYTES:,}-byte request limit once base64-encoded)",
            "Pass --code-bucket BUCKET: lambdapack uploads the zip to S3 and deploys it from there.",
        )
    deps = _staged_deps(settings, build.get("deps"))
    ephemeral = settings.ephemeral_storage
    if deps is not None:
        if deps.ephemeral_mb not in limits.EPHEMERAL_MB:
            raise DeployError(
                f"the staged dependencies need {deps.ephemeral_mb:,} MB of ephemeral storage, over "
                f"Lambda's {limits.EPHEMERAL_MB.high:,} MB",
                "Drop requirements and pack again, or deploy a container image.",
            )
        ephemeral = max(ephemeral, deps.ephemeral_mb)
    target = build["target"]
    refusal = _lifecycle_refusal(target, settings.today, creating=False)
    if refusal:
        raise DeployError(refusal, "Nothing was changed.")
    if settings.snapstart:
        _check_snapstart(settings, str(target["runtime"]), ephemeral)
    return Preflight(
        runtime=target["runtime"],
        architecture=target["architecture"],
        sha256=digest_.sha256,
        code_sha256=digest_.code_sha256,
        zipped=digest_.size,
        unzipped=unzipped,
        upload="s3" if (settings.code_bucket or not direct) else "direct",
        ephemeral_storage=ephemeral,
        deps=deps,
    )


def _staged_deps(settings: DeploySettings, recorded: dict | None) -> StagedDeps | None:
    """The archive a staged zip names: present, the very one it was packed with."""
    if recorded is None:
        if settings.deps_path is not None:
            raise DeployError(
                f"{settings.zip_path} was not packed with --stage-deps s3: it uses no {settings.deps_path}",
                "Drop --deps, or pack with --stage-deps s3.",
            )
        return None
    path = settings.deps_path or settings.zip_path.parent / recorded["file"]
    if not settings.code_bucket:
        raise DeployError(
            "the zip was packed with --stage-deps s3: its dependencies must be uploaded to S3",
            "Pass --code-bucket BUCKET (or set code_bucket in lambdapack.toml).",
        )
    if not path.is_file():
        raise DeployError(
            f"the zip needs its staged dependencies {path}, which does not exist",
            "Deploy from the folder pack wrote (function.zip and deps.tar.zst side by side), pass "
            "--deps PATH, or pack again.",
        )
    if path.stat().st_size != recorded["bytes"] or sha256_file(path) != recorded["sha256"]:
        raise DeployError(
            f"{path} is not the archive {settings.zip_path.name} was packed with "
            f"(it expects sha256 {recorded['sha256']})",
            "Pack again: the zip and its deps.tar.zst are made together.",
        )
    return StagedDeps(path, recorded["sha256"], recorded["bytes"], int(recorded["ephemeral_storage_mb"]))


def _defines(source: bytes, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return True
    return False


def _lifecycle_refusal(target: dict, today: date, creating: bool) -> str | None:
    python = str(target["runtime"]).removeprefix("python")
    if python not in LIFECYCLE:
        return None  # a runtime this lambdapack does not know: AWS decides
    return Target(python, target["architecture"]).deploy_refusal(today, creating)


def _check_names(settings: DeploySettings) -> None:
    """Every name AWS will be given, before the first call makes anything."""
    checks = [(names.function_problem(settings.function), "--function")]
    if not settings.role:
        checks.append((names.role_problem(role_name(settings.function)), "--function (or pass --role)"))
    for bucket, flag in (
        (settings.bucket, "--bucket"),
        (settings.code_bucket, "--code-bucket"),
        (settings.output_bucket, "--output-bucket"),
    ):
        if bucket:
            checks.append((names.bucket_problem(bucket), flag))
    if settings.alias:
        checks.append((names.alias_problem(settings.alias), "--alias"))
    if settings.on_failure:
        checks.append((destination_problem(settings.on_failure), "--on-failure"))
    else:
        checks.append(
            (owner.failure_queue_problem(settings.function), "--function (or pass --on-failure ARN)")
        )
    for problem, flag in checks:
        if problem:
            raise DeployError(problem, f"Change {flag}. Nothing was created.")


def _check_snapstart(settings: DeploySettings, runtime: str, ephemeral_mb: int) -> None:
    """SnapStart as Lambda allows it: python3.12+, at most 512 MB of /tmp, published versions."""
    problem = limits.snapstart_problem(runtime, ephemeral_mb)
    if problem is None and not settings.alias:
        problem = "SnapStart applies to published versions, and --alias '' publishes none"
    if problem:
        raise DeployError(problem, "Drop --snapstart, or change what it names. Nothing was changed.")
    if settings.keep_versions < 1:
        raise DeployError("--keep-versions must be at least 1", "Nothing was changed.")


def _check_ranges(settings: DeploySettings) -> None:
    for label, value, allowed, flag in (
        ("memory", settings.memory, limits.MEMORY_MB, "--memory"),
        ("timeout", settings.timeout, limits.TIMEOUT_S, "--timeout"),
        ("ephemeral storage", settings.ephemeral_storage, limits.EPHEMERAL_MB, "--ephemeral-storage"),
        ("maximum event age", settings.max_event_age, limits.EVENT_AGE_S, "--max-event-age"),
    ):
        if value not in allowed:
            raise DeployError(f"{label} {value} is outside Lambda's range {allowed}", f"Change {flag}.")


def destination_service(arn: str) -> str:
    """sqs, sns, s3 or lambda: the service of an on-failure destination ARN."""
    parts = arn.split(":")
    return parts[2] if len(parts) >= 6 and parts[0] == "arn" else ""


def destination_problem(arn: str) -> str | None:
    if destination_service(arn) not in DESTINATION_GRANTS:
        return (
            f"{arn!r} is not an on-failure destination: the ARN of an SQS queue, an SNS topic, an S3 "
            "bucket or a Lambda function"
        )
    return None


def failure_destination(settings: DeploySettings, region: str, account: str) -> str:
    """The ARN failed asynchronous invocations go to."""
    if settings.on_failure:
        return settings.on_failure
    return f"arn:aws:sqs:{region}:{account}:{failure_queue_name(settings.function)}"


def _destination_grant(arn: str) -> dict:
    service = destination_service(arn)
    actions = DESTINATION_GRANTS[service]
    if service == "s3":
        return {
            "Sid": "DeliverFailures",
            "Effect": "Allow",
            "Action": actions,
            "Resource": [arn, f"{arn}/*"],
        }
    return {"Sid": "DeliverFailures", "Effect": "Allow", "Action": actions[0], "Resource": arn}


@dataclass(frozen=True)
class KmsKeys:
    """The KMS key ARNs of the input and output buckets' SSE-KMS default encryption (None: none)."""

    inputs: str | None = None
    outputs: str | None = None


def execution_policy(
    settings: DeploySettings,
    region: str,
    account: str,
    check: Preflight,
    kms: KmsKeys = KmsKeys(),
    env: dict[str, str] | None = None,
) -> dict:
    """Least privilege: read inputs (and the model, and the staged dependencies),
    write results, log to its own group, deliver failed invocations to the on-failure
    destination, and use the buckets' SSE-KMS keys. ``env``: the function's variables
    (default: those deploy sets)."""
    if not settings.bucket:
        raise DeployError(
            "no input bucket given, so the execution role cannot be limited to it",
            "Pass --bucket (the bucket whose uploads trigger the function), or an existing --role.",
        )
    log_group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{settings.function}"
    read = [f"arn:aws:s3:::{settings.bucket}/{settings.prefix}*"]
    # What the function will really do: its environment, whoever set each variable.
    env = env if env is not None else check.environment(settings)
    outputs = Outputs.from_env(env)
    for bucket_var, key_var in ((MODEL_BUCKET, MODEL_KEY), (DEPS_BUCKET, DEPS_KEY)):
        if env.get(bucket_var) and env.get(key_var):
            read.append(f"arn:aws:s3:::{env[bucket_var]}/{env[key_var]}")
    # Without ListBucket, S3 answers 403 instead of 404 for a key that no longer
    # exists, and the handler cannot tell "deleted" from "denied".
    list_condition = {"StringLike": {"s3:prefix": [f"{settings.prefix}*"]}} if settings.prefix else None
    list_inputs = {
        "Sid": "ListInputs",
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{settings.bucket}",
    }
    if list_condition:
        list_inputs["Condition"] = list_condition
    statements = [
        # GetObjectVersion: events of versioned buckets name the version to read.
        {
            "Sid": "ReadInputs",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": read,
        },
        list_inputs,
        {
            "Sid": "WriteResults",
            "Effect": "Allow",
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{outputs.bucket_for(settings.bucket)}/{outputs.prefix}*",
        },
        {
            "Sid": "CreateLogGroup",
            "Effect": "Allow",
            "Action": "logs:CreateLogGroup",
            "Resource": f"{log_group}:*",
        },
        {
            "Sid": "WriteLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group}:log-stream:*",
        },
        _destination_grant(failure_destination(settings, region, account)),
    ]
    if kms.inputs:
        statements.append(
            {"Sid": "DecryptInputs", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": kms.inputs}
        )
    if kms.outputs:
        statements.append(
            {
                "Sid": "EncryptResults",
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": kms.outputs,
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def merged_environment(current: dict | None, wanted: dict[str, str]) -> dict[str, str]:
    """The function's variables after deploy: every variable it has that is not one of
    deploy's own (OWN_VARIABLES) stays, and ``wanted`` is set over them."""
    have = ((current or {}).get("Environment") or {}).get("Variables") or {}
    return {key: value for key, value in have.items() if key not in OWN_VARIABLES} | wanted


def desired_configuration(
    settings: DeploySettings, check: Preflight, role_arn: str, current: dict | None = None, keep: bool = False
) -> dict:
    """The configuration deploy gives the function. ``current``: the function's present
    one (its variables are merged); ``keep``: an adopted function keeps the settings the
    user did not pass (KEPT_SETTINGS)."""
    desired = {
        "Runtime": check.runtime,
        "Handler": HANDLER,
        "Role": role_arn,
        "MemorySize": settings.memory,
        "Timeout": settings.timeout,
        "EphemeralStorage": {"Size": check.ephemeral_storage},
        "Environment": {"Variables": merged_environment(current, check.environment(settings))},
    }
    if settings.snapstart is not None:
        desired["SnapStart"] = {"ApplyOn": "PublishedVersions" if settings.snapstart else "None"}
    if keep and current is not None:
        given = settings.explicit if settings.explicit is not None else frozenset(KEPT_SETTINGS)
        for name, key in KEPT_SETTINGS.items():
            if name not in given and current.get(key) is not None:
                desired[key] = current[key]
        if "ephemeral_storage" not in given:  # what staged dependencies need, at least
            have = (current.get("EphemeralStorage") or {}).get("Size", limits.EPHEMERAL_MB.low)
            desired["EphemeralStorage"] = {"Size": max(have, check.ephemeral_storage)}
    return desired


def describe_changes(current: dict, changes: dict) -> list[str]:
    """Each change ``configuration_changes`` found, old → new (variables one by one)."""
    lines = []
    for key, new in sorted(changes.items()):
        if key == "Environment":
            have = (current.get("Environment") or {}).get("Variables") or {}
            want = new["Variables"]
            for name in sorted(set(have) | set(want)):
                if have.get(name) != want.get(name):
                    lines.append(f"variable {name}: {_shown(have.get(name))} → {_shown(want.get(name))}")
        elif key == "EphemeralStorage":
            old = (current.get("EphemeralStorage") or {}).get("Size", limits.EPHEMERAL_MB.low)
            lines.append(f"EphemeralStorage: {old} → {new['Size']}")
        else:
            lines.append(f"{key}: {_shown(current.get(key))} → {_shown(new)}")
    return lines


def _shown(value) -> str:
    return "(none)" if value is None else str(value)


def configuration_changes(current: dict, desired: dict) -> dict:
    """The parameters of update_function_configuration that differ from ``current``."""
    changes = {}
    for key, value in desired.items():
        have = current.get(key)
        if key == "Environment":
            have = {"Variables": (current.get("Environment") or {}).get("Variables", {})}
        elif key == "EphemeralStorage":
            have = {"Size": (current.get("EphemeralStorage") or {}).get("Size", limits.EPHEMERAL_MB.low)}
        elif key == "SnapStart":
            have = {"ApplyOn": (current.get("SnapStart") or {}).get("ApplyOn", "None")}
        if have != value:
            changes[key] = value
    return changes


@dataclass
class DeployResult:
    policy: dict | None = None
    function_arn: str | None = None
    version: str | None = None
    changed: bool = False


@dataclass
class DeployRun:
    """What the executor learns while it runs the plan, shared by the calls."""

    settings: DeploySettings
    check: Preflight
    aws: AWSClient
    log: Callable[[str], None]
    result: DeployResult = field(default_factory=DeployResult)
    role_arn: str | None = None
    current: dict | None = None  # get_function's answer (Configuration); None if missing
    code_changes: bool = False  # the function is missing, or its code or architecture differ
    alias_recreated: bool = False  # the alias was created on a function that existed without it
    adopting: bool = False  # the function exists without lambdapack's mark, and --adopt was given
    keep: bool = False  # an adopted function: keep the settings the user did not pass
    role: dict | None = None  # get_role's answer for lambdapack-NAME (None: missing)
    queue_url: str | None = None  # lambdapack's failure queue, once found or created
    kms: KmsKeys = field(default_factory=KmsKeys)
    account: str | None = None

    @property
    def manages_role(self) -> bool:
        """Whether deploy makes (or keeps up) the role lambdapack-NAME: no --role was given,
        and the function is not an adopted one keeping its own role."""
        if self.settings.role:
            return False
        return not (self.keep and "role" not in (self.settings.explicit or frozenset(KEPT_SETTINGS)))


def plan(settings: DeploySettings, check: Preflight) -> list[Call]:
    """The calls deploy makes, in order: computed from the settings and the zip alone."""
    name = settings.function
    outputs = Outputs.from_env(check.environment(settings))
    # Reads first: a refusal (a runtime AWS no longer lets you create functions on, a
    # recursive trigger) comes before anything is written.
    calls: list[Call] = [
        Call(
            "lambda get_function, list_tags",
            name,
            detail=f"refuse to create it if AWS blocks new {check.runtime} functions; refuse to change "
            f"it if it exists without the tag {owner.TAG_KEY}={name}"
            + (
                " (--adopt: take it over, keeping the settings not passed)"
                if settings.adopt
                else " (unless --adopt)"
            ),
            run=_read_function,
        )
    ]
    if settings.bucket:
        calls.append(
            Call(
                "s3 get_bucket_notification_configuration",
                settings.bucket,
                f"refuse if the trigger {entry_id(name)} would match results under "
                f"{outputs.bucket_for(settings.bucket)}/{outputs.prefix}",
                run=_refuse_recursive_trigger,
            )
        )
    role = role_name(name)
    queue = failure_queue_name(name)
    if not settings.role:
        calls.append(
            Call(
                "iam get_role",
                role,
                "unless the function is adopted and keeps its own role",
                f"refuse if it exists without the tag {owner.TAG_KEY}={name} (unless --adopt)",
                run=_read_role,
            )
        )
    if not settings.on_failure:
        calls.append(
            Call(
                "sqs get_queue_url, list_queue_tags",
                queue,
                detail=f"refuse if it exists without the tag {owner.TAG_KEY}={name}",
                run=_read_queue,
            )
        )
    if not settings.role and settings.bucket:
        output_bucket = outputs.bucket_for(settings.bucket)
        calls.append(
            Call(
                "s3 get_bucket_encryption",
                " and ".join(dict.fromkeys((settings.bucket, output_bucket))),
                "where lambdapack makes the role",
                "an SSE-KMS key gets kms:Decrypt (inputs), kms:GenerateDataKey and kms:Decrypt (results)",
                run=_read_encryption,
            )
        )
    calls.append(Call("sts get_caller_identity", "(the account, for ARNs)", run=_read_account))
    destination = settings.on_failure or f"arn:aws:sqs:REGION:ACCOUNT:{queue}"
    grant = DESTINATION_GRANTS[destination_service(destination)]
    if not settings.role:
        calls += [
            Call(
                "iam create_role",
                role,
                "unless it exists; tag_role if an earlier lambdapack made it untagged, or --adopt",
                f"trusted by lambda.amazonaws.com, tagged {owner.TAG_KEY}={name}",
                run=_ensure_role,
            ),
            Call(
                "iam put_role_policy",
                f"{role} {POLICY_NAME}",
                "if it differs (iam get_role_policy)",
                f"least privilege: GetObject on {settings.bucket}/{settings.prefix}*, ListBucket on that "
                f"prefix, PutObject on {outputs.bucket_for(settings.bucket or '')}/{outputs.prefix}*, logs "
                f"for /aws/lambda/{name}, {' and '.join(grant)} on {destination}, and the buckets' KMS keys",
                run=_put_policy,
            ),
        ]
    if not settings.on_failure:
        calls.append(
            Call(
                "sqs create_queue",
                queue,
                "unless it exists",
                f"tagged {owner.TAG_KEY}={name}: the on-failure destination",
                run=_create_queue,
            )
        )
    if check.deps is not None:
        calls.append(
            Call(
                "s3 put_object",
                f"s3://{settings.code_bucket}/{check.deps.key(name)}",
                "unless the same bytes are already there (size and sha256 checked)",
                f"{check.deps.size:,} bytes; ephemeral storage {check.ephemeral_storage:,} MB",
                run=_upload_deps,
            )
        )
    if check.upload == "s3":
        calls.append(
            Call(
                "s3 put_object",
                f"s3://{settings.code_bucket}/{code_key(name, check.sha256)}",
                "if the code changes, unless the same bytes are already there (size and sha256 checked)",
                f"{check.zipped:,} bytes",
                run=_upload_code,
            )
        )
    calls += [
        Call(
            "lambda create_function",
            name,
            "if it does not exist; then wait until active",
            f"{check.runtime}, {check.architecture}, {HANDLER}, {settings.memory} MB, {settings.timeout} s, "
            f"tagged {owner.TAG_KEY}={name}",
            run=_create_function,
        ),
        Call(
            "lambda tag_resource",
            name,
            "if it exists without lambdapack's tag (--adopt)",
            f"{owner.TAG_KEY}={name}, {owner.ADOPTED_KEY}=true",
            run=_adopt,
        ),
        Call(
            "lambda update_function_code",
            name,
            f"if its CodeSha256 is not {check.code_sha256} or its architecture differs; then wait",
            run=_update_code,
        ),
        Call(
            "lambda update_function_configuration",
            name,
            "if its settings differ; then wait",
            "variables merged: only lambdapack's own and those passed are set, none removed"
            + ("; an adopted function keeps the settings not passed" if settings.adopt else ""),
            run=_update_configuration,
        ),
        Call(
            "lambda put_function_recursion_config",
            name,
            "where the endpoint has it",
            "RecursiveLoop=Terminate: Lambda stops an S3 loop instead of letting it run",
            run=_terminate_recursion,
        ),
    ]
    if settings.alias:
        calls += [
            Call(
                "lambda publish_version",
                name,
                f"if anything changed, or the alias {settings.alias} does not exist (lambda get_alias)",
                run=_publish,
            ),
            Call(
                "lambda create_alias or update_alias",
                f"{name}:{settings.alias}",
                "if a version was published"
                + (" (after SnapStart's optimization of it)" if settings.snapstart else ""),
                "to the new version",
                run=_point_alias,
            ),
            Call(
                "lambda delete_function (versions)",
                name,
                f"versions lambdapack published (description '{VERSION_MARK}…') beyond the newest "
                f"{settings.keep_versions} and those an alias points at (lambda list_versions_by_function, "
                "list_aliases)",
                "each published version keeps costing with SnapStart; versions published by hand stay",
                run=_prune_versions,
            ),
            Call(
                "lambdapack wire: s3 get_bucket_notification_configuration, lambda get_policy, "
                "add_permission, put_function_recursion_config",
                f"{name}:{settings.alias}",
                f"if the alias was created on an existing function and s3://{settings.bucket}'s "
                "lambdapack entry invokes it",
                "a deleted alias took S3's permission with it: wired again, as lambdapack wire does",
                run=_wire_recreated_alias,
            ),
        ]
    calls.append(
        Call(
            "lambda put_function_event_invoke_config",
            f"{name}:{settings.alias}" if settings.alias else f"{name} ($LATEST)",
            "if it differs (lambda get_function_event_invoke_config)",
            f"MaximumRetryAttempts={limits.ASYNC_RETRY_ATTEMPTS}, MaximumEventAgeInSeconds="
            f"{settings.max_event_age}, OnFailure={destination}",
            run=_set_event_invoke_config,
        )
    )
    return calls


def code_key(function: str, sha256: str) -> str:
    return f"{owner.uploads_prefix(function)}{sha256}.zip"


def ownership(settings: DeploySettings, function: dict, aws: AWSClient) -> tuple[bool, bool]:
    """For an existing function (get_function's answer): (adopting it now, keeping the
    settings the user did not pass). Refuses a function lambdapack did not make, unless
    --adopt."""
    tags = aws.function_tags(function["Configuration"]["FunctionArn"])
    if owner.owned(tags, settings.function):
        return False, owner.adopted(tags)
    if not settings.adopt:
        raise DeployError(
            f"deploy refused before any AWS write: the function {settings.function} exists and lambdapack "
            f"did not make it (no tag {owner.TAG_KEY}={settings.function})",
            "Pass --adopt to take it over: its code is replaced, the settings you do not pass are kept, and "
            "its environment variables are merged (none removed). --dry-run shows each change.",
        )
    return True, True


def preview(settings: DeploySettings, check: Preflight, aws: AWSClient) -> list[str]:
    """What deploy would change in an existing function's configuration, old → new,
    from reads only (get_function). Refuses as deploy would. [] for a new function."""
    function = aws.get_function(settings.function)
    if function is None:
        return []
    current = function["Configuration"]
    _, keep = ownership(settings, function, aws)
    run = DeployRun(settings, check, aws, lambda _: None, current=current, keep=keep)
    if settings.role:
        role = settings.role
    elif not run.manages_role:
        role = current.get("Role")
    else:  # the same account as the function's
        account = current["FunctionArn"].split(":")[4]
        role = f"arn:aws:iam::{account}:role/{role_name(settings.function)}"
    desired = desired_configuration(settings, check, role, current, keep)
    return describe_changes(current, configuration_changes(current, desired))


def deploy(settings: DeploySettings, aws: AWSClient, log=print) -> DeployResult:
    check = preflight(settings)
    return execute(plan(settings, check), DeployRun(settings, check, aws, log, role_arn=settings.role))


def execute(calls: list[Call], run: DeployRun) -> DeployResult:
    run_calls(calls, run)
    if not run.result.changed:
        run.log(
            f"{run.settings.function} is up to date (CodeSha256 {run.check.code_sha256}): nothing to change"
        )
    return run.result


# --- what each call does -----------------------------------------------------------


def _read_account(run: DeployRun) -> None:
    run.account = run.aws.account_id()
    if run.manages_role:
        env = merged_environment(run.current, run.check.environment(run.settings))
        run.result.policy = execution_policy(
            run.settings, run.aws.region(), run.account, run.check, run.kms, env
        )
    elif run.keep and not run.settings.role:
        run.log(
            f"keeping the role of {run.settings.function} ({(run.current or {}).get('Role')}): lambdapack "
            "does not change a role it did not make; it must allow reading the inputs, writing the results "
            "and delivering to the on-failure destination (pass --role to use another)"
        )


def _read_role(run: DeployRun) -> None:
    if not run.manages_role:
        return
    name = role_name(run.settings.function)
    run.role = run.aws.role(name)
    if run.role is None or owner.owned(run.role.get("Tags"), run.settings.function):
        return
    if run.role.get("Description") == ROLE_DESCRIPTION or run.settings.adopt:
        return  # an earlier lambdapack's (untagged), or taken over: tagged by _ensure_role
    raise DeployError(
        f"deploy refused before any AWS write: the role {name} exists and lambdapack did not make it "
        f"(no tag {owner.TAG_KEY}={run.settings.function})",
        "Pass --role with its ARN to use it as it is, --adopt to take it over (lambdapack then manages "
        f"its inline policy {POLICY_NAME}), or rename or delete it.",
    )


def _read_queue(run: DeployRun) -> None:
    name = failure_queue_name(run.settings.function)
    run.queue_url = run.aws.queue_url(name)
    if run.queue_url is not None and not owner.owned(
        run.aws.queue_tags(run.queue_url), run.settings.function
    ):
        raise DeployError(
            f"deploy refused before any AWS write: the queue {name} exists and lambdapack did not make it "
            f"(no tag {owner.TAG_KEY}={run.settings.function})",
            "Pass --on-failure ARN to send failures to it (or to another destination), or rename or "
            "delete it.",
        )


def _read_encryption(run: DeployRun) -> None:
    if not run.manages_role:
        return
    settings = run.settings
    assert settings.bucket is not None
    outputs = Outputs.from_env(run.check.environment(settings))
    keys = []
    for bucket in (settings.bucket, outputs.bucket_for(settings.bucket)):
        key = run.aws.bucket_kms_key(bucket) if run.aws.bucket_exists(bucket) else None
        keys.append(run.aws.kms_key_arn(key) if key else None)
    run.kms = KmsKeys(*keys)
    for label, key in (("inputs", run.kms.inputs), ("results", run.kms.outputs)):
        if key:
            run.log(f"the {label}' bucket is encrypted with KMS key {key}: granted in the role")


def _ensure_role(run: DeployRun) -> None:
    if not run.manages_role:
        run.role_arn = run.settings.role or (run.current or {}).get("Role")
        return
    function = run.settings.function
    role, created = run.aws.ensure_role(role_name(function), owner.tag_list(function))
    if not created and not owner.owned(role.get("Tags"), function):
        run.aws.tag_role(role["RoleName"], owner.tag_list(function))
        run.log(f"tagged role {role['RoleName']} {owner.TAG_KEY}={function}")
    run.role_arn = role["Arn"]
    run.log(("created" if created else "reusing") + f" role {role['Arn']}")


def _create_queue(run: DeployRun) -> None:
    name = failure_queue_name(run.settings.function)
    if run.queue_url is None:
        run.queue_url = run.aws.create_queue(name, owner.tags(run.settings.function))
        run.log(f"created queue {name}: failed invocations go there")


def _adopt(run: DeployRun) -> None:
    if run.adopting:
        assert run.current is not None
        run.aws.tag_function(
            run.current["FunctionArn"], owner.tags(run.settings.function) | {owner.ADOPTED_KEY: "true"}
        )
        run.result.changed = True
        run.log(
            f"adopted function {run.settings.function}: tagged {owner.TAG_KEY}={run.settings.function}; the "
            "settings not passed are kept, and its variables merged"
        )


def _set_event_invoke_config(run: DeployRun) -> None:
    """Retries, event age and OnFailure; any OnSuccess destination someone set stays."""
    settings = run.settings
    assert run.account is not None
    destination = failure_destination(settings, run.aws.region(), run.account)
    have = run.aws.event_invoke_config(settings.function, settings.alias) or {}
    wanted = {
        "MaximumRetryAttempts": limits.ASYNC_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": settings.max_event_age,
        "DestinationConfig": {
            **{k: v for k, v in (have.get("DestinationConfig") or {}).items() if v},
            "OnFailure": {"Destination": destination},
        },
    }
    if all(have.get(key) == value for key, value in wanted.items()):
        return
    run.aws.put_event_invoke_config(settings.function, settings.alias, **wanted)
    target = f"{settings.function}:{settings.alias}" if settings.alias else f"{settings.function} ($LATEST)"
    run.log(
        f"asynchronous invocations of {target}: {limits.ASYNC_RETRY_ATTEMPTS} retries, events up to "
        f"{settings.max_event_age} s old, failures to {destination}"
    )


def _put_policy(run: DeployRun) -> None:
    if not run.manages_role:
        return
    role, policy = role_name(run.settings.function), run.result.policy
    assert policy is not None
    if run.aws.role_policy(role, POLICY_NAME) != policy:
        run.aws.put_role_policy(role, POLICY_NAME, policy)
        run.log(f"inline policy {POLICY_NAME} of {role}:\n{json.dumps(policy, indent=2)}")


def _upload_deps(run: DeployRun) -> None:
    deps = run.check.deps
    assert deps is not None
    if run.check.ephemeral_storage > run.settings.ephemeral_storage:
        run.log(f"ephemeral storage {run.check.ephemeral_storage:,} MB: what the staged dependencies need")
    # Before the function can start with it.
    _upload(
        run.aws,
        run.settings.code_bucket,
        deps.key(run.settings.function),
        deps.path,
        deps.sha256,
        run.log,
        owner.tags(run.settings.function),
    )


def _read_function(run: DeployRun) -> None:
    function = run.aws.get_function(run.settings.function)
    run.current = function["Configuration"] if function else None
    if function is not None:
        run.adopting, run.keep = ownership(run.settings, function, run.aws)
    if run.current is None:
        refusal = _lifecycle_refusal(
            {"runtime": run.check.runtime, "architecture": run.check.architecture}, run.settings.today, True
        )
        if refusal:
            raise DeployError(refusal, "Nothing was created.")
        run.code_changes = True
    else:
        run.result.function_arn = run.current["FunctionArn"]
        run.code_changes = run.current.get("CodeSha256") != run.check.code_sha256 or run.current.get(
            "Architectures", ["x86_64"]
        ) != [run.check.architecture]


def _upload_code(run: DeployRun) -> None:
    if run.code_changes:
        key = code_key(run.settings.function, run.check.sha256)
        _upload(
            run.aws,
            run.settings.code_bucket,
            key,
            run.settings.zip_path,
            run.check.sha256,
            run.log,
            owner.tags(run.settings.function),
        )


def _code(run: DeployRun) -> dict:
    if run.check.upload == "direct":
        return {"ZipFile": run.settings.zip_path.read_bytes()}
    return {"S3Bucket": run.settings.code_bucket, "S3Key": code_key(run.settings.function, run.check.sha256)}


def _desired(run: DeployRun) -> dict:
    assert run.role_arn is not None
    return desired_configuration(run.settings, run.check, run.role_arn, run.current, run.keep)


def _create_function(run: DeployRun) -> None:
    if run.current is not None:
        return
    name = run.settings.function
    created = run.aws.create_function(
        FunctionName=name,
        Code=_code(run),
        Architectures=[run.check.architecture],
        Publish=False,
        Tags=owner.tags(name),
        **_desired(run),
    )
    run.aws.wait("function_active_v2", name)
    _verify_code(run, created)
    run.result.function_arn = created["FunctionArn"]
    run.result.changed = True
    run.log(f"created function {name} ({run.check.runtime}, {run.check.architecture})")


def _update_code(run: DeployRun) -> None:
    if run.current is None or not run.code_changes:
        return
    name = run.settings.function
    updated = run.aws.update_function_code(name, Architectures=[run.check.architecture], **_code(run))
    run.aws.wait("function_updated_v2", name)
    _verify_code(run, updated)
    run.result.changed = True
    run.log(f"updated the code of {name} (CodeSha256 {run.check.code_sha256})")


def _verify_code(run: DeployRun, answer: dict) -> None:
    """Lambda says which code it took: it must be this zip's."""
    if answer.get("CodeSha256") != run.check.code_sha256:
        raise AWSError(
            f"Lambda reports CodeSha256 {answer.get('CodeSha256')} for {run.settings.function}, but "
            f"{run.settings.zip_path.name} has {run.check.code_sha256}: the code it took is not this zip",
            "Something replaced the upload between lambdapack's check and Lambda's read: deploy again, "
            "and check who else writes to the code bucket.",
        )


def _refuse_recursive_trigger(run: DeployRun) -> None:
    """A function already wired must not be given outputs its own trigger would see."""
    bucket = run.settings.bucket
    assert bucket is not None
    if not run.aws.bucket_exists(bucket):
        return  # nothing can be wired to it yet
    outputs = Outputs.from_env(run.check.environment(run.settings))
    entry = wired_entry(run.aws.notification(bucket), run.settings.function)
    if entry is not None and outputs.would_trigger(bucket, KeyFilter(*filter_of(entry))):
        prefix, suffix = filter_of(entry)
        raise DeployError(
            f"the function is wired to s3://{bucket} (prefix {prefix!r}, suffix {suffix!r}), and its "
            f"results would go to {outputs.prefix}…json there, which that trigger matches: every "
            "result would invoke it again",
            "Choose another --output-prefix or --output-bucket, or unwire first "
            f"(lambdapack unwire --function {run.settings.function} --bucket {bucket}).",
        )


def _terminate_recursion(run: DeployRun) -> None:
    if not run.aws.set_recursion_terminate(run.settings.function):
        run.log("this endpoint has no recursive-loop setting; the handler's own guard still applies")


def _update_configuration(run: DeployRun) -> None:
    if run.current is None:
        return
    name = run.settings.function
    changes = configuration_changes(run.current, _desired(run))
    if changes:
        run.aws.update_function_configuration(name, **changes)
        run.aws.wait("function_updated_v2", name)
        run.result.changed = True
        run.log(
            f"updated the configuration of {name}: {', '.join(sorted(changes))} "
            f"({'; '.join(describe_changes(run.current, changes))})"
        )


def _publish(run: DeployRun) -> None:
    # Nothing changed, but the alias is missing (deleted, or an earlier deploy had none):
    # wire targets the alias, so it must exist once deploy says the function is there.
    alias = run.settings.alias
    if run.result.changed or (alias and run.aws.alias(run.settings.function, alias) is None):
        name = run.settings.function
        run.result.version = run.aws.publish_version(
            name, run.check.code_sha256, f"{VERSION_MARK}{run.check.code_sha256}"
        )
        run.result.changed = True
        if _snapstart_on(run):
            # The version answers only once SnapStart has taken its snapshot (optimization).
            run.aws.wait("published_version_active", name, qualifier=run.result.version)
            run.log(f"version {run.result.version}: SnapStart snapshot ready")


def _snapstart_on(run: DeployRun) -> bool:
    if run.settings.snapstart is not None:
        return run.settings.snapstart
    return ((run.current or {}).get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions"


def versions_to_delete(versions: list[dict], aliased: set[str], keep: int) -> list[str]:
    """The versions lambdapack published (VERSION_MARK) that neither an alias points at nor
    are among its newest ``keep``; never one published by anyone else."""
    ours = sorted(
        (
            v["Version"]
            for v in versions
            if v["Version"] != "$LATEST" and (v.get("Description") or "").startswith(VERSION_MARK)
        ),
        key=int,
    )
    kept = set(ours[-keep:]) if keep > 0 else set()
    return [version for version in ours if version not in kept and version not in aliased]


def _prune_versions(run: DeployRun) -> None:
    name = run.settings.function
    versions, aliased = run.aws.versions_and_aliased(name)
    keep = run.settings.keep_versions
    for version in versions_to_delete(versions, aliased, keep):
        run.aws.delete_function(name, qualifier=version)
        run.log(f"deleted version {version} of {name}: lambdapack's, older than its newest {keep}")


def _point_alias(run: DeployRun) -> None:
    if run.result.version and run.settings.alias:
        done = run.aws.point_alias(run.settings.function, run.settings.alias, run.result.version)
        run.log(f"published version {run.result.version}; alias {run.settings.alias} {done}")
        run.alias_recreated = done == "created" and run.current is not None


def _wire_recreated_alias(run: DeployRun) -> None:
    """The function existed without the alias: someone deleted it (or deployed with
    --alias ''). A deleted alias takes its resource policy, S3's permission included: where
    the input bucket's lambdapack entry still invokes the alias, wire it again (the same
    filter and events), so uploads do not fail on a missing permission. The deploy itself
    is done by now: a wiring that fails is a warning, with the command to run."""
    settings = run.settings
    alias = settings.alias
    if not run.alias_recreated:  # set only where deploy created the alias
        return
    command = f"lambdapack wire --function {settings.function} --bucket {settings.bucket or 'BUCKET'}"
    try:
        entry = _entry_invoking_alias(run)
        if entry is None:
            run.log(
                f"warning: alias {alias} is new on an existing function: if a bucket was wired to it "
                f"before, S3 lost its permission with the old alias; run {command} (with its --prefix) again"
            )
            return
        prefix, suffix = filter_of(entry)
        command += f" --prefix {prefix!r}" if prefix else ""
        command += f" --suffix {suffix!r}" if suffix else ""
        wired = wire(
            WireSettings(
                settings.function, settings.bucket, prefix, suffix, tuple(entry["Events"]), alias=alias
            ),
            run.aws,
        )
    except PackError as exc:
        run.log(
            f"warning: alias {alias} was recreated and S3's permission went with the old one; wiring it "
            f"again failed ({exc}): run {command}"
        )
        return
    # (wire's warnings are deploy's own here: the recursion setting was just made, and the
    # alias runs the version just published.)
    for action in wired.actions:
        run.log(f"alias {alias} was recreated; wired again: {action}")


def _entry_invoking_alias(run: DeployRun) -> dict | None:
    """The input bucket's lambdapack entry for this function, if it invokes the alias."""
    settings = run.settings
    if not settings.bucket or not run.aws.bucket_exists(settings.bucket):
        return None
    arn = (run.aws.alias(settings.function, settings.alias) or {}).get("AliasArn")
    entry = wired_entry(run.aws.notification(settings.bucket), settings.function)
    return entry if entry is not None and entry.get("LambdaFunctionArn") == arn else None


def _upload(
    aws: AWSClient, bucket: str | None, key: str, path: Path, sha256: str, log, tags: dict[str, str]
) -> None:
    """Content-addressed, and verified: an object already under the key is used only
    when it has the same size and sha256 (S3's own checksum where it has one, else
    its bytes read back); anything else under the key is replaced. The object carries
    lambdapack's tags (added to an identical one found without them)."""
    assert bucket is not None
    aws.require_bucket(bucket)
    size = path.stat().st_size
    found = aws.object_size_and_sha256(bucket, key, expected_size=size)
    if found == (size, sha256):
        if not tags.items() <= aws.object_tags(bucket, key).items():
            aws.tag_object(bucket, key, tags)
        log(f"already at s3://{bucket}/{key} (same size and sha256)")
        return
    if found is not None:
        log(f"s3://{bucket}/{key} holds other bytes ({found[0]:,} bytes): replacing it")
    aws.put_file(path, bucket, key, sha256, urlencode(tags))
    log(f"uploaded {path.name} to s3://{bucket}/{key} ({size:,} bytes)")
