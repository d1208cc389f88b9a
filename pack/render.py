"""What a person reads on a terminal (rich): the pack report's tables, the
results table and progress bars. Terminal layout lives here; the report itself
is a typed object (``packing.report.Report``) that ``--json`` prints as it is."""

from __future__ import annotations

from pathlib import PurePosixPath

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .packing.report import Report

MiB = 1024 * 1024


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
    title = escape(z.path)
    if target:
        title += f" — {target['runtime']} {target['architecture']} ({target['os']}, glibc {target['glibc']})"
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
            row.name,
            row.version,
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
        largest.add_row(file.path, file.package, size(file.unzipped), size(file.zipped))
    console.print(largest)

    limits = Table(title="Lambda limits", title_justify="left")
    limits.add_column("limit")
    limits.add_column("value", justify="right")
    limits.add_column("limit", justify="right")
    limits.add_column("")
    for limit in report.limits:
        mark = "[green]ok[/]" if limit.ok else ("[red]OVER[/]" if limit.fatal else "[yellow]over[/]")
        note = "" if limit.ok else f" — {limit.remedy}"
        limits.add_row(limit.name, f"{limit.value:,}", f"{limit.limit:,}", mark + note)
    console.print(limits)
    if report.section("deps"):
        _render_deps(report.build["deps"], console)

    _render_checks(report, console, verbose)
    for warning in report.warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/]")
    console.print(f"sha256      {z.sha256}")
    console.print(f"CodeSha256  {z.code_sha256}  (what Lambda reports)")


def _render_deps(deps: dict, console: Console) -> None:
    table = Table(title="staged dependencies", title_justify="left")
    table.add_column("package")
    table.add_column("unpacked", justify="right")
    packages = sorted(deps.get("packages", {}).items(), key=lambda item: (-item[1], item[0]))
    for name, unpacked in packages[:10]:
        table.add_row(name, size(unpacked))
    if len(packages) > 10:
        table.add_row(f"{len(packages) - 10} more", size(sum(v for _, v in packages[10:])))
    table.add_section()
    table.add_row(f"total ({deps['files']:,} files)", size(deps["unpacked_bytes"]))
    console.print(table)
    console.print(
        f"staged dependencies: {escape(deps.get('path', deps['file']))}, {size(deps['bytes'])} "
        f"(zstd -{deps['zstd_level']}), unpacked into /tmp at cold start; ephemeral storage "
        f"needed {deps['ephemeral_storage_mb']:,} MB of Lambda's 10,240 (deploy sets it); "
        f"sha256 {deps['sha256']}"
    )


def _render_checks(report: Report, console: Console, verbose: bool = False) -> None:
    elf = report.elf
    if elf is not None:
        highest = ", ".join(f"{k} {v}" for k, v in elf["highest_required"].items()) or "none"
        if elf["ok"]:
            console.print(
                f"[green]native libraries: {elf['files']} ELF files can load on the target[/] "
                f"(highest versions needed: {highest})"
            )
        else:
            console.print(f"[red]native libraries: {len(elf['problems'])} problems[/]")
            for problem in elf["problems"][:20]:
                console.print(f"  {escape(problem['path'])}: {escape(problem['problem'])}")
    strip = report.section("strip")
    if strip:
        if strip.get("note"):
            console.print(f"[yellow]strip: {escape(strip['note'])}[/]")
        kept = strip["kept_original"]
        if kept and verbose:
            for file in kept:
                console.print(f"[yellow]kept unstripped[/] {escape(file['path'])}: {escape(file['reason'])}")
        elif kept:
            names = ", ".join(PurePosixPath(file["path"]).name for file in kept[:3])
            more = f" and {len(kept) - 3} more" if len(kept) > 3 else ""
            console.print(
                f"[yellow]strip: {len(kept)} files kept unstripped (stripped, they would not load): "
                f"{escape(names)}{more}[/] (why: --verbose)"
            )
    bytecode = report.section("bytecode")
    if bytecode:
        style = "green" if bytecode["compiled"] else "yellow"
        console.print(f"[{style}]bytecode: {escape(bytecode['note'])}[/] ({bytecode['files']} files)")
    model = report.section("model")
    if model:
        served = "SavedModel" if model.get("format") == "saved_model" else ".tflite"
        line = f"model: {model['kind']} -> {size(model['bytes'])} {served} (quantize {model['quantize']})"
        line += f", config {model['config']}" if model.get("config") else ", no config (defaults)"
        check = model.get("conversion_check")
        if check:
            line += (
                f"; conversion check on {check['inputs']} inputs: top-1 agreement "
                f"{check['top1_agreement']:.0%}, largest probability difference "
                f"{check['max_probability_difference']:.2g}"
            )
        console.print(line)
    smoke = report.smoke
    if smoke:
        if smoke.get("ran"):
            console.print(
                f"[green]smoke run: {smoke['images']} images classified by the zip in a clean "
                f"interpreter[/] (import {smoke['import_s']:.2f} s, first inference "
                f"{smoke['first_inference_ms']:.1f} ms)"
            )
        else:
            console.print(f"[yellow]smoke run: not run — {escape(smoke['note'])}[/]")


def progress_bar(console: Console | None = None) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
    )


def results_table(rows: list[dict], limit: int = 20) -> Table:
    """Rows of ``aws.objects.collect_results``: input, top-1 label and score, or the error."""
    table = Table(title=f"results ({len(rows)})", title_justify="left")
    for column in ("input", "label", "score", "error"):
        table.add_column(column)
    for row in rows[:limit]:
        table.add_row(row["input"], row["label"], str(row["score"]), row["error"])
    if len(rows) > limit:
        table.add_row(f"… {len(rows) - limit} more (all of them: --csv FILE)", "", "", "")
    return table
