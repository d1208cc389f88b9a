"""deploy --snapstart and --keep-versions against the local AWS (moto's server with
lambdapack's seams: moto alone reports SnapStart off whatever was set). The zips here
hold a handler that is never run: these tests are about what deploy sets and keeps."""

from __future__ import annotations

import json
import zipfile

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy, versions_to_delete
from lambdapack.errors import DeployError
from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD

pytestmark = pytest.mark.functional


def handler_zip(path, runtime: str = "python3.13", revision: int = 0):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "index.py", f"REVISION = {revision}\n\ndef handler(event, context):\n    return {{}}\n"
        )
        archive.writestr(BUILD_RECORD, json.dumps({"target": {"runtime": runtime, "architecture": "x86_64"}}))
    return path


LOCAL_CONCURRENCY = 1


def settings(tmp_path, revision: int = 0, **extra) -> DeploySettings:
    zip_path = handler_zip(tmp_path / f"function-{revision}.zip", revision=revision)
    return DeploySettings(zip_path, "snappy", bucket="photos", prefix="incoming/", **extra)


def test_snapstart_is_set_on_published_versions_and_old_versions_are_pruned(local, tmp_path):
    lam = boto3.client("lambda")
    deploy(settings(tmp_path, 0, snapstart=True, keep_versions=2), AWSClient(), log=lambda _: None)
    live = lam.get_function_configuration(FunctionName="snappy", Qualifier="live")
    assert live["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    latest = lam.get_function_configuration(FunctionName="snappy")
    assert latest["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}

    # A version someone published by hand is never lambdapack's to delete.
    lam.update_function_configuration(FunctionName="snappy", Description="by hand")
    mine = lam.publish_version(FunctionName="snappy", Description="my release")["Version"]

    for revision in range(1, 5):  # new code each time: a version each; SnapStart left as it is
        deploy(settings(tmp_path, revision, keep_versions=2), AWSClient(), log=lambda _: None)
    versions = {
        v["Version"]: v.get("Description", "")
        for v in lam.list_versions_by_function(FunctionName="snappy")["Versions"]
    }
    ours = sorted((v for v, d in versions.items() if d.startswith("lambdapack ")), key=int)
    alias = lam.get_alias(FunctionName="snappy", Name="live")["FunctionVersion"]
    assert mine in versions and versions[mine] == "my release"
    assert len(ours) == 2 and alias == ours[-1]
    assert (
        lam.get_function_configuration(FunctionName="snappy", Qualifier="live")["SnapStart"][
            "OptimizationStatus"
        ]
        == "On"
    )


def test_snapstart_where_lambda_refuses_it_is_refused_before_any_write(local, tmp_path):
    old = DeploySettings(handler_zip(tmp_path / "old.zip", runtime="python3.11"), "old", snapstart=True)
    with pytest.raises(DeployError, match=r"python3\.12 or later"):
        deploy(old, AWSClient(), log=lambda _: None)
    no_alias = settings(tmp_path, snapstart=True, alias=None)
    with pytest.raises(DeployError, match="published versions"):
        deploy(no_alias, AWSClient(), log=lambda _: None)
    assert boto3.client("lambda").list_functions()["Functions"] == []


def test_only_lambdapacks_versions_beyond_the_newest_and_the_aliased_go():
    versions = [{"Version": "$LATEST"}] + [
        {"Version": str(n), "Description": "lambdapack abc" if n != 3 else "hand"} for n in range(1, 8)
    ]
    # Keep the newest 2 of lambdapack's (6, 7) and whatever an alias points at (2); never 3.
    assert versions_to_delete(versions, {"2"}, 2) == ["1", "4", "5"]
