"""The user's path: lambdapack built as a wheel, installed with pip into a fresh
virtual environment (its own pip, as ``python -m venv`` makes it), and used from
a folder outside the checkout — pack a model, report the zip, run it with
``lambdapack invoke`` against a local S3 (moto on 127.0.0.1), score it on held-out images
in class folders with ``lambdapack evaluate`` and answer a folder with ``invoke ZIP FOLDER``;
and issue 21's labelled path: init and pack on class folders, then ``lambdapack local``,
deploy, wire, upload and ``results --labels-from folder``.

The model is the sample's converted ``.tflite`` with its config, so the venv
needs the ``[litert]`` extra, not TensorFlow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest

from .conftest import ROOT, SAMPLE

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with the wheel built from this checkout; returns its bin folder."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(work / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (work / "dist").glob("lambdapack-*.whl")
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {name for name in top if not name.endswith(".dist-info")} == {"lambdapack"}
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{wheel}[litert,local]"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    return venv / "bin"


def run(bin_dir: Path, *args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """A command of the fresh venv, from ``cwd``, with nothing of the checkout on the path."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    clean["PATH"] = f"{bin_dir}:{clean.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
    )


def test_the_installed_package_is_lambdapack_and_nothing_else(installed, tmp_path):
    found = run(
        installed,
        "python",
        "-c",
        "import importlib.util as u, lambdapack; "
        "print(lambdapack.__file__); "
        "print([n for n in ('pack', 'handler', 'lambdapack_handler') if u.find_spec(n)])",
        cwd=tmp_path,
    )
    assert found.returncode == 0, found.stderr
    location, stray = found.stdout.splitlines()
    assert location.startswith(str(installed.parent)) and stray == "[]"
    version = run(installed, "python", "-m", "lambdapack", "--version", cwd=tmp_path)
    assert version.returncode == 0 and "lambdapack" in version.stdout
    pip = run(installed, "python", "-m", "pip", "--version", cwd=tmp_path)
    major, minor = (int(part) for part in pip.stdout.split()[1].split(".")[:2])
    assert (major, minor) >= (24, 2), "lambdapack's pip floor was not installed: " + pip.stdout


def test_pack_report_and_invoke_from_outside_the_checkout(installed, packed, cache_dir, aws, tmp_path):
    out, _, _ = packed
    user = tmp_path / "project"
    user.mkdir()
    with zipfile.ZipFile(out / "function.zip") as archive:
        (user / "digits.tflite").write_bytes(archive.read("model/model.tflite"))
    shutil.copy2(SAMPLE / "digits.lambdapack.json", user / "digits.lambdapack.json")
    samples = user / "samples"
    shutil.copytree(SAMPLE / "samples", samples)
    env = {"LAMBDAPACK_CACHE": str(cache_dir), "COLUMNS": "160"}

    packed_here = run(
        installed,
        "lambdapack",
        "pack",
        "digits.tflite",
        "--samples",
        "samples",
        "--python",
        "3.11",
        cwd=user,
        env=env,
    )
    assert packed_here.returncode == 0, packed_here.stderr[-3000:]
    zip_path = user / "dist" / "function.zip"
    assert zip_path.is_file() and (user / "dist" / "report.json").is_file()
    assert "smoke" in packed_here.stderr and "images classified" in packed_here.stderr

    report = run(installed, "lambdapack", "report", "dist/function.zip", "--json", cwd=user, env=env)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["schema"] == 1
    assert data["target"]["runtime"] == "python3.11" and data["elf"]["ok"]
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
    assert {"index.py", "lambdapack_handler/contract.py", "model/model.tflite"} <= names

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="photos")
    image = sorted(samples.iterdir())[0]
    s3.put_object(Bucket="photos", Key="incoming/one.png", Body=image.read_bytes())
    invoked = run(
        installed,
        "lambdapack",
        "invoke",
        "dist/function.zip",
        "--bucket",
        "photos",
        "--key",
        "incoming/one.png",
        cwd=user,
        env={**env, **aws},
    )
    assert invoked.returncode == 0, invoked.stderr[-3000:]
    summary = json.loads(invoked.stdout)
    assert summary["processed"] == 1 and summary["ok"] == 1
    result = json.loads(s3.get_object(Bucket="photos", Key="results/incoming/one.png.json")["Body"].read())
    assert result["top_k"][0]["label"] == summary["results"][0]["top1"]
    assert "REPORT RequestId" in invoked.stderr


def test_evaluate_and_invoke_a_folder_from_outside_the_checkout(
    installed, packed, heldout_classes, cache_dir, tmp_path
):
    """The user's path from the installed wheel: a packed zip, held-out images in one folder
    per class — evaluate scores them (JSON, the page) and invoke answers a folder line by line."""
    out, _, _ = packed
    user = tmp_path / "project"
    user.mkdir()
    shutil.copy2(out / "function.zip", user / "function.zip")
    shutil.copytree(heldout_classes, user / "test")
    env = {"LAMBDAPACK_CACHE": str(cache_dir), "COLUMNS": "160"}
    metrics = json.loads((SAMPLE / "metrics.json").read_text())
    right = round(metrics["test_accuracy"] * metrics["test"])

    evaluated = run(
        installed,
        "lambdapack",
        "evaluate",
        "function.zip",
        "test",
        "--json",
        "--html",
        "eval.html",
        cwd=user,
        env=env,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(evaluated.stdout)
    assert result["images"] == metrics["test"] and result["correct"] == right
    assert sum(map(sum, result["confusion"]["matrix"])) == result["images"]
    assert (user / "eval.html").read_text().startswith("<!doctype html>")

    invoked = run(installed, "lambdapack", "invoke", "function.zip", "test/3", cwd=user, env=env)
    assert invoked.returncode == 0, invoked.stderr[-3000:]
    answers = [line.split(" → ") for line in invoked.stdout.splitlines()]
    assert len(answers) == len(list((user / "test" / "3").glob("*.png")))
    assert sum(1 for _, answer in answers if answer.split()[0] == "3") >= len(answers) - 2

    missing = run(installed, "lambdapack", "evaluate", "function.zip", "nowhere", cwd=user, env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_the_labelled_path_from_init_to_results_from_outside_the_checkout(
    installed, packed, heldout_classes, cache_dir, tmp_path
):
    """Issue 21's path from the installed wheel: init measures the preprocessing on labelled
    samples in class folders and takes its labels from them, pack checks the zip's top-1
    against the original's, and against the local AWS (``lambdapack local``) the held-out
    digits uploaded in class folders are scored by results --labels-from folder."""
    out, _, _ = packed
    user = tmp_path / "project"
    (user / "samples").mkdir(parents=True)
    with zipfile.ZipFile(out / "function.zip") as archive:
        (user / "digits.tflite").write_bytes(archive.read("model/model.tflite"))  # no config beside it
    for folder in sorted(heldout_classes.iterdir()):
        (user / "samples" / folder.name).mkdir()
        for path in sorted(folder.glob("*.png"))[:3]:
            shutil.copy2(path, user / "samples" / folder.name / path.name)
    shutil.copytree(heldout_classes, user / "test")
    env = {"LAMBDAPACK_CACHE": str(cache_dir), "COLUMNS": "160"}
    metrics = json.loads((SAMPLE / "metrics.json").read_text())
    right = round(metrics["test_accuracy"] * metrics["test"])

    # The sample digits score alike under 0..1 and 0..255 (a near-tie init says, not guesses).
    init = run(
        installed,
        "lambdapack",
        "init",
        "digits.tflite",
        "--samples",
        "samples",
        "--scale",
        "0..1",
        cwd=user,
        env=env,
    )
    assert init.returncode == 0, init.stderr[-3000:]
    config = json.loads((user / "digits.lambdapack.json").read_text())
    assert config["labels"] == [str(n) for n in range(10)] and config["input"]["scale"] == "0..1"
    assert "preprocessing measured on 30 labelled images" in init.stdout + init.stderr

    pack = run(
        installed,
        "lambdapack",
        "pack",
        "digits.tflite",
        "--samples",
        "samples",
        "--python",
        "3.11",
        cwd=user,
        env=env,
    )
    assert pack.returncode == 0, pack.stderr[-3000:]
    said = re.search(r"labelled top-1: zip (\d+)/30 \([\d.]+%\), original model (\d+)/30", pack.stderr)
    assert said and said[1] == said[2], pack.stderr[-3000:]  # the zip gets as many right as the original

    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    local = subprocess.Popen(
        [str(installed / "lambdapack"), "local", "--port", "0", "--bucket", "photos", "--concurrency", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**clean, **env, "PYTHONUNBUFFERED": "1"},
        cwd=user,
    )
    try:
        exports: dict[str, str] = {}
        for line in local.stdout:
            if line.strip().startswith("export "):
                key, _, value = line.strip().removeprefix("export ").partition("=")
                exports[key] = value
            elif exports:
                break
        assert exports.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1:"), (
            "lambdapack local did not start"
        )
        aws = {**env, **exports}
        for args in (
            (
                "deploy",
                "dist/function.zip",
                "--function",
                "classify",
                "--bucket",
                "photos",
                "--prefix",
                "incoming/",
            ),
            ("wire", "--function", "classify", "--bucket", "photos", "--prefix", "incoming/"),
            ("upload", "test", "s3://photos/incoming/"),
        ):
            step = run(installed, "lambdapack", *args, cwd=user, env=aws)
            assert step.returncode == 0, f"{args[0]}: {step.stderr[-3000:]}"
        results = run(
            installed,
            "lambdapack",
            "results",
            "s3://photos/results/",
            "--wait",
            "300",
            "--inputs",
            "s3://photos/incoming/",
            "--labels-from",
            "folder",
            cwd=user,
            env=aws,
        )
        assert results.returncode == 0, results.stderr[-3000:]
        assert f"top-1 accuracy: {right}/{metrics['test']} = {right / metrics['test']:.1%}" in results.stdout
        assert "confusion matrix" in results.stdout and "Traceback" not in results.stderr
    finally:
        local.terminate()
        local.communicate(timeout=60)
    assert local.returncode == 0
