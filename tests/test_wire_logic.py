import pytest

from lambdapack.aws.deploy import configuration_changes
from lambdapack.aws.wire import (
    Grant,
    WireSettings,
    events_overlap,
    filters_overlap,
    find_grants,
    merge,
    our_entry,
    qualifier_of,
    recursion_risk,
    remove,
    statement_id,
    unwire,
    wire,
)
from lambdapack.errors import AWSError, InputError, WireError

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f"


def test_event_overlap():
    assert events_overlap("s3:ObjectCreated:*", "s3:ObjectCreated:Put")
    assert events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:*")
    assert not events_overlap("s3:ObjectCreated:Put", "s3:ObjectCreated:Copy")
    assert not events_overlap("s3:ObjectCreated:*", "s3:ObjectRemoved:*")


@pytest.mark.parametrize(
    ("one", "other", "overlap"),
    [
        (("incoming/", ""), ("incoming/cats/", ""), True),
        (("incoming/", ""), ("other/", ""), False),
        (("", ".jpg"), ("", ".png"), False),
        (("", ".jpg"), ("", "cat.jpg"), True),
        (("", ""), ("x/", ".png"), True),
    ],
)
def test_filter_overlap(one, other, overlap):
    assert filters_overlap(one, other) is overlap


@pytest.mark.parametrize(
    ("env", "prefix", "suffix", "risky"),
    [
        ({}, "", "", True),  # results/ in the same bucket, whole bucket triggers
        ({}, "incoming/", "", False),
        ({}, "results/", "", True),
        ({}, "res", "", True),
        ({}, "", ".jpg", False),  # results end in .json
        ({}, "", ".json", True),
        ({"OUTPUT_BUCKET": "elsewhere"}, "", "", False),
        ({"OUTPUT_PREFIX": "incoming/results/"}, "incoming/", "", True),
    ],
)
def test_recursion_risk(env, prefix, suffix, risky):
    assert (recursion_risk(env, "photos", prefix, suffix) is not None) is risky


def test_merge_adds_replaces_and_keeps_others():
    others = {
        "QueueConfigurations": [
            {
                "Id": "q",
                "QueueArn": "arn:q",
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "logs/"}]}},
            }
        ]
    }
    entry = our_entry(ARN, WireSettings("f", "photos", prefix="incoming/"))
    merged, change = merge(others, entry)
    assert change == "added" and merged["QueueConfigurations"] == others["QueueConfigurations"]
    again, change = merge(merged, entry)
    assert change == "unchanged" and again == merged
    moved = our_entry(ARN, WireSettings("f", "photos", prefix="uploads/"))
    replaced, change = merge(merged, moved)
    assert change == "replaced" and replaced["LambdaFunctionConfigurations"] == [moved]
    removed, done = remove(replaced, "f")
    assert done and removed == others


def test_merge_refuses_an_overlapping_entry_and_names_it():
    other = {
        "LambdaFunctionConfigurations": [
            {"Id": "thumbnails", "LambdaFunctionArn": "arn:other", "Events": ["s3:ObjectCreated:Put"]}
        ]
    }
    with pytest.raises(WireError, match="thumbnails"):
        merge(other, our_entry(ARN, WireSettings("f", "photos", prefix="incoming/")))


def test_statement_id_is_valid_for_dotted_bucket_names_and_unique_per_bucket():
    import re

    sid = statement_id("my.photos-2026")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", sid) and sid.startswith("lambdapack-s3-my-photos-2026-")
    # '.' folds into '-' in the readable part; the hash keeps the two buckets apart.
    assert statement_id("my.photos") != statement_id("my-photos")
    assert statement_id("my.photos") == statement_id("my.photos")


def test_configuration_changes_only_lists_what_differs():
    current = {
        "MemorySize": 1024,
        "Timeout": 60,
        "Environment": {"Variables": {"A": "1"}},
        "EphemeralStorage": {"Size": 512},
        "Runtime": "python3.11",
    }
    desired = {
        "MemorySize": 1024,
        "Timeout": 30,
        "Environment": {"Variables": {"A": "1"}},
        "EphemeralStorage": {"Size": 512},
        "Runtime": "python3.11",
    }
    assert configuration_changes(current, desired) == {"Timeout": 30}
    assert configuration_changes({**current, "Environment": None}, {"Environment": {"Variables": {}}}) == {}


# --- the alias: what S3 invokes -------------------------------------------------------

LIVE = f"{ARN}:live"


def test_qualifier_of_reads_the_statements_resource():
    assert qualifier_of({"Resource": ARN}, "live") is None
    assert qualifier_of({"Resource": f"{ARN}:$LATEST"}, "live") is None
    assert qualifier_of({"Resource": LIVE}, None) == "live"
    # No usable Resource: the policy it was read from.
    assert qualifier_of({}, "live") == "live" and qualifier_of({"Resource": "*"}, None) is None


def test_an_unqualified_entry_of_an_older_wiring_is_replaced_by_the_aliases():
    old = our_entry(ARN, WireSettings("f", "photos", prefix="incoming/"))
    new = our_entry(LIVE, WireSettings("f", "photos", prefix="incoming/"))
    merged, change = merge({"LambdaFunctionConfigurations": [old]}, new)
    assert change == "replaced" and merged == {"LambdaFunctionConfigurations": [new]}


class FakeAWS:
    """AWS's model, which moto 5.2 does not keep: each alias has its OWN resource policy,
    AddPermission refuses a statement id already in that policy (ResourceConflictException),
    and S3 refuses a notification whose target it has no permission to invoke. Records
    every write, so the order of the calls can be checked."""

    def __init__(self, aliases=("live",), environment=None):
        self.aliases = {name: "3" for name in aliases}
        self.policies: dict[str | None, list[dict]] = {None: [], **{a: [] for a in aliases}}
        self.config: dict = {}
        self.environment = environment or {}
        self.code: dict[str | None, str] = {}  # CodeSha256 per qualifier (default: one code)
        self.calls: list[tuple] = []

    def require_bucket(self, bucket):
        pass

    def get_function(self, name, qualifier=None):
        arn = f"{ARN}:{self.aliases[qualifier]}" if qualifier else ARN
        return {
            "Configuration": {
                "FunctionArn": arn,
                "Environment": {"Variables": self.environment},
                "CodeSha256": self.code.get(qualifier, "one-code"),
                "Version": self.aliases[qualifier] if qualifier else "$LATEST",
            }
        }

    def alias(self, name, alias):
        if alias not in self.aliases:
            return None
        return {"AliasArn": f"{ARN}:{alias}", "FunctionVersion": self.aliases[alias]}

    def alias_names(self, name):
        return list(self.aliases)

    def policy_statements(self, name, qualifier=None):
        return list(self.policies[qualifier])

    def add_permission(self, name, qualifier=None, **params):
        policy = self.policies[qualifier]
        if any(s["Sid"] == params["StatementId"] for s in policy):
            raise AssertionError("ResourceConflictException: the statement id is already in the policy")
        policy.append(self.statement(params["StatementId"], params["SourceArn"], qualifier))
        self.calls.append(("add_permission", params["StatementId"], qualifier))

    def remove_permission(self, name, statement_id, qualifier=None):
        before = self.policies[qualifier]
        self.policies[qualifier] = [s for s in before if s["Sid"] != statement_id]
        assert len(self.policies[qualifier]) == len(before) - 1, "ResourceNotFoundException"
        self.calls.append(("remove_permission", statement_id, qualifier))

    def notification(self, bucket):
        return self.config

    def put_notification(self, bucket, config):
        for entry in config.get("LambdaFunctionConfigurations", []):
            qualifier = qualifier_of({"Resource": entry["LambdaFunctionArn"]}, None)
            assert any(s["Sid"].startswith("lambdapack-s3-") for s in self.policies[qualifier]), (
                f"S3: Unable to validate the destination {entry['LambdaFunctionArn']}"
            )
        self.config = config
        self.calls.append(
            (
                "put_notification",
                tuple(e["LambdaFunctionArn"] for e in config.get("LambdaFunctionConfigurations", [])),
            )
        )

    def account_id(self):
        return "123456789012"

    def set_recursion_terminate(self, name):
        return True

    @staticmethod
    def statement(sid, source_arn, qualifier):
        return {
            "Sid": sid,
            "Resource": f"{ARN}:{qualifier}" if qualifier else ARN,
            "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}},
        }


def test_wire_puts_the_permission_on_the_alias_and_the_aliases_arn_in_the_entry():
    aws = FakeAWS()
    result = wire(WireSettings("f", "photos", prefix="incoming/"), aws)
    sid = statement_id("photos")
    assert result.target == LIVE
    assert aws.config["LambdaFunctionConfigurations"][0]["LambdaFunctionArn"] == LIVE
    assert aws.policies == {None: [], "live": [FakeAWS.statement(sid, "arn:aws:s3:::photos", "live")]}
    assert aws.calls == [("add_permission", sid, "live"), ("put_notification", (LIVE,))]
    aws.calls.clear()
    again = wire(WireSettings("f", "photos", prefix="incoming/"), aws)
    assert not again.changed and aws.calls == [] and again.target == LIVE


def test_an_older_unqualified_wiring_is_replaced_without_a_moment_unpermitted():
    aws = FakeAWS()
    sid = statement_id("photos")
    # What lambdapack wired before the alias: both id schemes of its statements, unqualified.
    aws.policies[None] = [
        FakeAWS.statement(sid, "arn:aws:s3:::photos", None),
        FakeAWS.statement("lambdapack-s3-photos", "arn:aws:s3:::photos", None),
        FakeAWS.statement("someone-elses", "arn:aws:s3:::photos", None),
    ]
    aws.config = {"LambdaFunctionConfigurations": [our_entry(ARN, WireSettings("f", "photos", prefix="in/"))]}
    result = wire(WireSettings("f", "photos", prefix="in/"), aws)
    # The alias is granted, S3 switched to it, and only then the old grants go.
    assert aws.calls == [
        ("add_permission", sid, "live"),
        ("put_notification", (LIVE,)),
        ("remove_permission", sid, None),
        ("remove_permission", "lambdapack-s3-photos", None),
    ]
    assert [s["Sid"] for s in aws.policies[None]] == ["someone-elses"]
    assert any("replaced" in a and LIVE in a for a in result.actions)
    assert any("removed from f ($LATEST)" in a for a in result.actions)


def test_no_alias_wires_latest_and_moving_between_targets_moves_the_grant():
    aws = FakeAWS(aliases=("live", "blue"))
    sid = statement_id("photos")
    latest = wire(WireSettings("f", "photos", prefix="in/", alias=""), aws)
    assert latest.target == ARN and [s["Sid"] for s in aws.policies[None]] == [sid]
    blue = wire(WireSettings("f", "photos", prefix="in/", alias="blue"), aws)
    assert blue.target == f"{ARN}:blue"
    assert aws.policies == {
        None: [],
        "live": [],
        "blue": [FakeAWS.statement(sid, "arn:aws:s3:::photos", "blue")],
    }
    wire(WireSettings("f", "photos", prefix="in/"), aws)
    assert aws.policies == {
        None: [],
        "blue": [],
        "live": [FakeAWS.statement(sid, "arn:aws:s3:::photos", "live")],
    }
    done = unwire("f", "photos", aws)
    assert aws.policies == {None: [], "live": [], "blue": []} and aws.config == {}
    assert done.actions == [
        "notification lambdapack-f removed from s3://photos",
        f"permission {sid} removed from f:live",
    ]


def test_a_missing_alias_is_one_line_and_nothing_is_written():
    aws = FakeAWS(aliases=())
    with pytest.raises(AWSError) as caught:
        wire(WireSettings("f", "photos", prefix="in/"), aws)
    assert str(caught.value) == "function f has no alias live, so S3 cannot be wired to it"
    assert caught.value.exit_code == 9
    assert "lambdapack deploy" in caught.value.hint and "--alias ''" in caught.value.hint
    assert aws.calls == []


def test_a_bad_alias_name_is_refused_before_any_call():
    with pytest.raises(InputError, match="not a Lambda alias name"):
        wire(WireSettings("f", "photos", prefix="in/", alias="12"), object())


def test_the_recursion_check_reads_the_version_the_alias_runs():
    aws = FakeAWS()
    seen = []
    real = aws.get_function
    aws.get_function = lambda name, qualifier=None: seen.append(qualifier) or real(name, qualifier)
    with pytest.raises(WireError, match="invoke it again"):
        wire(WireSettings("f", "photos"), aws)
    assert seen == [None, "live"]


def test_find_grants_reads_each_statement_once_whichever_policy_shows_it():
    sid = statement_id("photos")
    theirs = FakeAWS.statement(sid, "arn:aws:s3:::other", "live")
    shared = [  # moto 5.2: every qualifier answers with the function's one policy
        FakeAWS.statement(sid, "arn:aws:s3:::photos", None),
        FakeAWS.statement(sid, "arn:aws:s3:::photos", "live"),
        theirs,
    ]

    class Shared:
        def policy_statements(self, name, qualifier=None):
            return shared

    assert find_grants(Shared(), "f", "photos", [None, "live"]) == [
        Grant(sid, None, {}),
        Grant(sid, "live", {}),
    ]


def test_a_refused_wiring_writes_nothing():
    """An entry of someone else's that overlaps ours is found before any permission is
    added: a refused wire leaves no grant behind."""
    aws = FakeAWS()
    aws.config = {
        "LambdaFunctionConfigurations": [
            {"Id": "thumbnails", "LambdaFunctionArn": "arn:other", "Events": ["s3:ObjectCreated:Put"]}
        ]
    }
    with pytest.raises(WireError, match="thumbnails"):
        wire(WireSettings("f", "photos", prefix="incoming/"), aws)
    assert aws.calls == [] and aws.policies == {None: [], "live": []}


def test_wiring_an_alias_that_does_not_run_the_latest_upload_says_so():
    """deploy --alias '' (or another alias) left live on older code: S3 would run that."""
    aws = FakeAWS()
    aws.code = {None: "new-code", "live": "old-code"}
    result = wire(WireSettings("f", "photos", prefix="incoming/"), aws)
    expected = "alias live runs version 3, whose code is not the latest"
    assert any(w.startswith(expected) for w in result.warnings)
    same = wire(WireSettings("f", "photos", prefix="incoming/"), FakeAWS())
    assert not any("not the latest" in w for w in same.warnings)
