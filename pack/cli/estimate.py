"""``lambdapack estimate``: parse, call ``lambdapack.local.estimate``, render."""

from __future__ import annotations

import json
from html import escape as html_escape
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..limits import MEMORY_MB
from ..pricing import prices_for
from ..resources import default_cache_dir
from .common import err


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
@click.option("--region", default="us-east-1", show_default=True, help="The Region whose prices to use.")
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
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page (cost and time against memory size).",
)
def estimate_command(
    zip_path, images, memory_sizes, region, images_dir, concurrency, warm, as_json, html_path
) -> None:
    """What N images cost on Lambda and how long they take, from measurements: ZIP runs in the
    local Lambda runtime at each memory size (memory and CPU share enforced in a container of its
    Python), one image per S3-event invocation; the durations are projected with Lambda's and
    S3's published prices and Lambda's scaling rules."""
    from ..local.estimate import DEFAULT_MEMORY_MB, estimate, measure

    prices_for(region)  # an unknown Region fails before anything runs
    sizes = list(dict.fromkeys(memory_sizes or DEFAULT_MEMORY_MB))
    err.print(f"measuring {zip_path} at {', '.join(f'{m:,} MB' for m in sizes)} …", highlight=False)
    measurements = measure(
        zip_path,
        sizes,
        default_cache_dir(),
        images_dir=images_dir,
        warm=warm,
        region=region,
        log=lambda line: err.print(line, markup=False, highlight=False),
    )
    result = estimate(measurements, images, region, concurrency)
    if html_path is not None:
        html_path.write_text(html_page(result))
        err.print(f"wrote {html_path}", highlight=False)
    if as_json:
        click.echo(json.dumps(result, indent=1))
    else:
        render(result, Console())
    if result["cheapest_memory_mb"] is None:
        raise SystemExit(1)  # no size could be measured: the rows say why


def render(result: dict, console: Console) -> None:
    images = result["images"]
    title = (
        f"{escape(result['zip'])} — {result['runtime']} {result['architecture']}: "
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
            notes.append(f"{memory}: {_not_measured(row)}")
            table.add_row(memory, share, *["—"] * 10, "not measured")
            continue
        marks = _marks(row)
        table.add_row(
            memory,
            share,
            *_measured_cells(row),
            usd(projection["compute_usd"]),
            usd(projection["requests_usd"]),
            usd(projection["s3_usd"]),
            usd(projection["total_usd"]),
            duration(projection["wall_s"]),
            marks,
            style="bold" if marks else None,
        )
    console.print(table)
    for line in notes:
        console.print(escape(line), highlight=False)
    sequential = result["sequential"]
    if sequential:
        console.print(
            f"one process in a loop on this machine ({sequential['memory_mb']:,} MB share): init "
            f"{sequential['init_ms']:,.0f} ms + {images:,} × {sequential['warm_ms']:,.1f} ms = "
            f"{duration(sequential['wall_s'])}",
            highlight=False,
        )
    prices, billing, scaling = result["prices"], result["billing"], result["scaling"]
    gb_second = prices["gb_second"][result["architecture"]]
    console.print(
        f"prices ({prices['region']}, taken {prices['taken']}): Lambda {result['architecture']} "
        f"{price(gb_second)} per GB-s, ${prices['per_million_requests']:.2f} per 1M requests — "
        f"{prices['lambda_source']}; S3 PUT {price(prices['s3_put_per_1000'])} and GET "
        f"{price(prices['s3_get_per_1000'])} per 1,000 — {prices['s3_source']}. {prices['note']}.",
        highlight=False,
    )
    console.print(
        f"billing: duration rounded up to {billing['granularity_ms']} ms, memory/{billing['mb_per_gb']} GB; "
        f"the init of each cold start is billed — {billing['source']} (taken {billing['taken']}).",
        highlight=False,
    )
    console.print(
        f"scaling: +{scaling['step']:,} concurrent executions every {scaling['every_s']:g} s per "
        f"function, up to the account concurrency {scaling['account_concurrency']:,} — "
        f"{scaling['source']} (taken {scaling['taken']}).",
        highlight=False,
    )
    measured = result["measured_with"]
    sample = measured["sample_images"]
    console.print(
        f"measured: {escape(measured['how'])}"
        + (
            ", memory capped and a CPU share of memory/1,769 MB"
            if measured["cpu_capped"]
            else " (UNCAPPED: every size at this machine's full speed)"
        )
        + f"; {len(sample)} sample images ({', '.join(_image_text(i) for i in sample)}); "
        f"{measured['warm_figure']}; S3 was {measured['s3']}.",
        highlight=False,
    )
    for line in result["assumptions"]:
        console.print(f"assumed: {escape(line)}", highlight=False)
    for line in result["notes"]:
        console.print(f"[bold]note:[/bold] {escape(line)}", highlight=False)


def usd(value: float) -> str:
    if value >= 10:
        return f"${value:,.2f}"
    if value >= 0.01:
        return f"${value:.4f}"
    return f"${value:.6f}"


def price(value: float) -> str:
    """A unit price as the pricing pages write it: every digit, none trailing."""
    return "$" + f"{value:.10f}".rstrip("0").rstrip(".")


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:,.0f} ms"
    if seconds < 120:
        return f"{seconds:,.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.1f} min"
    return f"{seconds / 3600:,.1f} h"


def _error_text(error: dict | None) -> str | None:
    return f"{error.get('errorType')}: {error.get('errorMessage')}" if error else None


def _image_text(image: dict) -> str:
    size = f"{image['width']}x{image['height']}" if image.get("width") else "?"
    return f"{image['name']} {size}"


# --- a self-contained page: inline SVG and CSS, nothing fetched, no script ---------------------

CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 560, 260, 70, 40, 30


def html_page(result: dict) -> str:
    e = html_escape
    rows = result["sizes"]
    cost = [(r["memory_mb"], r["projection"] and r["projection"]["total_usd"], r["cheapest"]) for r in rows]
    wall = [(r["memory_mb"], r["projection"] and r["projection"]["wall_s"], r["fastest"]) for r in rows]
    table = "".join(
        "<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in _html_cells(row)) + "</tr>" for row in rows
    )
    sequential = result["sequential"]
    loop = (
        f"<p>One process in a loop on this machine ({sequential['memory_mb']:,} MB share): "
        f"{e(duration(sequential['wall_s']))} for {result['images']:,} images.</p>"
        if sequential
        else ""
    )
    prices, billing, scaling = result["prices"], result["billing"], result["scaling"]
    sources = [
        f"Prices ({prices['region']}, taken {prices['taken']}): Lambda {result['architecture']} "
        f"{price(prices['gb_second'][result['architecture']])} per GB-s and "
        f"${prices['per_million_requests']:.2f} per 1M requests ({prices['lambda_source']}); "
        f"S3 PUT {price(prices['s3_put_per_1000'])} and GET {price(prices['s3_get_per_1000'])} per 1,000 "
        f"({prices['s3_source']}). {prices['note']}.",
        f"Billing: duration rounded up to {billing['granularity_ms']} ms; init billed ({billing['source']}).",
        f"Scaling: +{scaling['step']:,} concurrent executions every {scaling['every_s']:g} s, up to "
        f"{scaling['account_concurrency']:,} ({scaling['source']}, taken {scaling['taken']}).",
        f"Measured with {result['measured_with']['how']}"
        + ("" if result["measured_with"]["cpu_capped"] else " — UNCAPPED: every size at full speed")
        + f"; {result['measured_with']['warm_figure']}.",
        *(f"Assumed: {line}" for line in result["assumptions"]),
        *(f"Note: {line}" for line in result["notes"]),
    ]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>lambdapack estimate: {e(Path(result["zip"]).name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: .25em .6em; text-align: right; }}
svg {{ margin: .5em 1em .5em 0; }}
.muted {{ color: #777; }}
</style></head><body>
<h1>{result["images"]:,} images on Lambda: cost and time against memory size</h1>
<p>{e(result["zip"])} — {e(result["runtime"])} {e(result["architecture"])}, {e(result["region"])}</p>
{_bars("total cost (USD)", cost, usd, "#2a7d2a", "cheapest")}
{_bars("wall time (all images done)", wall, duration, "#2a5dad", "fastest")}
<table><tr>{"".join(f"<th>{e(h)}</th>" for h in HTML_HEADERS)}</tr>{table}</table>
{loop}
<ul>{"".join(f"<li>{e(line)}</li>" for line in sources)}</ul>
</body></html>
"""


HTML_HEADERS = (
    "memory",
    "vCPU",
    "init",
    "1st call",
    "warm/image",
    "peak",
    "GB-s",
    "total",
    "wall time",
    "",
)


def _measured_cells(row: dict) -> list[str]:
    """The measured figures of a size, as both the table and the page show them."""
    return [
        f"{row['init_ms']:,.0f} ms",
        f"{row['cold_ms']:,.1f} ms",
        f"{row['warm_per_image_ms']:,.1f} ms",
        f"{row['peak_memory_mb']} MB" if row["peak_memory_mb"] else "?",
        f"{row['projection']['gb_seconds']:,.1f}",
    ]


def _marks(row: dict) -> str:
    return ", ".join(mark for mark in ("cheapest", "fastest") if row[mark])


def _not_measured(row: dict) -> str:
    return row["note"] or _error_text(row["error"]) or "not measured"


def _html_cells(row: dict) -> list[str]:
    projection = row["projection"]
    head = [f"{row['memory_mb']:,} MB", f"{row['vcpus']:.2f}"]
    if projection is None:
        return [*head, "—", "—", "—", "—", "—", "—", "—", _not_measured(row)]
    return [
        *head,
        *_measured_cells(row),
        usd(projection["total_usd"]),
        duration(projection["wall_s"]),
        _marks(row),
    ]


def _bars(title: str, points: list, fmt, colour: str, best: str) -> str:
    """A bar per memory size (value None: not measured), the best one outlined."""
    e = html_escape
    values = [value for _, value, _ in points if value is not None]
    top = max(values) if values else 1.0
    top = top or 1.0
    slot = (CHART_W - PAD_L - 10) / max(len(points), 1)
    plot_h = CHART_H - PAD_B - PAD_T
    parts = [
        f'<svg width="{CHART_W}" height="{CHART_H}" '
        f'viewBox="0 0 {CHART_W} {CHART_H}" role="img" aria-label="{e(title)}">',
        f'<text x="{PAD_L}" y="18" font-size="14" font-weight="bold">{e(title)}</text>',
        f'<line x1="{PAD_L}" y1="{CHART_H - PAD_B}" x2="{CHART_W - 10}" y2="{CHART_H - PAD_B}" '
        'stroke="#444"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{CHART_H - PAD_B}" stroke="#444"/>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + 4}" font-size="11" text-anchor="end">{e(fmt(top))}</text>',
        f'<text x="{PAD_L - 6}" y="{CHART_H - PAD_B}" font-size="11" text-anchor="end">0</text>',
    ]
    for index, (memory, value, marked) in enumerate(points):
        x = PAD_L + index * slot + slot * 0.2
        width = slot * 0.6
        label_x = x + width / 2
        parts.append(
            f'<text x="{label_x:.1f}" y="{CHART_H - PAD_B + 16}" font-size="11" '
            f'text-anchor="middle">{memory:,} MB</text>'
        )
        if value is None:
            parts.append(
                f'<text x="{label_x:.1f}" y="{CHART_H - PAD_B - 8}" font-size="11" fill="#777" '
                'text-anchor="middle">not measured</text>'
            )
            continue
        height = max(1.0, plot_h * value / top)
        y = CHART_H - PAD_B - height
        outline = ' stroke="#000" stroke-width="2"' if marked else ""
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="{colour}"'
            f"{outline}><title>{memory:,} MB: {e(fmt(value))}</title></rect>"
        )
        parts.append(
            f'<text x="{label_x:.1f}" y="{y - 4:.1f}" font-size="11" text-anchor="middle">'
            f"{e(fmt(value))}{' — ' + best if marked else ''}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


COMMANDS = (estimate_command,)
