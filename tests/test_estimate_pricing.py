"""The cost and wall-time arithmetic of ``lambdapack estimate`` (``lambdapack.pricing``),
against expectations computed by hand from the published prices and rules."""

from __future__ import annotations

import pytest

from lambdapack import pricing
from lambdapack.errors import InputError
from lambdapack.pricing import (
    BILLING,
    PRICES,
    SCALING,
    Billing,
    Projection,
    Scaling,
    billed_ms,
    fleet,
    gb_seconds,
    prices_for,
    project,
    sequential_s,
    snapstart,
    verdict,
)

US_EAST_1 = prices_for("us-east-1")


def test_the_published_prices_and_rules_with_their_source_and_date():
    assert US_EAST_1.gb_second == {"x86_64": 0.0000166667, "arm64": 0.0000133334}
    assert US_EAST_1.per_million_requests == 0.20
    assert (US_EAST_1.s3_put_per_1000, US_EAST_1.s3_get_per_1000) == (0.005, 0.0004)
    assert (SCALING.step, SCALING.every_s, SCALING.account_concurrency) == (1_000, 10.0, 1_000)
    assert (BILLING.granularity_ms, BILLING.init_billed) == (1, True)
    for thing in (*PRICES.values(), SCALING, BILLING):
        assert thing.taken == "2026-11"
    for source in (US_EAST_1.lambda_source, US_EAST_1.s3_source, SCALING.source, BILLING.source):
        assert "pricing" in source or "Guide" in source or "Blog" in source


def test_a_region_without_prices_is_refused_by_name():
    with pytest.raises(InputError) as caught:
        prices_for("eu-west-1")
    assert caught.value.exit_code == 2
    assert "eu-west-1" in str(caught.value) and "us-east-1" in str(caught.value)
    assert "2026-11" in str(caught.value)


@pytest.mark.parametrize(
    ("duration", "billed"),
    [(12.0, 12), (12.3, 13), (12.0000000001, 12), (0.2, 1), (0.0, 1), (2690.6, 2691)],
)
def test_billed_duration_is_rounded_up_to_the_millisecond(duration, billed):
    assert billed_ms(duration) == billed


def test_gb_seconds_are_memory_in_gb_times_billed_seconds():
    assert gb_seconds(1000, 512) == 0.5
    assert gb_seconds(2500, 1769) == pytest.approx(1769 / 1024 * 2.5)


def test_ten_thousand_images_at_512_mb():
    # One burst of 10,000: 1,000 environments (the account's concurrency), 10 images each.
    # Billed: 1,000 × ceil(500.2 + 100.4) = 601 ms, 9,000 × ceil(20.3) = 21 ms
    # -> 790,000 ms = 790 s × 0.5 GB = 395 GB-s.
    p = project(10_000, 512, "x86_64", 500.2, 100.4, 20.3, US_EAST_1)
    assert (p.environments, p.billed_cold_ms, p.billed_warm_ms) == (1_000, 601, 21)
    assert p.gb_seconds == pytest.approx(395.0)
    assert p.compute_usd == pytest.approx(395 * 0.0000166667)  # 0.0065833465
    assert p.requests_usd == pytest.approx(0.002)  # 10,000 × $0.20 / 1M
    assert (p.s3_gets, p.s3_puts) == (10_000, 20_000)  # upload PUT, the read, the result PUT
    assert p.s3_usd == pytest.approx(0.004 + 0.1)
    assert p.total_usd == pytest.approx(0.1125833465)
    # Each environment: init + first invocation, then 9 warm ones: 0.6006 + 9 × 0.0203.
    assert p.wall_s == pytest.approx(0.7833)


def test_arm64_is_priced_at_its_own_rate():
    p = project(10_000, 512, "arm64", 500.2, 100.4, 20.3, US_EAST_1)
    assert p.compute_usd == pytest.approx(395 * 0.0000133334)


def test_without_init_billing_a_cold_start_bills_only_its_invocation():
    p = project(10_000, 1024, "x86_64", 500.2, 100.4, 20.3, US_EAST_1, billing=Billing(init_billed=False))
    assert p.billed_cold_ms == 101
    assert p.gb_seconds == pytest.approx((1_000 * 101 + 9_000 * 21) / 1000)


def test_fewer_images_than_one_step_get_one_environment_each():
    run = fleet(500, 500, 100, 20)
    assert run.groups == ((0.0, 500),) and run.wall_s == pytest.approx(0.6)


def test_one_image_past_a_full_wave_waits_for_a_warm_invocation():
    # 1,001 images, 1,000 environments: the last one runs warm after a first invocation.
    assert fleet(1_001, 500, 100, 20).wall_s == pytest.approx(0.62)


def test_concurrency_grows_by_a_thousand_every_ten_seconds_up_to_the_account_limit():
    # 100,000 images, init 1 s, first invocation 0.2 s, warm 1 s, account concurrency 3,000.
    # At 10 s the first 1,000 have done 1 + floor(8.8) = 9 each: 9,000 done, 90,000 waiting: +1,000.
    # At 20 s: 19,000 + 9,000 done, 70,000 waiting: +1,000 (now 3,000, the limit).
    # With u = floor(t - 1.2), done = 1,000 × (u + 1 + u - 10 + 1 + u - 20 + 1) = 1,000 × (3u - 27):
    # 100,000 needs u = 43 (3 × 42 - 27 = 99 < 100), so t = 44.2 s.
    run = fleet(100_000, 1000, 200, 1000, Scaling(account_concurrency=3_000))
    assert run.groups == ((0.0, 1_000), (10.0, 1_000), (20.0, 1_000))
    assert run.environments == 3_000 and run.wall_s == pytest.approx(44.2)


def test_no_environments_are_added_once_nothing_waits():
    # 5,000 images, account concurrency 3,000: the first 1,000 environments do 5 each by
    # 1.2 + 4 × 1 = 5.2 s, before the 10 s step would add more.
    run = fleet(5_000, 1000, 200, 1000, Scaling(account_concurrency=3_000))
    assert run.groups == ((0.0, 1_000),) and run.wall_s == pytest.approx(5.2)


def test_a_small_account_concurrency_caps_the_fleet():
    # 100 images, 10 at once: 10 each, 10 ms apiece, no init.
    run = fleet(100, 0, 10, 10, Scaling(account_concurrency=10))
    assert run.environments == 10 and run.wall_s == pytest.approx(0.1)


def test_the_cost_follows_the_fleet_cold_starts():
    p = project(100_000, 1024, "x86_64", 1000, 200, 1000, US_EAST_1, Scaling(account_concurrency=3_000))
    # 3,000 cold invocations of 1,200 ms, 97,000 warm ones of 1,000 ms, at 1 GB.
    assert p.environments == 3_000
    assert p.gb_seconds == pytest.approx((3_000 * 1_200 + 97_000 * 1_000) / 1000)


def test_one_process_in_a_loop_is_one_init_then_every_image_warm():
    assert sequential_s(10_000, 500, 20) == pytest.approx(200.5)


def test_a_verdict_is_named_only_where_the_ranges_do_not_overlap():
    # 512 MB's whole range lies below the others': a clear winner.
    assert verdict({512: (0.09, 0.10, 0.11), 1024: (0.12, 0.13, 0.14), 3008: (0.2, 0.2, 0.2)}).best == 512
    # 1,024's low end reaches 512's high end: no winner, the two are within noise; 3,008 is not.
    found = verdict({512: (0.09, 0.10, 0.12), 1024: (0.12, 0.13, 0.14), 3008: (0.2, 0.2, 0.2)})
    assert found.best is None and found.within_noise == (512, 1024)
    # Equal medians and ranges: within noise, never a coin toss.
    assert verdict({512: (1.0, 1.0, 1.0), 1024: (1.0, 1.0, 1.0)}).within_noise == (512, 1024)
    assert verdict({}).best is None and verdict({}).within_noise == ()
    # One size: it is the best by itself.
    assert verdict({1024: (1.0, 2.0, 3.0)}).best == 1024


def test_a_verdict_needs_a_difference_that_matters_as_well_as_ranges_apart():
    # Ranges apart, but 1,769 MB's median is only 3 % above 512's: the sample zip's
    # totals look like this (S3's requests are most of the bill), and such a gap moves
    # with the machine's load from run to run.
    close = {512: (0.1183, 0.1194, 0.1206), 1769: (0.1217, 0.1228, 0.1243)}
    assert verdict(close).best is None and verdict(close).within_noise == (512, 1769)
    # The same ranges judged with a 2 % threshold: 512 MB wins.
    assert verdict(close, material=0.02).best == 512
    # 25 % apart and ranges apart: a winner; a third size whose range lies above the best's
    # but whose median is 4 % from it is within noise.
    assert verdict({512: (0.9, 1.0, 1.01), 1024: (1.2, 1.25, 1.3)}).best == 512
    found = verdict({512: (0.9, 1.0, 1.01), 1024: (1.2, 1.25, 1.3), 1769: (1.02, 1.04, 1.06)})
    assert found.best is None and found.within_noise == (512, 1769)


def test_snapstart_weighs_the_billed_init_it_saves_against_restores_and_the_cache():
    # 1,000 environments at 2,048 MB with a 1,500 ms init; the job takes 60 s.
    job = Projection(2048, 10_000, 1_000, 1_520, 20, 0.0, 0.0, 0.0, 0, 0, 0.0, 60.0)
    row = snapstart(job, 1_500.0, "x86_64", US_EAST_1)
    init_saved = 1_000 * 2 * 1.5 * 0.0000166667  # environments × GB × s × price
    restores = 1_000 * 2 * 0.0001397998  # environments × GB restored × price
    cache = 2 * 3 * 3600 * 0.0000015046  # the 3-hour minimum, not the 60 s the job takes
    assert row["init_saved_usd"] == pytest.approx(init_saved)
    assert row["restore_usd"] == pytest.approx(restores)
    assert row["cache_usd"] == pytest.approx(cache) and row["cache_seconds"] == 3 * 3600
    assert row["net_usd"] == pytest.approx(restores + cache - init_saved)
    assert row["pays"] is False  # a restore (per GB) costs more than 1.5 s of billed init
    # An init of 20 s per environment is worth a restore: it pays.
    assert snapstart(job, 20_000.0, "x86_64", US_EAST_1)["pays"] is True


def test_rules_name_their_sources():
    rules = pricing.rules()
    assert rules["billing"]["source"] and rules["scaling"]["source"]
