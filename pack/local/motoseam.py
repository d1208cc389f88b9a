"""The one place lambdapack reaches into moto (pinned: moto 5.2.x).

moto's S3 applies a bucket's real notification configuration (events,
prefix and suffix filters) and, for each Lambda entry that matches, calls
``moto.s3.notifications._invoke_awslambda(account_id, event_body, fn_arn,
region)`` — which would run the code in Docker, or nowhere. ``install``
routes those calls to lambdapack instead, with moto's own event JSON, and
does the same for Lambda's ``Invoke`` with ``InvocationType=Event`` (moto's
``LambdaBackend.invoke``): answered 202 at once, the event queued as an S3
notification's is (``backfill`` and ``redrive`` invoke this way).
``function`` reads a deployed function (its configuration, what GetFunction
returns, and its zip) from moto's Lambda backend, by ARN with or without a
version or alias, without an HTTP round trip. ``write_log_events`` puts a
function's log lines into moto's CloudWatch Logs backend, as moto's own Lambda
does. ``watch_code`` tells when moto stores new code, ``watch_deletes`` when it
deletes a function. ``keep_event_invoke_configs`` keeps a function's asynchronous
invocation config per version or alias, as Lambda does (moto 5.2 ignores ``Qualifier``,
and a second put is appended while get keeps answering the first), and
``event_invoke_config`` reads the one an ARN names. ``make_server`` is moto's
threaded server with the host -> service lookup cached (moto works it out per
request by listing its package folder: a quarter of its time per request) and
connections kept alive (werkzeug closes each after one request).
``enforce_iam`` makes moto's IAM access control (on from the first request:
``INITIAL_NO_AUTH_ACTION_COUNT=0`` in this process's environment) usable for
what lambdapack does: moto signs a GET or DELETE with an empty body as if its
parsed parameters were the body (every Lambda read fails with
SignatureDoesNotMatch), and checks Lambda and CloudWatch Logs actions against
the resource ``*`` (a policy scoped to one function or log group allows none of
them), nor IAM or SQS actions on a role or queue that does not exist yet
(CreateRole, CreateQueue); here they are checked against the function's, the
log group's, the role's or the queue's ARN.
HeadBucket and the bucket-encryption calls are checked as the IAM actions AWS
checks (``S3_ACTIONS``), DeleteObjects per key.
``create_admin`` makes the administrator whose keys the local AWS hands out,
``assume_for_lambda`` the execution role's temporary credentials (as the
Lambda service assumes it: only a role that trusts lambda.amazonaws.com).
``make_server`` refuses moto's own ``/moto-api/`` (which resets the access
control or dumps every key) and any request that is not signed in its
Authorization header (``signed_only``).
Tests pin all of them (tests/test_local_aws.py, tests/test_local_iam.py). All
of this runs in moto's own process (``motoprocess``).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import re
from collections.abc import Callable
from urllib.parse import unquote

from ..limits import DEFAULT_REGION

SEAM = "_invoke_awslambda"
ACCOUNT = "123456789012"  # moto's default account: every ARN the local AWS hands out has it
PARTITION = "aws"
ADMIN = "lambdapack-admin"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
LAMBDA_SERVICE = "lambda.amazonaws.com"
CANNOT_ASSUME = "The role defined for the function cannot be assumed by Lambda"  # Lambda's own words
LAMBDA_PATH = re.compile(r"/[0-9-]+/functions/([^/]+)(?:/aliases/([^/]+))?")
TAGS_PATH = re.compile(r"/[0-9-]+/tags/(arn:.+)")
# JSON services (signing name -> the code of their AccessDenied error)
JSON_DENIED = {
    "lambda": "AccessDeniedException",
    "logs": "AccessDeniedException",
    "kms": "AccessDeniedException",
}
JSON_DENIED["sqs"] = "AccessDenied"
# S3 requests moto checks as another action than AWS does: (method, query, IAM action)
S3_ACTIONS = (
    ("HEAD", "DEFAULT", "ListBucket"),  # HeadBucket (moto: s3:HeadBucket, which IAM has not)
    ("GET", "encryption", "GetEncryptionConfiguration"),  # moto: s3:ListBucket
    ("PUT", "encryption", "PutEncryptionConfiguration"),  # moto: s3:CreateBucket
    ("DELETE", "encryption", "PutEncryptionConfiguration"),  # moto: s3:DeleteBucket
)


class SeamError(RuntimeError):
    pass


def install(submit: Callable[[str, dict], None]) -> None:
    from moto.s3 import notifications

    if getattr(notifications, SEAM, None) is None:
        raise SeamError(
            f"this moto has no moto.s3.notifications.{SEAM}: lambdapack's local runtime supports moto 5.2.x"
        )

    def invoke(account_id: str, event_body: dict, fn_arn: str, region_name: str) -> None:
        submit(fn_arn, event_body)

    setattr(notifications, SEAM, invoke)
    _route_event_invokes(submit)


def _route_event_invokes(submit: Callable[[str, dict], None]) -> None:
    """Lambda's asynchronous Invoke (``X-Amz-Invocation-Type: Event``) goes to ``submit``
    with the qualified ARN it names; moto answers it 202 with an empty body. A function
    that does not exist is moto's own 404, before anything is queued. Other invocation
    types are moto's as before."""
    from moto.awslambda.models import LambdaBackend

    original = LambdaBackend.invoke
    if getattr(original, "_lambdapack", False):
        return

    @functools.wraps(original)
    def invoke(self, function_name, qualifier, body, headers, response_headers):
        if headers.get("X-Amz-Invocation-Type") != "Event":
            return original(self, function_name, qualifier, body, headers, response_headers)
        self.get_function(function_name, qualifier)  # moto's ResourceNotFound for a missing one
        submit(
            qualified_arn(self.account_id, self.region_name, function_name, qualifier),
            json.loads(body or "{}"),
        )
        response_headers["Content-Length"] = "0"
        return b""

    invoke._lambdapack = True
    LambdaBackend.invoke = invoke


def qualified_arn(account_id: str, region: str, function_name: str, qualifier: str | None) -> str:
    """The ARN an Invoke names: a name or an ARN (with or without its qualifier), plus the
    Qualifier parameter when there is one."""
    if function_name.startswith("arn:"):
        base = function_name
    else:
        name, _, inline = function_name.partition(":")
        base = f"arn:aws:lambda:{region}:{account_id}:function:{name}" + (f":{inline}" if inline else "")
    if qualifier and len(base.split(":")) == 7:
        base += f":{qualifier}"
    return base


def watch_code(deployed: Callable[[str], None]) -> None:
    """Call ``deployed(function ARN)`` after moto stores new code (CreateFunction,
    UpdateFunctionCode), so the code can be unpacked before the first invocation, as
    Lambda prepares a function while it is Pending rather than in its first cold start."""
    from moto.awslambda.models import LambdaBackend

    for method in ("create_function", "update_function_code"):
        original = getattr(LambdaBackend, method)

        @functools.wraps(original)
        def stored(self, *args, _original=original, **kwargs):
            result = _original(self, *args, **kwargs)
            # create_function returns the function, update_function_code its configuration
            arn = result["FunctionArn"] if isinstance(result, dict) else result.function_arn
            with contextlib.suppress(Exception):  # an early unpack is only a head start
                deployed(arn)
            return result

        setattr(LambdaBackend, method, stored)


def watch_deletes(deleted: Callable[[str], None]) -> None:
    """Call ``deleted(function name)`` after moto deletes a function (not one version of
    it), so its execution environments can end instead of idling until the endpoint stops."""
    from moto.awslambda.models import LambdaBackend

    original = LambdaBackend.delete_function

    @functools.wraps(original)
    def delete_function(self, function_name: str, qualifier: str | None = None) -> None:
        original(self, function_name, qualifier)
        name = function_name.split(":")[6] if function_name.startswith("arn:") else function_name
        configs = getattr(self, CONFIGS, {})
        for key in [key for key in configs if key[0] == name and qualifier in (None, key[1])]:
            del configs[key]
        if qualifier is None:
            with contextlib.suppress(Exception):  # only a clean-up: the delete itself is done
                deleted(function_name.split(":")[6] if function_name.startswith("arn:") else function_name)

    LambdaBackend.delete_function = delete_function


SNAPSTART = "lambdapack_snapstart"  # on moto's LambdaFunction: its SnapStart ApplyOn


def keep_snapstart() -> None:
    """moto reports ``SnapStart: {ApplyOn: None, OptimizationStatus: Off}`` whatever was set.
    Keep what CreateFunction and UpdateFunctionConfiguration set, and answer as Lambda does:
    ``ApplyOn`` as set; ``OptimizationStatus`` On for a published version of a function with
    SnapStart on published versions (moto publishes at once: its snapshot is ready), else Off.
    (EphemeralStorage, which moto's update ignores, is kept the same way.)"""
    from moto.awslambda.models import LambdaFunction

    original_init = LambdaFunction.__init__
    original_update = LambdaFunction.update_configuration
    original_get = LambdaFunction.get_configuration

    @functools.wraps(original_init)
    def init(self, account_id, spec, region, version=1):
        original_init(self, account_id, spec, region, version)
        setattr(self, SNAPSTART, (spec.get("SnapStart") or {}).get("ApplyOn", "None"))

    @functools.wraps(original_update)
    def update(self, config_updates):
        if "SnapStart" in config_updates:
            setattr(self, SNAPSTART, (config_updates["SnapStart"] or {}).get("ApplyOn", "None"))
        if "EphemeralStorage" in config_updates:
            self.ephemeral_storage = config_updates["EphemeralStorage"]["Size"]
        return original_update(self, config_updates)

    @functools.wraps(original_get)
    def get(self, on_create=False):
        config = original_get(self, on_create)
        apply_on = getattr(self, SNAPSTART, "None")
        published = str(config.get("Version")) != "$LATEST"
        ready = apply_on == "PublishedVersions" and published
        config["SnapStart"] = {"ApplyOn": apply_on, "OptimizationStatus": "On" if ready else "Off"}
        return config

    LambdaFunction.__init__ = init
    LambdaFunction.update_configuration = update
    LambdaFunction.get_configuration = get


HIGHEST = "lambdapack_highest_versions"  # on moto's LambdaStorage: name -> highest version published


def keep_version_numbers() -> None:
    """Lambda never reuses a version number; moto numbers a new version len(versions) + 1,
    so after a version is deleted the next one would take an existing number. Number each
    new version past the highest this function ever had."""
    from moto.awslambda.models import LambdaStorage

    original = LambdaStorage.publish_version

    @functools.wraps(original)
    def publish_version(self, name_or_arn: str, description: str = ""):
        versions = None
        with contextlib.suppress(Exception):
            name = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn).function_name
            versions = self._functions[name]["versions"]
        before = list(versions or [])
        fn = original(self, name_or_arn, description)
        if fn is None or versions is None or fn in before:  # nothing published (unchanged)
            return fn
        highest = getattr(self, HIGHEST, {})
        setattr(self, HIGHEST, highest)
        number = max([int(v.version) for v in before] + [highest.get(fn.function_name, 0)]) + 1
        if int(fn.version) != number:
            del self._arns[fn.function_arn]
            fn.set_version(number)
            self._arns[fn.function_arn] = fn
        highest[fn.function_name] = number
        return fn

    LambdaStorage.publish_version = publish_version


def function(function_arn: str):
    """The deployed function an ARN names: ``...:function:NAME`` ($LATEST), or with a
    version or alias after the name (the version the alias points at)."""
    from moto.awslambda.utils import get_backend

    _, _, _, region, account_id = function_arn.split(":")[:5]
    return get_backend(account_id, region).get_function(function_arn)


CONFIGS = "lambdapack_event_invoke_configs"  # on moto's Lambda backend: (name, qualifier) -> config


def _name_and_qualifier(backend, name_or_arn: str, qualifier: str | None) -> tuple[str, str]:
    """A function (name, ARN, or either with ``:QUALIFIER``) and qualifier as (NAME, QUALIFIER),
    ``$LATEST`` when none; raises moto's own error when the function does not exist."""
    parts = name_or_arn.split(":")
    if name_or_arn.startswith("arn:"):
        name, suffix = parts[6], (parts[7] if len(parts) > 7 else None)
    else:
        name, suffix = parts[0], (parts[1] if len(parts) > 1 else None)
    qualifier = qualifier or suffix or "$LATEST"
    backend.get_function(name, None if qualifier == "$LATEST" else qualifier)  # it must exist
    return name, qualifier


def keep_event_invoke_configs() -> None:
    """Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s) as Lambda answers them: one
    config per function and version or alias (``Qualifier``), a put replaces it, an update
    changes only the fields it names."""
    from moto.awslambda.exceptions import UnknownEventConfig
    from moto.awslambda.models import EventInvokeConfig
    from moto.awslambda.responses import LambdaResponse
    from moto.core.responses import ActionResult

    def target(response):
        name_or_arn = unquote(response.path.split("/functions/", 1)[1].split("/", 1)[0])
        qualifier = response.querystring.get("Qualifier", [None])[0]
        backend = response.backend
        name, qualifier = _name_and_qualifier(backend, name_or_arn, qualifier)
        if not hasattr(backend, CONFIGS):
            setattr(backend, CONFIGS, {})
        fn = backend.get_function(name)
        arn = fn.function_arn + ("" if qualifier == "$LATEST" else f":{qualifier}")
        return getattr(backend, CONFIGS), (name, qualifier), arn, fn

    def put(self, merge: bool = False):
        configs, key, arn, fn = target(self)
        body = {**(configs[key].config if merge and key in configs else {}), **self.json_body}
        configs[key] = EventInvokeConfig(arn, fn.last_modified, body)
        return ActionResult(configs[key].response())

    def get(self):
        configs, key, arn, _ = target(self)
        if key not in configs:
            raise UnknownEventConfig(arn)
        return ActionResult(configs[key].response())

    def delete(self):
        configs, key, arn, _ = target(self)
        if configs.pop(key, None) is None:
            raise UnknownEventConfig(arn)
        return 204, {"status": 204}, json.dumps({})

    def listed(self):
        configs, (name, _), _, _ = target(self)
        found = [config.response() for (owner, _), config in sorted(configs.items()) if owner == name]
        return json.dumps({"FunctionEventInvokeConfigs": found})

    LambdaResponse.put_function_event_invoke_config = put
    LambdaResponse.update_function_event_invoke_config = lambda self: put(self, merge=True)
    LambdaResponse.get_function_event_invoke_config = get
    LambdaResponse.delete_function_event_invoke_config = delete
    LambdaResponse.list_function_event_invoke_configs = listed


def event_invoke_config(function_arn: str) -> dict | None:
    """The asynchronous invocation config of the version or alias an ARN names (None: none)."""
    from moto.awslambda.utils import get_backend

    _, _, _, region, account_id = function_arn.split(":")[:5]
    backend = get_backend(account_id, region)
    name, qualifier = _name_and_qualifier(backend, function_arn, None)
    config = getattr(backend, CONFIGS, {}).get((name, qualifier))
    return None if config is None else config.response()


def write_log_events(account_id: str, region: str, group: str, stream: str, events: list[dict]) -> None:
    """Into moto's CloudWatch Logs (no HTTP round trip per invocation), creating the
    group and the stream the first time, as Lambda does."""
    from moto.logs.models import logs_backends

    backend = logs_backends[account_id][region]
    backend.ensure_log_group(group)
    backend.ensure_log_stream(group, stream)
    backend.put_log_events(group, stream, events)


def enforce_iam() -> None:
    """moto's IAM access control, made to check what AWS checks for lambdapack's calls. Needs
    ``INITIAL_NO_AUTH_ACTION_COUNT=0`` in the environment before moto is imported (moto reads
    it once, in moto.settings); refuses to run without it."""
    from moto import settings
    from moto.awslambda.responses import LambdaResponse
    from moto.core.exceptions import JsonRESTError
    from moto.iam import access_control
    from moto.iam.responses import IamResponse
    from moto.logs.responses import LogsResponse
    from moto.s3 import responses as s3_responses
    from moto.sqs.responses import SQSResponse

    if settings.INITIAL_NO_AUTH_ACTION_COUNT != 0:
        raise SeamError("moto's IAM access control is off: INITIAL_NO_AUTH_ACTION_COUNT=0 must be set first")
    if not hasattr(access_control.IAMRequestBase, "_create_aws_request"):
        raise SeamError("this moto's IAM access control is not the one lambdapack knows (moto 5.2.x)")

    def signed_request(self):
        """The request as the client signed it: a GET, HEAD or DELETE without a body is signed
        with an empty one (moto used its parsed parameters instead, so no GET or DELETE of
        Lambda could pass); a form POST keeps moto's parameters (werkzeug has read its body)."""
        from botocore.awsrequest import AWSRequest

        signed = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
        headers = self._create_headers_for_aws_request(signed, self._headers)
        body = self._body or (b"" if self._method in ("GET", "HEAD", "DELETE") else self._data)
        request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
        request.context["timestamp"] = headers["X-Amz-Date"]
        return request

    access_control.IAMRequestBase._create_aws_request = signed_request
    xml_denied = access_control.IAMRequest._raise_access_denied

    def access_denied(self) -> None:
        """AccessDenied in the service's own protocol: moto answered JSON services in XML,
        which their clients read as an error coded "403" with the XML as its message."""
        if self._service not in JSON_DENIED:
            return xml_denied(self)
        message = f"User: {self._access_key.arn} is not authorized to perform: {self._action}"
        error = JsonRESTError(JSON_DENIED[self._service], message)
        error.code = 403
        raise error

    access_control.IAMRequest._raise_access_denied = access_denied
    for method, query, action in S3_ACTIONS:
        s3_responses.ACTION_MAP["BUCKET"][method][query] = action
    s3_responses.S3Response._bucket_response_post = _delete_objects_per_key(
        s3_responses.S3Response._bucket_response_post
    )
    LambdaResponse._determine_resource = _lambda_resource
    IamResponse._resolve_resource_arn = _role_resource
    SQSResponse._determine_resource = _queue_resource
    LogsResponse._determine_resource = _logs_resource


def _lambda_resource(self) -> str:
    """The ARN a Lambda action is on: the function (with its alias or version when the request
    names one; CreateFunction's from its body), a tagged resource's ARN, or ``*``
    (ListFunctions)."""
    path = unquote(self.path.split("?")[0])
    tagged = TAGS_PATH.match(path)
    if tagged:
        return tagged.group(1)
    named = LAMBDA_PATH.match(path)
    if named:
        name, qualifier = named.group(1), named.group(2)
    else:  # CreateFunction names its function in its body
        try:
            name, qualifier = json.loads(self.body or "{}").get("FunctionName"), None
        except (ValueError, AttributeError):
            name = None
        if not isinstance(name, str) or not name:
            return "*"
    if name.startswith("arn:"):
        parts = name.split(":")
        name, qualifier = parts[6], qualifier or (parts[7] if len(parts) > 7 else None)
    qualifier = qualifier or (self.querystring.get("Qualifier") or [None])[0]
    arn = f"arn:{PARTITION}:lambda:{self.region}:{self.current_account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def _delete_objects_per_key(post):
    """DeleteObjects checked as AWS checks it: s3:DeleteObject on each key (moto checked it on
    the bucket, so a policy scoped to a folder could delete nothing). When a key is denied,
    none is deleted and each is answered AccessDenied (AWS would delete the others)."""
    import xmltodict
    from moto.s3.exceptions import BucketAccessDeniedError, S3AccessDeniedError

    @functools.wraps(post)
    def checked(self, request, bucket_name: str):
        self.path = self._get_path(request)
        if not request.headers.get("Content-Length") or not self.is_delete_keys():
            return post(self, request, bucket_name)
        objects = xmltodict.parse(self.body).get("Delete", {}).get("Object", [])
        objects = objects if isinstance(objects, list) else [objects]
        self.data["Action"] = "DeleteObject"
        allowed = True
        for item in objects:
            try:
                self._authenticate_and_authorize_s3_action(bucket_name=bucket_name, key_name=item["Key"])
            except (BucketAccessDeniedError, S3AccessDeniedError):
                allowed = False
        return self._bucket_response_delete_keys(bucket_name, authenticated=allowed)

    return checked


def _role_resource(self, role_name: str) -> str:
    """The role an IAM action is on: its ARN, also when it does not exist yet (CreateRole, or
    GetRole before it; moto checked those against ``*``)."""
    try:
        return self.backend.get_role(role_name).arn
    except Exception:
        return f"arn:{PARTITION}:iam::{self.current_account}:role/{role_name}"


def _queue_resource(self) -> str:
    """The queue an SQS action is on: its ARN, also when it does not exist yet (CreateQueue,
    GetQueueUrl; moto checked those against ``*``), or ``*`` (ListQueues)."""
    name = self._get_param("QueueName") or self._get_queue_name()
    if not name:
        return "*"
    try:
        return self.sqs_backend.get_queue(name).queue_arn
    except Exception:
        return f"arn:{PARTITION}:sqs:{self.region}:{self.current_account}:{name}"


def _logs_resource(self) -> str:
    """The log group a CloudWatch Logs action is on (``log-group:NAME``), or ``*``."""
    try:
        body = json.loads(self.body or "{}")
    except ValueError:
        return "*"
    group = body.get("logGroupName") or body.get("logGroupIdentifier")
    if not isinstance(group, str) or not group:
        return "*"
    if group.startswith("arn:"):
        return group
    return f"arn:{PARTITION}:logs:{self.region}:{self.current_account}:log-group:{group}"


def create_admin() -> tuple[str, str]:
    """An IAM user allowed everything, with a fresh access key: (key id, secret). Made in
    moto's backend, not by a request, so no request is ever let through unchecked."""
    from moto.iam.models import iam_backends

    backend = iam_backends[ACCOUNT][PARTITION]
    if ADMIN not in backend.users:
        backend.create_user(DEFAULT_REGION, ADMIN)
        backend.put_user_policy(ADMIN, "lambdapack-admin", json.dumps(ADMIN_POLICY))
    key = backend.create_access_key(ADMIN)
    return key.access_key_id, key.secret_access_key


class RoleRefused(Exception):
    """The execution role cannot be assumed by Lambda (missing, or not trusting it)."""


def assume_for_lambda(role_arn: str, session: str, duration_s: int) -> dict:
    """The role's temporary credentials as Lambda gets them (AccessKeyId, SecretAccessKey,
    SessionToken, Expiration as an ISO time): the role must exist and trust
    lambda.amazonaws.com with sts:AssumeRole (the Lambda service, not any user, assumes it)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends

    parts = role_arn.split(":")
    if len(parts) < 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        raise RoleRefused(f"{role_arn} is not a role ARN")
    account = parts[4]
    try:
        role = iam_backends[account][PARTITION].get_role_by_arn(role_arn)
    except Exception:
        raise RoleRefused(f"{CANNOT_ASSUME}: {role_arn} does not exist") from None
    if not _trusts_lambda(json.loads(role.assume_role_policy_document), IAMPolicy, PermissionResult):
        raise RoleRefused(f"{CANNOT_ASSUME}: {role_arn} does not trust {LAMBDA_SERVICE}")
    assumed = sts_backends[account][PARTITION].assume_role(
        region_name=DEFAULT_REGION,
        role_session_name=session[:64],
        role_arn=role_arn,
        policy="",
        duration=duration_s,
        external_id="",
    )
    return {
        "AccessKeyId": assumed.access_key_id,
        "SecretAccessKey": assumed.secret_access_key,
        "SessionToken": assumed.session_token,
        "Expiration": assumed.expiration.replace(tzinfo=datetime.timezone.utc).timestamp(),  # moto's is UTC
    }


def _trusts_lambda(document: dict, policy_class, results) -> bool:
    """An Allow of sts:AssumeRole to the service principal lambda.amazonaws.com, and no Deny."""
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    allowed = False
    for statement in statements:
        services = (statement.get("Principal") or {}) if isinstance(statement.get("Principal"), dict) else {}
        service = services.get("Service", [])
        if LAMBDA_SERVICE not in ([service] if isinstance(service, str) else service):
            continue
        without_principal = {key: value for key, value in statement.items() if key != "Principal"}
        one = {"Version": "2012-10-17", "Statement": [without_principal]}
        result = policy_class(json.dumps(one)).is_action_permitted("sts:AssumeRole")
        if result == results.DENIED and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or result == results.PERMITTED
    return allowed


def dispatcher_app():
    """moto's WSGI application, remembering which service answers a host: the same host
    always maps to the same service, and moto works it out again on every request."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    app = DomainDispatcherApplication(create_backend_app)
    app.get_backend_for_host = functools.lru_cache(maxsize=1024)(app.get_backend_for_host)
    return app


def make_server(host: str, port: int):
    """What moto's ThreadedMotoServer serves, as a werkzeug server to run in a thread, with
    connections kept alive (``keep_alive_handler``)."""
    from werkzeug.serving import make_server as werkzeug_server

    app = marking_failures(signed_only(dispatcher_app()))
    return werkzeug_server(host, port, app, threaded=True, request_handler=keep_alive_handler())


def signed_only(app):
    """``app`` for signed requests only. moto's own API (``/moto-api/``) is refused: unsigned,
    it resets moto's state and its access control and dumps every user's keys. So is a request
    with no Authorization header (anonymous, or a presigned URL, whose signature is in its
    query): moto's access control has no check for them and fails on them."""

    def refuse(start_response, why: bytes):
        start_response("403 Forbidden", [("Content-Type", "text/plain"), ("Content-Length", str(len(why)))])
        return [why]

    def guarded(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return refuse(start_response, b"moto's API is off in the local AWS\n")
        if not environ.get("HTTP_AUTHORIZATION"):
            return refuse(start_response, b"AccessDenied: the local AWS answers signed requests only\n")
        return app(environ, start_response)

    return guarded


FAILED = "lambdapack.failed"  # set in the request's environ when the application raised


def marking_failures(app):
    """``app``, noting in the request's environ when it raised — also while its body was being
    sent, after the headers, where werkzeug can only cut the response short."""

    def marked(environ, start_response):
        result = None
        try:
            result = app(environ, start_response)
            yield from result
        except Exception:
            environ[FAILED] = True
            raise
        finally:
            if result is not None and hasattr(result, "close"):
                result.close()

    return marked


@functools.cache
def keep_alive_handler():
    """moto's request handler, keeping HTTP/1.1 connections open between requests.

    werkzeug's development server closes every connection ("Connection: close"): it cannot
    tell where a request's body ends and the next request begins, and after each response
    it drains whatever the socket still holds. So every S3 call cost a new TCP connection,
    a new thread in this process and a connection set-up in the caller. Here the request's
    body is bounded by its Content-Length (werkzeug's own LimitedStream) while werkzeug
    handles it — what werkzeug drains afterwards is only what is left of that body — and
    the rest of an unread body is read before the next request. The connection still
    closes after a chunked body, a client that asks for it or went away mid-body, an
    error answered by http.server itself (a header too long), and a response the
    application failed in (``marking_failures``): the client then sees the connection
    end instead of waiting for the rest of a body."""
    import socket

    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.wsgi import LimitedStream

    class Body(LimitedStream):
        def __init__(self, stream, limit: int, handler) -> None:
            super().__init__(stream, limit)
            self.handler = handler

        def on_disconnect(self, error: Exception | None = None) -> None:
            # The client went away mid-body: no traceback here (the application sees a short
            # body and answers it, to nobody), and the connection ends.
            self.handler.close_connection = True

    class KeepAliveHandler(MotoRequestHandler):
        def setup(self) -> None:
            super().setup()
            # Headers and body are separate writes: without this, a kept-alive connection
            # waits on delayed ACKs (~40 ms) between them.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def run_wsgi(self) -> None:
            length = self.headers.get("Content-Length", "0").strip()
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower() or not length.isdigit():
                self.close_connection = True
                return super().run_wsgi()
            raw = self.rfile
            self.rfile = body = Body(raw, int(length), self)
            try:
                super().run_wsgi()
                while not self.close_connection and not body.is_exhausted and body.read(1 << 20):
                    pass  # the rest of a body the application did not read
            except OSError:
                self.close_connection = True
            finally:
                self.rfile = raw
            if getattr(self, "environ", {}).get(FAILED):
                self.close_connection = True

        def send_error(self, *args, **kwargs) -> None:
            self.close_connection = True  # http.server's own answers (bad request line, headers)
            super().send_error(*args, **kwargs)

        def send_header(self, keyword: str, value: str) -> None:
            if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
                return  # werkzeug's "always close"; the connection can serve the next request
            super().send_header(keyword, value)

    return KeepAliveHandler
