"""The results as a CSV file, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from pathlib import Path

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet would read as a formula, kept as text: a leading quote."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def write_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["input", "label", "score", "error", "result"])
        writer.writeheader()
        writer.writerows({name: csv_cell(value) for name, value in row.items()} for row in rows)
