"""Pack the sample model for python3.11 x86_64 with real pip and strip, then
run the zip, unzipped, in a clean interpreter that sees only the task folder
and the standard library — the way /var/task does."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile

import pytest

from lambdapack.packing.target import Target, host_can_run

from .conftest import SAMPLE, heldout_labels, run_cli

pytestmark = [
    pytest.mark.functional,
    pytest.mark.skipif(not host_can_run(Target("3.11", "x86_64")), reason="needs Python 3.11 on x86_64"),
]

CLASSIFY_ALL = """
import json, sys
sys.path.insert(0, sys.argv[1])
import index
answers = {}
for path in sys.argv[2:]:
    with open(path, "rb") as handle:
        answers[path] = index.classify(handle.read(), k=1)["top_k"][0]["label"]
print(json.dumps({"answers": answers, "outside": sorted(
    name for name, m in sys.modules.items()
    if getattr(m, "__file__", None) and "site-packages" in m.__file__)}))
"""


def test_pack_writes_the_zip_and_a_report_that_passes_every_check(packed):
    out, report, _ = packed
    assert (out / "function.zip").is_file()
    assert json.loads((out / "report.json").read_text())["zip"]["sha256"] == report["zip"]["sha256"]
    assert report["target"]["runtime"] == "python3.11"
    assert report["target"]["glibc"] == "2.26"
    assert all(row["ok"] for row in report["limits"])
    assert report["elf"]["ok"] and report["elf"]["files"] >= 30
    assert report["smoke"]["ran"] and report["smoke"]["images"] == 10
    assert report["smoke"]["max_difference"] <= 1e-3
    names = {row["name"] for row in report["packages"]}
    assert {"numpy", "pillow", "ai_edge_litert", "handler", "model"} <= names
    assert "boto3" not in names


def test_strip_kept_numpy_openblas_original_because_stripping_breaks_it(packed):
    _, report, _ = packed
    kept = {item["path"]: item["reason"] for item in report["strip"]["kept_original"]}
    openblas = [path for path in kept if "openblas" in path]
    assert openblas, kept
    assert "not page-aligned" in kept[openblas[0]]
    assert report["strip"]["saved_bytes"] > 5 * 1024 * 1024


def test_prune_removed_dead_weight_but_kept_what_imports_need(packed):
    out, report, _ = packed
    names = zipfile.ZipFile(out / "function.zip").namelist()
    assert not [n for n in names if "/tests/" in n]
    assert not [n for n in names if n.startswith("bin/")]
    assert not [n for n in names if n.endswith(".pyi") or n.endswith(".h")]
    assert any(n.startswith("numpy-") and n.endswith(".dist-info/METADATA") for n in names)
    assert "numpy/testing/__init__.py" in names
    assert report["prune"]["saved_bytes"] > 10 * 1024 * 1024


def test_every_module_ships_unchecked_hash_bytecode_for_the_target_python(packed):
    out, report, _ = packed
    with zipfile.ZipFile(out / "function.zip") as archive:
        names = set(archive.namelist())
        sources = [n for n in names if n.endswith(".py")]
        assert report["bytecode"]["compiled"]
        for source in sources:
            cached = importlib.util.cache_from_source(source)
            assert cached in names, source
        header = archive.read(importlib.util.cache_from_source("index.py"))[:8]
    assert header[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, not checked against source


def classify_heldout(zip_path, tmp_path) -> dict:
    """Unzip ``zip_path`` and classify every held-out digit in a clean interpreter that
    sees only the task folder and the standard library; return the outcome."""
    task = tmp_path / "task"
    zipfile.ZipFile(zip_path).extractall(task)
    truth = {str(SAMPLE / "heldout" / name): label for name, label in heldout_labels().items()}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", CLASSIFY_ALL, str(task), *truth],
        cwd=task,
        env={"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(task)},
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.splitlines()[-1])
    correct = sum(result["answers"][path] == label for path, label in truth.items())
    return {"images": len(truth), "accuracy": correct / len(truth), "outside": result["outside"]}


def test_the_zip_classifies_the_heldout_digits_in_a_clean_interpreter(packed, tmp_path):
    out, _, _ = packed
    outcome = classify_heldout(out / "function.zip", tmp_path)
    assert outcome["outside"] == []
    assert outcome["images"] == 360
    assert outcome["accuracy"] >= 0.95


def test_two_packs_give_byte_identical_zips(packed, cache_dir, sample_model, tmp_path):
    out, report, _ = packed
    run_cli(
        "pack",
        "--python",
        "3.11",
        str(sample_model),
        "--samples",
        str(SAMPLE / "samples"),
        "--out",
        str(tmp_path),
        cache=cache_dir,
        check=True,
    )
    again = json.loads((tmp_path / "report.json").read_text())
    assert again["zip"]["sha256"] == report["zip"]["sha256"]
    assert (tmp_path / "function.zip").read_bytes() == (out / "function.zip").read_bytes()


def test_report_command_reads_the_same_facts_back_from_the_zip(packed):
    out, report, _ = packed
    proc = run_cli("report", str(out / "function.zip"), "--json", check=True)
    again = json.loads(proc.stdout)
    assert again["zip"]["sha256"] == report["zip"]["sha256"]
    assert again["packages"] == report["packages"]
    assert again["elf"] == report["elf"]
    table = run_cli("report", str(out / "function.zip"), check=True).stdout
    assert "numpy" in table and "unzipped (function + layers)" in table and "CodeSha256" in table


def test_terminal_output_shows_each_stage(packed):
    _, _, proc = packed
    for stage in ("model", "install", "strip", "prune", "compile", "check", "zip", "smoke"):
        assert f"\n{stage} " in "\n" + proc.stderr, stage


@pytest.mark.container  # Docker is asked for an image of python3.12 (there is none)
def test_a_target_this_python_cannot_run_is_packed_and_says_what_was_not_checked(
    sample_model, cache_dir, tmp_path
):
    proc = run_cli(
        "pack",
        str(sample_model),
        "--out",
        str(tmp_path),
        "--python",
        "3.12",
        "--json",
        cache=cache_dir,
        check=True,
    )
    report = json.loads(proc.stdout)
    assert report["target"]["runtime"] == "python3.12" and report["target"]["glibc"] == "2.34"
    assert report["elf"]["ok"]
    assert not report["bytecode"]["compiled"] and "python3.12" in report["bytecode"]["note"]
    assert not report["smoke"]["ran"] and "python3.12" in report["smoke"]["note"]
    names = zipfile.ZipFile(tmp_path / "function.zip").namelist()
    assert not [n for n in names if n.endswith(".pyc")]
    assert any(n.startswith("numpy/") and "cpython-312" in n for n in names)
