"""Wire (and unwire) the S3 trigger: permission, notification entry, recursion guard.

``put_bucket_notification_configuration`` replaces a bucket's WHOLE
configuration, so wiring reads it, replaces or adds only lambdapack's own
entry (a stable Id, ``lambdapack-<function>``), keeps every other Lambda,
SQS, SNS and EventBridge entry exactly as it was, and writes it back. The
merge and the overlap check are pure functions here; the recursion check is the
handler's own rule (``contract.Outputs.would_trigger``), so what wire refuses and
what the handler skips cannot disagree.

What S3 invokes is the function's alias (``live`` by default, the one deploy
points at each version it publishes), so a deploy changes what runs only when it
moves the alias: the entry's ``LambdaFunctionArn`` is the alias's ARN
(``arn:aws:lambda:REGION:ACCOUNT:function:NAME:ALIAS``) and S3's permission is a
statement in the alias's own resource policy (``Qualifier=ALIAS``). With no alias
(``--alias ''``) they are the function's own ($LATEST), as earlier lambdapack
versions always wired it. Either way, lambdapack's statements for the bucket are looked for on the
function and on every alias: one that grants another target than the one wired
(an older unqualified wiring, another alias) is removed once the notification
invokes the new target, so S3 is never left without a permission to invoke it.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field

from lambdapack.handler.lambdapack_handler.contract import RESULT_SUFFIX, KeyFilter, Outputs

from ..errors import AWSError, InputError, WireError
from ..limits import DEFAULT_ALIAS
from . import names
from .client import AWSClient

DEFAULT_EVENTS = ("s3:ObjectCreated:*",)
ENTRY_KINDS = ("LambdaFunctionConfigurations", "QueueConfigurations", "TopicConfigurations")
TARGET_KEYS = {
    "LambdaFunctionConfigurations": "LambdaFunctionArn",
    "QueueConfigurations": "QueueArn",
    "TopicConfigurations": "TopicArn",
}


def entry_id(function: str) -> str:
    return f"lambdapack-{function}"


STATEMENT_PREFIX = "lambdapack-s3-"


def statement_id(bucket: str) -> str:
    """Unique per bucket: statement ids allow only letters, digits, '-' and '_', so the
    readable part folds '.' into '-' (``my.photos`` and ``my-photos`` would share it)
    and a short hash of the exact name tells them apart."""
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", bucket)
    return f"{STATEMENT_PREFIX}{readable}-{hashlib.sha256(bucket.encode()).hexdigest()[:8]}"


def our_statements(statements: list[dict], bucket: str) -> list[dict]:
    """lambdapack's statements that let this bucket invoke the function: found by their
    source ARN, so a statement of an older lambdapack (another id scheme) is found too."""
    source_arn = f"arn:aws:s3:::{bucket}"
    return [
        s
        for s in statements
        if s.get("Sid", "").startswith(STATEMENT_PREFIX)
        and s.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn") == source_arn
    ]


@dataclass
class WireSettings:
    function: str
    bucket: str
    prefix: str = ""
    suffix: str = ""
    events: tuple[str, ...] = DEFAULT_EVENTS
    allow_recursion: bool = False
    alias: str | None = DEFAULT_ALIAS  # what S3 invokes; None (or "") for the function itself, $LATEST


def our_entry(function_arn: str, settings: WireSettings) -> dict:
    entry: dict = {
        "Id": entry_id(settings.function),
        "LambdaFunctionArn": function_arn,
        "Events": list(settings.events),
    }
    # moto refuses rule names other than lowercase prefix/suffix (AWS accepts both).
    rules = [
        {"Name": name, "Value": value}
        for name, value in (("prefix", settings.prefix), ("suffix", settings.suffix))
        if value
    ]
    if rules:
        entry["Filter"] = {"Key": {"FilterRules": rules}}
    return entry


def wired_entry(config: dict, function: str) -> dict | None:
    """lambdapack's entry for ``function`` in a bucket's notification configuration."""
    ours = entry_id(function)
    return next((e for e in config.get("LambdaFunctionConfigurations", []) if e.get("Id") == ours), None)


def filter_of(entry: dict) -> tuple[str, str]:
    prefix = suffix = ""
    for rule in entry.get("Filter", {}).get("Key", {}).get("FilterRules", []):
        if rule["Name"].lower() == "prefix":
            prefix = rule["Value"]
        elif rule["Name"].lower() == "suffix":
            suffix = rule["Value"]
    return prefix, suffix


def events_overlap(a: str, b: str) -> bool:
    """``s3:ObjectCreated:*`` overlaps ``s3:ObjectCreated:Put``; Put does not overlap Copy."""
    if a == b:
        return True
    return any(wide.endswith("*") and narrow.startswith(wide[:-1]) for wide, narrow in ((a, b), (b, a)))


def filters_overlap(one: tuple[str, str], other: tuple[str, str]) -> bool:
    """Some key can match both (prefix, suffix) filters."""
    return KeyFilter(*one).overlaps(KeyFilter(*other))


def overlapping_entry(config: dict, entry: dict) -> str | None:
    """The Id (or target) of another entry AWS would reject ours next to, if any."""
    ours = filter_of(entry)
    for kind in ENTRY_KINDS:
        for other in config.get(kind, []):
            if other.get("Id") == entry["Id"]:
                continue
            same_events = any(events_overlap(a, b) for a in entry["Events"] for b in other.get("Events", []))
            if same_events and filters_overlap(ours, filter_of(other)):
                return other.get("Id") or other.get(TARGET_KEYS[kind], "?")
    return None


def merge(config: dict, entry: dict) -> tuple[dict, str]:
    """``config`` with our entry added or replaced; and 'added', 'replaced' or 'unchanged'."""
    clash = overlapping_entry(config, entry)
    if clash:
        prefix, suffix = filter_of(entry)
        raise WireError(
            f"the bucket already has a notification ({clash}) for the same events whose filter overlaps "
            f"ours (prefix {prefix!r}, suffix {suffix!r}); AWS rejects overlapping configurations",
            "Choose a --prefix or --suffix that does not overlap it, or remove that notification.",
        )
    merged = copy.deepcopy(config)
    entries = merged.setdefault("LambdaFunctionConfigurations", [])
    for index, existing in enumerate(entries):
        if existing.get("Id") == entry["Id"]:
            if _same_entry(existing, entry):
                return config, "unchanged"
            entries[index] = entry
            return merged, "replaced"
    entries.append(entry)
    return merged, "added"


def _same_entry(existing: dict, entry: dict) -> bool:
    return (
        existing.get("LambdaFunctionArn") == entry["LambdaFunctionArn"]
        and sorted(existing.get("Events", [])) == sorted(entry["Events"])
        and filter_of(existing) == filter_of(entry)
    )


def remove(config: dict, function: str) -> tuple[dict, bool]:
    merged = copy.deepcopy(config)
    entries = merged.get("LambdaFunctionConfigurations", [])
    kept = [e for e in entries if e.get("Id") != entry_id(function)]
    if len(kept) == len(entries):
        return config, False
    if kept:
        merged["LambdaFunctionConfigurations"] = kept
    else:
        merged.pop("LambdaFunctionConfigurations", None)
    return merged, True


def recursion_risk(environment: dict, bucket: str, prefix: str, suffix: str) -> str | None:
    """Why the function's results could trigger it again, or None.

    Results go to OUTPUT_BUCKET (default: the input bucket) under OUTPUT_PREFIX
    (default results/) as ``<prefix><input key>.json`` (``contract.result_key``).
    """
    outputs = Outputs.from_env(environment)
    if outputs.would_trigger(bucket, KeyFilter(prefix, suffix)):
        return (
            f"the function writes its results to s3://{bucket}/{outputs.prefix}…{RESULT_SUFFIX}, "
            f"which the trigger (prefix {prefix!r}, suffix {suffix!r}) would match: "
            "every result would invoke it again"
        )
    return None


@dataclass
class WireResult:
    actions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    target: str = ""  # the ARN S3 invokes: the alias's, or the function's own ($LATEST)

    @property
    def changed(self) -> bool:
        return bool(self.actions)


def label(function: str, qualifier: str | None) -> str:
    """How a target is named in messages: ``NAME:ALIAS`` or ``NAME ($LATEST)``."""
    return f"{function}:{qualifier}" if qualifier else f"{function} ($LATEST)"


def qualifier_of(statement: dict, read_from: str | None) -> str | None:
    """Which policy a statement belongs to, from its Resource (``...:function:NAME`` is the
    function's own, ``...:function:NAME:ALIAS`` the alias's); else the policy it was read from.
    (moto keeps one policy for the function and all its aliases: only Resource tells them apart.)"""
    resource = statement.get("Resource")
    parts = resource.split(":") if isinstance(resource, str) else []
    if len(parts) in (7, 8) and parts[0] == "arn" and parts[5] == "function":
        return parts[7] if len(parts) == 8 and parts[7] != "$LATEST" else None
    return read_from


@dataclass(frozen=True)
class Grant:
    """One of lambdapack's statements letting the bucket invoke the function or an alias."""

    sid: str
    qualifier: str | None  # None: the function's own policy ($LATEST)
    statement: dict = field(compare=False, hash=False)


def find_grants(aws: AWSClient, function: str, bucket: str, qualifiers: list[str | None]) -> list[Grant]:
    """lambdapack's statements for ``bucket`` in the policies of the function and of ``qualifiers``."""
    found: dict[tuple[str, str | None], Grant] = {}
    for read_from in qualifiers:
        for statement in our_statements(aws.policy_statements(function, read_from), bucket):
            grant = Grant(statement["Sid"], qualifier_of(statement, read_from), statement)
            found.setdefault((grant.sid, grant.qualifier), grant)
    return list(found.values())


def _every_policy(aws: AWSClient, function: str) -> list[str | None]:
    return [None, *aws.alias_names(function)]


def wire(settings: WireSettings, aws: AWSClient) -> WireResult:
    result = WireResult()
    alias = settings.alias or None
    if alias and (problem := names.alias_problem(alias)):
        raise InputError(problem, "Change --alias (or pass --alias '' to wire the function itself, $LATEST).")
    aws.require_bucket(settings.bucket)
    function = _require_function(aws, settings.function)
    if alias:
        found = aws.alias(settings.function, alias)
        if found is None:
            raise AWSError(
                f"function {settings.function} has no alias {alias}, so S3 cannot be wired to it",
                f"Run lambdapack deploy first (it points {alias} at the version it publishes), "
                "or wire the function itself ($LATEST) with --alias ''.",
            )
        arn = found["AliasArn"]
        # What S3 will run: the version the alias points at, with that version's settings.
        config = _require_function(aws, settings.function, alias)["Configuration"]
        if config.get("CodeSha256") != function["Configuration"].get("CodeSha256"):
            result.warnings.append(
                f"alias {alias} runs version {config.get('Version')}, whose code is not the latest "
                f"upload's ($LATEST): S3 will run that version until deploy moves {alias} "
                "(or wire another alias, or --alias '' for $LATEST)"
            )
    else:
        config = function["Configuration"]
        arn = config["FunctionArn"]
    result.target = arn
    environment = (config.get("Environment") or {}).get("Variables", {})
    risk = recursion_risk(environment, settings.bucket, settings.prefix, settings.suffix)
    if risk and not settings.allow_recursion:
        raise WireError(
            risk,
            "Trigger on an input prefix (e.g. --prefix incoming/), write results elsewhere (deploy "
            "--output-prefix or --output-bucket), or, if you really mean it, --allow-recursion.",
        )
    if risk:
        result.warnings.append(f"recursion allowed by --allow-recursion: {risk}")
    # Merged first: an entry of someone else's that overlaps ours refuses the wiring before
    # anything is written.
    merged, change = merge(aws.notification(settings.bucket), our_entry(arn, settings))
    grants = find_grants(aws, settings.function, settings.bucket, _every_policy(aws, settings.function))
    wanted = Grant(statement_id(settings.bucket), alias, {})
    _grant(aws, settings, alias, grants, result)
    if change != "unchanged":
        aws.put_notification(settings.bucket, merged)
        result.actions.append(
            f"notification {entry_id(settings.function)} {change} on s3://{settings.bucket}: invokes {arn}"
        )
    # Only now that S3 invokes the new target: the grants of an older wiring go.
    for grant in grants:
        if grant != wanted:
            aws.remove_permission(settings.function, grant.sid, grant.qualifier)
            result.actions.append(
                f"permission {grant.sid} removed from {label(settings.function, grant.qualifier)} "
                "(an older wiring)"
            )
    if not aws.set_recursion_terminate(settings.function):
        result.warnings.append(
            "this endpoint has no recursive-loop setting; the handler's own guard still applies"
        )
    return result


def _require_function(aws: AWSClient, name: str, qualifier: str | None = None) -> dict:
    function = aws.get_function(name, qualifier)
    if function is None:
        raise AWSError(
            f"function {label(name, qualifier)} does not exist", "Deploy it first: lambdapack deploy."
        )
    return function


def _grant(
    aws: AWSClient, settings: WireSettings, alias: str | None, grants: list[Grant], result: WireResult
) -> None:
    """S3's permission on the target (the alias's policy, or the function's), added once."""
    sid = statement_id(settings.bucket)
    source_arn = f"arn:aws:s3:::{settings.bucket}"
    if Grant(sid, alias, {}) in grants:
        return
    # A statement with our id but another grant (not found as ours) would make AddPermission fail.
    for statement in aws.policy_statements(settings.function, alias):
        if statement.get("Sid") == sid and qualifier_of(statement, alias) == alias:
            aws.remove_permission(settings.function, sid, alias)
    aws.add_permission(
        settings.function,
        alias,
        StatementId=sid,
        Action="lambda:InvokeFunction",
        Principal="s3.amazonaws.com",
        SourceArn=source_arn,
        SourceAccount=aws.account_id(),
    )
    result.actions.append(
        f"permission {sid}: s3.amazonaws.com may invoke {label(settings.function, alias)} for {source_arn}"
    )


def wiring(function: str, bucket: str, aws: AWSClient) -> list[str]:
    """What ``unwire`` would remove (reads only): lambdapack's entry on the bucket and its
    statements for the bucket on the function and its aliases."""
    found = []
    if not aws.bucket_exists(bucket):
        return found
    if wired_entry(aws.notification(bucket), function) is not None:
        found.append(f"notification {entry_id(function)} on s3://{bucket}")
    if aws.get_function(function) is not None:
        for grant in find_grants(aws, function, bucket, _every_policy(aws, function)):
            found.append(f"permission {grant.sid} on {label(function, grant.qualifier)}")
    return found


def unwire(function: str, bucket: str, aws: AWSClient) -> WireResult:
    """Remove lambdapack's entry from the bucket's notifications, and its statements for the
    bucket from the policies of the function and of every alias (whatever wire targeted)."""
    result = WireResult()
    aws.require_bucket(bucket)
    merged, removed = remove(aws.notification(bucket), function)
    if removed:
        aws.put_notification(bucket, merged)
        result.actions.append(f"notification {entry_id(function)} removed from s3://{bucket}")
    if aws.get_function(function) is not None:
        for grant in find_grants(aws, function, bucket, _every_policy(aws, function)):
            aws.remove_permission(function, grant.sid, grant.qualifier)
            result.actions.append(f"permission {grant.sid} removed from {label(function, grant.qualifier)}")
    return result
