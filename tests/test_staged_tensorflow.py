"""Full TensorFlow from a zip: ``--runtime tensorflow --stage-deps s3``.

The sample model is packed for real (pip, strip, prune, the archive), deployed
to the local endpoint (moto) with its archive, and run in the local Lambda
runtime (AWS's runtime interface client, a temp folder per sandbox) — the
archive is downloaded, verified and unpacked by the zip's own bootstrap.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import zipfile
from pathlib import Path

import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.wire import WireSettings, wire
from lambdapack.errors import DeployError, SizeLimitError
from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD
from lambdapack.local.lambda_runtime import runtime_boto3, runtime_interface_client
from lambdapack.local.sandbox import FunctionSpec, Sandbox

from .conftest import SAMPLE, heldout_labels, pack_sample, run_cli

pytestmark = [pytest.mark.functional, pytest.mark.tensorflow]


LOCAL_BUCKETS = ("photos", "code")


def test_the_plain_tensorflow_zip_is_refused_with_the_way_out(sample_model, cache_dir, tmp_path):
    proc = run_cli(
        "pack", str(sample_model), "--runtime", "tensorflow", "--out", str(tmp_path / "out"), cache=cache_dir
    )
    assert proc.returncode == SizeLimitError.exit_code
    message = " ".join(proc.stderr.split())
    assert "over Lambda's limit of 262,144,000 bytes" in message
    assert "Heaviest packages: tensorflow_cpu" in message
    assert "--stage-deps s3" in message
    assert not (tmp_path / "out" / "function.zip").exists()


def test_pack_makes_a_small_zip_and_a_verified_archive(packed_tf):
    out, report = packed_tf
    deps = report["deps"]
    assert report["zip"]["unzipped_bytes"] < 10 * 1024 * 1024
    assert Path(deps["path"]) == out / "deps.tar.zst"
    assert (out / "deps.tar.zst").stat().st_size == deps["bytes"]
    # TensorFlow is in the archive, never in the zip; the bootstrap is in the zip.
    assert deps["packages"]["tensorflow_cpu"] > 500 * 1024 * 1024
    with zipfile.ZipFile(out / "function.zip") as archive:
        names = archive.namelist()
        build = json.loads(archive.read(BUILD_RECORD))
        config = json.loads(archive.read("model/config.json"))
    assert not any(name.startswith("tensorflow/") for name in names)
    assert any(name.startswith("zstandard/") for name in names)
    assert "model/saved_model/saved_model.pb" in names and config["backend"] == "tensorflow"
    assert build["deps"]["sha256"] == deps["sha256"]
    # /tmp must hold the tree and the archive while it is unpacked, and some room.
    assert deps["ephemeral_storage_mb"] * 1024 * 1024 > deps["unpacked_bytes"] + deps["bytes"]
    # The smoke run unpacked the archive with the zip's own bootstrap and classified.
    assert report["smoke"]["ran"] and report["smoke"]["staged_s"] > 0
    assert report["smoke"]["max_difference"] < 1e-3


def test_deployed_staged_tensorflow_gives_the_same_top1_as_litert(local, packed_tf, packed, tmp_path):
    tf_out, tf_report = packed_tf
    lite_out, _, _ = packed
    for name, out, prefix in (("digits-tf", tf_out, "tf/"), ("digits-lite", lite_out, "lite/")):
        deploy(
            DeploySettings(out / "function.zip", name, code_bucket="code", bucket="photos", prefix=prefix),
            AWSClient(),
            log=lambda _: None,
        )
        wire(WireSettings(name, "photos", prefix=prefix), AWSClient())

    sha = tf_report["deps"]["sha256"]
    config = local.client("lambda").get_function(FunctionName="digits-tf")["Configuration"]
    variables = config["Environment"]["Variables"]
    assert variables["DEPS_BUCKET"] == "code" and variables["DEPS_SHA256"] == sha
    assert variables["DEPS_KEY"] == f"lambdapack/digits-tf/deps-{sha}.tar.zst"
    assert config["EphemeralStorage"]["Size"] == tf_report["deps"]["ephemeral_storage_mb"]
    s3 = local.client("s3")
    assert (
        s3.head_object(Bucket="code", Key=variables["DEPS_KEY"])["ContentLength"]
        == tf_report["deps"]["bytes"]
    )

    images = sorted((SAMPLE / "heldout").glob("*.png"))
    for image in images:
        for prefix in ("tf/", "lite/"):
            s3.put_object(Bucket="photos", Key=prefix + image.name, Body=image.read_bytes())
    assert local.wait_idle(600)
    assert local.dispatcher.stats.failures == []

    def top1(prefix: str, image: Path) -> str:
        body = s3.get_object(Bucket="photos", Key=f"results/{prefix}{image.name}.json")["Body"].read()
        return json.loads(body)["top_k"][0]["label"]

    differing = [image.name for image in images if top1("tf/", image) != top1("lite/", image)]
    assert len(images) == 360 and differing == []


def unpacked_function(packed_tf, tmp_path: Path) -> Path:
    task = tmp_path / "task"
    zipfile.ZipFile(packed_tf[0] / "function.zip").extractall(task)
    return task


def staged_sandbox(local, packed_tf, cache: Path, tmp_path: Path, key: str) -> Sandbox:
    """One execution environment of the staged function, its archive at s3://code/KEY."""
    _, report = packed_tf
    spec = FunctionSpec(
        "staged",
        unpacked_function(packed_tf, tmp_path),
        timeout=120,
        memory=2048,
        ephemeral_mb=report["deps"]["ephemeral_storage_mb"],
        environment={"DEPS_BUCKET": "code", "DEPS_KEY": key, "DEPS_SHA256": report["deps"]["sha256"]},
    )
    return Sandbox(
        spec,
        [runtime_boto3(cache), runtime_interface_client(cache)],
        tmp_path / "sandbox",
        local.client_environment(),
    )


def test_a_corrupted_archive_is_a_clear_init_error_and_is_not_used(local, packed_tf, cache_dir, tmp_path):
    out, report = packed_tf
    data = bytearray((out / "deps.tar.zst").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte, as a damaged upload would have
    local.client("s3").put_object(Bucket="code", Key="deps/corrupt.tar.zst", Body=bytes(data))
    box = staged_sandbox(local, packed_tf, cache_dir, tmp_path, "deps/corrupt.tar.zst")
    try:
        result = box.invoke(b'{"Records": []}')
        assert result.error is not None and result.cold and not box.alive()
        message = result.error["errorMessage"]
        assert "StagedDepsError" in json.dumps(result.error)
        assert "not DEPS_SHA256" in message and report["deps"]["sha256"] in message and "not used" in message
        root = box.tmp / "lambdapack-deps"
        assert (list(root.iterdir()) if root.exists() else []) == []
    finally:
        box.stop()


def test_a_killed_unpack_is_not_trusted_on_the_next_start(local, packed_tf, cache_dir, tmp_path):
    out, report = packed_tf
    sha = report["deps"]["sha256"]
    local.client("s3").upload_file(str(out / "deps.tar.zst"), "code", "deps/good.tar.zst")
    box = staged_sandbox(local, packed_tf, cache_dir, tmp_path, "deps/good.tar.zst")
    root = box.tmp / "lambdapack-deps"
    try:
        first: list = []
        worker = threading.Thread(target=lambda: first.append(box.invoke(b'{"Records": []}')))
        worker.start()
        deadline = time.monotonic() + 120
        partial = None
        while time.monotonic() < deadline and partial is None:
            unpacking = list(root.glob(".unpack-*")) if root.exists() else []
            if unpacking and sum(1 for _ in unpacking[0].rglob("*")) > 200:
                partial = unpacking[0]
            time.sleep(0.005)
        assert partial is not None, "never saw the unpack in progress"
        os.killpg(box.process.pid, signal.SIGKILL)  # what a timeout or the OOM killer does
        worker.join(60)
        assert first[0].error["errorType"] == "Runtime.ExitError"
        assert partial.exists() and not (root / sha).exists()  # a half tree was left behind

        second = box.invoke(b'{"Records": []}')
        assert second.ok, second.error
        assert second.cold and "fetched in" in second.logs and "reused" not in second.logs
        assert not partial.exists() and (root / sha / ".complete").exists()
        assert sorted(p.name for p in root.iterdir()) == [sha]

        # A complete tree is trusted: the next start after a crash reuses it.
        os.killpg(box.process.pid, signal.SIGKILL)
        box.process.wait(30)
        third = box.invoke(b'{"Records": []}')
        assert third.ok and third.cold and '"source": "reused"' in third.logs
    finally:
        box.stop()


def test_report_and_the_deploy_plan_name_the_staged_archive(packed_tf, tmp_path, monkeypatch):
    out, report = packed_tf
    sha = report["deps"]["sha256"]
    shown = run_cli("report", str(out / "function.zip"))
    assert shown.returncode == 0 and "staged dependencies" in shown.stdout
    assert sha in " ".join(shown.stdout.split())

    # No AWS call may happen: the endpoint is a closed port.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    alone = shutil.copy(out / "function.zip", tmp_path / "function.zip")  # its archive is not beside it
    args = (
        "deploy",
        str(alone),
        "--function",
        "fn",
        "--bucket",
        "photos",
        "--code-bucket",
        "code",
        "--dry-run",
    )
    refused = run_cli(*args)
    assert refused.returncode == DeployError.exit_code and "does not exist" in " ".join(
        refused.stderr.split()
    )
    planned = run_cli(*args, "--deps", str(out / "deps.tar.zst"))
    assert planned.returncode == 0, planned.stderr
    plan = " ".join(planned.stdout.split())
    assert f"lambdapack/fn/deps-{sha}.tar.zst" in plan
    assert f"ephemeral storage {report['deps']['ephemeral_storage_mb']:,} MB" in plan


@pytest.mark.container
def test_staged_tensorflow_runs_for_python313_in_its_own_interpreter(
    local, sample_model, cache_dir, tmp_path
):
    """The default target: pack, deploy, and classify in a python3.13 container whose memory
    is capped at the function's 1,024 MB while /tmp holds the unpacked TensorFlow (its
    ephemeral storage: on disk, not counted as memory, as on Lambda)."""

    from lambdapack.packing.interpreter import find_target_python
    from lambdapack.packing.target import Target

    if find_target_python(Target("3.13", "x86_64"))[0] is None:
        pytest.skip("no python3.13 interpreter here (scripts/docker_setup.sh builds one)")
    out = tmp_path / "out"
    proc = pack_sample(
        sample_model, out, cache_dir, "--python", "3.13", "--runtime", "tensorflow", "--stage-deps", "s3"
    )
    report = json.loads(proc.stdout)
    assert (
        report["smoke"]["ran"]
        and report["smoke"]["staged_s"] > 0
        and "python3.13" in report["smoke"]["interpreter"]
    )
    deploy(
        DeploySettings(
            out / "function.zip", "tf313", code_bucket="code", bucket="photos", prefix="in/", memory=1024
        ),
        AWSClient(),
        log=lambda _: None,
    )
    wire(WireSettings("tf313", "photos", prefix="in/"), AWSClient())
    truth = heldout_labels()
    chosen = sorted(truth)[:10]
    s3 = local.client("s3")
    for name in chosen:
        s3.put_object(Bucket="photos", Key=f"in/{name}", Body=(SAMPLE / "heldout" / name).read_bytes())
    assert local.wait_idle(900)
    assert local.dispatcher.stats.failures == []
    right = sum(
        json.loads(s3.get_object(Bucket="photos", Key=f"results/in/{name}.json")["Body"].read())["top_k"][0][
            "label"
        ]
        == truth[name]
        for name in chosen
    )
    assert right >= 9
