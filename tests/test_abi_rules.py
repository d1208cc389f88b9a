"""Which extension modules the target's CPython imports, from file names and wheel tags alone."""

from __future__ import annotations

from lambdapack.packing.compat import (
    abi3_floor,
    abi3_floors,
    extension_findings,
    wheel_tag_findings,
)
from lambdapack.packing.target import Target

PY311 = Target("3.11", "x86_64")
PY312 = Target("3.12", "x86_64")
NUMPY = "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so"


def problems(paths, target, floors=None) -> dict[str, str]:
    return {f.path: f.problem for f in extension_findings(paths, target, floors)}


def test_a_module_for_another_python_version_is_found():
    found = problems([NUMPY, "numpy/__init__.py"], PY312)
    assert list(found) == [NUMPY]
    assert "CPython 3.11" in found[NUMPY] and "python3.12" in found[NUMPY]
    assert "*.cpython-312-x86_64-linux-gnu.so" in found[NUMPY]
    assert problems([NUMPY], PY311) == {}


def test_a_module_named_for_another_machine_is_found():
    arm = "PIL/_imaging.cpython-311-aarch64-linux-gnu.so"
    found = problems([arm], PY311)
    assert "aarch64-linux-gnu" in found[arm] and "x86_64" in found[arm]
    assert problems([arm], Target("3.11", "arm64")) == {}


def test_every_problem_is_listed_not_only_the_first():
    paths = [f"pkg/_m{i}.cpython-311-x86_64-linux-gnu.so" for i in range(30)]
    assert len(problems(paths, PY312)) == 30


def test_a_variant_the_target_imports_makes_the_others_harmless():
    both = ["pkg/_x.cpython-311-x86_64-linux-gnu.so", "pkg/_x.cpython-312-x86_64-linux-gnu.so"]
    assert problems(both, PY312) == {}
    assert problems(both, PY311) == {}
    assert set(problems(both, Target("3.13", "x86_64"))) == set(both)
    assert problems(["pkg/_x.cpython-311-x86_64-linux-gnu.so", "pkg/_x.abi3.so"], PY312) == {}


def test_free_threaded_and_debug_builds_are_not_the_lambda_python():
    free = "pkg/_x.cpython-313t-x86_64-linux-gnu.so"
    found = problems([free], Target("3.13", "x86_64"))
    assert "free-threaded" in found[free]


def test_cp_tag_in_a_shared_object_name():
    lib = "pkg.libs/libbridge-cp311.so.1"
    assert list(problems([lib], PY312)) == [lib]
    assert problems([lib], PY311) == {}
    assert problems(["pkg/libcp311x.so", "pkg/_x.cpython-311.pyc", "pkg/x-cp311.txt"], PY312) == {}


def test_abi3_modules_need_the_python_their_wheel_names():
    module = "cryptography/hazmat/bindings/_rust.abi3.so"
    floors = {module: (3, 12)}
    assert "stable ABI of CPython 3.12" in problems([module], PY311, floors)[module]
    assert problems([module], PY312, floors) == {}
    assert problems([module], PY311) == {}  # no wheel tag known: nothing to say


def test_abi3_floor_comes_from_the_wheel_tags_and_reaches_each_file():
    wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp312-abi3-manylinux_2_17_x86_64\n"
    assert abi3_floor(wheel) == (3, 12)
    assert abi3_floor("Tag: cp311-cp311-manylinux_2_17_x86_64\n") is None
    owners = {"crypto/_rust.abi3.so": "crypto", "numpy/x.so": "numpy"}
    assert abi3_floors({"crypto": wheel, "numpy": "Tag: cp311-cp311-linux_x86_64\n"}, owners) == {
        "crypto/_rust.abi3.so": (3, 12)
    }


def test_wheel_tags_catch_modules_whose_names_say_nothing():
    wheels = {
        "ai_edge_litert-1.4.0.dist-info/WHEEL": "Tag: cp311-cp311-manylinux_2_17_x86_64\n",
        "six-1.17.0.dist-info/WHEEL": "Tag: py2-none-any\nTag: py3-none-any\n",
        "protobuf-7.36.2.dist-info/WHEEL": "Tag: cp310-abi3-manylinux2014_x86_64\n",
        "newer-1.0.dist-info/WHEEL": "Tag: cp312-abi3-manylinux2014_x86_64\n",
        "flatbuffers-25.12.19.dist-info/WHEEL": "Tag: py2.py3-none-any\n",
    }
    found = {f.path: f.problem for f in wheel_tag_findings(wheels, PY312)}
    assert list(found) == ["ai_edge_litert-1.4.0.dist-info/WHEEL"]
    assert "cp311-cp311" in found["ai_edge_litert-1.4.0.dist-info/WHEEL"]
    on_311 = [f.path for f in wheel_tag_findings(wheels, PY311)]
    assert on_311 == ["newer-1.0.dist-info/WHEEL"]
