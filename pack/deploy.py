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

``--dry-run`` prints the plan and makes no call at all.
"""

from __future__ import annotations

import ast
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lambdapack_handler.modelstore import sha256_file

from .awsclient import AWSClient
from .errors import DeployError
from .report import BUILD_INFO, LIMITS, request_bytes
from .staging import EPHEMERAL_LIMIT_MB
from .zipper import digest

DIRECT_ZIP_LIMIT = LIMITS[0].limit
REQUEST_LIMIT = LIMITS[1].limit
UNZIPPED_LIMIT = LIMITS[2].limit
MEMORY_RANGE = (128, 10_240)
TIMEOUT_RANGE = (1, 900)
EPHEMERAL_RANGE = (512, 10_240)
HANDLER = "index.handler"
POLICY_NAME = "lambdapack"
DEFAULT_OUTPUT_PREFIX = "results/"


@dataclass
class DeploySettings:
    zip_path: Path
    function: str
    role: str | None = None
    code_bucket: str | None = None
    memory: int = 1024
    timeout: int = 60
    ephemeral_storage: int = 512
    env: dict[str, str] = field(default_factory=dict)
    alias: str | None = "live"
    bucket: str | None = None  # the input bucket (for the role's policy)
    prefix: str = ""
    output_bucket: str | None = None
    output_prefix: str = DEFAULT_OUTPUT_PREFIX
    deps_path: Path | None = None  # default: the archive the zip names, beside the zip

    def environment(self) -> dict[str, str]:
        """The function's variables: the user's, plus where results go (wire reads them back)."""
        variables = dict(self.env)
        variables.setdefault("OUTPUT_PREFIX", self.output_prefix)
        if self.output_bucket:
            variables.setdefault("OUTPUT_BUCKET", self.output_bucket)
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
    ephemeral_storage: int = 512
    deps: StagedDeps | None = None

    def environment(self, settings: DeploySettings) -> dict[str, str]:
        """The settings' variables, plus where the staged dependencies are."""
        variables = settings.environment()
        if self.deps is not None:
            variables |= {
                "DEPS_BUCKET": settings.code_bucket or "",
                "DEPS_KEY": self.deps.key(settings.function),
                "DEPS_SHA256": self.deps.sha256,
            }
        return variables


def preflight(settings: DeploySettings) -> Preflight:
    """Everything that can be checked without AWS. Raises DeployError."""
    _check_ranges(settings)
    path = settings.zip_path
    if not path.is_file():
        raise DeployError(f"{path} does not exist", "Build it first: lambdapack pack MODEL (or make pack).")
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
        if not _defines(archive.read(f"{module}.py"), function):
            raise DeployError(f"{module}.py in the zip does not define {function}(event, context)")
        try:
            build = json.loads(archive.read(BUILD_INFO))
        except KeyError:
            raise DeployError(
                "the zip carries no build record, so its runtime and architecture are unknown",
                "Pack it with lambdapack pack.",
            ) from None
        unzipped = sum(info.file_size for info in archive.infolist())
    digest_ = digest(path)
    if unzipped > UNZIPPED_LIMIT:
        raise DeployError(
            f"the zip unpacks to {unzipped:,} bytes, over Lambda's limit of {UNZIPPED_LIMIT:,}",
            "Pack with the LiteRT runtime, quantize the model, or drop requirements.",
        )
    direct = digest_.size <= DIRECT_ZIP_LIMIT and request_bytes(digest_.size) <= REQUEST_LIMIT
    if not direct and not settings.code_bucket:
        raise DeployError(
            f"the zip is {digest_.size:,} bytes: over the {DIRECT_ZIP_LIMIT:,}-byte direct upload limit "
            f"(or the {REQUEST_LIMIT:,}-byte request limit once base64-encoded)",
            "Pass --code-bucket BUCKET: lambdapack uploads the zip to S3 and deploys it from there.",
        )
    deps = _staged_deps(settings, build.get("deps"))
    ephemeral = settings.ephemeral_storage
    if deps is not None:
        if deps.ephemeral_mb > EPHEMERAL_LIMIT_MB:
            raise DeployError(
                f"the staged dependencies need {deps.ephemeral_mb:,} MB of ephemeral storage, over "
                f"Lambda's {EPHEMERAL_LIMIT_MB:,} MB",
                "Drop requirements and pack again, or deploy a container image.",
            )
        ephemeral = max(ephemeral, deps.ephemeral_mb)
    target = build["target"]
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


def _check_ranges(settings: DeploySettings) -> None:
    for label, value, (low, high), flag in (
        ("memory", settings.memory, MEMORY_RANGE, "--memory"),
        ("timeout", settings.timeout, TIMEOUT_RANGE, "--timeout"),
        ("ephemeral storage", settings.ephemeral_storage, EPHEMERAL_RANGE, "--ephemeral-storage"),
    ):
        if not low <= value <= high:
            raise DeployError(f"{label} {value} is outside Lambda's range {low}–{high}", f"Change {flag}.")


def execution_policy(settings: DeploySettings, region: str, account: str, check: Preflight) -> dict:
    """Least privilege: read inputs (and the model, and the staged dependencies),
    write results, log to its own group."""
    if not settings.bucket:
        raise DeployError(
            "no input bucket given, so the execution role cannot be limited to it",
            "Pass --bucket (the bucket whose uploads trigger the function), or an existing --role.",
        )
    output_bucket = settings.output_bucket or settings.bucket
    log_group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{settings.function}"
    read = [f"arn:aws:s3:::{settings.bucket}/{settings.prefix}*"]
    env = check.environment(settings)
    for bucket_var, key_var in (("MODEL_BUCKET", "MODEL_KEY"), ("DEPS_BUCKET", "DEPS_KEY")):
        if env.get(bucket_var) and env.get(key_var):
            read.append(f"arn:aws:s3:::{env[bucket_var]}/{env[key_var]}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadInputs", "Effect": "Allow", "Action": "s3:GetObject", "Resource": read},
            {
                "Sid": "WriteResults",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{output_bucket}/{settings.output_prefix}*",
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
        ],
    }


def desired_configuration(settings: DeploySettings, check: Preflight, role_arn: str) -> dict:
    return {
        "Runtime": check.runtime,
        "Handler": HANDLER,
        "Role": role_arn,
        "MemorySize": settings.memory,
        "Timeout": settings.timeout,
        "EphemeralStorage": {"Size": check.ephemeral_storage},
        "Environment": {"Variables": check.environment(settings)},
    }


def configuration_changes(current: dict, desired: dict) -> dict:
    """The parameters of update_function_configuration that differ from ``current``."""
    changes = {}
    for key, value in desired.items():
        have = current.get(key)
        if key == "Environment":
            have = {"Variables": (current.get("Environment") or {}).get("Variables", {})}
        elif key == "EphemeralStorage":
            have = {"Size": (current.get("EphemeralStorage") or {}).get("Size", 512)}
        if have != value:
            changes[key] = value
    return changes


@dataclass
class DeployResult:
    policy: dict | None = None
    function_arn: str | None = None
    version: str | None = None
    changed: bool = False


def plan(settings: DeploySettings, check: Preflight) -> list[str]:
    """What deploy would do, for --dry-run: no AWS call is made to write it."""
    steps = []
    if settings.role:
        steps.append(f"use role {settings.role}")
    else:
        steps += [
            "sts get_caller_identity (account for the policy ARNs)",
            f"iam get_role lambdapack-{settings.function}, create_role if missing "
            "(trusted by lambda.amazonaws.com)",
            f"iam put_role_policy {POLICY_NAME} if it differs (least privilege: GetObject on "
            f"{settings.bucket}/{settings.prefix}*, PutObject on {settings.output_bucket or settings.bucket}/"
            f"{settings.output_prefix}*, logs for /aws/lambda/{settings.function})",
        ]
    if check.deps is not None:
        steps.append(
            f"s3 put_object s3://{settings.code_bucket}/{check.deps.key(settings.function)} "
            f"({check.deps.size:,} bytes) unless it exists; ephemeral storage {check.ephemeral_storage:,} MB"
        )
    if check.upload == "s3":
        steps.append(
            f"s3 put_object s3://{settings.code_bucket}/{code_key(settings.function, check.sha256)} "
            "unless it exists"
        )
    steps += [
        f"lambda get_function {settings.function}",
        f"lambda create_function {settings.function} ({check.runtime}, {check.architecture}, {HANDLER}, "
        f"{settings.memory} MB, {settings.timeout} s) if missing; else update_function_code if CodeSha256 "
        f"differs from {check.code_sha256} and update_function_configuration if settings differ, "
        "waiting for each update",
    ]
    if settings.alias:
        steps.append(f"lambda publish_version and point alias {settings.alias} at it, if anything changed")
    return steps


def code_key(function: str, sha256: str) -> str:
    return f"lambdapack/{function}/{sha256}.zip"


def deploy(settings: DeploySettings, aws: AWSClient, log=print) -> DeployResult:
    check = preflight(settings)
    result = DeployResult()
    role_arn = settings.role or _ensure_role(settings, aws, result, log, check)
    if check.deps is not None:
        if check.ephemeral_storage > settings.ephemeral_storage:
            log(f"ephemeral storage {check.ephemeral_storage:,} MB: what the staged dependencies need")
        # Before the function can start with it.
        _upload(aws, settings.code_bucket, check.deps.key(settings.function), check.deps.path, log)
    desired = desired_configuration(settings, check, role_arn)
    current = aws.get_function(settings.function)
    name = settings.function
    if current is None:
        created = aws.create_function(
            FunctionName=name,
            Code=_code(settings, check, aws, log),
            Architectures=[check.architecture],
            Publish=False,
            **desired,
        )
        aws.wait("function_active_v2", name)
        result.function_arn = created["FunctionArn"]
        result.changed = True
        log(f"created function {name} ({check.runtime}, {check.architecture})")
    else:
        config = current["Configuration"]
        result.function_arn = config["FunctionArn"]
        if config.get("CodeSha256") != check.code_sha256 or config.get("Architectures", ["x86_64"]) != [
            check.architecture
        ]:
            aws.update_function_code(
                name, Architectures=[check.architecture], **_code(settings, check, aws, log)
            )
            aws.wait("function_updated_v2", name)
            result.changed = True
            log(f"updated the code of {name} (CodeSha256 {check.code_sha256})")
        changes = configuration_changes(config, desired)
        if changes:
            aws.update_function_configuration(name, **changes)
            aws.wait("function_updated_v2", name)
            result.changed = True
            log(f"updated the configuration of {name}: {', '.join(sorted(changes))}")
    if not result.changed:
        log(f"{name} is up to date (CodeSha256 {check.code_sha256}): nothing to change")
        return result
    if settings.alias:
        result.version = aws.publish_version(name, check.code_sha256)
        done = aws.point_alias(name, settings.alias, result.version)
        log(f"published version {result.version}; alias {settings.alias} {done}")
    return result


def _ensure_role(
    settings: DeploySettings, aws: AWSClient, result: DeployResult, log, check: Preflight
) -> str:
    policy = execution_policy(settings, aws.region(), aws.account_id(), check)
    role_name = f"lambdapack-{settings.function}"
    arn, created = aws.ensure_role(role_name)
    log(("created" if created else "reusing") + f" role {arn}")
    result.policy = policy
    if aws.role_policy(role_name, POLICY_NAME) != policy:
        aws.put_role_policy(role_name, POLICY_NAME, policy)
        log(f"inline policy {POLICY_NAME} of {role_name}:\n{json.dumps(policy, indent=2)}")
    return arn


def _code(settings: DeploySettings, check: Preflight, aws: AWSClient, log) -> dict:
    if check.upload == "direct":
        return {"ZipFile": settings.zip_path.read_bytes()}
    bucket = settings.code_bucket
    assert bucket is not None
    key = code_key(settings.function, check.sha256)
    _upload(aws, bucket, key, settings.zip_path, log)
    return {"S3Bucket": bucket, "S3Key": key}


def _upload(aws: AWSClient, bucket: str | None, key: str, path: Path, log) -> None:
    """Content-addressed: an object already under its key is the same bytes."""
    assert bucket is not None
    aws.require_bucket(bucket)
    if aws.object_exists(bucket, key):
        log(f"already at s3://{bucket}/{key}")
    else:
        aws.upload_file(str(path), bucket, key)
        log(f"uploaded {path.name} to s3://{bucket}/{key} ({path.stat().st_size:,} bytes)")
