"""SnapStart in the local AWS, end to end: the sample model packed for python3.13 (run in a
container of that Python here), deployed with ``--snapstart``, wired, and fed objects. The
version is initialised once (its INIT_REPORT in a stream of its own), and each new
execution environment is a fork of that parked, initialised process, where the shipped
handler's after-restore hook runs (new S3 client, fresh random state): its REPORT carries
``Restore Duration`` and no ``Init Duration``."""

from __future__ import annotations

import collections
import json
import re
import zipfile

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.logs import platform_line, start_summary
from lambdapack.aws.wire import WireSettings, wire
from lambdapack.local.sandbox import FunctionSpec, Sandbox
from lambdapack.local.snapstart import Snapshot

from .conftest import SAMPLE, pack_sample, run_cli

pytestmark = pytest.mark.functional

# The test's own entry point, around the packed one (renamed packed_index.py): after each
# invocation it prints one draw of the process's random state, which the shipped after-restore
# hook reseeds. Without that hook, two forks of one process draw the same numbers.
PROBE = """
import json, os, random
from packed_index import *  # noqa: the packed handler: init, hooks and all
import packed_index

def handler(event, context):
    out = packed_index.handler(event, context)
    print(json.dumps({"probe": {"draw": random.random(), "pid": os.getpid()}}), flush=True)
    return out
"""


@pytest.fixture(scope="module")
def probed_zip(sample_model, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dist313")
    pack_sample(sample_model, out, cache_dir, "--python", "3.13")
    probed = out / "probed.zip"
    with zipfile.ZipFile(out / "function.zip") as packed, zipfile.ZipFile(probed, "w") as archive:
        for item in packed.infolist():
            if item.filename.startswith("__pycache__/index."):
                continue  # the packed entry point's bytecode: it is packed_index.py now
            name = "packed_index.py" if item.filename == "index.py" else item
            archive.writestr(name, packed.read(item))
        archive.writestr("index.py", PROBE)
    return probed


def streams(function: str) -> dict[str, list[str]]:
    logs = boto3.client("logs")
    found = collections.defaultdict(list)
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{function}"):
        for event in page["events"]:
            found[event["logStreamName"]].append(event["message"])
    return found


@pytest.mark.container  # python3.13 runs in its container here
def test_snapstart_versions_are_initialised_once_and_restored_into_each_environment(local, probed_zip):
    lam, s3 = boto3.client("lambda"), boto3.client("s3")
    settings = DeploySettings(probed_zip, "snappy", bucket="photos", prefix="incoming/", snapstart=True)
    deploy(settings, AWSClient(), log=lambda _: None)
    wire(WireSettings("snappy", "photos", prefix="incoming/"), AWSClient())
    live = lam.get_function_configuration(FunctionName="snappy", Qualifier="live")
    assert live["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}

    images = sorted((SAMPLE / "samples").iterdir())[:4]
    for image in images:  # at once: the second arrives while the first waits for the snapshot
        s3.put_object(Bucket="photos", Key=f"incoming/{image.name}", Body=image.read_bytes())
    assert local.wait_idle(240)
    stats = local.dispatcher.stats
    assert stats.errors == 0 and stats.invocations == len(images)

    # Every image classified, and its result written by an environment's new S3 client.
    listed = s3.list_objects_v2(Bucket="photos", Prefix="results/").get("Contents", [])
    assert len(listed) == len(images)

    found = streams("snappy")
    version = live["Version"]
    init_streams = [name for name, lines in found.items() if any(m.startswith("INIT_REPORT") for m in lines)]
    assert len(init_streams) == 1, found  # one init for the version, in a stream of its own
    init = found[init_streams[0]]
    assert init[0].startswith("INIT_START Runtime Version: python:3.13")
    assert re.fullmatch(r"INIT_REPORT Init Duration: \d+\.\d\d ms", init[-1])

    environments = {name: lines for name, lines in found.items() if name not in init_streams}
    assert len(environments) == 2, list(found)  # two environments, both restored
    draws = []
    for name, lines in environments.items():
        assert f"[{version}]" in name
        assert lines[0].startswith("RESTORE_START Runtime Version: python:3.13")
        assert re.fullmatch(r"RESTORE_REPORT Restore Duration: \d+\.\d\d ms", lines[1])
        reports = [line for line in lines if line.startswith("REPORT ")]
        first, *later = reports
        assert re.search(r"\tRestore Duration: \d+\.\d\d ms\tBilled Restore Duration: \d+ ms$", first)
        assert all("Init Duration" not in report for report in reports)
        assert all("Restore Duration" not in report for report in later)  # warm: no restore
        assert any('"outcome": "ok"' in line for line in lines)  # read and wrote S3 itself
        probes = [json.loads(line)["probe"] for line in lines if line.startswith('{"probe"')]
        draws.append(probes[0]["draw"])  # the first draw after its restore
    assert draws[0] != draws[1]

    # lambdapack logs reads both REPORT layouts and the INIT_REPORT.
    proc = run_cli("logs", "snappy", "--summary", check=True)
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"{len(images)} invocations: {len(images) - 2} warm, 0 cold starts, 2 restored")
    assert "; 1 SnapStart inits (INIT_REPORT) (median" in summary

    # New code, a new version: its own snapshot; the old version's parked process ends.
    newer = probed_zip.with_name("newer.zip")
    with zipfile.ZipFile(probed_zip) as old, zipfile.ZipFile(newer, "w") as archive:
        for item in old.infolist():
            extra = b"\n# revised\n" if item.filename == "index.py" else b""
            archive.writestr(item, old.read(item) + extra)
    deploy(
        DeploySettings(newer, "snappy", bucket="photos", prefix="incoming/"), AWSClient(), log=lambda _: None
    )
    s3.put_object(Bucket="photos", Key="incoming/again.png", Body=images[0].read_bytes())
    assert local.wait_idle(240) and local.dispatcher.stats.errors == 0
    snapshots = {id(box.snapshot): box.snapshot for box in local.dispatcher.sandboxes() if box.snapshot}
    assert len(snapshots) == 2
    assert [snapshot.spec.version for snapshot in snapshots.values() if snapshot.alive()] == [
        lam.get_alias(FunctionName="snappy", Name="live")["FunctionVersion"]
    ]


def test_both_report_layouts_and_the_init_report_are_read():
    """Lines as Lambda writes them (SnapStart's from AWS's snapstart-monitoring page)."""
    lines = [
        "INIT_REPORT Init Duration: 1203.31 ms",
        "RESTORE_REPORT Restore Duration: 288.10 ms",
        "REPORT RequestId: a\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 1024 MB\t"
        "Max Memory Used: 97 MB\tRestore Duration: 288.10 ms\tBilled Restore Duration: 147 ms",
        "REPORT RequestId: b\tDuration: 3.00 ms\tBilled Duration: 3 ms\tMemory Size: 1024 MB\t"
        "Max Memory Used: 97 MB",
        "REPORT RequestId: c\tDuration: 20.00 ms\tBilled Duration: 20 ms\tMemory Size: 1024 MB\t"
        "Max Memory Used: 90 MB\tInit Duration: 900.25 ms",
        '{"outcome": "ok", "Duration": "not a platform line"}',
    ]
    restored = platform_line(lines[2])
    assert restored == {
        "kind": "REPORT",
        "duration_ms": 12.5,
        "billed_ms": 13,
        "memory_mb": 1024,
        "max_memory_mb": 97,
        "restore_ms": 288.1,
        "billed_restore_ms": 147,
    }
    assert platform_line(lines[-1]) is None
    assert start_summary(lines) == {
        "invocations": 3,
        "warm": 1,
        "init_ms": [900.25],
        "restore_ms": [288.1],
        "snapshot_init_ms": [1203.31],
    }


UNSEEDED = """
import os, random
import snapshot_restore_py
random.seed(7)  # in init: what every restored environment starts from
HOOKS = []
snapshot_restore_py.register_before_snapshot(lambda: HOOKS.append(("before", os.getpid())))
snapshot_restore_py.register_after_restore(lambda: HOOKS.append(("after", os.getpid())))

def handler(event, context):
    logs = [name for name in os.environ if name.startswith("AWS_LAMBDA_LOG_")]
    return {"draw": random.random(), "pid": os.getpid(), "hooks": HOOKS, "log_variables": logs}
"""


def test_hooks_run_where_lambda_runs_them_and_random_state_is_copied_without_a_reseed(tmp_path, cache_dir):
    """What the handler's reseed is for: two environments restored from one snapshot hold
    the same random state (a copy of the init's); the before-snapshot hooks ran once, in the
    parked process, and each environment ran the after-restore hooks in its own process.
    In this machine's Python (python3.11: Lambda has no SnapStart for it, the mechanism is
    the same) to keep it fast."""
    from lambdapack.local.lambda_runtime import LocalRuntimes

    task = tmp_path / "task"
    task.mkdir()
    (task / "index.py").write_text(UNSEEDED)
    spec = FunctionSpec("unseeded", task, runtime="python3.11", version="1", snapstart=True, timeout=10)
    paths, python = LocalRuntimes(cache_dir).for_runtime(spec.runtime, spec.architecture)
    snapshot = Snapshot(spec, paths, tmp_path / "parked", tmp_path, python=python)
    boxes = [Sandbox(spec, paths, tmp_path / f"env{n}", python=python, snapshot=snapshot) for n in (0, 1)]
    try:
        first, second = (json.loads(box.invoke(b"{}").payload) for box in boxes)
        warm = boxes[0].invoke(b"{}")
        parked = snapshot.parked.process.pid
    finally:
        for box in boxes:
            box.stop()
        snapshot.stop()
    assert first["draw"] == second["draw"] and first["pid"] != second["pid"]
    for result in (first, second):
        before, after = result["hooks"]
        assert before[0] == "before" and before[1] != result["pid"]  # in the parked process
        assert after == ["after", result["pid"]]  # in the environment itself
    assert all(result["hooks"][0][1] == parked for result in (first, second))
    # "not available in Lambda SnapStart functions" (AWS's snapstart-monitoring page)
    assert first["log_variables"] == second["log_variables"] == []
    assert warm.ok and not warm.restored and warm.init_ms is None


FAILING_HOOK = """
import os, snapshot_restore_py

def fail():
    raise RuntimeError("hook failed in " + os.environ["WHERE"])

if os.environ["WHERE"] == "before":
    snapshot_restore_py.register_before_snapshot(fail)
else:
    snapshot_restore_py.register_after_restore(fail)

def handler(event, context):
    return {"ok": True}
"""


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_failing_hook_fails_the_invocation_with_its_error(tmp_path, cache_dir, where):
    """A before-snapshot hook that raises: no snapshot, every invocation says why. An
    after-restore hook that raises: that environment's invocation fails, as an init does."""
    from lambdapack.local.lambda_runtime import LocalRuntimes

    task = tmp_path / "task"
    task.mkdir()
    (task / "index.py").write_text(FAILING_HOOK)
    spec = FunctionSpec(
        "hooked",
        task,
        runtime="python3.11",
        version="1",
        snapstart=True,
        timeout=10,
        environment={"WHERE": where},
    )
    paths, python = LocalRuntimes(cache_dir).for_runtime(spec.runtime, spec.architecture)
    snapshot = Snapshot(spec, paths, tmp_path / "parked", tmp_path, python=python)
    box = Sandbox(spec, paths, tmp_path / "env", python=python, snapshot=snapshot)
    try:
        results = [box.invoke(b"{}") for _ in range(2)]
    finally:
        box.stop()
        snapshot.stop()
    for result in results:
        assert not result.ok and result.error["errorType"] == "RuntimeError"
        assert f"hook failed in {where}" in result.error["errorMessage"]
    if where == "before":
        assert (
            results[0].error["errorMessage"].startswith("SnapStart: the version's snapshot could not be made")
        )
        assert snapshot.init_ms is None
    else:
        assert snapshot.init_ms is not None and all(result.restored for result in results)
