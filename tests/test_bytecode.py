"""The compile stage: unchecked-hash .pyc, the same bytes whatever state the
build process is in (marshal writes a string differently when the process has
already interned it, and set constants in hash order)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lambdapack.packing.target import Target, host_python

SOURCE = """OPS = ("", "+", "-", "~")
def kind(name):
    return name in {"alpha", "beta", "gamma", "delta"}
"""
COMPILE = """
import sys
if sys.argv[3] == "busy":
    INTERNED = [sys.intern(s) for s in ("+", "-", "~")]  # as a process that imported much would have
from pathlib import Path
from lambdapack.packing.bytecode import compile_tree
from lambdapack.packing.interpreter import TargetPython
from lambdapack.packing.target import Target
compile_tree(Path(sys.argv[1]), Target(sys.argv[2], "x86_64"), TargetPython(sys.argv[2], "x86_64"))
"""
ROOT = Path(__file__).resolve().parent.parent


def compiled_bytes(tree: Path, seed: str, state: str) -> bytes:
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "mod.py").write_text(SOURCE)
    env = dict(os.environ, PYTHONHASHSEED=seed)
    subprocess.run(
        [sys.executable, "-c", COMPILE, str(tree), host_python(), state], check=True, env=env, cwd=ROOT
    )
    (pyc,) = (tree / "pkg" / "__pycache__").iterdir()
    return pyc.read_bytes()


def test_the_same_source_gives_the_same_pyc_whatever_the_build_process(tmp_path):
    first = compiled_bytes(tmp_path / "a", "1", "fresh")
    second = compiled_bytes(tmp_path / "b", "2", "busy")
    assert first == second
    # Unchecked hash-based: flags word = 0b01 (hash-based, not checked).
    assert int.from_bytes(first[4:8], "little") == 1


def test_a_file_that_is_not_python_3_is_listed_not_fatal(tmp_path):
    from lambdapack.packing.bytecode import compile_tree

    (tmp_path / "ok.py").write_text("X = 1\n")
    (tmp_path / "py2.py").write_text("print 'hello'\n")
    from lambdapack.packing.interpreter import TargetPython

    result = compile_tree(tmp_path, Target(host_python(), "x86_64"), TargetPython(host_python(), "x86_64"))
    assert result.compiled and result.files == 1 and result.failed == ["py2.py"]
