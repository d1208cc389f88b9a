"""``lambdapack report ZIP --python X --arch Y`` refuses a zip the target cannot import:
the sample packed for python3.11 x86_64 (the session fixture ``packed``) is checked
as it is, against python3.12 and python3.11."""

from __future__ import annotations

import json

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.functional


def test_a_zip_for_python311_is_refused_for_python312_with_every_module_named(packed):
    out, _, _ = packed
    zip_path = str(out / "function.zip")
    proc = run_cli("report", zip_path, "--python", "3.12", "--arch", "x86_64")
    assert proc.returncode == 6, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert "cannot load on python3.12 x86_64" in message
    assert "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so" in message
    assert "PIL/_imaging.cpython-311-x86_64-linux-gnu.so" in message
    assert "--python 3.12 --arch x86_64" in message

    as_json = run_cli("report", zip_path, "--python", "3.12", "--arch", "x86_64", "--json")
    assert as_json.returncode == 6
    elf = json.loads(as_json.stdout)["elf"]
    assert elf["ok"] is False
    cp311 = {p["path"] for p in elf["problems"] if ".cpython-311-" in p["path"]}
    assert "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so" in cp311
    assert len(elf["problems"]) >= len(cp311) > 3
    # The modules whose names say nothing are caught by their wheel's tag.
    assert any(p["path"].startswith("ai_edge_litert-") for p in elf["problems"])
    # Every problem is in the message (up to 20 are, then "… and N more").
    assert len(elf["problems"]) <= 20
    assert all(problem["path"] in message for problem in elf["problems"])


def test_the_same_zip_passes_for_the_target_it_was_packed_for(packed):
    out, _, _ = packed
    zip_path = str(out / "function.zip")
    proc = run_cli("report", zip_path, "--python", "3.11", "--arch", "x86_64", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["elf"]["ok"] is True
    assert run_cli("report", zip_path).returncode == 0  # the target it recorded


def test_a_zip_for_x86_64_is_refused_for_arm64(packed):
    out, _, _ = packed
    proc = run_cli("report", str(out / "function.zip"), "--python", "3.11", "--arch", "arm64")
    assert proc.returncode == 6
    message = " ".join(proc.stderr.split())
    assert "built for EM_X86_64, but the target is EM_AARCH64" in message
    assert "… and" in message and "more" in message
