"""What a person reads on a terminal (rich): the pack report's tables, the
results table and progress bars. Terminal layout lives here; the report itself
is a typed object (``packing.report.Report``) that ``--json`` prints as it is.

The output layer: every string that came from outside (keys, labels, file
names, prefixes, model names, other programs' messages) reaches the terminal
through ``visible`` — as plain text (``text``, ``line``, ``echo``), never as
rich markup, with control and bidirectional characters shown as escapes
(``\x1b``, ``\u202e``), so a name cannot restyle, reorder or rewrite what is
printed around it. lambdapack's own words may carry styles; what it quotes never does.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .packing.report import Report
from .scoring import Score, fraction, percent

MiB = 1024 * 1024

# C0 and C1 control characters (ESC starts a terminal escape sequence, CR rewrites the line,
# BS erases), DEL, the line and paragraph separators, and Unicode's bidirectional controls
# (U+202E turns the rest of a line around). Tab and newline are kept where a message has lines.
_HIDDEN = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_HIDDEN_IN_LINE = re.compile(f"[{_HIDDEN}\\t\\n]")
_HIDDEN_IN_LINES = re.compile(f"[{_HIDDEN}]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object, newlines: bool = False) -> str:
    """``value`` as it may be shown: every character that would act on the terminal instead
    of appearing (controls, bidirectional overrides) written as its escape, ``\\u202e``.
    ``newlines``: keep newline and tab (a multi-line message, a log line)."""
    pattern = _HIDDEN_IN_LINES if newlines else _HIDDEN_IN_LINE
    return pattern.sub(_escape, str(value))


def text(value: object, style: str = "", newlines: bool = False) -> Text:
    """Outside text as a rich ``Text``: shown literally, never read as markup."""
    return Text(visible(value, newlines), style=style)


def line(*parts: object, newlines: bool = False) -> Text:
    """One printed line from pieces: a plain piece or a ``(piece, style)`` pair. Every piece is
    shown literally (``visible``); only the styles given here apply. ``newlines``: a message
    of several lines (else a newline in a name cannot fake a line of output)."""
    out = Text()
    for part in parts:
        piece, style = part if isinstance(part, tuple) else (part, "")
        out.append(visible(piece, newlines), style=style)
    return out


def echo(message: object, err: bool = False) -> None:
    """A plain line on stdout (or stderr), its outside text made visible (``visible``)."""
    click.echo(visible(message, newlines=True), err=err)


def say(console: Console, *parts: object, newlines: bool = False, soft_wrap: bool = False) -> None:
    """Print ``line(*parts)`` without rich's highlighting (``soft_wrap``: never wrapped)."""
    console.print(line(*parts, newlines=newlines), highlight=False, soft_wrap=soft_wrap)


def size(value: int) -> str:
    """One style for every size: MB from 1 MiB up, KB below, bytes under 1 KiB
    (never ``6,954.3 KB`` beside ``41.4 MB``)."""
    if value >= MiB:
        return f"{value / MiB:,.1f} MB"
    if value >= 1024:
        return f"{value / 1024:.1f} KB"
    return f"{value} B"


def render(report: Report, console: Console, verbose: bool = False) -> None:
    z = report.zip
    target = report.target
    title = text(z.path)
    if target:
        title += text(
            f" — {target['runtime']} {target['architecture']} ({target['os']}, glibc {target['glibc']})"
        )
    table = Table(title=title, title_justify="left")
    table.add_column("package")
    table.add_column("version")
    table.add_column("files", justify="right")
    table.add_column("unzipped", justify="right")
    table.add_column("zipped", justify="right")
    table.add_column("strip saved", justify="right")
    table.add_column("prune saved", justify="right")
    for row in report.packages:
        table.add_row(
            text(row.name),
            text(row.version),
            str(row.files),
            size(row.unzipped),
            size(row.zipped),
            size(row.strip_saved) if row.strip_saved else "",
            size(row.prune_saved) if row.prune_saved else "",
        )
    table.add_section()
    strip, prune = report.section("strip"), report.section("prune")
    table.add_row(
        "total",
        "",
        str(z.files),
        size(z.unzipped_bytes),
        size(z.zipped_bytes),
        size(strip["saved_bytes"]) if strip else "",
        size(prune["saved_bytes"]) if prune else "",
    )
    console.print(table)

    largest = Table(title="largest files", title_justify="left")
    largest.add_column("file")
    largest.add_column("package")
    largest.add_column("unzipped", justify="right")
    largest.add_column("zipped", justify="right")
    for file in report.largest_files:
        largest.add_row(text(file.path), text(file.package), size(file.unzipped), size(file.zipped))
    console.print(largest)

    limits = Table(title="Lambda limits", title_justify="left")
    limits.add_column("limit")
    limits.add_column("value", justify="right")
    limits.add_column("limit", justify="right")
    limits.add_column("")
    for limit in report.limits:
        mark = ("ok", "green") if limit.ok else (("OVER", "red") if limit.fatal else ("over", "yellow"))
        note = "" if limit.ok else f" — {limit.remedy}"
        limits.add_row(text(limit.name), f"{limit.value:,}", f"{limit.limit:,}", line(mark, note))
    console.print(limits)
    if report.section("deps"):
        _render_deps(report.build["deps"], console)

    _render_checks(report, console, verbose)
    for warning in report.warnings:
        say(console, ("warning: ", "yellow"), (warning, "yellow"))
    say(console, f"sha256      {z.sha256}")
    say(console, f"CodeSha256  {z.code_sha256}  (what Lambda reports)")


def _render_deps(deps: dict, console: Console) -> None:
    table = Table(title="staged dependencies", title_justify="left")
    table.add_column("package")
    table.add_column("unpacked", justify="right")
    packages = sorted(deps.get("packages", {}).items(), key=lambda item: (-item[1], item[0]))
    for name, unpacked in packages[:10]:
        table.add_row(text(name), size(unpacked))
    if len(packages) > 10:
        table.add_row(f"{len(packages) - 10} more", size(sum(v for _, v in packages[10:])))
    table.add_section()
    table.add_row(f"total ({deps['files']:,} files)", size(deps["unpacked_bytes"]))
    console.print(table)
    say(
        console,
        f"staged dependencies: {deps.get('path', deps['file'])}, {size(deps['bytes'])} "
        f"(zstd -{deps['zstd_level']}), unpacked into /tmp at cold start; ephemeral storage "
        f"needed {deps['ephemeral_storage_mb']:,} MB of Lambda's 10,240 (deploy sets it); "
        f"sha256 {deps['sha256']}",
    )


def _render_checks(report: Report, console: Console, verbose: bool = False) -> None:
    elf = report.elf
    if elf is not None:
        highest = ", ".join(f"{k} {v}" for k, v in elf["highest_required"].items()) or "none"
        if elf["ok"]:
            say(
                console,
                (f"native libraries: {elf['files']} ELF files can load on the target", "green"),
                f" (highest versions needed: {highest})",
            )
        else:
            say(console, (f"native libraries: {len(elf['problems'])} problems", "red"))
            for problem in elf["problems"][:20]:
                say(console, f"  {problem['path']}: {problem['problem']}")
    strip = report.section("strip")
    if strip:
        if strip.get("note"):
            say(console, (f"strip: {strip['note']}", "yellow"))
        kept = strip["kept_original"]
        if kept and verbose:
            for file in kept:
                say(console, ("kept unstripped", "yellow"), f" {file['path']}: {file['reason']}")
        elif kept:
            names = ", ".join(PurePosixPath(file["path"]).name for file in kept[:3])
            more = f" and {len(kept) - 3} more" if len(kept) > 3 else ""
            say(
                console,
                (
                    f"strip: {len(kept)} files kept unstripped (stripped, they would not load): "
                    f"{names}{more}",
                    "yellow",
                ),
                " (why: --verbose)",
            )
    bytecode = report.section("bytecode")
    if bytecode:
        style = "green" if bytecode["compiled"] else "yellow"
        say(console, (f"bytecode: {bytecode['note']}", style), f" ({bytecode['files']} files)")
    model = report.section("model")
    if model:
        served = "SavedModel" if model.get("format") == "saved_model" else ".tflite"
        summary = f"model: {model['kind']} -> {size(model['bytes'])} {served} (quantize {model['quantize']})"
        summary += f", config {model['config']}" if model.get("config") else ", no config (defaults)"
        check = model.get("conversion_check")
        if check:
            summary += (
                f"; conversion check on {check['inputs']} inputs: top-1 agreement "
                f"{check['top1_agreement']:.0%}, largest probability difference "
                f"{check['max_probability_difference']:.2g}"
            )
        say(console, summary)
    smoke = report.smoke
    if smoke:
        if smoke.get("ran"):
            say(
                console,
                (
                    f"smoke run: {smoke['images']} images classified by the zip in a clean interpreter",
                    "green",
                ),
                f" (import {smoke['import_s']:.2f} s, first inference {smoke['first_inference_ms']:.1f} ms)",
            )
        else:
            say(console, (f"smoke run: not run — {smoke['note']}", "yellow"))
        accuracy = smoke.get("accuracy")
        if accuracy and accuracy.get("zip_correct") is not None:
            images, preprocessing = accuracy["images"], accuracy["preprocessing"]
            say(
                console,
                (
                    f"labelled samples: the zip gets {fraction(accuracy['zip_correct'], images)} right, "
                    f"the original model {fraction(accuracy['original_correct'], images)}",
                    "green",
                ),
                f" (scale {preprocessing['scale']}, resize {preprocessing['resize']}; "
                f"zip's answers from {accuracy['zip_from']})",
            )


class _TextProgress(Progress):
    """A progress bar whose task descriptions are shown literally (they name buckets, prefixes)."""

    def add_task(self, description: str, *args, **kwargs):
        return super().add_task(visible(description), *args, **kwargs)

    def update(self, task_id, *args, description: str | None = None, **kwargs) -> None:
        if description is not None:
            description = visible(description)
        super().update(task_id, *args, description=description, **kwargs)


def progress_bar(console: Console | None = None) -> Progress:
    return _TextProgress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
    )


def results_table(rows: list[dict], limit: int = 20) -> Table:
    """Rows of ``aws.objects.collect_results``: input, top-1 label and score, or the error. Every
    cell is shown literally (``text``): keys and labels are the user's."""
    table = Table(title=f"results ({len(rows)})", title_justify="left")
    for column in ("input", "label", "score", "error"):
        table.add_column(column)
    for row in rows[:limit]:
        table.add_row(text(row["input"]), text(row["label"]), text(row["score"]), text(row["error"]))
    if len(rows) > limit:
        table.add_row(f"… {len(rows) - limit} more (all of them: --csv FILE)", "", "", "")
    return table


# --- answers scored against the truth (``lambdapack.scoring``) ----------------------------------


def answer_line(name: str, body: dict, truth: str | None = None) -> Text:
    """One image's answer on one line: ``name → label score``, or ``name → error: Type: message``;
    with its true label, ``✓`` when the answer is it, else ``✗ true: LABEL``."""
    error = body.get("error")
    if error:
        kind, message = (
            (error.get("type", "error"), error.get("message", ""))
            if isinstance(error, dict)
            else ("error", error)
        )
        shown = line(name, " → ", ("error", "bold red"), f": {kind}: {message}")
        return shown if truth is None else shown.append(line(" ✗ true: ", truth))
    top = (body.get("top_k") or [{}])[0]
    label = str(top.get("label"))
    shown = line(name, " → ", (label, "bold"), f" {float(top.get('score', 0.0)):.3f}")
    if truth is None:
        return shown
    return shown.append(line((" ✓", "green")) if label == truth else line((" ✗ true: ", "red"), truth))


def score_lines(score: Score, what: str = "top-1") -> list[Text]:
    """The headline figures of a ``scoring.Score``: top-1, each top-k, errors."""
    lines = [line((f"{what} accuracy: ", "bold"), f"{score.correct}/{score.images} = {percent(score.top1)}")]
    for k, value in sorted(score.topk.items()):
        lines.append(
            line(f"top-{k} accuracy: ", f"{round(value * score.images)}/{score.images} = {percent(value)}")
        )
    if score.errors:
        lines.append(line((f"{score.errors} images got an error instead of an answer", "yellow")))
    return lines


def class_table(score: Score) -> Table:
    """Per class: images, answered as it, right, precision, recall."""
    table = Table(title="per class", title_justify="left")
    for column in ("label", "images", "answered as it", "right", "precision", "recall"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for row in score.per_class:
        table.add_row(
            text(row.label),
            str(row.support),
            str(row.predicted),
            str(row.correct),
            percent(row.precision),
            percent(row.recall),
        )
    return table


MATRIX_COLUMNS = 20  # more classes than this: the terminal shows the largest confusions instead


def confusion_table(score: Score) -> Table:
    """Rows: the true label; columns: the answer (``(error)``: no answer). Sums to the images.
    With more than ``MATRIX_COLUMNS`` columns (a terminal cannot show them), the most frequent
    confusions instead: true label, answer, images (the whole matrix: --json, --html)."""
    if len(score.columns) > MATRIX_COLUMNS:
        pairs = sorted(
            (
                (-count, label, column)
                for label, row in zip(score.rows, score.matrix, strict=True)
                for column, count in zip(score.columns, row, strict=True)
                if count and column != label
            ),
        )
        table = Table(
            title=f"most frequent confusions ({len(score.rows)} classes; the whole matrix: --json, --html)",
            title_justify="left",
        )
        for column in ("true label", "answer", "images"):
            table.add_column(column, justify="right" if column == "images" else "left")
        for count, label, column in pairs[:MATRIX_COLUMNS]:
            table.add_row(text(label), text(column), str(-count))
        return table
    table = Table(title="confusion matrix (rows: true label, columns: answer)", title_justify="left")
    table.add_column("true \\ answer")
    for column in score.columns:
        table.add_column(text(column), justify="right")
    for label, row in zip(score.rows, score.matrix, strict=True):
        cells = [
            Text(str(n), style="bold green" if column == label else ("red" if n else "dim"))
            for column, n in zip(score.columns, row, strict=True)
        ]
        table.add_row(text(label), *cells)
    return table


def wrong_table(score: Score, limit: int = 50) -> Table:
    """The images answered wrong: file, true label, answer and its score (or the error)."""
    table = Table(title=f"wrong ({len(score.wrong)})", title_justify="left")
    for column in ("file", "label", "answer", "score"):
        table.add_column(column)
    for answer in score.wrong[:limit]:
        shown = answer.top1 if answer.top1 is not None else f"error: {answer.error}"
        table.add_row(
            text(answer.name),
            text(answer.truth),
            text(shown),
            "" if answer.score is None else f"{answer.score:.3f}",
        )
    if len(score.wrong) > limit:
        table.add_row(f"… {len(score.wrong) - limit} more (all of them: --json)", "", "", "")
    return table
