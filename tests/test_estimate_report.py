"""From measurements to the estimate, its table, its page and its image: ``estimate()`` on
measurements written by hand (no zip runs here), ``render``, ``pages.estimate_page`` and
``pages.estimate_svg``, and the command's ``--html``/``--svg`` with the measuring replaced."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from rich.console import Console

from lambdapack.cli.estimate import render
from lambdapack.errors import InputError
from lambdapack.local.estimate import Measurements, SizeMeasurement, estimate, too_big_for_here, vcpus
from lambdapack.pages import estimate_page, estimate_svg


def measurements() -> Measurements:
    small = SizeMeasurement(512, round(vcpus(512), 3), measured=True, init_ms=2000.4, cold_ms=150.2)
    # Per image medians: 2,000 and 2,010 -> 2,005 ms per image (not the median of all five, 2,000).
    # A heavy model: compute, not S3's requests, is most of the bill.
    small.warm_ms = {"a.jpg": [1900.0, 2100.0, 2000.0], "b.png": [2000.0, 2020.0]}
    small.peak_memory_mb = 60
    large = SizeMeasurement(1024, round(vcpus(1024), 3), measured=True, init_ms=1000.3, cold_ms=80.1)
    large.warm_ms = {"a.jpg": [1440.0, 1450.0], "b.png": [1450.0, 1460.0]}  # 1,445 and 1,455 -> 1,450
    large.peak_memory_mb = 58
    broken = SizeMeasurement(128, round(vcpus(128), 3), measured=True)
    broken.error = {"errorType": "Runtime.ExitError", "errorMessage": "signal: killed"}
    big = SizeMeasurement(5307, 3.0, note=too_big_for_here(5307, 2))
    return Measurements(
        zip="dist/function.zip",
        runtime="python3.11",
        architecture="x86_64",
        how="python3.11 (x86_64) in the container image lambdapack-base:bookworm",
        cpu_capped=True,
        cores=2,
        images=[{"name": "a.jpg", "width": 32, "height": 32, "bytes": 900}],
        sizes=[broken, small, large, big],
    )


def test_only_a_share_of_more_vcpus_than_cores_is_refused():
    assert vcpus(1769) == 1.0
    assert too_big_for_here(3008, 2) is None  # 1.7 vCPU on 2 cores
    why = too_big_for_here(5307, 2)
    assert why and "3.00 vCPU" in why and "2 cores" in why and "not measured" in why


def test_the_estimate_projects_each_measured_size_and_marks_the_best():
    result = estimate(measurements(), 10_000)
    rows = {row["memory_mb"]: row for row in result["sizes"]}
    assert rows[512]["warm_per_image_ms"] == pytest.approx(2005.0)
    assert rows[1024]["warm_per_image_ms"] == pytest.approx(1450.0)
    # 512 MB: 1,000 × ceil(2,150.6) + 9,000 × 2,005 = 2,151,000 + 18,045,000 ms, × 0.5 GB.
    assert rows[512]["projection"]["gb_seconds"] == pytest.approx(10_098.0)
    # 1,024 MB: 1,000 × ceil(1,080.4) + 9,000 × 1,450 = 1,081,000 + 13,050,000 ms, × 1 GB.
    assert rows[1024]["projection"]["gb_seconds"] == pytest.approx(14_131.0)
    assert rows[512]["projection"]["wall_s"] == pytest.approx((2000.4 + 150.2 + 9 * 2005) / 1000)
    assert rows[1024]["projection"]["wall_s"] == pytest.approx((1000.3 + 80.1 + 9 * 1450) / 1000)
    # 1,024 MB costs 1.24 times what 512 MB does, and 512 MB takes 1.43 times as long: both
    # more than the 1.2 a verdict needs.
    totals = {m: rows[m]["projection"]["total_usd"] for m in (512, 1024)}
    assert 1.2 < totals[1024] / totals[512] < 1.25
    assert result["cheapest_memory_mb"] == 512 and rows[512]["cheapest"] and not rows[1024]["cheapest"]
    assert result["fastest_memory_mb"] == 1024 and rows[1024]["fastest"]
    # Sizes that were not measured, or failed, have no figures and no mark.
    for memory in (128, 5307):
        assert rows[memory]["projection"] is None and not rows[memory]["cheapest"]
    assert "not measured" in rows[5307]["note"]
    # The loop on this machine: the largest measured share, one init, every image warm.
    assert result["sequential"]["memory_mb"] == 1024
    assert result["sequential"]["wall_s"] == pytest.approx((1000.3 + 10_000 * 1450) / 1000)
    assert result["prices"]["taken"] == "2026-11" and result["scaling"]["account_concurrency"] == 1_000


def test_the_account_concurrency_can_be_given():
    result = estimate(measurements(), 10_000, concurrency=100)
    row = next(r for r in result["sizes"] if r["memory_mb"] == 1024)
    assert row["projection"]["environments"] == 100 and result["scaling"]["account_concurrency"] == 100
    # 100 environments, 100 images each: init + first + 99 warm.
    assert row["projection"]["wall_s"] == pytest.approx((1000.3 + 80.1 + 99 * 1450) / 1000)


def test_an_unpriced_region_is_refused():
    with pytest.raises(InputError, match="ap-south-2"):
        estimate(measurements(), 10, region="ap-south-2")


def test_the_table_marks_the_best_sizes_and_names_every_source():
    console = Console(record=True, width=220)
    render(estimate(measurements(), 10_000), console)
    text = console.export_text()
    assert re.search(r"512 MB .*cheapest", text) and re.search(r"1,024 MB .*fastest", text)
    assert "5,307 MB: not measured: 5,307 MB gets 3.00 vCPU" in text
    assert "128 MB: Runtime.ExitError: signal: killed" in text
    assert "$0.0000166667 per GB-s" in text and "taken 2026-11" in text
    assert "AWS Lambda pricing page" in text and "Amazon S3 pricing page" in text
    assert "+1,000 concurrent executions every 10 s" in text
    assert "one process in a loop on this machine (1,024 MB share)" in text


def test_the_page_is_self_contained():
    page = estimate_page(estimate(measurements(), 10_000))
    assert page.startswith("<!doctype html>") and page.count("<svg") == 2
    # A bar per measured size in each chart, with its figure.
    assert page.count("<rect") == 4 and "not measured" in page
    for forbidden in ("<script", "src=", "href=", "@import", "url(", "<link"):
        assert forbidden not in page.lower()
    assert "cheapest" in page and "fastest" in page and "2026-11" in page


def test_the_image_is_the_two_charts_alone():
    import xml.etree.ElementTree as ET

    result = estimate(measurements(), 10_000)
    image = estimate_svg(result)
    root = ET.fromstring(image.encode())  # well-formed XML, as an image file must be
    svg = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{svg}svg" and root.get("width") and root.get("height")
    charts = [e for e in root.iter(f"{svg}svg") if e.get("data-chart")]
    assert [chart.get("data-chart") for chart in charts] == ["cost", "wall"]
    bars = {chart.get("data-chart"): chart.findall(f"{svg}rect") for chart in charts}
    assert [bar.get("data-memory-mb") for bar in bars["cost"]] == ["512", "1024"]
    assert [b.get("data-memory-mb") for b in bars["cost"] if b.get("data-mark") == "cheapest"] == ["512"]
    assert [b.get("data-memory-mb") for b in bars["wall"] if b.get("data-mark") == "fastest"] == ["1024"]
    # On white (readable on a dark README too), nothing to fetch, the prices' date named.
    assert root.find(f"{svg}rect").get("fill") == "#fff"
    lowered = image.lower().replace('xmlns="http://www.w3.org/2000/svg"', "")
    for forbidden in ("<script", "href=", "http", "url(", "<foreignobject"):
        assert forbidden not in lowered
    assert "taken 2026-11" in image


def noisy_measurements(runtime: str = "python3.13") -> Measurements:
    """Two sizes whose cold starts and rounds overlap: their cost ranges overlap too."""
    base = measurements()
    small, large = base.sizes[1], base.sizes[2]
    small.init_samples, small.cold_samples = [1900.0, 2000.4, 2600.0], [150.2, 150.2, 150.2]
    large.init_samples, large.cold_samples = [700.0, 1000.3, 2500.0], [80.1, 80.1, 80.1]
    small.warm_rounds = [{"a.jpg": [1900.0], "b.png": [2000.0]}, {"a.jpg": [2100.0], "b.png": [2020.0]}]
    large.warm_rounds = [{"a.jpg": [1000.0], "b.png": [1000.0]}, {"a.jpg": [1500.0], "b.png": [1460.0]}]
    return replace(base, runtime=runtime, sizes=[small, large])


def test_each_figure_carries_its_spread_and_overlapping_ranges_name_no_winner():
    result = estimate(noisy_measurements(), 10_000)
    rows = {row["memory_mb"]: row for row in result["sizes"]}
    spread = rows[512]["spread"]
    assert spread["init_ms"] == [1900.0, 2600.0] and spread["cold_starts"] == 3
    # Rounds: (1,900 + 2,000) / 2 = 1,950 and (2,100 + 2,020) / 2 = 2,060; the whole run's
    # figure (2,005) between.
    assert spread["warm_per_image_ms"] == [1950.0, 2060.0] and spread["warm_rounds"] == 2
    low, high = spread["total_usd"]
    assert low < rows[512]["projection"]["total_usd"] < high
    # The cost ranges overlap: neither is called cheapest; both are within noise.
    assert result["cheapest_memory_mb"] is None and not rows[512]["cheapest"]
    assert result["verdicts"]["cheapest"] == {
        "memory_mb": None,
        "within_noise": [512, 1024],
        "withheld": None,
    }
    assert "cheapest" in rows[512]["within_noise"] and "cheapest" in rows[1024]["within_noise"]
    console = Console(record=True, width=260)
    render(result, console)
    text = console.export_text()
    assert "cheapest: within noise between 512 MB, 1,024 MB" in text
    assert "2,000 ms [1,900–2,600]" in text


def test_snapstart_is_its_own_block_where_the_runtime_allows_it():
    result = estimate(noisy_measurements("python3.13"), 10_000)
    snap = result["snapstart"]
    assert snap["available"] and [row["memory_mb"] for row in snap["sizes"]] == [512, 1024]
    assert all(row["cache_seconds"] >= 3 * 3600 for row in snap["sizes"])
    console = Console(record=True, width=260)
    render(result, console)
    assert "SnapStart at 512 MB: does not pay" in console.export_text()
    # python3.11 has no SnapStart: the block says why and holds no rows.
    old = estimate(noisy_measurements("python3.11"), 10_000)["snapstart"]
    assert not old["available"] and "python3.12 or later" in old["why_not"] and old["sizes"] == []


def test_measured_restores_replace_the_init_in_the_snapstart_projection():
    """1,024 MB with three restores measured; 512 MB whose restores failed keeps the upper bound."""
    base = noisy_measurements("python3.13")
    small, large = base.sizes
    large.restore_samples, large.restored_samples = [200.0, 300.0, 250.0], [90.0, 110.0, 100.0]
    large.restore_ms, large.restored_ms = 250.0, 100.0
    small.restore_note = "SnapStart restores not measured: Runtime.ExitError: the parked process ended"
    result = estimate(base, 10_000)
    rows = {row["memory_mb"]: row for row in result["sizes"]}
    assert rows[1024]["restore_ms"] == 250.0 and rows[1024]["restored_ms"] == 100.0
    assert rows[1024]["spread"]["restore_ms"] == [200.0, 300.0]
    assert rows[1024]["spread"]["restored_ms"] == [90.0, 110.0] and rows[1024]["spread"]["restores"] == 3
    assert "restore_ms" not in rows[512]["spread"] and rows[512]["restore_ms"] is None
    snap = {row["memory_mb"]: row for row in result["snapstart"]["sizes"]}
    measured = snap[1024]
    assert measured["measured"] and measured["spread"]["restore_ms"] == [200.0, 300.0]
    # On demand: 1,000 × ceil(1,000.3 + 80.1) + 9,000 × 1,450 ms = 14,131 GB-s at 1 GB.
    # Restored: 1,000 × (250 + 100) + 9,000 × 1,450 ms = 13,400 GB-s: 731 GB-s saved.
    assert measured["environments"] == 1_000 and measured["billed_restored_ms"] == 350
    assert measured["duration_saved_usd"] == pytest.approx(731 * 0.0000166667)
    restores = 1_000 * 1 * 0.0001397998  # environments × GB restored × price
    cache = 1 * 3 * 3600 * 0.0000015046  # the 3-hour minimum
    assert measured["restore_usd"] == pytest.approx(restores)
    assert measured["cache_usd"] == pytest.approx(cache)
    assert measured["net_usd"] == pytest.approx(restores + cache - 731 * 0.0000166667)
    assert not measured["pays"]
    # Each environment's ten images: restore + first + 9 warm, not init + first + 9 warm.
    assert measured["wall_s"] == pytest.approx((250 + 100 + 9 * 1450) / 1000)
    assert "upper bound" in result["snapstart"]["what"] and "measured" in result["snapstart"]["what"]
    # The size whose restores failed: the billed init alone, said to be an upper bound, and why.
    bound = snap[512]
    assert not bound["measured"] and bound["duration_saved_usd"] == bound["init_saved_usd"]
    assert bound["init_saved_usd"] == pytest.approx(1_000 * 0.5 * 2.001 * 0.0000166667)
    assert "parked process ended" in bound["why_not_measured"]
    console = Console(record=True, width=400)
    render(result, console)
    text = console.export_text()
    assert (
        "SnapStart at 1,024 MB: does not pay for 10,000 images — measured (3 restores): restore 250 ms "
        "[200–300] + first invocation 100.0 ms [90.0–110.0] instead of init 1,000 ms" in text
    )
    assert "an upper bound: SnapStart restores not measured: Runtime.ExitError" in text
    # A restore far shorter than a long init pays: 20 s inits, the same restores.
    large.init_ms, large.init_samples = 20_000.0, [20_000.0]
    assert {row["memory_mb"]: row for row in estimate(base, 10_000)["snapstart"]["sizes"]}[1024]["pays"]


def test_a_busy_machine_is_read_from_the_kernels_pressure_figures_and_said(tmp_path):
    from lambdapack.local.estimate import busy_note, cpu_stall_us

    pressure = tmp_path / "cpu"
    pressure.write_text(
        "some avg10=47.06 avg60=55.10 avg300=49.03 total=2571085206\n"
        "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    )
    assert cpu_stall_us(pressure) == 2571085206
    assert cpu_stall_us(tmp_path / "absent") is None  # a kernel without it: nothing said
    pressure.write_text("some avg10=x total=\n")
    assert cpu_stall_us(pressure) is None
    assert busy_note(None) is None and busy_note(0.25) is None
    note = busy_note(0.47)
    assert "47%" in note and "quieter machine" in note


def test_a_busy_machine_names_no_cheapest_or_fastest():
    result = estimate(replace(measurements(), cpu_pressure=0.6), 10_000)
    assert result["cheapest_memory_mb"] is None and result["fastest_memory_mb"] is None
    for found in result["verdicts"].values():
        assert found["within_noise"] == [512, 1024] and "busy for 60%" in found["withheld"]
    # The rows are not marked "within noise" either: nothing was judged.
    assert all(row["within_noise"] == [] for row in result["sizes"])
    console = Console(record=True, width=260)
    render(result, console)
    assert "cheapest: not named — this machine was busy for 60% of the measuring" in console.export_text()
    # Quiet enough: the verdicts stand (the same measurements name both, as above).
    quiet = estimate(replace(measurements(), cpu_pressure=0.1), 10_000)
    assert quiet["cheapest_memory_mb"] == 512 and quiet["fastest_memory_mb"] == 1024
