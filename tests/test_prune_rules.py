import re

import pytest

from lambdapack.packing.prune import GROUPS, RULES, active_rules, glob_to_regex, matching_rule, prune_tree


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/tests/**", "numpy/_core/tests/test_api.py", True),
        ("**/tests/**", "tests/x.py", True),
        ("**/tests/**", "numpy/testing/utils.py", False),
        ("**/tests/**", "mytests/x.py", False),
        ("**/*.pyi", "numpy/__init__.pyi", True),
        ("**/*.pyi", "a.pyi", True),
        ("bin/**", "bin/f2py", True),
        ("bin/**", "numpy/bin/x", False),
        ("PIL/_avif.*", "PIL/_avif.cpython-311-x86_64-linux-gnu.so", True),
        ("PIL/_avif.*", "PIL/sub/_avif.so", False),
        ("numpy/_core/_*_tests.*", "numpy/_core/_umath_tests.cpython-311.so", True),
        ("numpy/_core/_*_tests.*", "numpy/_core/_multiarray_umath.so", False),
    ],
)
def test_glob_semantics(pattern, path, matches):
    assert bool(re.match(glob_to_regex(pattern), path)) is matches


def test_dist_info_is_never_pruned_even_when_a_pattern_matches():
    assert matching_rule("numpy-2.2.6.dist-info/tests/x.py", RULES) is None
    assert matching_rule("numpy-2.2.6.dist-info/RECORD", RULES) is None


def test_public_testing_modules_and_runtime_code_are_kept():
    for path in (
        "numpy/testing/__init__.py",
        "numpy/_core/_multiarray_umath.so",
        "PIL/Image.py",
        "ai_edge_litert/interpreter.py",
        "index.py",
    ):
        assert matching_rule(path, RULES) is None, path


def test_each_rule_names_its_group_and_reason():
    assert len(set(GROUPS)) == len(GROUPS)
    for rule in RULES:
        assert rule.patterns and rule.reason


def test_keep_turns_a_group_off():
    path = "numpy/_core/tests/test_api.py"
    assert matching_rule(path, RULES).group == "tests"
    assert matching_rule(path, active_rules(["tests"])) is None


def test_records_list_only_the_files_that_stay(tmp_path):
    dist = tmp_path / "idna-3.20.dist-info"
    dist.mkdir()
    (tmp_path / "idna").mkdir()
    (tmp_path / "idna" / "core.py").write_text("")
    (tmp_path / "idna" / "tests").mkdir()
    (tmp_path / "idna" / "tests" / "test_core.py").write_text("")
    (dist / "RECORD").write_text(
        "../../bin/idna,sha256=depends-on-the-python-that-ran-pip,167\n"
        "idna/core.py,sha256=abc,0\n"
        "idna/tests/test_core.py,sha256=def,0\n"
        "idna/__pycache__/core.cpython-311.pyc,,\n"
        "idna-3.20.dist-info/RECORD,,\n"
    )
    result = prune_tree(tmp_path)
    assert [path for path, _ in result.removed["tests"]] == ["idna/tests/test_core.py"]
    assert (dist / "RECORD").read_text() == "idna/core.py,sha256=abc,0\nidna-3.20.dist-info/RECORD,,\n"
