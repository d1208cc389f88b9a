"""Stage 8b — what is in the zip: sizes per package, the largest files, limits.

``zip_report`` works on any zip (``lambdapack report``); a zip built by
lambdapack also carries ``.lambdapack/build.json`` with what cannot be read
back from the archive (target, strip and prune savings, model check).
Files are attributed to distributions through their ``*.dist-info/RECORD``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lambdapack_handler.staged import BUILD_RECORD

from . import compat
from .elf import ELF_MAGIC, read_elf_bytes
from .target import Target
from .zipper import digest

BUILD_INFO = BUILD_RECORD  # the handler reads it too (staged dependencies)
HANDLER_PACKAGE = "lambdapack_handler"

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limit:
    name: str
    limit: int
    measure: str  # "zipped", "request" or "unzipped"
    fatal: bool
    remedy: str


LIMITS = (
    Limit(
        "direct upload (zipped)",
        50 * MiB,
        "zipped",
        False,
        "over it, deploy uploads the zip to S3 first (--code-bucket)",
    ),
    Limit(
        "direct upload request (base64)",
        70_167_211,
        "request",
        False,
        "over it, deploy uploads the zip to S3 first (--code-bucket)",
    ),
    Limit(
        "unzipped (function + layers)",
        262_144_000,
        "unzipped",
        True,
        "Lambda refuses the function",
    ),
)
UNZIPPED_LIMIT = LIMITS[2].limit


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    compressed: int


def request_bytes(zipped: int) -> int:
    """Size of the zip once base64-encoded into an UpdateFunctionCode/CreateFunction body."""
    return 4 * math.ceil(zipped / 3)


def limit_rows(zipped: int | None, unzipped: int) -> list[dict]:
    values = {
        "zipped": zipped,
        "request": None if zipped is None else request_bytes(zipped),
        "unzipped": unzipped,
    }
    rows = []
    for limit in LIMITS:
        value = values[limit.measure]
        if value is None:
            continue
        rows.append(
            {
                "name": limit.name,
                "limit": limit.limit,
                "value": value,
                "ok": value <= limit.limit,
                "fatal": limit.fatal,
                "remedy": limit.remedy,
            }
        )
    return rows


# --- attributing files to packages --------------------------------------------


def dist_name(dist_info_dir: str) -> tuple[str, str]:
    """``numpy-2.2.6.dist-info`` -> ``("numpy", "2.2.6")``."""
    stem = dist_info_dir.removesuffix(".dist-info")
    name, _, version = stem.rpartition("-")
    return (name or stem), version


def owners_from_records(records: Mapping[str, str]) -> dict[str, str]:
    """Map each file a RECORD lists to its distribution name.

    ``records`` maps a ``*.dist-info/RECORD`` path to its text.
    """
    owners: dict[str, str] = {}
    for record_path, text in records.items():
        dist_dir = PurePosixPath(record_path).parts[0]
        name, _ = dist_name(dist_dir)
        owners[f"{dist_dir}/"] = name
        for row in csv.reader(io.StringIO(text)):
            if row:
                owners[PurePosixPath(row[0]).as_posix()] = name
    return owners


def package_of(path: str, owners: Mapping[str, str]) -> str:
    """The distribution (or role: handler, model) a file in the zip belongs to."""
    parts = PurePosixPath(path).parts
    if parts[0].endswith(".dist-info"):
        return owners.get(f"{parts[0]}/", dist_name(parts[0])[0])
    if path in owners:
        return owners[path]
    if "__pycache__" in parts:
        # a/b/__pycache__/c.cpython-311.pyc belongs with a/b/c.py
        index = parts.index("__pycache__")
        module = parts[-1].split(".")[0] + ".py"
        source = PurePosixPath(*parts[:index], module).as_posix()
        if source in owners:
            return owners[source]
    if parts[0] in ("index.py", HANDLER_PACKAGE) or (
        parts[0] == "__pycache__" and parts[-1].startswith("index.")
    ):
        return "handler"
    if parts[0] == "model":
        return "model"
    if parts[0] == ".lambdapack":
        return "lambdapack"
    return parts[0].removesuffix(".py")


def sum_by_package(sizes: Mapping[str, int], owners: Mapping[str, str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for path, size in sizes.items():
        package = package_of(path, owners)
        totals[package] = totals.get(package, 0) + size
    return totals


# --- the report -----------------------------------------------------------------


def read_entries(archive: zipfile.ZipFile) -> list[Entry]:
    return [
        Entry(info.filename, info.file_size, info.compress_size)
        for info in archive.infolist()
        if not info.is_dir()
    ]


def records_in(archive: zipfile.ZipFile) -> dict[str, str]:
    return {
        name: archive.read(name).decode("utf-8", errors="replace")
        for name in archive.namelist()
        if name.endswith(".dist-info/RECORD") and name.count("/") == 1
    }


def elves_in(archive: zipfile.ZipFile):
    found = {}
    for info in archive.infolist():
        if info.is_dir() or info.file_size < 4:
            continue
        with archive.open(info) as handle:
            if handle.read(4) != ELF_MAGIC:
                continue
        found[info.filename] = read_elf_bytes(archive.read(info))
    return found


def build_info_in(archive: zipfile.ZipFile) -> dict:
    try:
        return json.loads(archive.read(BUILD_INFO))
    except KeyError:
        return {}


def zip_report(
    zip_path: Path,
    target: Target | None = None,
    compat_report: compat.CompatReport | None = None,
) -> dict:
    """Everything the zip itself can tell, plus the build info it carries."""
    with zipfile.ZipFile(zip_path) as archive:
        entries = read_entries(archive)
        owners = owners_from_records(records_in(archive))
        build = build_info_in(archive)
        if target is None and build.get("target"):
            target = Target(build["target"]["python"], build["target"]["architecture"])
        if compat_report is None and target is not None:
            compat_report = compat.check(elves_in(archive), target)
    zipped = digest(zip_path)
    unzipped = sum(e.size for e in entries)
    packages: dict[str, dict] = {}
    versions = {dist_name(PurePosixPath(e.name).parts[0]) for e in entries if ".dist-info/" in e.name}
    version_of = dict(versions)
    strip_saved = build.get("strip_saved_by_package", {})
    prune_saved = build.get("prune_saved_by_package", {})
    for entry in entries:
        name = package_of(entry.name, owners)
        row = packages.setdefault(
            name,
            {"name": name, "version": version_of.get(name, ""), "files": 0, "unzipped": 0, "zipped": 0},
        )
        row["files"] += 1
        row["unzipped"] += entry.size
        row["zipped"] += entry.compressed
    for row in packages.values():
        row["strip_saved"] = strip_saved.get(row["name"], 0)
        row["prune_saved"] = prune_saved.get(row["name"], 0)
    largest = sorted(entries, key=lambda e: (-e.size, e.name))[:10]
    report = {
        "zip": {
            "path": str(zip_path),
            "sha256": zipped.sha256,
            "code_sha256": zipped.code_sha256,
            "zipped_bytes": zipped.size,
            "unzipped_bytes": unzipped,
            "files": len(entries),
        },
        "target": target.as_dict() if target else None,
        "limits": limit_rows(zipped.size, unzipped),
        "packages": sorted(packages.values(), key=lambda r: (-r["unzipped"], r["name"])),
        "largest_files": [
            {
                "path": e.name,
                "unzipped": e.size,
                "zipped": e.compressed,
                "package": package_of(e.name, owners),
            }
            for e in largest
        ],
        "elf": compat_report.as_dict() if compat_report else None,
    }
    for key in ("builder", "strip", "prune", "bytecode", "model", "distributions", "deps"):
        if key in build:
            report[key] = build[key]
    return report


def over_limit_message(unzipped: int, by_package: Mapping[str, int]) -> str:
    """Why a package set cannot be a zip-based Lambda, and what to do."""
    over = unzipped - UNZIPPED_LIMIT
    heaviest = sorted(by_package.items(), key=lambda item: -item[1])[:5]
    lines = [
        f"the unzipped package is {_mb(unzipped)}, {_mb(over)} over Lambda's limit of "
        f"{UNZIPPED_LIMIT:,} bytes ({_mb(UNZIPPED_LIMIT)}, function and layers together).",
        "Heaviest packages: " + ", ".join(f"{name} {_mb(size)}" for name, size in heaviest) + ".",
    ]
    return "\n".join(lines)


OVER_LIMIT_HINT = (
    "What to do: serve the model with the LiteRT runtime (--runtime litert, the default), "
    "which needs no TensorFlow in the zip; shrink the model with --quantize dynamic or float16; "
    "drop extra requirements; or, for a model that needs full TensorFlow, stage the "
    "dependencies in S3 and unpack them into /tmp at cold start (the S3-staged TensorFlow "
    "mode), or use a container image (up to 10 GB)."
)


def _mb(size: int) -> str:
    return f"{size / MiB:,.1f} MB"
