"""Today's Lambda targets, each run by its own interpreter: the sample packed for
python3.13 and python3.14 (x86_64) and python3.13 arm64 on a machine whose Python is
3.11. The .pyc are compiled by the target's Python and the smoke run classifies the
samples in it (a container of that Python; arm64 under QEMU) with the answers the
build check computed. Needs the images scripts/docker_setup.sh builds (make test runs
it); without them the test says what is missing."""

from __future__ import annotations

import json
import zipfile

import pytest

from lambdapack.packing.interpreter import find_target_python
from lambdapack.packing.target import Target, host_python

from .conftest import pack_sample

pytestmark = pytest.mark.functional

TARGETS = [("3.13", "x86_64"), ("3.14", "x86_64"), ("3.13", "arm64")]


@pytest.mark.parametrize(("python", "arch"), TARGETS, ids=[f"python{p}-{a}" for p, a in TARGETS])
def test_the_target_compiles_and_smoke_runs_in_its_own_interpreter(
    python, arch, sample_model, cache_dir, tmp_path
):
    target = Target(python, arch)
    interpreter, why = find_target_python(target)
    if interpreter is None:
        pytest.skip(f"no {target.runtime} {arch} interpreter here: {why}")
    assert host_python() != python or interpreter.image is None
    proc = pack_sample(sample_model, tmp_path, cache_dir, "--python", python, "--arch", arch)
    report = json.loads(proc.stdout)
    assert report["target"]["runtime"] == f"python{python}" and report["target"]["architecture"] == arch
    assert report["elf"]["ok"]

    bytecode = report["bytecode"]
    assert bytecode["compiled"] and bytecode["files"] > 100, bytecode
    tag = f"cpython-{python.replace('.', '')}"
    with zipfile.ZipFile(tmp_path / "function.zip") as archive:
        names = archive.namelist()
    assert "lambdapack_handler/__pycache__/app." + tag + ".pyc" in names
    assert not [n for n in names if n.endswith(".pyc") and tag not in n], "bytecode of another Python"

    smoke = report["smoke"]
    assert smoke["ran"], smoke
    assert interpreter.description == smoke["interpreter"]
    assert smoke["images"] >= 10 and smoke["max_difference"] is not None and smoke["max_difference"] <= 1e-3
    # The modules came from the zip, with the shipped bytecode.
    assert smoke["modules_from_zip"] > 50 and smoke["modules_with_pyc"] >= 0.9 * smoke["modules_from_zip"]
