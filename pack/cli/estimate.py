"""``lambdapack estimate``: parse, call ``lambdapack.local.estimate``, render."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from ..limits import DEFAULT_REGION, MEMORY_MB
from ..pages import (
    duration,
    estimate_page,
    estimate_svg,
    marks,
    measured_cells,
    not_measured,
    price,
    usd,
    usd_range,
    wall_range,
    write_page,
)
from ..pricing import MATERIAL, prices_for
from ..render import say, text
from ..resources import default_cache_dir
from .common import console, err


@click.command("estimate")
@click.argument("zip_path", metavar="ZIP", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--images", "images", type=click.IntRange(min=1), required=True, help="How many images.")
@click.option(
    "--memory",
    "memory_sizes",
    type=click.IntRange(MEMORY_MB.low, MEMORY_MB.high),
    multiple=True,
    help="A memory size in MB to measure (repeatable; default 512, 1024, 1769, 3008).",
)
@click.option("--region", default=DEFAULT_REGION, show_default=True, help="The Region whose prices to use.")
@click.option(
    "--images-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Sample images to classify (default: a few generated at the model's size and at 640x480).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=None,
    help="The account's concurrency in the Region (default: Lambda's default, 1,000).",
)
@click.option(
    "--warm",
    type=click.IntRange(min=1),
    default=None,
    help="Warm invocations per memory size (default: 32, at least 4 per sample image).",
)
@click.option(
    "--cold",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Cold starts per memory size (each a new execution environment): the spread of init.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page (cost and time against memory size).",
)
@click.option(
    "--svg",
    "svg_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the cost and time charts alone as a standalone SVG image (for a README).",
)
def estimate_command(
    zip_path, images, memory_sizes, region, images_dir, concurrency, warm, cold, as_json, html_path, svg_path
) -> None:
    """What N images cost on Lambda and how long they take, from measurements: ZIP runs in the
    local Lambda runtime at each memory size (memory and CPU share enforced in a container of its
    Python), one image per S3-event invocation; the durations are projected with Lambda's and
    S3's published prices and Lambda's scaling rules."""
    from ..local.estimate import MEASURED_MEMORY_MB, estimate, measure

    prices_for(region)  # an unknown Region fails before anything runs
    sizes = list(dict.fromkeys(memory_sizes or MEASURED_MEMORY_MB))
    measurements = measure(
        zip_path,
        sizes,
        default_cache_dir(),
        images_dir=images_dir,
        warm=warm,
        cold=cold,
        region=region,
        log=lambda message: say(err, message),
    )
    result = estimate(measurements, images, region, concurrency)
    for path, page in ((html_path, estimate_page), (svg_path, estimate_svg)):
        if path is not None:
            write_page(path, page(result))
            say(err, f"wrote {path}")
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        render(result, console())
    if not any(row["projection"] for row in result["sizes"]):
        raise SystemExit(1)  # no size could be measured (e.g. every run failed): the rows say why


def render(result: dict, console: Console) -> None:
    images = result["images"]
    title = text(
        f"{result['zip']} — {result['runtime']} {result['architecture']}: "
        f"{images:,} images in {result['region']}"
    )
    table = Table(title=title, title_justify="left")
    for name in ("memory", "vCPU", "init", "1st call", "warm/image", "peak"):
        table.add_column(name, justify="right")
    for name in ("GB-s", "Lambda $", "requests $", "S3 $", "total $", "wall time"):
        table.add_column(name, justify="right")
    table.add_column("")
    notes = []
    for row in result["sizes"]:
        memory = f"{row['memory_mb']:,} MB"
        share = f"{row['vcpus']:.2f}"
        projection = row["projection"]
        if projection is None:
            notes.append(f"{memory}: {not_measured(row)}")
            table.add_row(memory, share, *["—"] * 10, "not measured")
            continue
        mark = marks(row)
        table.add_row(
            memory,
            share,
            *measured_cells(row),
            usd(projection["compute_usd"]),
            usd(projection["requests_usd"]),
            usd(projection["s3_usd"]),
            usd_range(row),
            wall_range(row),
            mark,
            style="bold" if mark else None,
        )
    console.print(table)
    for line in notes:
        say(console, line)
    _render_verdicts(result, console)
    _render_snapstart(result, console)
    sequential = result["sequential"]
    if sequential:
        say(
            console,
            f"one process in a loop on this machine ({sequential['memory_mb']:,} MB share): init "
            f"{sequential['init_ms']:,.0f} ms + {images:,} × {sequential['warm_ms']:,.1f} ms = "
            f"{duration(sequential['wall_s'])}",
        )
    prices, billing, scaling = result["prices"], result["billing"], result["scaling"]
    gb_second = prices["gb_second"][result["architecture"]]
    say(
        console,
        f"prices ({prices['region']}, taken {prices['taken']}): Lambda {result['architecture']} "
        f"{price(gb_second)} per GB-s, ${prices['per_million_requests']:.2f} per 1M requests — "
        f"{prices['lambda_source']}; S3 PUT {price(prices['s3_put_per_1000'])} and GET "
        f"{price(prices['s3_get_per_1000'])} per 1,000 — {prices['s3_source']}. {prices['note']}.",
    )
    say(
        console,
        f"billing: duration rounded up to {billing['granularity_ms']} ms, memory/{billing['mb_per_gb']} GB; "
        f"the init of each cold start is billed — {billing['source']} (taken {billing['taken']}).",
    )
    say(
        console,
        f"scaling: +{scaling['step']:,} concurrent executions every {scaling['every_s']:g} s per "
        f"function, up to the account concurrency {scaling['account_concurrency']:,} — "
        f"{scaling['source']} (taken {scaling['taken']}).",
    )
    measured = result["measured_with"]
    sample = measured["sample_images"]
    say(
        console,
        f"measured: {measured['how']}"
        + (
            ", memory capped and a CPU share of memory/1,769 MB"
            if measured["cpu_capped"]
            else " (UNCAPPED: every size at this machine's full speed)"
        )
        + f"; {len(sample)} sample images ({', '.join(_image_text(i) for i in sample)}); "
        f"{measured['warm_figure']}; S3 was {measured['s3']}.",
    )
    for line in result["assumptions"]:
        say(console, f"assumed: {line}")
    for line in result["notes"]:
        say(console, ("note:", "bold"), f" {line}")


def _render_verdicts(result: dict, console: Console) -> None:
    """Say plainly where the spread leaves no winner (the table's marks say the rest)."""
    for mark, found in result["verdicts"].items():
        if found.get("withheld"):
            say(console, f"{mark}: not named — {found['withheld']} (see the note)")
        elif found["memory_mb"] is None and found["within_noise"]:
            sizes = ", ".join(f"{m:,} MB" for m in found["within_noise"])
            say(
                console,
                f"{mark}: within noise between {sizes} — their ranges overlap or their medians "
                f"are less than {MATERIAL:.0%} apart; measure with more --cold/--warm runs, or on a "
                "quieter machine, if the difference matters",
            )


def _render_snapstart(result: dict, console: Console) -> None:
    snap = result["snapstart"]
    if not snap["available"]:
        say(console, f"SnapStart: not available — {snap['why_not']}")
        return
    for row in snap["sizes"]:
        verdict = "pays" if row["pays"] else "does not pay"
        charges = (
            f"against restores {usd(row['restore_usd'])} + cache {usd(row['cache_usd'])} "
            f"({duration(row['cache_seconds'])})"
        )
        if row["measured"]:
            spread = row["spread"]
            low, high = spread["restore_ms"]
            first_low, first_high = spread["restored_ms"]
            say(
                console,
                f"SnapStart at {row['memory_mb']:,} MB: {verdict} for {result['images']:,} images — "
                f"measured ({spread['restores']} restores): restore {row['restore_ms_each']:,.0f} ms "
                f"[{low:,.0f}–{high:,.0f}] + first invocation {row['restored_first_ms_each']:,.1f} ms "
                f"[{first_low:,.1f}–{first_high:,.1f}] instead of init {row['init_saved_ms_each']:,.0f} ms; "
                f"billed duration saved {usd(row['duration_saved_usd'])} ({row['environments']:,} "
                f"environments) {charges}",
            )
        else:
            say(
                console,
                f"SnapStart at {row['memory_mb']:,} MB: {verdict} for {result['images']:,} images — "
                f"billed init saved {usd(row['init_saved_usd'])} ({row['environments']:,} environments × "
                f"{row['init_saved_ms_each']:,.0f} ms) {charges}; an upper bound: "
                f"{row['why_not_measured']}",
            )
    prices = result["prices"]
    say(
        console,
        f"SnapStart prices: cache {price(prices['snapstart_cache_gb_second'])} per GB-s (at least "
        f"{prices['snapstart_minimum_cache_s'] // 3600} h per published version), restore "
        f"{price(prices['snapstart_restore_per_gb'])} per GB — {prices['snapstart_source']} "
        f"(taken {prices['taken']}).",
    )


def _image_text(image: dict) -> str:
    size = f"{image['width']}x{image['height']}" if image.get("width") else "?"
    return f"{image['name']} {size}"


COMMANDS = (estimate_command,)
