"""One AWS client with intent-named methods, as in chalice's ``awsclient``.

The boto3 session and ``sleep`` are passed in (tests use a moto server and
a no-op sleep). ``AWS_ENDPOINT_URL`` is honoured by botocore itself, so the
same code talks to AWS or to a local endpoint. Every error a user can cause
becomes an ``AWSError`` saying what happened and what to do (``aws_error``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from ..errors import AWSError

LAMBDA_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
ROLE_NOT_READY = "cannot be assumed by Lambda"
NOT_FOUND = ("404", "NoSuchKey", "NoSuchBucket", "NotFound")
ROLE_DESCRIPTION = "Execution role created by lambdapack"  # for people; the tag is what destroy reads
ROLE_RETRY_DELAYS = (2, 4, 8, 16)  # IAM is eventually consistent: a new role takes seconds


def aws_error(exc: Exception, action: str) -> AWSError:
    """The message a user can act on, for an error AWS (or botocore) raised."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AWSError(
            f"{action}: no AWS credentials found",
            "Configure credentials (aws configure, AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY), or run against the local endpoint: lambdapack local.",
        )
    if isinstance(exc, NoRegionError):
        return AWSError(
            f"{action}: no AWS region set", "Set AWS_REGION (or AWS_DEFAULT_REGION), e.g. us-east-1."
        )
    if isinstance(exc, EndpointConnectionError):
        return AWSError(
            f"{action}: could not connect to {exc.kwargs.get('endpoint_url', 'the endpoint')}",
            "Check the network, or that the local endpoint (AWS_ENDPOINT_URL) is running.",
        )
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        denied = "The credentials lack a permission this step needs: grant it, or use another profile."
        hints = {
            "AccessDenied": denied,
            "AccessDeniedException": denied,
            "NoSuchBucket": "Create the bucket first (aws s3 mb s3://NAME), or check its name and region.",
            "404": "It does not exist: check the name (and the region), or create it first.",
            "ResourceNotFoundException": "Deploy the function first: lambdapack deploy.",
            "InvalidClientTokenId": "The access key is not valid for this endpoint: check the profile.",
            "ExpiredToken": "The session token has expired: refresh your credentials.",
            "TooManyRequestsException": "AWS is throttling: wait a little and run the command again.",
            "ResourceConflictException": "Another update of the function is in progress: run it again.",
        }
        return AWSError(f"{action}: {code}: {message}".rstrip(": "), hints.get(code, ""))
    return AWSError(f"{action}: {exc}")


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Any error boto3 raises inside the block becomes the user's ``AWSError`` for ``action``."""
    try:
        yield
    except AWSError:
        raise
    except (ClientError, BotoCoreError) as exc:
        raise aws_error(exc, action) from exc


def default_session(profile: str | None = None, region: str | None = None) -> boto3.Session:
    """boto3's own conventions (a named profile, or AWS_PROFILE and the default chain);
    boto3 reads AWS_DEFAULT_REGION, and AWS_REGION (what the AWS CLI v2 and Lambda set) too."""
    region = region or os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or None
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise AWSError(
            f"no AWS profile named {profile!r}",
            "List the profiles with: aws configure list-profiles (or drop --profile).",
        ) from exc


class AWSClient:
    def __init__(self, session: boto3.Session | None = None, sleep: Callable[[float], None] = time.sleep):
        self.session = session or default_session()
        self.sleep = sleep
        self._clients: dict[str, Any] = {}

    def client(self, service: str):
        if service not in self._clients:
            try:
                self._clients[service] = self.session.client(service)
            except NoRegionError as exc:
                raise aws_error(exc, f"connect to {service}") from exc
        return self._clients[service]

    def _read(self, action: str, service: str, operation: str, missing: str, **params) -> dict | None:
        """An AWS read; None when AWS answers ``missing`` (the thing does not exist)."""
        try:
            return getattr(self.client(service), operation)(**params)
        except AWSError:
            raise
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == missing:
                return None
            raise aws_error(exc, action) from exc
        except Exception as exc:
            raise aws_error(exc, action) from exc

    def _call(self, action: str, service: str, operation: str, **params):
        try:
            return getattr(self.client(service), operation)(**params)
        except AWSError:
            raise
        except Exception as exc:
            if isinstance(
                exc,
                ClientError
                | NoCredentialsError
                | PartialCredentialsError
                | NoRegionError
                | EndpointConnectionError,
            ):
                raise aws_error(exc, action) from exc
            raise

    # --- identity -------------------------------------------------------------

    def account_id(self) -> str:
        return self._call("read the AWS account", "sts", "get_caller_identity")["Account"]

    def region(self) -> str:
        region = self.session.region_name or self.client("sts").meta.region_name
        if not region:
            raise aws_error(NoRegionError(), "find the AWS region")
        return region

    # --- Lambda ---------------------------------------------------------------

    def get_function(self, name: str, qualifier: str | None = None) -> dict | None:
        """The function ($LATEST), or the version an alias or version number names."""
        where = {"Qualifier": qualifier} if qualifier else {}
        label = f"{name}:{qualifier}" if qualifier else name
        return self._read(
            f"read function {label}",
            "lambda",
            "get_function",
            "ResourceNotFoundException",
            FunctionName=name,
            **where,
        )

    def alias(self, name: str, alias: str) -> dict | None:
        """get_alias's answer (AliasArn, FunctionVersion), None if the alias (or the function) is missing."""
        return self._read(
            f"read alias {name}:{alias}",
            "lambda",
            "get_alias",
            "ResourceNotFoundException",
            FunctionName=name,
            Name=alias,
        )

    def alias_names(self, name: str) -> list[str]:
        """The names of the function's aliases ([] if the function is missing)."""
        found: list[str] = []
        marker = None
        while True:
            page = self._read(
                f"list the aliases of {name}",
                "lambda",
                "list_aliases",
                "ResourceNotFoundException",
                FunctionName=name,
                **({"Marker": marker} if marker else {}),
            )
            if page is None:
                return found
            found += [alias["Name"] for alias in page.get("Aliases", [])]
            marker = page.get("NextMarker")
            if not marker:
                return found

    def create_function(self, **params) -> dict:
        """create_function, retried while a just-created role is not yet assumable."""
        for delay in (*ROLE_RETRY_DELAYS, None):
            try:
                return self.client("lambda").create_function(**params)
            except ClientError as exc:
                message = exc.response.get("Error", {}).get("Message", "")
                if ROLE_NOT_READY in message and delay is not None:
                    self.sleep(delay)
                    continue
                raise aws_error(exc, f"create function {params['FunctionName']}") from exc
            except Exception as exc:
                raise aws_error(exc, f"create function {params['FunctionName']}") from exc
        raise AssertionError("unreachable")

    def update_function_code(self, name: str, **params) -> dict:
        return self._call(
            f"update the code of {name}", "lambda", "update_function_code", FunctionName=name, **params
        )

    def update_function_configuration(self, name: str, **params) -> dict:
        return self._call(
            f"update the configuration of {name}",
            "lambda",
            "update_function_configuration",
            FunctionName=name,
            **params,
        )

    def wait(self, waiter: str, name: str) -> None:
        """Wait until an update is done: AWS rejects calls while one is in progress."""
        try:
            self.client("lambda").get_waiter(waiter).wait(
                FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 300}
            )
        except Exception as exc:
            raise aws_error(exc, f"wait for {name} to be ready") from exc

    def publish_version(self, name: str, code_sha256: str) -> str:
        result = self._call(
            f"publish a version of {name}",
            "lambda",
            "publish_version",
            FunctionName=name,
            CodeSha256=code_sha256,
        )
        return result["Version"]

    def point_alias(self, name: str, alias: str, version: str) -> str:
        """Create or move ``alias`` to ``version``; return what was done."""
        try:
            current = self.client("lambda").get_alias(FunctionName=name, Name=alias)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise aws_error(exc, f"read alias {alias}") from exc
            self._call(
                f"create alias {alias}",
                "lambda",
                "create_alias",
                FunctionName=name,
                Name=alias,
                FunctionVersion=version,
            )
            return "created"
        if current["FunctionVersion"] == version:
            return "unchanged"
        self._call(
            f"update alias {alias}",
            "lambda",
            "update_alias",
            FunctionName=name,
            Name=alias,
            FunctionVersion=version,
        )
        return "updated"

    def policy_statements(self, name: str, qualifier: str | None = None) -> list[dict]:
        """The statements of the resource policy of the function ($LATEST) or of one alias
        (each alias has its own policy on AWS); [] when there is none."""
        where = {"Qualifier": qualifier} if qualifier else {}
        label = f"{name}:{qualifier}" if qualifier else name
        found = self._read(
            f"read the resource policy of {label}",
            "lambda",
            "get_policy",
            "ResourceNotFoundException",
            FunctionName=name,
            **where,
        )
        return [] if found is None else json.loads(found["Policy"]).get("Statement", [])

    def add_permission(self, name: str, qualifier: str | None = None, **params) -> None:
        """A statement in the policy of the function, or of alias ``qualifier``."""
        where = {"Qualifier": qualifier} if qualifier else {}
        label = f"{name}:{qualifier}" if qualifier else name
        self._call(
            f"allow S3 to invoke {label}", "lambda", "add_permission", FunctionName=name, **where, **params
        )

    def remove_permission(self, name: str, statement_id: str, qualifier: str | None = None) -> None:
        where = {"Qualifier": qualifier} if qualifier else {}
        label = f"{name}:{qualifier}" if qualifier else name
        self._call(
            f"remove permission {statement_id} of {label}",
            "lambda",
            "remove_permission",
            FunctionName=name,
            StatementId=statement_id,
            **where,
        )

    def set_recursion_terminate(self, name: str) -> bool:
        """Ask Lambda to stop recursive loops; False where the endpoint lacks the API."""
        try:
            self.client("lambda").put_function_recursion_config(FunctionName=name, RecursiveLoop="Terminate")
            return True
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in (404, 501) or exc.response["Error"]["Code"] in ("UnknownOperationException", "404"):
                return False
            raise aws_error(exc, f"set the recursive-loop setting of {name}") from exc

    # --- S3 -------------------------------------------------------------------

    def bucket_exists(self, bucket: str) -> bool:
        try:
            self.client("s3").head_bucket(Bucket=bucket)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] in NOT_FOUND:
                return False
            raise aws_error(exc, f"read bucket {bucket}") from exc
        except Exception as exc:
            raise aws_error(exc, f"read bucket {bucket}") from exc

    def require_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            raise AWSError(
                f"bucket {bucket} does not exist",
                f"Create it first (aws s3 mb s3://{bucket}), or check its name and region.",
            )

    def object_size_and_sha256(self, bucket: str, key: str, expected_size: int) -> tuple[int, str] | None:
        """(size, sha256 hex) of an object, None if there is none. The hash is S3's own
        SHA-256 checksum where the object has a whole-object one; otherwise, when the size
        is the expected one, the object is read back and hashed (never trusted unread)."""
        s3 = self.client("s3")
        try:
            head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response["Error"]["Code"] in NOT_FOUND:
                return None
            raise aws_error(exc, f"read s3://{bucket}/{key}") from exc
        except Exception as exc:
            raise aws_error(exc, f"read s3://{bucket}/{key}") from exc
        size = int(head["ContentLength"])
        checksum = head.get("ChecksumSHA256") or ""
        if checksum and "-" not in checksum:  # "-N": a multipart composite, not the object's hash
            return size, base64.b64decode(checksum).hex()
        if size != expected_size:
            return size, ""
        digest = hashlib.sha256()
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(1 << 20), b""):
                digest.update(chunk)
        except Exception as exc:
            raise aws_error(exc, f"read s3://{bucket}/{key}") from exc
        return size, digest.hexdigest()

    def put_file(self, path: Path, bucket: str, key: str, sha256: str, tagging: str = "") -> None:
        """One PUT (objects up to 5 GB) with its SHA-256: S3 refuses bytes that do not
        match, and keeps the checksum for the next deploy's check. ``tagging``: the
        object's tags, as a URL-encoded query string."""
        try:
            with path.open("rb") as body:
                self.client("s3").put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                    **({"Tagging": tagging} if tagging else {}),
                )
        except Exception as exc:
            raise aws_error(exc, f"upload to s3://{bucket}/{key}") from exc

    def object_tags(self, bucket: str, key: str) -> dict[str, str]:
        found = self._call(
            f"read the tags of s3://{bucket}/{key}", "s3", "get_object_tagging", Bucket=bucket, Key=key
        )
        return {tag["Key"]: tag["Value"] for tag in found.get("TagSet", [])}

    def tag_object(self, bucket: str, key: str, tags: dict[str, str]) -> None:
        """Add ``tags`` to the object's own (S3 replaces the whole set: the others are kept)."""
        merged = self.object_tags(bucket, key) | tags
        self._call(
            f"tag s3://{bucket}/{key}",
            "s3",
            "put_object_tagging",
            Bucket=bucket,
            Key=key,
            Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in merged.items()]},
        )

    def keys_under(self, bucket: str, prefix: str) -> list[str]:
        paginator = self.client("s3").get_paginator("list_objects_v2")
        with translated(f"list s3://{bucket}/{prefix}"):
            return [
                item["Key"]
                for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
                for item in page.get("Contents", [])
            ]

    def delete_keys(self, bucket: str, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            answer = self._call(
                f"delete objects in s3://{bucket}",
                "s3",
                "delete_objects",
                Bucket=bucket,
                Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]], "Quiet": True},
            )
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise AWSError(
                    f"delete s3://{bucket}/{first.get('Key')}: {first.get('Code')}: {first.get('Message')}",
                    "Grant s3:DeleteObject on it, or delete it yourself.",
                )

    def bucket_kms_key(self, bucket: str) -> str | None:
        """The KMS key of the bucket's default encryption when it is SSE-KMS (aws:kms or
        aws:kms:dsse), as AWS names it there (a key id, key ARN, or alias); None otherwise
        (SSE-S3, or AWS's managed key aws/s3, which needs no grant)."""
        found = self._read(
            f"read the default encryption of {bucket}",
            "s3",
            "get_bucket_encryption",
            "ServerSideEncryptionConfigurationNotFoundError",
            Bucket=bucket,
        )
        for rule in ((found or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules", []):
            default = rule.get("ApplyServerSideEncryptionByDefault") or {}
            if default.get("SSEAlgorithm", "").startswith("aws:kms") and default.get("KMSMasterKeyID"):
                return default["KMSMasterKeyID"]
        return None

    def kms_key_arn(self, key: str) -> str:
        """The ARN of a KMS key named by id, ARN or alias (what IAM policies must name)."""
        if key.startswith("arn:") and ":key/" in key:
            return key
        if not key.startswith(("alias/", "arn:")):
            return f"arn:aws:kms:{self.region()}:{self.account_id()}:key/{key}"
        return self._call(f"read KMS key {key}", "kms", "describe_key", KeyId=key)["KeyMetadata"]["Arn"]

    # --- SQS ------------------------------------------------------------------

    def queue_url(self, name: str) -> str | None:
        found = self._read(
            f"find queue {name}",
            "sqs",
            "get_queue_url",
            "AWS.SimpleQueueService.NonExistentQueue",
            QueueName=name,
        )
        if found is None:
            return None
        return found["QueueUrl"]

    def create_queue(self, name: str, tags: dict[str, str]) -> str:
        return self._call(f"create queue {name}", "sqs", "create_queue", QueueName=name, tags=tags)[
            "QueueUrl"
        ]

    def queue_tags(self, url: str) -> dict[str, str]:
        return self._call(f"read the tags of {url}", "sqs", "list_queue_tags", QueueUrl=url).get("Tags", {})

    def queue_arn_and_messages(self, url: str) -> tuple[str, int]:
        """The queue's ARN, and how many messages it holds (visible, in flight, delayed)."""
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        names += ["ApproximateNumberOfMessagesDelayed", "QueueArn"]
        found = self._call(
            f"read queue {url}", "sqs", "get_queue_attributes", QueueUrl=url, AttributeNames=names
        )["Attributes"]
        return found["QueueArn"], sum(int(found.get(name, 0)) for name in names[:3])

    def delete_queue(self, url: str) -> None:
        self._call(f"delete queue {url}", "sqs", "delete_queue", QueueUrl=url)

    # --- asynchronous invocation ---------------------------------------------

    def event_invoke_config(self, name: str, qualifier: str | None) -> dict | None:
        where = {"Qualifier": qualifier} if qualifier else {}
        found = self._read(
            f"read the asynchronous invocation settings of {name}",
            "lambda",
            "get_function_event_invoke_config",
            "ResourceNotFoundException",
            FunctionName=name,
            **where,
        )
        if found is not None:
            found.pop("ResponseMetadata", None)
        return found

    def put_event_invoke_config(self, name: str, qualifier: str | None, **params) -> None:
        where = {"Qualifier": qualifier} if qualifier else {}
        self._call(
            f"set the asynchronous invocation settings of {name}",
            "lambda",
            "put_function_event_invoke_config",
            FunctionName=name,
            **where,
            **params,
        )

    def delete_event_invoke_config(self, name: str, qualifier: str | None) -> None:
        where = {"Qualifier": qualifier} if qualifier else {}
        self._read(  # already gone is done
            f"remove the asynchronous invocation settings of {name}",
            "lambda",
            "delete_function_event_invoke_config",
            "ResourceNotFoundException",
            FunctionName=name,
            **where,
        )

    def notification(self, bucket: str) -> dict:
        config = self._call(
            f"read the notifications of {bucket}",
            "s3",
            "get_bucket_notification_configuration",
            Bucket=bucket,
        )
        return {key: value for key, value in config.items() if key != "ResponseMetadata"}

    def put_notification(self, bucket: str, config: dict) -> None:
        self._call(
            f"write the notifications of {bucket}",
            "s3",
            "put_bucket_notification_configuration",
            Bucket=bucket,
            NotificationConfiguration=config,
        )

    # --- IAM ------------------------------------------------------------------

    def ensure_role(self, name: str, tags: list[dict[str, str]]) -> tuple[dict, bool]:
        """Role ``name`` (get_role's Role), created trusted by Lambda and tagged if missing;
        and whether it was created."""
        existing = self.role(name)
        if existing is not None:
            return existing, False
        role = self._call(
            f"create role {name}",
            "iam",
            "create_role",
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST_POLICY),
            Description=ROLE_DESCRIPTION,
            Tags=tags,
        )
        return role["Role"], True

    def tag_role(self, name: str, tags: list[dict[str, str]]) -> None:
        self._call(f"tag role {name}", "iam", "tag_role", RoleName=name, Tags=tags)

    def role_policy_names(self, name: str) -> list[str]:
        paginator = self.client("iam").get_paginator("list_role_policies")
        with translated(f"list the inline policies of {name}"):
            return [n for page in paginator.paginate(RoleName=name) for n in page["PolicyNames"]]

    def attached_policies(self, name: str) -> list[str]:
        """The ARNs of the managed policies attached to role ``name``."""
        paginator = self.client("iam").get_paginator("list_attached_role_policies")
        with translated(f"list the managed policies of {name}"):
            return [
                p["PolicyArn"] for page in paginator.paginate(RoleName=name) for p in page["AttachedPolicies"]
            ]

    def functions_using_role(self, role_arn: str) -> list[str]:
        """The names of the functions whose execution role is ``role_arn``."""
        paginator = self.client("lambda").get_paginator("list_functions")
        with translated("list the functions"):
            return [
                f["FunctionName"]
                for page in paginator.paginate()
                for f in page["Functions"]
                if f.get("Role") == role_arn
            ]

    def function_tags(self, arn: str) -> dict[str, str]:
        """The function's tags, read with ListTags (GetFunction includes them only for a
        caller allowed lambda:ListTags, and is silent otherwise: this call says so)."""
        return self._call(f"read the tags of {arn}", "lambda", "list_tags", Resource=arn).get("Tags", {})

    def tag_function(self, arn: str, tags: dict[str, str]) -> None:
        self._call(f"tag {arn}", "lambda", "tag_resource", Resource=arn, Tags=tags)

    def untag_function(self, arn: str, keys: list[str]) -> None:
        self._call(f"untag {arn}", "lambda", "untag_resource", Resource=arn, TagKeys=keys)

    def role(self, name: str) -> dict | None:
        found = self._read(f"read role {name}", "iam", "get_role", "NoSuchEntity", RoleName=name)
        return None if found is None else found["Role"]

    def delete_role(self, name: str) -> None:
        """The role and its inline policies (IAM refuses to delete a role that has any);
        the caller has checked they are all lambdapack's."""
        for policy in self.role_policy_names(name):
            self._call(
                f"delete policy {policy} of {name}",
                "iam",
                "delete_role_policy",
                RoleName=name,
                PolicyName=policy,
            )
        self._call(f"delete role {name}", "iam", "delete_role", RoleName=name)

    def delete_function(self, name: str) -> None:
        self._call(f"delete function {name}", "lambda", "delete_function", FunctionName=name)

    def role_policy(self, role: str, policy: str) -> dict | None:
        found = self._read(
            f"read policy {policy} of {role}",
            "iam",
            "get_role_policy",
            "NoSuchEntity",
            RoleName=role,
            PolicyName=policy,
        )
        if found is None:
            return None
        document = found["PolicyDocument"]
        return json.loads(document) if isinstance(document, str) else document

    def put_role_policy(self, role: str, policy: str, document: dict) -> None:
        self._call(
            f"write policy {policy} of {role}",
            "iam",
            "put_role_policy",
            RoleName=role,
            PolicyName=policy,
            PolicyDocument=json.dumps(document),
        )
