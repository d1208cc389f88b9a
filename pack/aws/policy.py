"""The IAM policy a person needs to run deploy, wire, unwire, logs and destroy for one
function, and nothing more: every resource named after the function, as lambdapack
names it (``owner.role_name``, ``owner.uploads_prefix``, ``owner.failure_queue_name``,
``logs.log_group``).

Data, not prose: ``person_policy`` returns the policy document; ``lambdapack policy``
prints it. It covers what ownership adds to deploy and destroy (resource tags, the
failure queue, the event-invoke configuration, the buckets' encryption).

What cannot be scoped: ``lambda:ListFunctions`` and ``sts:GetCallerIdentity`` name
no resource on AWS (the latter needs no permission at all; it is listed for
clarity). ``s3:ListBucket`` on the code bucket is limited to lambdapack's folder by
an ``s3:prefix`` condition (IfExists: HeadBucket has no prefix); HeadBucket of the
input bucket is ``s3:ListBucket`` on it (lambdapack lists none of its objects).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from . import names
from .logs import log_group
from .owner import failure_queue_name, role_name, uploads_prefix

LAMBDA_SERVICE = "lambda.amazonaws.com"


@dataclass
class PolicyTarget:
    function: str
    bucket: str
    account: str = "*"
    region: str = "*"
    code_bucket: str | None = None
    role: str | None = None  # an existing execution role's ARN (deploy --role): no role is made
    partition: str = "aws"


def person_policy(target: PolicyTarget) -> dict:
    """The identity policy document (JSON-ready); a name AWS would refuse is an InputError."""
    if problem := names.first_problem(target.function, target.bucket, target.code_bucket):
        raise InputError(problem)
    if target.role is not None and ":role/" not in target.role:
        raise InputError(f"{target.role!r} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    part, region, account, name = target.partition, target.region, target.account, target.function
    function_arn = f"arn:{part}:lambda:{region}:{account}:function:{name}"
    role_arn = target.role or f"arn:{part}:iam::{account}:role/{role_name(name)}"
    group_arn = f"arn:{part}:logs:{region}:{account}:log-group:{log_group(name)}"
    bucket_arn = f"arn:{part}:s3:::{target.bucket}"
    statements: list[dict] = [
        {
            "Sid": "Function",
            "Effect": "Allow",
            "Action": [
                "lambda:GetFunction",
                "lambda:CreateFunction",
                "lambda:UpdateFunctionCode",
                "lambda:UpdateFunctionConfiguration",
                "lambda:DeleteFunction",
                "lambda:PublishVersion",
                "lambda:GetAlias",
                "lambda:ListAliases",
                "lambda:CreateAlias",
                "lambda:UpdateAlias",
                "lambda:GetPolicy",
                "lambda:AddPermission",
                "lambda:RemovePermission",
                "lambda:PutFunctionRecursionConfig",
                "lambda:PutFunctionEventInvokeConfig",
                "lambda:GetFunctionEventInvokeConfig",
                "lambda:TagResource",
                "lambda:ListTags",
                # destroy of an adopted function: its invoke config and tags go, it stays
                "lambda:DeleteFunctionEventInvokeConfig",
                "lambda:UntagResource",
                # deploy: lambdapack's old versions pruned; a SnapStart version waited for
                "lambda:ListVersionsByFunction",
                "lambda:GetFunctionConfiguration",
            ],
            # the function, and its versions and aliases (ARN:QUALIFIER)
            "Resource": [function_arn, f"{function_arn}:*"],
        },
        {
            # Names no resource on AWS: deploy and destroy list functions to find what uses a role.
            "Sid": "ListFunctions",
            "Effect": "Allow",
            "Action": ["lambda:ListFunctions", "sts:GetCallerIdentity"],
            "Resource": "*",
        },
        {
            "Sid": "PassRoleToLambdaOnly",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": LAMBDA_SERVICE}},
        },
    ]
    role_actions = ["iam:GetRole", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies"]
    if target.role is None:  # lambdapack makes the role, its inline policy, and removes both
        role_actions += [
            "iam:CreateRole",
            "iam:TagRole",
            "iam:GetRolePolicy",
            "iam:PutRolePolicy",
            "iam:DeleteRolePolicy",
            "iam:DeleteRole",
        ]
    statements.append({"Sid": "Role", "Effect": "Allow", "Action": role_actions, "Resource": role_arn})
    statements += [
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Action": "logs:FilterLogEvents",
            "Resource": [group_arn, f"{group_arn}:*"],
        },
        {
            # wire/unwire: the bucket's notification configuration (one entry is lambdapack's);
            # HeadBucket is s3:ListBucket; deploy reads the bucket's default encryption.
            "Sid": "InputBucket",
            "Effect": "Allow",
            "Action": [
                "s3:ListBucket",
                "s3:GetBucketNotification",
                "s3:PutBucketNotification",
                "s3:GetEncryptionConfiguration",
            ],
            "Resource": bucket_arn,
        },
        {
            "Sid": "FailureQueue",
            "Effect": "Allow",
            "Action": [
                "sqs:CreateQueue",
                "sqs:GetQueueUrl",
                "sqs:GetQueueAttributes",
                "sqs:TagQueue",
                "sqs:ListQueueTags",
                "sqs:DeleteQueue",
            ],
            "Resource": f"arn:{part}:sqs:{region}:{account}:{failure_queue_name(name)}",
        },
    ]
    if target.code_bucket:
        code_arn = f"arn:{part}:s3:::{target.code_bucket}"
        statements += [
            {
                "Sid": "CodeObjects",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:GetObjectTagging",
                    "s3:PutObjectTagging",
                ],
                "Resource": f"{code_arn}/{uploads_prefix(name)}*",
            },
            {
                # HeadBucket (no prefix: allowed), and listing lambdapack's folder only
                "Sid": "CodeBucketList",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": code_arn,
                "Condition": {"StringLikeIfExists": {"s3:prefix": f"{uploads_prefix(name)}*"}},
            },
            {
                "Sid": "CodeBucketEncryption",
                "Effect": "Allow",
                "Action": "s3:GetEncryptionConfiguration",
                "Resource": code_arn,
            },
        ]
    return {"Version": "2012-10-17", "Statement": statements}
