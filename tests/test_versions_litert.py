"""ELF-aware choice of releases against the real package index (or the warm wheel
cache): LiteRT for Graviton. ai-edge-litert 2.3.0 and 2.2.0 need GLIBCXX_3.4.30
(Amazon Linux 2023 has 3.4.29), 1.4.0 for aarch64 needs GLIBC_2.30 (Amazon Linux
2 has 2.26). The skip lines are printed: run with -s to see them."""

from __future__ import annotations

import json

import pytest

from lambdapack.packing import compat
from lambdapack.packing.elf import read_elf_file
from lambdapack.packing.install import Installer
from lambdapack.packing.runtimes import LITERT
from lambdapack.packing.strip import elf_files
from lambdapack.packing.target import Target

from .conftest import SAMPLE, run_cli

pytestmark = pytest.mark.functional
BROKEN_ON_AL2023_ARM64 = {"2.3.0", "2.2.0"}


def litert_version(distributions) -> str:
    return next(d["version"] for d in distributions if d["name"] == "ai-edge-litert")


def test_python313_arm64_installs_the_newest_litert_whose_files_load(cache_dir, tmp_path):
    target = Target("3.13", "arm64")
    dest = tmp_path / "task"
    dest.mkdir()
    result = Installer(cache_dir).install(LITERT.requirements_for("arm64"), target, dest)
    chosen = {d.name: d.version for d in result.distributions}["ai-edge-litert"]
    print(f"\npython3.13 arm64: ai-edge-litert {chosen} chosen", *result.skipped, sep="\n  ")
    assert chosen not in BROKEN_ON_AL2023_ARM64
    elves = {p.relative_to(dest).as_posix(): read_elf_file(p) for p in elf_files(dest)}
    assert any(path.startswith("ai_edge_litert/") for path in elves)
    assert compat.check(elves, target).ok
    litert_skips = [line for line in result.skipped if line.startswith("ai-edge-litert ")]
    assert litert_skips, "the newest release loads? then this test no longer proves anything"
    assert "ai-edge-litert 2.3.0 skipped: needs GLIBCXX_3.4.30, python3.13 arm64 has 3.4.29" in (
        result.skipped
    ) or not any(line.startswith("ai-edge-litert 2.3.0 ") for line in litert_skips)
    assert all(f" {chosen} " not in line for line in litert_skips)  # the choice was never skipped


@pytest.mark.container
@pytest.mark.qemu
def test_python313_arm64_pack_succeeds_and_reports_clean(packed_target):
    # The run's one python3.13 arm64 pack (test_targets smoke-runs the same zip under QEMU).
    zip_path, report = packed_target("3.13", "arm64")
    assert litert_version(report["distributions"]) not in BROKEN_ON_AL2023_ARM64
    assert report["elf"]["ok"] is True
    assert run_cli("report", str(zip_path)).returncode == 0


def test_python311_arm64_finds_a_loadable_litert_or_lists_what_was_tried(sample_model, cache_dir, tmp_path):
    proc = run_cli(
        "pack",
        str(sample_model),
        "--samples",
        str(SAMPLE / "samples"),
        "--out",
        str(tmp_path),
        "--python",
        "3.11",
        "--arch",
        "arm64",
        "--no-smoke",
        "--json",
        cache=cache_dir,
    )
    print(f"\npython3.11 arm64: exit {proc.returncode}\n{proc.stderr}")
    assert "Traceback" not in proc.stderr
    if proc.returncode == 0:
        report = json.loads(proc.stdout)
        assert report["elf"]["ok"] is True
        assert litert_version(report["distributions"]) != "1.4.0"
        return
    assert proc.returncode == 6
    message = " ".join(proc.stderr.split())
    assert "no release of ai-edge-litert that pip may install loads on python3.11 arm64" in message
    assert "ai-edge-litert 1.4.0 skipped: needs GLIBC_2.30, python3.11 arm64 has 2.26" in message
    assert "ai-edge-litert==1.4.0" not in message  # never suggest the pin that failed
    assert "--python 3.12" in message
    assert not (tmp_path / "function.zip").exists()
