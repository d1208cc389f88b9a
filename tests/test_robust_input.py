"""Hostile input never crashes a command (issue 22): outside strings are shown literally
(``render.visible``), every file lambdapack reads is checked before use, a zip is read
within the sizes its central directory declares, and packs into one folder take turns.
The real CLI in subprocesses; AWS is the real moto server (``aws`` fixture)."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
import time
import zipfile

import pytest
from PIL import Image

from lambdapack.handler.lambdapack_handler import config as handler_config
from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD
from lambdapack.packing import docker, schema
from lambdapack.packing.pipeline import PackOptions
from lambdapack.packing.runtimes import RUNTIMES
from lambdapack.packing.target import Target
from lambdapack.render import visible

from .conftest import ROOT, run_cli

RLO = "\u202e"
ESC = "\x1b[31m"
# Names that rich would read as markup, a right-to-left override, a terminal escape.
HOSTILE = ("a]b[/x]c.py", "[bold red]boom.png", "[/x]", f"gnp.{RLO}exe.py", f"red{ESC}.py")


def shown(name: str) -> str:
    """How the output shows ``name``: literally, controls as escapes."""
    return visible(name)


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr


def one_line_error(proc: subprocess.CompletedProcess, code: int, words: str) -> None:
    no_traceback(proc)
    assert proc.returncode == code, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(error) == 1 and words in error[0], proc.stderr


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    return buffer.getvalue()


# --- the output layer ----------------------------------------------------------------------


def test_visible_escapes_controls_and_bidi_and_keeps_markup_characters():
    assert visible("a]b[/x]c.py") == "a]b[/x]c.py"
    assert visible(f"x{RLO}y") == "x\\u202ey"
    assert visible(f"{ESC}x") == "\\x1b[31mx"
    assert visible("a\rb\x00") == "a\\x0db\\x00"
    assert visible("line\nnext\tcell") == "line\\x0anext\\x09cell"
    assert visible("line\nnext\tcell", newlines=True) == "line\nnext\tcell"


def test_report_shows_hostile_file_names_literally_and_names_unsafe_entries(tmp_path):
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name in HOSTILE:
            archive.writestr(name, "x = 1\n")
        archive.writestr("../evil.py", "x = 1\n")
        archive.writestr("/abs.py", "x = 1\n")
        link = zipfile.ZipInfo("link.py")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/passwd")
    proc = run_cli("report", str(path), "--python", "3.11")
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    for name in HOSTILE:
        assert shown(name) in proc.stdout, name
    assert RLO not in proc.stdout and "\x1b" not in proc.stdout
    flat = " ".join(proc.stdout.split())
    assert "../evil.py: its path leaves the folder" in flat
    assert "/abs.py: its path leaves the folder" in flat
    assert "link.py: a symbolic link" in flat
    # The HTML page escapes them too.
    page = tmp_path / "page.html"
    proc = run_cli("report", str(path), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    html = page.read_text()
    assert "[bold red]boom.png" in html and RLO not in html and "\\u202e" in html


def test_errors_name_hostile_paths_literally(tmp_path):
    path = tmp_path / f"[bold]x{RLO}.zip"
    path.write_text("not a zip")
    proc = run_cli("report", str(path))
    one_line_error(proc, 2, "is not a zip file")
    assert "[bold]x\\u202e.zip" in proc.stderr and RLO not in proc.stderr
    # click's own usage errors quote what was typed: shown through the same layer.
    proc = run_cli("report", str(tmp_path / f"missing{ESC}.zip"))
    assert proc.returncode == 2 and "missing\\x1b[31m.zip" in proc.stderr and "\x1b" not in proc.stderr


def test_compare_shows_hostile_names_literally(tmp_path):
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    with zipfile.ZipFile(first, "w") as a:
        for name in HOSTILE:
            a.writestr(name, "1")
    zipfile.ZipFile(second, "w").close()
    proc = run_cli("compare", str(first), str(second))
    no_traceback(proc)
    assert proc.returncode == 1  # different files (README: compare)
    for name in HOSTILE:
        assert f"only in a.zip: {shown(name)}" in proc.stdout


def test_upload_and_results_with_hostile_prefix_keys_and_labels(aws, tmp_path):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="tinyb")
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "one.png").write_bytes(png_bytes())
    proc = run_cli("upload", str(folder), "s3://tinyb/odd[/x]/", env=aws)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    assert "uploaded 1 images to s3://tinyb/odd[/x]/" in proc.stdout
    assert s3.get_object(Bucket="tinyb", Key="odd[/x]/one.png")["ContentLength"] > 0

    labels = ("[/x]", "[bold red]cat", f"dog{RLO}", f"{ESC}fox")
    for number, (key, label) in enumerate(zip(HOSTILE[1:], labels, strict=True)):
        body = {
            "input": {"bucket": "tinyb", "key": f"incoming/{key}"},
            "top_k": [{"label": label, "score": 0.5}],
        }
        s3.put_object(Bucket="tinyb", Key=f"results/{number}.json", Body=json.dumps(body).encode())
    proc = run_cli("results", "s3://tinyb/results/", "--csv", str(tmp_path / "r.csv"), env=aws)
    no_traceback(proc)
    assert proc.returncode == 0, proc.stderr
    for key, label in zip(HOSTILE[1:], labels, strict=True):
        assert shown(f"incoming/{key}") in proc.stdout
        assert shown(label) in proc.stdout
    assert RLO not in proc.stdout and "\x1b" not in proc.stdout
    assert (tmp_path / "r.csv").exists()


def test_logs_since_out_of_range_is_exit_2(aws):
    for value in ("1e308", "-1", "nan", "inf"):
        proc = run_cli("logs", "f", "--since", value, env=aws)
        no_traceback(proc)
        assert proc.returncode == 2, (value, proc.stderr)
        assert "is not a number of seconds" in proc.stderr


# --- files checked before use --------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"labels": 5}, "labels: 5 is not an array"),
        ({"labels": None}, "labels: null is not an array"),
        ({"input": "96x96"}, 'input: "96x96" is not an object'),
        ({"labels_file": 5}, "labels_file: 5 is not a string"),
        ({"input": {"channels": 2}}, "input.channels: 2 is not one of 1, 3"),
        ({"labels": ["a", 3]}, "labels[1]: 3 is not a string"),
    ],
)
def test_a_config_field_of_the_wrong_type_is_named(sample_model, tmp_path, config, field):
    (tmp_path / "m.json").write_text(json.dumps(config))
    proc = run_cli(
        "pack",
        str(sample_model),
        "--python",
        "3.11",
        "--config",
        str(tmp_path / "m.json"),
        "--out",
        str(tmp_path / "out"),
    )
    one_line_error(proc, 2, field)


def test_the_shipped_config_schema_allows_what_the_handler_allows():
    properties = schema.load(schema.MODEL_CONFIG)["properties"]
    inputs = properties["input"]["properties"]
    assert inputs["scale"]["enum"] == list(handler_config.SCALES)
    assert inputs["resize"]["enum"] == list(handler_config.RESIZE_MODES)
    assert inputs["channels"]["enum"] == list(handler_config.CHANNEL_MODES)
    assert properties["output"]["enum"] == list(handler_config.OUTPUT_KINDS)
    assert properties["backend"]["enum"] == list(handler_config.BACKENDS)
    sample = json.loads((ROOT / "build" / "sample" / "digits.lambdapack.json").read_text())
    assert schema.problem(sample, schema.load(schema.MODEL_CONFIG)) is None


GOOD_TARGET = {"python": "3.11", "architecture": "x86_64", "runtime": "python3.11"}


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"target": GOOD_TARGET, "deps": "x"}, 'deps: "x" is not an object'),
        ({"target": GOOD_TARGET, "strip": "x"}, 'strip: "x" is not an object'),
        (
            {"target": GOOD_TARGET, "strip_saved_by_package": []},
            "strip_saved_by_package: [] is not an object",
        ),
        ({"target": {**GOOD_TARGET, "runtime": "python9.9"}}, "target.runtime: 'python9.9'"),
        ({"target": {**GOOD_TARGET, "python": "9.9", "runtime": "python9.9"}}, "target.python: '9.9'"),
    ],
)
def test_a_crafted_build_record_is_one_line_exit_2(tmp_path, record, field):
    path = tmp_path / "function.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 1\n")
        archive.writestr(BUILD_RECORD, json.dumps(record))
    image = tmp_path / "one.png"
    image.write_bytes(png_bytes())
    for args in (
        ("report", str(path)),
        ("deploy", str(path), "--function", "f", "--bucket", "photos", "--dry-run"),
        ("invoke", str(path), "--image", str(image)),
    ):
        one_line_error(run_cli(*args, env={"AWS_REGION": "us-east-1"}), 2, field)


def test_report_on_a_zip_bomb_stays_small(tmp_path):
    """A 2 MB zip holding a 2 GiB member (ELF magic, then zeros): report reads sizes from the
    central directory and never inflates it; peak memory measured in a fresh parent process."""
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w") as archive:
        info = zipfile.ZipInfo("lib/bomb.so")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            member.write(b"\x7fELF")
            chunk = bytes(16 << 20)
            for _ in range(128):
                member.write(chunk)
    assert bomb.stat().st_size < 3_000_000
    measure = (
        "import resource, subprocess, sys;"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True);"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss);"
        "sys.stderr.write(p.stdout + p.stderr)"
    )
    for args in (("report", str(bomb), "--python", "3.11"), ("compare", str(bomb), str(bomb))):
        proc = subprocess.run(
            [sys.executable, "-c", measure, sys.executable, "-m", "lambdapack", *args],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        code, peak_kib = map(int, proc.stdout.split())
        assert "Traceback" not in proc.stderr, proc.stderr
        assert code == 0, proc.stderr
        assert peak_kib < 200 * 1024, (args, peak_kib)
        if args[0] == "report":
            assert "a zip bomb?" in proc.stderr


# --- the Docker builder takes PackOptions whole --------------------------------------------


def test_every_pack_option_is_forwarded_to_the_docker_builder_or_refused(tmp_path):
    groups = (
        docker.FORWARDED,
        docker.MOUNTED,
        docker.PREPARED_ON_HOST,
        docker.SAME_IN_CONTAINER,
        set(docker.REFUSED),
    )
    for option in dataclasses.fields(PackOptions):
        homes = [group for group in groups if option.name in group]
        assert len(homes) == 1, f"PackOptions.{option.name}: say how the Docker builder takes it (docker.py)"
    base = PackOptions(tmp_path / "m.tflite", tmp_path / "out", Target("3.11", "x86_64"), RUNTIMES["litert"])
    changed = {
        "target": Target("3.12", "arm64"),
        "runtime": RUNTIMES["tensorflow"],
        "requirements": ("six==1.16.0",),
        "bundle_boto3": True,
        "keep": ("tests",),
        "refresh": True,
        "smoke": False,
        "stage_deps": "s3",
        "deps_level": 3,
        "max_accuracy_drop": 5.0,
        "samples": tmp_path,
    }
    assert set(docker.FORWARDED) <= set(changed)
    for name, value in changed.items():
        args = docker.container_args(dataclasses.replace(base, **{name: value}))
        assert args != docker.container_args(base), name
    assert docker.refusal(base) is None
    assert "--handler-dir" in docker.container_args(base)
    assert docker.refusal(dataclasses.replace(base, image="python:3.11")).startswith("--image")
    assert docker.refusal(dataclasses.replace(base, find_links=(tmp_path,))).startswith("--find-links")


def test_the_docker_builder_refuses_image_in_one_line(tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    proc = run_cli(
        "pack", str(model), "--builder", "docker", "--image", "python:3.11", "--out", str(tmp_path)
    )
    one_line_error(proc, 2, "--image is for --builder native")


# --- concurrent packs ------------------------------------------------------------------------


@pytest.mark.functional
def test_two_packs_into_one_folder_take_turns(packed, cache_dir, tmp_path):
    """Two real ``lambdapack pack`` processes of a .tflite model into the same --out: the
    second waits for the first (and says which process holds the folder); both succeed."""
    out, _, _ = packed
    with zipfile.ZipFile(out / "function.zip") as archive:
        (tmp_path / "digits.tflite").write_bytes(archive.read("model/model.tflite"))
    dest = tmp_path / "dist"
    command = [
        sys.executable,
        "-m",
        "lambdapack",
        "pack",
        str(tmp_path / "digits.tflite"),
        "--out",
        str(dest),
    ]
    command += ["--labels", ",".join(str(digit) for digit in range(10)), "--python", "3.11", "--no-smoke"]
    env = dict(os.environ, LAMBDAPACK_CACHE=str(cache_dir), COLUMNS="200")
    first = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    time.sleep(1.0)  # the first holds the folder's lock by now (it takes it before any stage)
    second = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    results = [(process, *process.communicate(timeout=600)) for process in (first, second)]
    for process, _, stderr in results:
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
    assert f"process {first.pid} is packing into {dest}: waiting" in results[1][2]
    assert zipfile.ZipFile(dest / "function.zip").testzip() is None
    assert not list(dest.glob(".*.partial"))


def test_names_aws_would_refuse_are_refused_before_any_call(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "one.png").write_bytes(png_bytes())
    for args, words in (
        (("upload", str(folder), "s3://B[x]/p/"), "'B[x]' is not an S3 bucket name"),
        (("results", "s3://b[/x]/results/"), "'b[' is not an S3 bucket name"),
        (("wire", "--function", "[/x]", "--bucket", "photos"), "'[/x]' is not a Lambda function name"),
        (("unwire", "--function", "f", "--bucket", "b[/x]"), "'b[/x]' is not an S3 bucket name"),
        (("logs", "[bold]f"), "'[bold]f' is not a Lambda function name"),
    ):
        proc = run_cli(*args, env={"AWS_REGION": "us-east-1"})
        no_traceback(proc)
        assert proc.returncode == 2, (args, proc.stderr)
        assert words in proc.stderr, (args, proc.stderr)
