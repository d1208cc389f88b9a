"""What is in a zip, as one typed, versioned object: ``Report``.

``zip_report`` works on any zip (``lambdapack report``); a zip built by
lambdapack also carries its build record (``contract.BUILD_RECORD``) with what
cannot be read back from the archive (target, strip and prune savings, model
check), and pack adds the smoke run and stage timings. Files are attributed to
distributions through their ``*.dist-info/RECORD``. The terminal tables
(``lambdapack.render``), ``--json`` and ``report.json`` are all renderings of
the same ``Report``; its JSON carries ``"schema": SCHEMA``.
"""

from __future__ import annotations

import csv
import io
import json
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath

from lambdapack.handler.lambdapack_handler.contract import (
    BUILD_RECORD,
    HANDLER_MODULE,
    HANDLER_PACKAGE,
    MODEL_DIR,
)

from ..errors import InputError
from ..limits import SIZE_LIMITS, UNZIPPED_BYTES, MiB, request_bytes
from . import compat, schema
from .elf import ELF_MAGIC, read_zip_member
from .target import ARCHES, PYTHON_VERSIONS, Target, TargetError
from .zipper import digest

SCHEMA = 1
# Sections of the build record that the report carries as they are.
BUILD_SECTIONS = ("builder", "install", "strip", "prune", "bytecode", "model", "distributions", "deps")
# A member read whole (a RECORD, a WHEEL, the build record, index.py) is at most this large
# unzipped; the size comes from the central directory, before a byte is inflated.
METADATA_LIMIT = 16 * MiB
# Real files deflate by far less (an all-zero page of a .so by ~1000:1 at most, a whole file by
# under 100:1): a member over 1 MiB that inflates more than this is a zip bomb, never read.
BOMB_RATIO = 200


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    compressed: int


@dataclass
class ZipFacts:
    path: str
    sha256: str
    code_sha256: str  # what Lambda reports: base64 of the raw sha256
    zipped_bytes: int
    unzipped_bytes: int
    files: int


@dataclass
class LimitRow:
    name: str
    limit: int
    value: int
    ok: bool
    fatal: bool
    remedy: str


@dataclass
class PackageRow:
    name: str
    version: str
    files: int = 0
    unzipped: int = 0
    zipped: int = 0
    strip_saved: int = 0
    prune_saved: int = 0


@dataclass
class FileRow:
    path: str
    unzipped: int
    zipped: int
    package: str


@dataclass
class Report:
    zip: ZipFacts
    target: dict | None
    limits: list[LimitRow]
    packages: list[PackageRow]
    largest_files: list[FileRow]
    elf: dict | None
    # The build record's sections (BUILD_SECTIONS) that the zip carries.
    build: dict = field(default_factory=dict)
    smoke: dict | None = None  # added by pack (build.smoke.SmokeResult)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per pack stage
    warnings: list[str] = field(default_factory=list)  # what the user should know (a deprecated runtime…)
    schema: int = SCHEMA

    def section(self, name: str) -> dict | None:
        return self.build.get(name)

    def as_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "build"}
        data = {key: _plain(value) for key, value in data.items()}
        data.update(self.build)
        if self.smoke is None:
            data.pop("smoke")
        if not self.timings:
            data.pop("timings")
        if not self.warnings:
            data.pop("warnings")
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> Report:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"report schema {data.get('schema')!r}, this lambdapack reads {SCHEMA}")
        return cls(
            zip=ZipFacts(**data["zip"]),
            target=data.get("target"),
            limits=[LimitRow(**row) for row in data["limits"]],
            packages=[PackageRow(**row) for row in data["packages"]],
            largest_files=[FileRow(**row) for row in data["largest_files"]],
            elf=data.get("elf"),
            build={key: data[key] for key in BUILD_SECTIONS if key in data},
            smoke=data.get("smoke"),
            timings=dict(data.get("timings", {})),
            warnings=list(data.get("warnings", [])),
        )

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n"


def _plain(value):
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return value


def limit_rows(zipped: int | None, unzipped: int) -> list[LimitRow]:
    values = {
        "zipped": zipped,
        "request": None if zipped is None else request_bytes(zipped),
        "unzipped": unzipped,
    }
    return [
        LimitRow(limit.name, limit.limit, value, value <= limit.limit, limit.fatal, limit.remedy)
        for limit in SIZE_LIMITS
        if (value := values[limit.measure]) is not None
    ]


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
    handler_stem = HANDLER_MODULE.removesuffix(".py")
    if parts[0] in (HANDLER_MODULE, HANDLER_PACKAGE) or (
        parts[0] == "__pycache__" and parts[-1].startswith(handler_stem + ".")
    ):
        return "handler"
    if parts[0] == MODEL_DIR:
        return "model"
    if path == BUILD_RECORD:
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


def read_member(archive: zipfile.ZipFile, name: str | zipfile.ZipInfo, limit: int = METADATA_LIMIT) -> bytes:
    """One member read whole, refused (``InputError``) when the central directory says it is
    larger than ``limit``: the inflated bytes never exceed the size it declares (zipfile
    stops there and checks the CRC)."""
    info = name if isinstance(name, zipfile.ZipInfo) else archive.getinfo(name)
    if info.file_size > limit:
        raise InputError(
            f"{archive.filename}: {info.filename} unzips to {info.file_size:,} bytes, more than the "
            f"{limit:,} lambdapack reads of such a file",
            "Pack the zip again with lambdapack pack.",
        )
    return archive.read(info)


def is_bomb(info: zipfile.ZipInfo) -> bool:
    """A member that inflates far more than real files do (``BOMB_RATIO``)."""
    return info.file_size > MiB and info.file_size > BOMB_RATIO * max(info.compress_size, 1)


def entry_problems(archive: zipfile.ZipFile) -> list[str]:
    """What is wrong with the members themselves, from the central directory alone: a path
    that leaves the folder it is unpacked into (``../``, absolute), a symbolic link (Lambda
    unpacks it as a link to wherever it points), a zip bomb (``is_bomb``)."""
    problems = []
    for info in archive.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            problems.append(f"{name}: its path leaves the folder the zip is unpacked into")
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(f"{name}: a symbolic link (Lambda unpacks it as a link)")
        if is_bomb(info):
            problems.append(
                f"{name}: {info.compress_size:,} bytes inflate to {info.file_size:,} "
                f"({info.file_size // max(info.compress_size, 1):,}:1, a zip bomb?): not read"
            )
    return problems


def records_in(archive: zipfile.ZipFile) -> dict[str, str]:
    return {
        info.filename: read_member(archive, info).decode("utf-8", errors="replace")
        for info in archive.infolist()
        if info.filename.endswith(".dist-info/RECORD") and info.filename.count("/") == 1 and not is_bomb(info)
    }


def elves_in(archive: zipfile.ZipFile):
    """Every ELF file among the members (read through a temporary file when large; zip bombs
    skipped: ``entry_problems`` names them)."""
    found = {}
    for info in archive.infolist():
        if info.is_dir() or info.file_size < 4 or is_bomb(info):
            continue
        with archive.open(info) as handle:
            if handle.read(4) != ELF_MAGIC:
                continue
        found[info.filename] = read_zip_member(archive, info)
    return found


def build_record_in(archive: zipfile.ZipFile) -> dict:
    """The build record pack wrote into the zip, checked against its schema
    (``schemas/build-record.schema.json``) and the targets lambdapack knows; {} for a zip
    lambdapack did not pack. A record that is not one is an ``InputError`` naming the field."""
    hint = "Pack the zip again with lambdapack pack."
    try:
        record = json.loads(read_member(archive, BUILD_RECORD))
    except KeyError:
        return {}
    except ValueError as exc:
        raise InputError(
            f"{archive.filename}: its build record {BUILD_RECORD} is not valid JSON ({exc})", hint
        ) from exc
    problem = schema.problem(record, schema.load(schema.BUILD_RECORD)) or _target_problem(record)
    if (
        problem is None
        and "deps" in record
        and PurePosixPath(record["deps"]["file"]).name != record["deps"]["file"]
    ):
        problem = f"deps.file: {record['deps']['file']!r} is not a file name"
    if problem:
        raise InputError(f"{archive.filename}: its build record {BUILD_RECORD} is malformed: {problem}", hint)
    return record


def _target_problem(record: dict) -> str | None:
    """A recorded target lambdapack does not know (``packing.target``), named by its field."""
    target = record.get("target")
    if target is None:
        return None
    runtimes = {f"python{version}": version for version in PYTHON_VERSIONS}
    python = target.get("python")
    if python is not None and python not in PYTHON_VERSIONS:
        return f"target.python: {python!r} is not one of {', '.join(PYTHON_VERSIONS)}"
    if target["runtime"] not in runtimes:
        return f"target.runtime: {target['runtime']!r} is not one of {', '.join(runtimes)}"
    if python is not None and runtimes[target["runtime"]] != python:
        return f"target.runtime: {target['runtime']!r} is not python{python}, the recorded target.python"
    if target["architecture"] not in ARCHES:
        return f"target.architecture: {target['architecture']!r} is not one of {', '.join(ARCHES)}"
    return None


def zip_report(
    zip_path: Path,
    target: Target | None = None,
    compat_report: compat.CompatReport | None = None,
) -> Report:
    """Everything the zip itself can tell, plus the build record it carries."""
    if not zipfile.is_zipfile(zip_path):
        raise InputError(f"{zip_path} is not a zip file")
    try:
        return _zip_report(zip_path, target, compat_report)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise InputError(f"{zip_path} is a damaged zip file ({exc})") from exc


def _zip_report(zip_path: Path, target: Target | None, compat_report: compat.CompatReport | None) -> Report:
    with zipfile.ZipFile(zip_path) as archive:
        entries = read_entries(archive)
        problems = entry_problems(archive)
        owners = owners_from_records(records_in(archive))
        build = build_record_in(archive)
        if target is None and build.get("target"):
            target = _recorded_target(build["target"], zip_path)
        if compat_report is None and target is not None:
            compat_report = compat.check(elves_in(archive), target)
        elf = compat_report.as_dict() if compat_report else None
        if elf is not None and target is not None:
            elf["problems"] += abi_problems(archive, owners, target, {p["path"] for p in elf["problems"]})
            elf["ok"] = not elf["problems"]
    zipped = digest(zip_path)
    unzipped = sum(e.size for e in entries)
    version_of = dict(dist_name(PurePosixPath(e.name).parts[0]) for e in entries if ".dist-info/" in e.name)
    strip_saved = build.get("strip_saved_by_package", {})
    prune_saved = build.get("prune_saved_by_package", {})
    packages: dict[str, PackageRow] = {}
    for entry in entries:
        name = package_of(entry.name, owners)
        row = packages.setdefault(
            name,
            PackageRow(
                name,
                version_of.get(name, ""),
                strip_saved=strip_saved.get(name, 0),
                prune_saved=prune_saved.get(name, 0),
            ),
        )
        row.files += 1
        row.unzipped += entry.size
        row.zipped += entry.compressed
    largest = sorted(entries, key=lambda e: (-e.size, e.name))[:10]
    return Report(
        zip=ZipFacts(str(zip_path), zipped.sha256, zipped.code_sha256, zipped.size, unzipped, len(entries)),
        target=target.as_dict() if target else None,
        limits=limit_rows(zipped.size, unzipped),
        packages=sorted(packages.values(), key=lambda r: (-r.unzipped, r.name)),
        largest_files=[_file_row(entry, owners) for entry in largest],
        elf=elf,
        build={key: build[key] for key in BUILD_SECTIONS if key in build},
        warnings=problems,
    )


def zip_files(zip_path: Path) -> list[FileRow]:
    """Every file in the zip with the package ``zip_report`` attributes it to (the report
    itself keeps the largest ten)."""
    with zipfile.ZipFile(zip_path) as archive:
        owners = owners_from_records(records_in(archive))
        return [_file_row(entry, owners) for entry in read_entries(archive)]


def _file_row(entry, owners: Mapping[str, str]) -> FileRow:
    return FileRow(entry.name, entry.size, entry.compressed, package_of(entry.name, owners))


def abi_problems(
    archive: zipfile.ZipFile, owners: Mapping[str, str], target: Target, listed: set[str]
) -> list[dict]:
    """Extension modules built for another Python or machine (by file name, and by the
    wheel tags in ``*.dist-info/WHEEL`` for untagged names): ``compat.extension_findings``
    and ``compat.wheel_tag_findings``. ``listed``: files the ELF check already flagged."""
    names = archive.namelist()
    wheels = {
        info.filename: read_member(archive, info).decode("utf-8", errors="replace")
        for info in archive.infolist()
        if info.filename.endswith(".dist-info/WHEEL") and info.filename.count("/") == 1 and not is_bomb(info)
    }
    floors = compat.abi3_floors(
        {dist_name(path.split("/")[0])[0]: text for path, text in wheels.items()}, owners
    )
    found = [
        finding.as_dict()
        for finding in compat.extension_findings(names, target, floors)
        # The ELF check already says a file is built for another machine.
        if not (finding.about[0] == "platform" and finding.path in listed)
    ]
    return found + [finding.as_dict() for finding in compat.wheel_tag_findings(wheels, target)]


def _recorded_target(recorded: dict, zip_path: Path) -> Target:
    try:
        return Target(recorded["python"], recorded["architecture"])
    except (KeyError, TypeError, TargetError) as exc:
        raise InputError(
            f"{zip_path}: its build record names no target lambdapack knows ({exc})",
            "Pass --python and --arch, or pack the zip again.",
        ) from exc


def over_limit_message(unzipped: int, by_package: Mapping[str, int]) -> str:
    """Why a package set cannot be a zip-based Lambda, and what to do."""
    over = unzipped - UNZIPPED_BYTES
    heaviest = sorted(by_package.items(), key=lambda item: -item[1])[:5]
    lines = [
        f"the unzipped package is {_mb(unzipped)}, {_mb(over)} over Lambda's limit of "
        f"{UNZIPPED_BYTES:,} bytes ({_mb(UNZIPPED_BYTES)}, function and layers together).",
        "Heaviest packages: " + ", ".join(f"{name} {_mb(size)}" for name, size in heaviest) + ".",
    ]
    return "\n".join(lines)


OVER_LIMIT_HINT = (
    "What to do: serve the model with the LiteRT runtime (--runtime litert, the default), "
    "which needs no TensorFlow in the zip; shrink the model with --quantize dynamic or float16; "
    "drop extra requirements; or, for a model that needs full TensorFlow, stage the "
    "dependencies in S3 and unpack them into /tmp at cold start (--stage-deps s3), "
    "or use a container image (up to 10 GB)."
)


def _mb(size: int) -> str:
    return f"{size / MiB:,.1f} MB"


def pack_report_beside(zip_path: Path, name: str) -> dict | None:
    """The report pack wrote beside the zip (``name``, pack's ``report.json``) when it is this
    zip's — its ``zip.sha256`` is the zip's — for what only pack knows (the smoke run); None
    when there is none, it is another zip's, or it cannot be read."""
    path = zip_path.parent / name
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("zip"), dict):
        return None
    if data["zip"].get("sha256") != digest(zip_path).sha256:
        return None
    return data
