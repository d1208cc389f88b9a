"""What N images cost on Lambda and how long they take: prices and rules as data,
each with its source and the date it was taken, and the arithmetic that projects
measured durations onto them. Pure: no AWS call, nothing run.

Prices change and differ per Region: they live here, and only here. A Region not
in ``PRICES`` is refused (``prices_for``) rather than priced with another's numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .errors import InputError
from .limits import DEFAULT_CONCURRENCY, DEFAULT_REGION

TAKEN = "2026-11"
LAMBDA_PRICING = "AWS Lambda pricing page (aws.amazon.com/lambda/pricing)"
S3_PRICING = "Amazon S3 pricing page (aws.amazon.com/s3/pricing), S3 Standard"
SCALING_SOURCE = "AWS Lambda Developer Guide, 'Lambda scaling behavior' (concurrency scaling rate)"
INIT_BILLING_SOURCE = "AWS Compute Blog, 'AWS Lambda standardizes billing for INIT Phase' (2025-04-29)"
SNAPSTART_SOURCE = (
    "AWS Lambda pricing page, SnapStart for Python (us-east-1; quoted 2026 from AWS's documentation); "
    "docs.aws.amazon.com/lambda/latest/dg/snapstart.html"
)


@dataclass(frozen=True)
class RegionPrices:
    """On-demand prices of one Region, in USD (first pricing tier, no free tier)."""

    region: str
    gb_second: dict[str, float]  # per architecture: x86_64, arm64
    per_million_requests: float
    s3_put_per_1000: float
    s3_get_per_1000: float
    # SnapStart: the snapshot cache, per GB-second of memory, for every active published
    # version (at least 3 hours), and each restore, per GB restored.
    snapstart_cache_gb_second: float
    snapstart_restore_per_gb: float
    snapstart_minimum_cache_s: int = 3 * 3600
    snapstart_source: str = SNAPSTART_SOURCE
    lambda_source: str = LAMBDA_PRICING
    s3_source: str = S3_PRICING
    taken: str = TAKEN
    note: str = (
        "Lambda duration: first tier (the first 6 billion GB-seconds of a month); "
        "the free tier is not subtracted"
    )

    def as_dict(self) -> dict:
        return asdict(self)


PRICES: dict[str, RegionPrices] = {
    DEFAULT_REGION: RegionPrices(
        region=DEFAULT_REGION,
        gb_second={"x86_64": 0.0000166667, "arm64": 0.0000133334},
        per_million_requests=0.20,
        s3_put_per_1000=0.005,
        s3_get_per_1000=0.0004,
        snapstart_cache_gb_second=0.0000015046,
        snapstart_restore_per_gb=0.0001397998,
    ),
}


def prices_for(region: str) -> RegionPrices:
    """The prices of ``region``; InputError (exit 2) for a Region lambdapack has no prices for."""
    try:
        return PRICES[region]
    except KeyError:
        known = ", ".join(sorted(PRICES))
        raise InputError(
            f"no prices for the Region {region!r}: lambdapack only has {known} "
            f"({LAMBDA_PRICING} and {S3_PRICING}, taken {TAKEN})",
            "Prices differ per Region and change; estimate with --region us-east-1 and compare with "
            "the pricing pages of your Region, or add its prices to lambdapack/pricing.py with their "
            "source and date.",
        ) from None


@dataclass(frozen=True)
class Billing:
    """How Lambda bills duration."""

    granularity_ms: int = 1  # billed duration is rounded up to the next millisecond
    mb_per_gb: int = 1024  # GB-seconds = memory (MB) / 1024 × billed seconds
    init_billed: bool = True  # the INIT phase of a cold start is billed with the first invocation
    source: str = f"{LAMBDA_PRICING}; INIT billing: {INIT_BILLING_SOURCE}, effective 2025-08-01"
    taken: str = TAKEN


@dataclass(frozen=True)
class Scaling:
    """How fast Lambda adds execution environments for one function (S3 invokes it asynchronously)."""

    step: int = 1_000  # concurrent executions added …
    every_s: float = 10.0  # … every this many seconds, per function …
    account_concurrency: int = DEFAULT_CONCURRENCY  # … up to the account's concurrency in the Region
    source: str = SCALING_SOURCE
    taken: str = TAKEN


BILLING = Billing()
SCALING = Scaling()


def billed_ms(duration_ms: float, billing: Billing = BILLING) -> int:
    """A duration as Lambda bills it: rounded up to the granularity (1 ms), at least one unit."""
    units = math.ceil(round(duration_ms, 6) / billing.granularity_ms)  # 12.0000000001 is 12, not 13
    return max(1, units) * billing.granularity_ms


def gb_seconds(billed: int, memory_mb: int, billing: Billing = BILLING) -> float:
    return memory_mb / billing.mb_per_gb * billed / 1000


# --- wall time under Lambda's scaling --------------------------------------------------

US = 1000  # the simulation counts in integer microseconds: no float floor() surprises


@dataclass(frozen=True)
class Fleet:
    """How a burst of ``images`` asynchronous invocations is served: environments added in
    groups (time in seconds, count), and when the last result is written."""

    groups: tuple[tuple[float, int], ...]
    wall_s: float

    @property
    def environments(self) -> int:
        return sum(count for _, count in self.groups)


def fleet(images: int, init_ms: float, cold_ms: float, warm_ms: float, scaling: Scaling = SCALING) -> Fleet:
    """All ``images`` objects arrive at once (each one asynchronous invocation of one image).
    Every ``scaling.every_s`` seconds while events are still waiting, Lambda adds up to
    ``scaling.step`` execution environments, never more than the account concurrency
    (nor than the events waiting). A new environment runs its init, then the first (cold)
    invocation, then warm invocations back to back. The wall time is when the last of
    the ``images`` invocations ends (queueing delay, retries and throttling ignored)."""
    if images <= 0:
        return Fleet((), 0.0)
    first = _us(init_ms) + _us(cold_ms)
    warm = max(1, _us(warm_ms))
    every = round(scaling.every_s * 1_000_000)
    groups: list[tuple[int, int]] = []  # (start µs, count)

    def done(t: int) -> int:
        """Invocations finished by time ``t`` (µs)."""
        total = 0
        for start, count in groups:
            if t >= start + first:
                total += count * (1 + (t - start - first) // warm)
        return total

    created = 0
    while created < min(images, scaling.account_concurrency):
        at = len(groups) * every
        # Every environment created so far holds one invocation (or has nothing left to do).
        waiting = images - done(at) - created
        if waiting <= 0:
            break
        count = min(scaling.step, scaling.account_concurrency - created, waiting)
        groups.append((at, count))
        created += count
    low, high = 0, groups[-1][0] + first + images * warm
    while low < high:  # the first time every image is done
        mid = (low + high) // 2
        if done(mid) >= images:
            high = mid
        else:
            low = mid + 1
    return Fleet(tuple((start / 1_000_000, count) for start, count in groups), low / 1_000_000)


def _us(ms: float) -> int:
    return round(ms * US)


# --- cost of N images --------------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """N images at one memory size: one invocation per image, the S3 requests around it."""

    memory_mb: int
    images: int
    environments: int  # cold starts: one per execution environment
    billed_cold_ms: int  # per cold invocation (its INIT phase included)
    billed_warm_ms: int  # per warm invocation
    gb_seconds: float
    compute_usd: float
    requests_usd: float
    s3_gets: int
    s3_puts: int
    s3_usd: float
    wall_s: float

    @property
    def total_usd(self) -> float:
        return self.compute_usd + self.requests_usd + self.s3_usd

    def as_dict(self) -> dict:
        return {**asdict(self), "total_usd": self.total_usd}


def project(
    images: int,
    memory_mb: int,
    arch: str,
    init_ms: float,
    cold_ms: float,
    warm_ms: float,
    prices: RegionPrices,
    scaling: Scaling = SCALING,
    billing: Billing = BILLING,
) -> Projection:
    """Cost and wall time of ``images`` images, from measured durations (ms) at ``memory_mb``:
    each new execution environment is billed init + its first invocation, every other
    invocation the warm duration, each rounded up to the billing granularity; one Lambda
    request per image; in S3 the upload (PUT), the function's read (GET) and its result (PUT)."""
    run = fleet(images, init_ms, cold_ms, warm_ms, scaling)
    cold = billed_ms(init_ms + cold_ms if billing.init_billed else cold_ms, billing)
    warm = billed_ms(warm_ms, billing)
    total_ms = run.environments * cold + (images - run.environments) * warm
    seconds = gb_seconds(total_ms, memory_mb, billing)
    gets, puts = images, 2 * images
    return Projection(
        memory_mb=memory_mb,
        images=images,
        environments=run.environments,
        billed_cold_ms=cold,
        billed_warm_ms=warm,
        gb_seconds=seconds,
        compute_usd=seconds * prices.gb_second[arch],
        requests_usd=images * prices.per_million_requests / 1_000_000,
        s3_gets=gets,
        s3_puts=puts,
        s3_usd=gets * prices.s3_get_per_1000 / 1000 + puts * prices.s3_put_per_1000 / 1000,
        wall_s=run.wall_s,
    )


def sequential_s(images: int, init_ms: float, warm_ms: float) -> float:
    """One process doing the same work in a loop: one init, then every image warm."""
    return (init_ms + images * warm_ms) / 1000


# A verdict needs more than ranges that do not overlap: every other median must also be more
# than this fraction above the winner's. A run's min–max spread shows the noise within the
# run, not the machine's load changing between runs: on this project's 2-core machine, busy
# with other work, the sample zip's total at 1,769 MB came out 1.03 to 1.12 times its total
# at 512 MB over ten runs (S3's requests, the same at every size, are most of that bill),
# with the ranges apart in some runs and touching in others, while the wall time at 512 MB
# stayed 2 to 2.8 times that at 1,769 MB. Below this fraction the sizes are within noise: a
# difference the estimate cannot promise, smaller than what real S3's latency and Lambda's
# own CPUs change in every figure.
MATERIAL = 0.20


@dataclass(frozen=True)
class Verdict:
    """Which size is best by one figure, said only where the measurements' spread allows it."""

    best: int | None  # the winner: its whole range lies below every other size's range
    within_noise: tuple[int, ...]  # no winner: the sizes too close to the best median to tell
    withheld: str | None = None  # no verdict at all, and why (the measuring itself was unsound)

    def as_dict(self) -> dict:
        return {"memory_mb": self.best, "within_noise": list(self.within_noise), "withheld": self.withheld}


def verdict(figures: dict[int, tuple[float, float, float]], material: float = MATERIAL) -> Verdict:
    """``figures``: per memory size, (low, median, high) of one figure (cost, wall time).
    The size with the lowest median wins only if its high end is below every other size's
    low end and every other median is more than ``material`` (a fraction) above its own;
    otherwise the sizes that fail either test are within noise of it, and no
    winner is named. (Ties on the median: the smaller size.)"""
    if not figures:
        return Verdict(None, ())
    best = min(figures, key=lambda memory: (figures[memory][1], memory))
    _, median, ceiling = figures[best]
    rivals = sorted(
        memory
        for memory, (low, middle, _) in figures.items()
        if memory != best and (low <= ceiling or middle <= median * (1 + material))
    )
    if not rivals:
        return Verdict(best, ())
    return Verdict(None, tuple(sorted([best, *rivals])))


def snapstart(
    projection: Projection,
    init_ms: float,
    arch: str,
    prices: RegionPrices,
    billing: Billing = BILLING,
    *,
    restore_ms: float | None = None,
    restored_first_ms: float | None = None,
    warm_ms: float | None = None,
    scaling: Scaling = SCALING,
) -> dict:
    """SnapStart for the job ``projection`` describes: each new execution environment is
    restored from the snapshot instead of running its init (the init is billed with the
    first invocation since 2025-08-01; a restore is billed per GB restored), and the
    snapshot is cached for as long as the version exists, at least 3 hours.

    With a measured restore (``restore_ms``, the restored environment's first invocation
    ``restored_first_ms`` and the warm duration ``warm_ms``), the same job is projected
    again with restored environments: each billed its restore duration and its first
    invocation (each rounded up, as Lambda's REPORT bills them) instead of init + first
    invocation, with the fleet (environments, wall time) that shorter start gives; the
    saving is the difference of the two jobs' billed duration. Without one, the restore's
    own duration is not counted: the saving is the billed init alone, an upper bound."""
    gb = projection.memory_mb / billing.mb_per_gb
    price = prices.gb_second[arch]
    environments = projection.environments
    init_saved = environments * gb_seconds(billed_ms(init_ms, billing), projection.memory_mb, billing)
    init_saved_usd = init_saved * price if billing.init_billed else 0.0
    measured = restore_ms is not None and restored_first_ms is not None and warm_ms is not None
    wall_s = projection.wall_s
    row: dict = {"memory_mb": projection.memory_mb, "measured": measured}
    if measured:
        assert restore_ms is not None and restored_first_ms is not None and warm_ms is not None
        run = fleet(projection.images, restore_ms, restored_first_ms, warm_ms, scaling)
        environments, wall_s = run.environments, run.wall_s
        restored = billed_ms(restore_ms, billing) + billed_ms(restored_first_ms, billing)
        total_ms = environments * restored + (projection.images - environments) * billed_ms(warm_ms, billing)
        compute_usd = gb_seconds(total_ms, projection.memory_mb, billing) * price
        saved_usd = projection.compute_usd - compute_usd
        row.update(
            restore_ms_each=restore_ms,
            restored_first_ms_each=restored_first_ms,
            billed_restored_ms=restored,
            compute_usd=compute_usd,
        )
    else:
        saved_usd = init_saved_usd
    restore_usd = environments * gb * prices.snapstart_restore_per_gb
    cache_s = max(wall_s, prices.snapstart_minimum_cache_s)
    cache_usd = gb * cache_s * prices.snapstart_cache_gb_second
    return {
        **row,
        "environments": environments,
        "init_saved_ms_each": init_ms,
        "init_saved_usd": init_saved_usd,
        "duration_saved_usd": saved_usd,
        "restore_usd": restore_usd,
        "cache_seconds": cache_s,
        "cache_usd": cache_usd,
        "wall_s": wall_s,
        "net_usd": restore_usd + cache_usd - saved_usd,
        "pays": saved_usd > restore_usd + cache_usd,
    }


def rules() -> dict:
    """Every price and rule the projection used, with its source and date (for output)."""
    return {"billing": asdict(BILLING), "scaling": asdict(SCALING)}
