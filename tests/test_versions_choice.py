"""Choosing a release whose native files load on the target: the pure logic, no pip.

The shapes are the real ones (lambda-facts.md, rechecked here with pyelftools):
for python3.13 arm64, ai-edge-litert 2.3.0, 2.2.0 and every 2.1.x after 2.1.0
need GLIBCXX_3.4.30 (Amazon Linux 2023 has 3.4.29); 2.1.0 loads.
"""

from __future__ import annotations

import pytest

from lambdapack.packing import compat
from lambdapack.packing.elf import ElfInfo
from lambdapack.packing.install import (
    MAX_CHECKS,
    Skip,
    allowed_by,
    choose_version,
    fixed_names,
    index_versions,
    older_releases,
)
from lambdapack.packing.target import Target

GLIBCXX = "needs GLIBCXX_3.4.30, python3.13 arm64 has 3.4.29"
LITERT_AARCH64 = ["2.3.0", "2.2.0", "2.1.6", "2.1.5", "2.1.4", "2.1.3", "2.1.2", "2.1.1", "2.1.0"]
FIRST = Skip("ai-edge-litert", "2.3.0", (GLIBCXX,))


class Releases:
    """A ``problems_of`` callable over made-up releases, remembering what it was asked."""

    def __init__(self, loading: set[str]) -> None:
        self.loading = loading
        self.asked: list[str] = []

    def __call__(self, version: str) -> tuple[str, ...]:
        self.asked.append(version)
        return () if version in self.loading else (GLIBCXX,)


def test_the_newest_loading_release_is_found_within_the_bound():
    candidates, beyond = older_releases(LITERT_AARCH64, "2.3.0", lambda v: True)
    assert candidates == LITERT_AARCH64[1:] and beyond == 0
    releases = Releases({"2.1.0"})
    choice = choose_version("ai-edge-litert", FIRST, candidates, releases)
    assert choice.version == "2.1.0"
    assert len(releases.asked) <= MAX_CHECKS
    assert len(set(releases.asked)) == len(releases.asked), "a release was downloaded twice"
    assert releases.asked[:2] == ["2.2.0", "2.1.0"]  # the next one first, then the oldest
    lines = choice.lines()
    assert lines[0] == "ai-edge-litert 2.3.0 skipped: needs GLIBCXX_3.4.30, python3.13 arm64 has 3.4.29"
    skipped = [skip.version for skip in choice.skipped]
    assert skipped == sorted(skipped, key=LITERT_AARCH64.index)  # newest first
    assert "2.1.0" not in skipped
    # Every release newer than the choice is either checked and skipped or named as untried.
    assert set(skipped[1:]) | set(choice.untried) == set(LITERT_AARCH64[1:-1])
    assert not choice.unchecked


def test_one_bad_release_costs_one_check():
    releases = Releases({"2.2.0", "2.1.6"})
    choice = choose_version("ai-edge-litert", FIRST, LITERT_AARCH64[1:], releases)
    assert choice.version == "2.2.0"
    assert releases.asked == ["2.2.0"]
    assert choice.lines() == [FIRST.line()]


def test_when_nothing_loads_no_release_is_chosen_and_all_tried_are_listed():
    releases = Releases(set())
    choice = choose_version("ai-edge-litert", FIRST, LITERT_AARCH64[1:], releases)
    assert choice.version is None
    assert releases.asked == ["2.2.0", "2.1.0"]  # the oldest fails too: the rest are not downloaded
    assert [skip.version for skip in choice.skipped] == ["2.3.0", "2.2.0", "2.1.0"]
    assert choice.untried == tuple(LITERT_AARCH64[2:-1])
    assert "2.1.6, 2.1.5, 2.1.4, 2.1.3, 2.1.2, 2.1.1 skipped without a download" in choice.lines()[-1]


def test_no_candidates_means_only_the_first_failure():
    choice = choose_version("ai-edge-litert", FIRST, [], Releases(set()))
    assert choice.version is None and choice.skipped == (FIRST,) and not choice.untried


@pytest.mark.parametrize("budget", [2, 3, 4])
def test_a_small_budget_still_returns_only_a_checked_release(budget):
    releases = Releases({"2.1.0", "2.1.1"})
    choice = choose_version("ai-edge-litert", FIRST, LITERT_AARCH64[1:], releases, max_checks=budget)
    assert len(releases.asked) <= budget
    assert choice.version in releases.asked
    assert choice.version in releases.loading
    # Every newer release is accounted for: checked, taken to fail, or left unchecked.
    newer = LITERT_AARCH64[1 : LITERT_AARCH64.index(choice.version)]
    listed = [skip.version for skip in choice.skipped[1:]] + [*choice.untried, *choice.unchecked]
    assert sorted(listed) == sorted(newer)
    if budget == 2:
        assert choice.version == "2.1.0" and choice.unchecked == tuple(LITERT_AARCH64[2:-1])
        assert "checks at most" in choice.lines()[-1]


def test_older_releases_orders_by_pep440_filters_and_bounds():
    versions = ["2.10.0", "2.9.0", "2.9.0", "2.11.0", "not-a-version", "1.4.0", "3.0.0"]
    found, beyond = older_releases(versions, "2.11.0", lambda v: v != "2.9.0")
    assert found == ["2.10.0", "1.4.0"] and beyond == 0
    many = [f"1.{minor}.0" for minor in range(30)]
    window, beyond = older_releases(many, "1.29.0", lambda v: True, window=16)
    assert window[0] == "1.28.0" and len(window) == 16 and beyond == 13


def test_requirements_that_pin_are_never_replaced():
    fixed = fixed_names(
        [
            "ai-edge-litert==2.3.0",
            "numpy>=1.26",
            "Pillow==12.*",
            "tflite_runtime===2.14.0",
            "mypkg @ https://example.invalid/mypkg-1.0-py3-none-any.whl",
        ]
    )
    assert fixed == {"ai-edge-litert", "tflite-runtime", "mypkg"}
    assert "ai-edge-litert" not in fixed_names(["ai-edge-litert>=1.4", "numpy", "pillow"])


def test_candidates_keep_every_requirement_on_the_name():
    allowed = allowed_by(["ai-edge-litert>=1.4", "Ai_Edge.Litert!=2.1.0", "numpy<2"], "ai-edge-litert")
    assert allowed("2.2.0") and allowed("1.4.0")
    assert not allowed("2.1.0") and not allowed("1.3.0")
    assert allowed_by(["numpy"], "pillow")("1.0")


def elf(versions, machine="EM_AARCH64"):
    return ElfInfo(machine, "ET_DYN", False, None, ("libstdc++.so.6",), tuple(versions), ())


def test_summary_keeps_the_highest_need_of_each_family_in_one_line():
    files = {
        "ai_edge_litert/libLiteRt.so": elf(
            [("libstdc++.so.6", "GLIBCXX_3.4.30"), ("libstdc++.so.6", "GLIBCXX_3.4.26")]
        ),
        "ai_edge_litert/libpywrap_litert_common.so": elf([("libstdc++.so.6", "GLIBCXX_3.4.30")]),
        "ai_edge_litert/_pywrap.so": elf([("libc.so.6", "GLIBC_2.34")]),
    }
    report = compat.check(files, Target("3.13", "arm64"))
    assert len(report.findings) == 2
    assert compat.summary(report.findings) == (GLIBCXX,)
    old = compat.check(
        {
            "a.so": elf([("libm.so.6", "GLIBC_2.27"), ("libm.so.6", "GLIBC_2.30")]),
            "b.so": elf([("libstdc++.so.6", "GLIBCXX_3.4.26")]),
        },
        Target("3.11", "arm64"),
    )
    assert compat.summary(old.findings) == (
        "needs GLIBC_2.30, python3.11 arm64 has 2.26",
        "needs GLIBCXX_3.4.26, python3.11 arm64 has 3.4.24",
    )


def test_the_versions_pip_index_prints_are_read():
    output = (
        "ai-edge-litert (2.3.0)\n"
        "Available versions: 2.3.0, 2.2.0, 2.1.6, 2.1.0\n"
        "  INSTALLED: 2.3.0\n  LATEST:    2.3.0\n"
    )
    assert index_versions(output) == ["2.3.0", "2.2.0", "2.1.6", "2.1.0"]
    assert index_versions("WARNING: nothing\n") == []
