"""Every page lambdapack writes, self-contained: inline SVG and CSS, no script, nothing fetched.

- ``estimate_page`` and ``estimate_svg``: an estimate's cost and wall time against memory size
  (``lambdapack estimate --html/--svg``); the page's table cells are the terminal table's
  (``measured_cells``, ``marks``, ``not_measured``: written once, here).
- ``evaluate_page``: a zip's answers on labelled images: the confusion matrix, per-class
  precision and recall, the images answered wrong (``lambdapack evaluate --html``).
- ``report_page``: what is in a zip as a treemap, area = unzipped size, by package then file
  (``lambdapack report --html``), laid out by ``squarify``.

Sizes read as everywhere else (``render.size``). Numbers a test or a reader may check against
the JSON are also on the elements as ``data-*`` attributes.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .packing.report import FileRow, Report
from .render import size, visible
from .scoring import fraction, percent

# --- shared: the document, its style, escaping, writing ----------------------------------------

CSS = """\
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 80em; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; text-align: right; white-space: nowrap; }
td:last-child { white-space: normal; }
th { background: #f4f4f4; }
td.name, th.name { text-align: left; }
svg { margin: .5em 1em .5em 0; }
.muted { color: #777; }
.over { color: #b00; font-weight: bold; }
"""
FONT = "system-ui, sans-serif"  # the charts carry it, for when they stand alone


def esc(value: object) -> str:
    """Outside text in HTML: markup escaped, control and bidirectional characters shown as
    escapes (``render.visible``), so a file name cannot turn a label around."""
    return html.escape(visible(value))


def document(title: str, body: str, css: str = "") -> str:
    """An HTML page with the shared style (plus ``css``) and nothing to fetch."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(title)}</title>
<style>
{CSS}{css}</style></head><body>
{body}
</body></html>
"""


def write_page(path: Path, text: str) -> None:
    """Write a page or an image (its folder made if missing); a path that cannot be written is
    the user's error, not a traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from exc


# --- the estimate's figures, as the terminal table and the page both write them ----------------


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


def measured_cells(row: dict) -> list[str]:
    """The measured figures of a size with their spread (min–max), as both the table and
    the page show them."""
    spread = row.get("spread") or {}

    def ranged(key: str, digits: int) -> str:
        low, high = spread.get(key) or (row[key], row[key])
        shown = f"{row[key]:,.{digits}f} ms"
        return shown if low == high else f"{shown} [{low:,.{digits}f}–{high:,.{digits}f}]"

    return [
        ranged("init_ms", 0),
        ranged("cold_ms", 1),
        ranged("warm_per_image_ms", 1),
        f"{row['peak_memory_mb']} MB" if row["peak_memory_mb"] else "?",
        f"{row['projection']['gb_seconds']:,.1f}",
    ]


def usd_range(row: dict) -> str:
    """The projected total with its range (the projection at both ends of the spread)."""
    low, high = (row.get("spread") or {}).get("total_usd") or [row["projection"]["total_usd"]] * 2
    shown = usd(row["projection"]["total_usd"])
    return shown if low == high else f"{shown} [{usd(low)}–{usd(high)}]"


def wall_range(row: dict) -> str:
    low, high = (row.get("spread") or {}).get("wall_s") or [row["projection"]["wall_s"]] * 2
    shown = duration(row["projection"]["wall_s"])
    return shown if low == high else f"{shown} [{duration(low)}–{duration(high)}]"


def marks(row: dict) -> str:
    """cheapest/fastest where the spread allows the verdict; else the sizes within noise."""
    words = [mark for mark in ("cheapest", "fastest") if row[mark]]
    tied = row.get("within_noise") or []
    if tied:
        words.append(f"{' & '.join(tied)} within noise")
    return ", ".join(words)


def error_text(error: dict | None) -> str | None:
    return f"{error.get('errorType')}: {error.get('errorMessage')}" if error else None


def not_measured(row: dict) -> str:
    return row["note"] or error_text(row["error"]) or "not measured"


# --- the estimate: two bar charts and the table -------------------------------------------------

CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 560, 270, 70, 40, 44  # the top bar's figure under the title
SVG_HEAD, SVG_FOOT = 34, 26  # the standalone image's title and source lines

ESTIMATE_HEADERS = (
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


def estimate_page(result: dict) -> str:
    """The estimate's charts, its table (the terminal's cells) and every source it used."""
    rows = result["sizes"]
    table = "".join(
        f'<tr data-memory-mb="{row["memory_mb"]}">'
        + "".join(f"<td>{esc(cell)}</td>" for cell in _estimate_cells(row))
        + "</tr>"
        for row in rows
    )
    sequential = result["sequential"]
    loop = (
        f"<p>One process in a loop on this machine ({sequential['memory_mb']:,} MB share): "
        f"{esc(duration(sequential['wall_s']))} for {result['images']:,} images.</p>"
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
    cost, wall = _estimate_charts(result)
    body = f"""<h1>{result["images"]:,} images on Lambda: cost and time against memory size</h1>
<p>{esc(result["zip"])} — {esc(result["runtime"])} {esc(result["architecture"])}, {esc(result["region"])}</p>
{cost}
{wall}
<table class="sizes"><tr>{"".join(f"<th>{esc(h)}</th>" for h in ESTIMATE_HEADERS)}</tr>{table}</table>
{loop}
<ul>{"".join(f"<li>{esc(line)}</li>" for line in sources)}</ul>"""
    return document(f"lambdapack estimate: {Path(result['zip']).name}", body)


def estimate_svg(result: dict) -> str:
    """The two charts side by side as one standalone SVG image (for a README), on white."""
    width, height = 2 * CHART_W, SVG_HEAD + CHART_H + SVG_FOOT
    cost, wall = _estimate_charts(result, y=SVG_HEAD)
    title = (
        f"{result['images']:,} images on Lambda — {result['runtime']} {result['architecture']}, "
        f"{result['region']}: cost and time against memory size"
    )
    prices = result["prices"]
    source = (
        f"Projected by lambdapack estimate from runs in the local Lambda runtime; prices "
        f"{prices['region']}, taken {prices['taken']}. Outlined: the cheapest and the fastest size."
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{FONT}" role="img" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>"
        f'<rect class="background" width="{width}" height="{height}" fill="#fff"/>'
        f'<text x="{PAD_L}" y="22" font-size="15" font-weight="bold" fill="#222">{esc(title)}</text>'
        f"{cost}{wall}"
        f'<text x="{PAD_L}" y="{height - 9}" font-size="11" fill="#777">{esc(source)}</text>'
        "</svg>\n"
    )


def _estimate_charts(result: dict, y: int | None = None) -> tuple[str, str]:
    rows = result["sizes"]
    cost = [(r["memory_mb"], r["projection"] and r["projection"]["total_usd"], r["cheapest"]) for r in rows]
    wall = [(r["memory_mb"], r["projection"] and r["projection"]["wall_s"], r["fastest"]) for r in rows]
    at = (0, y) if y is not None else None
    right = (CHART_W, y) if y is not None else None
    return (
        _bars("cost", "total cost (USD)", cost, usd, "#2a7d2a", "cheapest", at),
        _bars("wall", "wall time (all images done)", wall, duration, "#2a5dad", "fastest", right),
    )


def _estimate_cells(row: dict) -> list[str]:
    projection = row["projection"]
    head = [f"{row['memory_mb']:,} MB", f"{row['vcpus']:.2f}"]
    if projection is None:
        return [*head, "—", "—", "—", "—", "—", "—", "—", not_measured(row)]
    return [
        *head,
        *measured_cells(row),
        usd(projection["total_usd"]),
        duration(projection["wall_s"]),
        marks(row),
    ]


def _bars(
    name: str,
    title: str,
    points: list[tuple[int, float | None, bool]],
    fmt: Callable[[float], str],
    colour: str,
    best: str,
    at: tuple[int, int] | None = None,
) -> str:
    """A bar per memory size (value None: not measured), the best one outlined. ``at``: its
    place inside a larger SVG."""
    values = [value for _, value, _ in points if value is not None]
    top = (max(values) if values else 1.0) or 1.0
    slot = (CHART_W - PAD_L - 10) / max(len(points), 1)
    plot_h = CHART_H - PAD_B - PAD_T
    place = f'x="{at[0]}" y="{at[1]}" ' if at else ""
    parts = [
        f'<svg class="chart" data-chart="{name}" {place}width="{CHART_W}" height="{CHART_H}" '
        f'viewBox="0 0 {CHART_W} {CHART_H}" font-family="{FONT}" role="img" aria-label="{esc(title)}">',
        f'<text x="{PAD_L}" y="18" font-size="14" font-weight="bold">{esc(title)}</text>',
        f'<line x1="{PAD_L}" y1="{CHART_H - PAD_B}" x2="{CHART_W - 10}" y2="{CHART_H - PAD_B}" '
        'stroke="#444"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{CHART_H - PAD_B}" stroke="#444"/>',
        f'<text x="{PAD_L - 6}" y="{PAD_T + 4}" font-size="11" text-anchor="end">{esc(fmt(top))}</text>',
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
        outline = f' stroke="#000" stroke-width="2" data-mark="{best}"' if marked else ""
        parts.append(
            f'<rect class="bar" data-memory-mb="{memory}" data-value="{value!r}" x="{x:.1f}" y="{y:.1f}" '
            f'width="{width:.1f}" height="{height:.1f}" fill="{colour}"{outline}>'
            f"<title>{memory:,} MB: {esc(fmt(value))}</title></rect>"
        )
        parts.append(
            f'<text x="{label_x:.1f}" y="{y - 4:.1f}" font-size="11" text-anchor="middle">'
            f"{esc(fmt(value))}{' — ' + best if marked else ''}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# --- the squarified treemap ---------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def area(self) -> float:
        return self.w * self.h


def squarify(sizes: Sequence[float], box: Box) -> list[Box]:
    """Boxes that tile ``box``, one per size (all > 0, returned in the order given), each
    with an area proportional to its size: the squarified treemap of Bruls, Huizing and van
    Wijk (2000). Largest first, sizes fill a strip along the shorter side of the space left
    for as long as adding one does not make the strip's worst aspect ratio worse; then the
    strip is laid down and the next one starts."""
    if any(value <= 0 for value in sizes):
        raise ValueError("squarify needs sizes above zero")
    if not sizes:
        return []
    boxes: list[Box | None] = [None] * len(sizes)
    scale = box.area / sum(sizes)
    free, strip = box, []
    for index in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        area = sizes[index] * scale
        areas = [a for _, a in strip]
        if strip and _worst([*areas, area], free) > _worst(areas, free):
            free = _lay_strip(strip, free, boxes)
            strip = []
        strip.append((index, area))
    _lay_strip(strip, free, boxes)
    return boxes  # type: ignore[return-value]


def _worst(areas: list[float], free: Box) -> float:
    """The worst aspect ratio (≥ 1) of ``areas`` laid as a strip along the shorter side of ``free``."""
    side, total = min(free.w, free.h), sum(areas)
    if side <= 0 or total <= 0:
        return float("inf")
    return max(side * side * max(areas) / (total * total), total * total / (side * side * min(areas)))


def _lay_strip(strip: list[tuple[int, float]], free: Box, boxes: list[Box | None]) -> Box:
    """Lay the strip along the shorter side of ``free``; return the space left."""
    total = sum(area for _, area in strip)
    if free.w >= free.h:  # a column at the left, as tall as the space
        thick = total / free.h if free.h > 0 else 0.0
        y = free.y
        for index, area in strip:
            length = area / thick if thick else 0.0
            boxes[index] = Box(free.x, y, thick, length)
            y += length
        return Box(free.x + thick, free.y, max(free.w - thick, 0.0), free.h)
    thick = total / free.w  # a row at the top, as wide as the space
    x = free.x
    for index, area in strip:
        length = area / thick if thick else 0.0
        boxes[index] = Box(x, free.y, length, thick)
        x += length
    return Box(free.x, free.y + thick, free.w, max(free.h - thick, 0.0))


# --- the report: a zip's contents as a treemap --------------------------------------------------

MAP_W, MAP_H = 1200, 720
PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
# A character's width in font sizes, generous (wide letters, bold): whether a label fits. A label
# is also clipped to its box (a nested <svg>), so a longer one than estimated never leaves it.
CHAR_W = 0.64
GOLDEN_ANGLE = 137.508  # hues this far apart never repeat and stay apart from their neighbours


def package_colours(names: Sequence[str]) -> dict[str, str]:
    """A distinct colour per package: the palette, then hues spaced by the golden angle."""
    colours = {}
    for index, name in enumerate(names):
        if index < len(PALETTE):
            colours[name] = PALETTE[index]
        else:
            extra = index - len(PALETTE)
            lightness = (48, 62, 40)[extra % 3]
            colours[name] = f"hsl({(extra * GOLDEN_ANGLE + 15) % 360:.1f}, 55%, {lightness}%)"
    return colours


REPORT_CSS = """\
.treemap { max-width: 100%; height: auto; border: 1px solid #999; }
.swatch { display: inline-block; width: .9em; height: .9em; vertical-align: -.1em; margin-right: .4em; }
.totals { font-size: 1.15em; }
"""


@dataclass(frozen=True)
class Tile:
    """A rectangle of the treemap: a package (``path`` None) or one of its files."""

    package: str
    path: str | None
    unzipped: int
    box: Box


def treemap(files: Sequence[FileRow], box: Box) -> list[tuple[Tile, list[Tile]]]:
    """Packages tiling ``box`` by unzipped size, each tiled by its files (largest first).
    Empty files have no area and no tile."""
    by_package: dict[str, list[FileRow]] = {}
    for file in sorted(files, key=lambda f: (-f.unzipped, f.path)):
        if file.unzipped > 0:
            by_package.setdefault(file.package, []).append(file)
    names = sorted(by_package, key=lambda name: (-sum(f.unzipped for f in by_package[name]), name))
    totals = [sum(f.unzipped for f in by_package[name]) for name in names]
    tiles = []
    for name, total, package_box in zip(names, totals, squarify(totals, box), strict=True):
        members = by_package[name]
        file_boxes = squarify([f.unzipped for f in members], package_box)
        tiles.append(
            (
                Tile(name, None, total, package_box),
                [Tile(name, f.path, f.unzipped, b) for f, b in zip(members, file_boxes, strict=True)],
            )
        )
    return tiles


def report_page(report: Report, files: Sequence[FileRow]) -> str:
    """The zip's totals against Lambda's limits, then its files as a treemap: area = each
    file's unzipped size, grouped by package; every rectangle's tooltip gives path and size."""
    z = report.zip
    name = Path(z.path).name
    colour = package_colours([row.name for row in report.packages])
    zipped_of = {file.path: file.zipped for file in files}
    empty = sum(1 for file in files if file.unzipped == 0)
    tiles = treemap(files, Box(0, 0, MAP_W, MAP_H))
    target = report.target
    where = (
        f"{esc(target['runtime'])} {esc(target['architecture'])} ({esc(target['os'])}, glibc "
        f"{esc(target['glibc'])})"
        if target
        else "no target recorded in this zip"
    )
    empty_note = f" {empty:,} empty files have no area." if empty else ""
    body = f"""<h1>What is in {esc(name)}</h1>
<p class="muted">{esc(z.path)} — {where}</p>
<p class="totals"><span data-total="files" data-count="{z.files}">{z.files:,} files</span>:
<b data-total="zipped" data-bytes="{z.zipped_bytes}">{esc(size(z.zipped_bytes))}</b> zipped,
<b data-total="unzipped" data-bytes="{z.unzipped_bytes}">{esc(size(z.unzipped_bytes))}</b> unzipped</p>
{_limits_table(report)}
{_model_section(report)}
<h2>Files by package</h2>
<p>Area is each file's <b>uncompressed (unzipped) size</b>; the outlined blocks are packages (distributions,
from their RECORD; the handler, the model and the build record by role).{empty_note}
Hover over a rectangle for its path and size.</p>
{_treemap_svg(tiles, colour, zipped_of)}
{_packages_table(report, colour)}
<p class="muted">sha256 {esc(z.sha256)} · CodeSha256 {esc(z.code_sha256)} (what Lambda reports) ·
sizes: MB = 1,048,576 bytes, KB = 1,024 bytes.</p>"""
    return document(f"lambdapack report: {name}", body, REPORT_CSS)


SOURCE_FORMATS = {
    "keras": "Keras (.keras/.h5)",
    "saved_model": "TensorFlow SavedModel",
    "tflite": "TensorFlow Lite",
}


def model_facts(report: Report) -> list[tuple[str, str]]:
    """The model's story as (fact, text) pairs, from the build record the zip carries and
    the smoke run pack recorded: source format, conversion, quantization, the conversion
    check's agreement, labelled accuracy when measured, the smoke run."""
    model = report.section("model")
    if not model:
        return [("model", "no build record in this zip: not packed by lambdapack")]
    served = (
        "SavedModel (served by TensorFlow)"
        if model.get("format") == "saved_model"
        else ".tflite (run by LiteRT)"
    )
    source = SOURCE_FORMATS.get(model["kind"], model["kind"])
    if model.get("source"):
        source += f": {Path(model['source']).name}"
    if model["kind"] == "tflite":
        conversion = f"none: packed as it is ({size(model['bytes'])})"
    else:
        tf = f", converted by TensorFlow {model['tensorflow']}" if model.get("tensorflow") else ""
        conversion = (
            f"{SOURCE_FORMATS.get(model['kind'], model['kind'])} → {served}{tf}: {size(model['bytes'])}"
        )
    facts = [("source", source), ("conversion", conversion), ("quantization", model["quantize"])]
    spec = model.get("input")
    if isinstance(spec, dict) and {"height", "width"} <= set(spec):
        classes = f", {model['classes']} classes" if model.get("classes") else ""
        facts.append(
            (
                "input",
                f"{spec['height']}×{spec['width']}×{spec.get('channels', '?')}, "
                f"scale {spec.get('scale', '?')}, resize {spec.get('resize', '?')}{classes}",
            )
        )
    facts.append(("config", model["config"] or "none beside the model: defaults, or read from the model"))
    check = model.get("conversion_check")
    if check:
        facts.append(
            (
                "conversion check",
                f"top-1 agreement {check['top1_agreement']:.1%} with the original on "
                f"{check['inputs']} inputs (samples and seeded random ones), largest probability difference "
                f"{check['max_probability_difference']:.2g}",
            )
        )
    else:
        facts.append(("conversion check", "none: nothing was converted"))
    smoke = report.smoke
    accuracy = _labelled_accuracy(report)
    facts.append(("labelled accuracy", accuracy or "not measured (lambdapack evaluate ZIP DIR measures it)"))
    if smoke is None:
        facts.append(("smoke run", "not known: pack's report.json of this zip is not beside it"))
    elif smoke.get("ran"):
        difference = smoke.get("max_difference")
        agrees = "" if difference is None else f", answers within {difference:.2g} of the conversion check"
        facts.append(
            (
                "smoke run",
                f"{smoke['images']} images classified by {smoke.get('interpreter') or 'the target Python'}"
                f"{agrees} (import {smoke['import_s']:.2f} s, "
                f"first inference {smoke['first_inference_ms']:.1f} ms)",
            )
        )
    else:
        facts.append(("smoke run", f"not run: {smoke.get('note', '')}"))
    return facts


def _labelled_accuracy(report: Report) -> str | None:
    """Top-1 on pack's labelled samples, where pack measured it: the smoke run's ``accuracy``
    (the zip's and the original model's), else the build record's ``model.labelled`` (the
    original model's, measured before the zip existed)."""
    smoke = (report.smoke or {}).get("accuracy")
    if isinstance(smoke, dict) and smoke.get("zip_correct") is not None:
        images = smoke["images"]
        return (
            f"the zip {fraction(smoke['zip_correct'], images)}, the original model "
            f"{fraction(smoke['original_correct'], images)} on pack's labelled samples"
            + _preprocessing(smoke)
        )
    model = (report.section("model") or {}).get("labelled")
    if isinstance(model, dict) and model.get("original_correct") is not None:
        return (
            f"the original model {fraction(model['original_correct'], model['images'])} "
            "on pack's labelled samples" + _preprocessing(model)
        )
    return None


def _preprocessing(measured: dict) -> str:
    chosen = measured.get("preprocessing")
    if not isinstance(chosen, dict):
        return ""
    return f" (scale {chosen.get('scale')}, resize {chosen.get('resize')})"


def _model_section(report: Report) -> str:
    rows = "".join(
        f'<tr data-fact="{esc(fact)}"><th class="name">{esc(fact)}</th>'
        f'<td class="name">{esc(value)}</td></tr>'
        for fact, value in model_facts(report)
    )
    return f'<h2>The model</h2>\n<table class="model">{rows}</table>'


def _limits_table(report: Report) -> str:
    rows = []
    for limit in report.limits:
        share = limit.value / limit.limit
        status = "ok" if limit.ok else ("OVER" if limit.fatal else "over")
        note = "" if limit.ok else f" — {esc(limit.remedy)}"
        fill = "#59a14f" if limit.ok else ("#c00" if limit.fatal else "#e8a33d")
        gauge = (
            f'<svg class="gauge" width="160" height="12" viewBox="0 0 160 12">'
            f'<rect width="160" height="12" fill="#eee"/>'
            f'<rect width="{160 * min(share, 1.0):.1f}" height="12" fill="{fill}"/></svg>'
        )
        rows.append(
            f'<tr data-limit="{esc(limit.name)}" data-value="{limit.value}" data-limit-bytes="{limit.limit}">'
            f'<td class="name">{esc(limit.name)}</td><td>{esc(size(limit.value))}</td>'
            f"<td>{esc(size(limit.limit))}</td><td>{share:.0%}</td><td>{gauge}</td>"
            f'<td class="name{"" if limit.ok else " over"}">{status}{note}</td></tr>'
        )
    head = _head_row("Lambda limit", "this zip", "limit", "used", "", "")
    return f'<table class="limits">{head}{"".join(rows)}</table>'


def _treemap_svg(tiles: list[tuple[Tile, list[Tile]]], colour: dict[str, str], zipped_of: dict) -> str:
    parts = [
        f'<svg class="treemap" width="{MAP_W}" height="{MAP_H}" viewBox="0 0 {MAP_W} {MAP_H}" '
        f'font-family="{FONT}" role="img" aria-label="files by package, area = unzipped size">'
    ]
    for package, members in tiles:
        fill = colour.get(package.package, PALETTE[-1])
        p = package.box
        parts.append(
            f'<g class="package" data-package="{esc(package.package)}" data-bytes="{package.unzipped}">'
            f"<title>{esc(package.package)}: {esc(size(package.unzipped))} ({package.unzipped:,} bytes) "
            f"in {len(members):,} files</title>"
        )
        for rank, tile in enumerate(members):
            b = tile.box
            opacity = 0.95 - 0.45 * rank / max(len(members) - 1, 1)
            parts.append(
                f'<rect class="file" data-path="{esc(tile.path)}" data-bytes="{tile.unzipped}" '
                f'x="{b.x:.2f}" y="{b.y:.2f}" width="{b.w:.2f}" height="{b.h:.2f}" fill="{fill}" '
                f'fill-opacity="{opacity:.2f}" stroke="#fff" stroke-width="0.5">'
                f"<title>{esc(tile.path)}\n{esc(size(tile.unzipped))} ({tile.unzipped:,} bytes) unzipped, "
                f"{esc(size(zipped_of.get(tile.path, 0)))} zipped — {esc(tile.package)}</title></rect>"
            )
            label = _fitting(b, 10, tile.path.rsplit("/", 1)[-1], size(tile.unzipped))
            if label and b.h >= 36:
                parts.append(_label(b, 4, b.h - 6, label, 10))
        parts.append(
            f'<rect class="outline" x="{p.x:.2f}" y="{p.y:.2f}" width="{p.w:.2f}" height="{p.h:.2f}" '
            'fill="none" stroke="#222" stroke-width="1.5" pointer-events="none"/>'
        )
        label = _fitting(p, 12, package.package, size(package.unzipped))
        if label and p.h >= 18:
            parts.append(_label(p, 4, 15, label, 12, bold=True))
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _fitting(box: Box, font_size: int, name: str, figure: str) -> str | None:
    """The name and the figure, else the name alone, if it fits across the box."""
    for label in (f"{name} {figure}", name):
        if len(label) * font_size * CHAR_W + 8 <= box.w:
            return label
    return None


def _label(box: Box, x: float, y: float, text: str, font_size: int, bold: bool = False) -> str:
    """``text`` at (x, y) inside ``box``, clipped to it: a nested <svg> is the box (its overflow
    is hidden), so no label reaches into a neighbour whatever the font's real widths."""
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<svg class="label" x="{box.x:.2f}" y="{box.y:.2f}" width="{box.w:.2f}" height="{box.h:.2f}" '
        f'overflow="hidden" pointer-events="none">'
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{font_size}"{weight} fill="#111" stroke="#fff" '
        f'stroke-width="3" paint-order="stroke">{esc(text)}</text></svg>'
    )


def _packages_table(report: Report, colour: dict[str, str]) -> str:
    total = report.zip.unzipped_bytes or 1
    rows = "".join(
        f'<tr data-package="{esc(row.name)}" data-bytes="{row.unzipped}">'
        f'<td class="name"><span class="swatch" style="background:{colour[row.name]}"></span>'
        f"{esc(row.name)}</td><td>{esc(row.version)}</td><td>{row.files:,}</td>"
        f"<td>{esc(size(row.unzipped))}</td><td>{esc(size(row.zipped))}</td>"
        f"<td>{row.unzipped / total:.1%}</td></tr>"
        for row in report.packages
    )
    head = _head_row("package", "version", "files", "unzipped", "zipped", "of unzipped")
    return f'<table class="packages">{head}{rows}</table>'


def _head_row(first: str, *others: str) -> str:
    """A table's header row, its first column (names) aligned left."""
    return f'<tr><th class="name">{esc(first)}</th>' + "".join(f"<th>{esc(o)}</th>" for o in others) + "</tr>"


# --- evaluate: a zip's answers on labelled images -----------------------------------------------

EVALUATE_CSS = """\
table.confusion td { min-width: 2.2em; }
table.confusion td.diagonal { font-weight: bold; }
table.confusion th.corner { text-align: left; font-weight: normal; color: #555; }
.headline { font-size: 1.2em; }
"""


def evaluate_page(result: dict) -> str:
    """``evaluate --json``'s figures as a page: the headline, the confusion matrix (each
    cell shaded by its share of its row, the diagonal green, the rest red), per-class
    precision and recall, the images answered wrong."""
    confusion = result["confusion"]
    rows, columns, matrix = confusion["rows"], confusion["columns"], confusion["matrix"]
    head = '<tr><th class="corner">true ↓ answer →</th>' + "".join(
        f'<th data-column="{esc(c)}">{esc(c)}</th>' for c in columns
    )
    body = []
    for label, counts in zip(rows, matrix, strict=True):
        total = sum(counts) or 1
        cells = []
        for column, count in zip(columns, counts, strict=True):
            share = count / total
            hue = "89, 161, 79" if column == label else "225, 87, 89"
            style = f' style="background: rgba({hue}, {0.15 + 0.85 * share:.2f})"' if count else ""
            diagonal = ' class="diagonal"' if column == label else ""
            cells.append(
                f'<td{diagonal} data-row="{esc(label)}" data-column="{esc(column)}" data-count="{count}"'
                f"{style}>{count}</td>"
            )
        body.append(
            f'<tr><th class="name" data-row="{esc(label)}">{esc(label)}</th>{"".join(cells)}'
            f'<td class="muted" data-row-total="{sum(counts)}">{sum(counts)}</td></tr>'
        )
    matrix_table = (
        f'<table class="confusion" data-images="{result["images"]}">{head}<th>images</th></tr>'
        f"{''.join(body)}</table>"
    )
    figures = [f"top-1 accuracy: {result['correct']}/{result['images']} = {percent(result['top1'])}"]
    for k, value in result["topk"].items():
        figures.append(f"top-{k} accuracy: {percent(value)}")
    if result["errors"]:
        figures.append(f"{result['errors']} images got an error instead of an answer")
    model = result.get("model")
    if model:
        figures.append(
            f"original model {Path(model['path']).name}: top-1 {percent(model['top1'])}; the zip agrees on "
            f"{percent(model['agreement'])} of the images ({len(model['disagreements'])} differ)"
        )
    per_class = "".join(
        f'<tr data-label="{esc(label)}"><td class="name">{esc(label)}</td><td>{row["support"]}</td>'
        f"<td>{row['predicted']}</td><td>{row['correct']}</td><td>{percent(row['precision'])}</td>"
        f"<td>{percent(row['recall'])}</td></tr>"
        for label, row in result["per_class"].items()
    )
    wrong = "".join(
        f'<tr class="wrong" data-file="{esc(w["file"])}"><td class="name">{esc(w["file"])}</td>'
        f'<td class="name">{esc(w["label"])}</td><td class="name">{esc(_answer(w))}</td>'
        f"<td>{'' if w['score'] is None else format(w['score'], '.3f')}</td></tr>"
        for w in result["wrong"]
    )
    name = Path(result["zip"]).name
    class_head = _head_row("label", "images", "answered as it", "right", "precision", "recall")
    page = f"""<h1>{esc(name)} on {result["images"]:,} labelled images</h1>
<p class="muted">{esc(result["folder"])} — labels from {esc(result["labels_from"])};
run in {esc(result["runtime"])}</p>
<p class="headline" data-top1="{result["top1"]}">{"<br>".join(esc(f) for f in figures)}</p>
<h2>Confusion matrix</h2>
<p>Rows: the true label; columns: the zip's top-1 answer{" ((error): no answer)" if result["errors"] else ""}.
The cells add up to the {result["images"]:,} images.</p>
{matrix_table}
<h2>Per class</h2>
<table class="per-class">{class_head}{per_class}</table>
<h2>Answered wrong ({len(result["wrong"]):,})</h2>
<table class="wrong-answers">{_head_row("file", "true label", "answer", "score")}{wrong}</table>"""
    return document(f"lambdapack evaluate: {name}", page, EVALUATE_CSS)


def _answer(wrong: dict) -> str:
    return wrong["predicted"] if wrong["predicted"] is not None else f"error: {wrong.get('error', '')}"
