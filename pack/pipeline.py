"""The pack pipeline, stage by stage:

    model    convert/check the model, complete its config    (model.py)
    install  pip, for the exact Lambda target                 (install.py, target.py)
    strip    strip symbols, keep any file that stops loading  (strip.py)
    prune    delete dead weight by data-driven rules          (prune.py)
    handler  add index.py and the handler package
    compile  unchecked-hash .pyc when this Python is the target's (bytecode.py)
    stage    with --stage-deps s3: split off the dependencies into deps.tar.zst (staging.py)
    check    unzipped size against 250 MB; every ELF file against the target (compat.py)
    zip      deterministic archive                            (zipper.py)
    report   sizes per package, limits                        (report.py)
    smoke    unzip and classify in a clean interpreter        (smoke.py)

The model goes first only so a bad model fails in seconds, before any
download. Nothing in ``--out`` is replaced until every check has passed: a
failed pack leaves the previous ``function.zip``, ``deps.tar.zst`` and
``report.json`` as they were.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, compat
from .bytecode import compile_tree
from .elf import read_elf_file
from .errors import CompatibilityError, InputError, SizeLimitError
from .install import Installer
from .model import MODEL_DIR, artifact_size, load_prepared, prepare_model, sample_images
from .prune import prune_tree
from .report import (
    BUILD_INFO,
    OVER_LIMIT_HINT,
    UNZIPPED_LIMIT,
    over_limit_message,
    owners_from_records,
    sum_by_package,
    zip_report,
)
from .runtimes import BOOTSTRAP_REQUIREMENTS, BOTO3_REQUIREMENT, Runtime
from .smoke import SmokeResult, StagedArchive, smoke_run
from .staging import DEFAULT_LEVEL, DEPS_NAME, check_ephemeral, split_tree, top_level_names, write_archive
from .strip import elf_files, strip_tree
from .target import Target
from .zipper import collect, write_zip

STAGED_OVER_LIMIT_HINT = (
    "With --stage-deps s3 only the handler, its bootstrap and the model stay in the zip: the "
    "model itself is too large. Convert and quantize it (--runtime litert --quantize dynamic), "
    "or serve a smaller one."
)
HANDLER_MODULE = "index.py"
HANDLER_PACKAGE = "lambdapack_handler"
ZIP_NAME = "function.zip"
REPORT_NAME = "report.json"


def default_handler_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "handler"


def default_cache_dir() -> Path:
    configured = os.environ.get("LAMBDAPACK_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lambdapack"


@dataclass
class PackOptions:
    model: Path
    out: Path
    target: Target
    runtime: Runtime
    quantize: str = "none"
    config: Path | None = None
    samples: Path | None = None
    requirements: tuple[str, ...] = ()
    bundle_boto3: bool = False
    find_links: tuple[Path, ...] = ()
    keep: tuple[str, ...] = ()
    cache_dir: Path = field(default_factory=default_cache_dir)
    refresh: bool = False
    handler_dir: Path = field(default_factory=default_handler_dir)
    smoke: bool = True
    prepared_model: Path | None = None  # set by the Docker builder: the host converted it
    stage_deps: str = "none"  # "s3": dependencies go to deps.tar.zst, unpacked at cold start
    deps_level: int = DEFAULT_LEVEL  # zstd level of deps.tar.zst

    @property
    def staged(self) -> bool:
        return self.stage_deps == "s3"


Progress = Callable[[str, str, float], None]  # stage, summary, seconds


def _quiet(stage: str, summary: str, seconds: float) -> None:
    pass


def pack(options: PackOptions, progress: Progress = _quiet) -> dict:
    """Build ``function.zip`` (and ``deps.tar.zst`` when staging) and ``report.json``
    in ``options.out``; return the report."""
    try:
        return _pack(options, progress)
    finally:
        for name in (ZIP_NAME, DEPS_NAME):
            (options.out / f".{name}.partial").unlink(missing_ok=True)


def _pack(options: PackOptions, progress: Progress) -> dict:
    _check_handler_dir(options.handler_dir)
    timings: dict[str, float] = {}

    def stage(name: str, summary: Callable[[], str], began: float) -> None:
        timings[name] = round(time.perf_counter() - began, 3)
        progress(name, summary(), timings[name])

    with tempfile.TemporaryDirectory(prefix="lambdapack-build-") as build_dir:
        build = Path(build_dir)
        task = build / "task"
        task.mkdir()

        began = time.perf_counter()
        samples = sample_images(options.samples)
        if options.prepared_model is not None:
            model = load_prepared(options.prepared_model, build / MODEL_DIR)
        else:
            model = prepare_model(
                options.model,
                build / MODEL_DIR,
                options.cache_dir,
                options.quantize,
                options.config,
                samples,
                options.runtime.model_format,
            )
        model_file = model.config["model_file"]
        stage("model", lambda: f"{model.kind} -> {model_file}" + (" (cached)" if model.cached else ""), began)

        began = time.perf_counter()
        requirements = [*options.runtime.requirements_for(options.target.arch), *options.requirements]
        if options.bundle_boto3:
            requirements.append(BOTO3_REQUIREMENT)
        if options.staged:
            requirements += BOOTSTRAP_REQUIREMENTS
        installed = Installer(options.cache_dir).install(
            requirements, options.target, task, options.find_links, options.refresh
        )
        stage(
            "install",
            lambda: (
                ", ".join(f"{d.name} {d.version}" for d in installed.distributions)
                + ("" if installed.downloaded else " (from the wheel cache)")
            ),
            began,
        )

        began = time.perf_counter()
        stripped = strip_tree(task, options.target)
        stage("strip", lambda: f"{len(stripped.files)} ELF files, saved {_mb(stripped.saved)}", began)

        # Who owns what, before prune trims each RECORD to the files that stay.
        owners = owners_from_records(
            {
                p.relative_to(task).as_posix(): p.read_text(errors="replace")
                for p in task.glob("*.dist-info/RECORD")
            }
        )
        began = time.perf_counter()
        pruned = prune_tree(task, (*options.keep, *options.runtime.unsafe_prune_groups))
        stage("prune", lambda: f"saved {_mb(pruned.saved)}", began)

        _add_handler(options.handler_dir, task)
        began = time.perf_counter()
        bytecode = compile_tree(task, options.target)
        stage("compile", lambda: bytecode.note, began)

        shutil.copytree(build / MODEL_DIR, task / MODEL_DIR)

        deps_tree = build / "deps"
        archive = None
        if options.staged:
            began = time.perf_counter()
            bootstrap = top_level_names(owners, BOOTSTRAP_REQUIREMENTS)
            split_tree(task, deps_tree, {HANDLER_MODULE, HANDLER_PACKAGE, MODEL_DIR, *bootstrap})
            options.out.mkdir(parents=True, exist_ok=True)
            pending_deps = options.out / f".{DEPS_NAME}.partial"
            archive = write_archive(deps_tree, pending_deps, options.deps_level)
            check_ephemeral(archive)
            stage(
                "stage",
                lambda: (
                    f"{DEPS_NAME} {_mb(archive.size)} (unpacks to {_mb(archive.unpacked)}, "
                    f"zstd -{archive.level}), sha256 {archive.sha256[:16]}…"
                ),
                began,
            )

        began = time.perf_counter()
        sizes = _file_sizes(task)
        unzipped = sum(sizes.values())
        if unzipped > UNZIPPED_LIMIT:
            hint = options.runtime.over_limit_hint or OVER_LIMIT_HINT
            if options.staged:
                hint = STAGED_OVER_LIMIT_HINT
            raise SizeLimitError(over_limit_message(unzipped, sum_by_package(sizes, owners)), hint)
        elves = {p.relative_to(task).as_posix(): read_elf_file(p) for p in elf_files(task)}
        if options.staged:
            # Both trees are on sys.path at run time: libraries may need each other.
            elves |= {
                f"deps/{p.relative_to(deps_tree).as_posix()}": read_elf_file(p) for p in elf_files(deps_tree)
            }
        compat_report = compat.check(elves, options.target)
        if not compat_report.ok:
            raise CompatibilityError(
                _compat_message(compat_report, options.target), _compat_hint(options.target)
            )
        stage("check", lambda: f"{len(elves)} ELF files load on {options.target.runtime}", began)

        deps_sizes = _file_sizes(deps_tree) if options.staged else {}
        surviving_strip = {f.path: f.saved for f in stripped.files if f.path in sizes or f.path in deps_sizes}
        build_info = {
            "lambdapack": __version__,
            "target": options.target.as_dict(),
            "runtime": options.runtime.name,
            "builder": builder_record(),
            "distributions": [{"name": d.name, "version": d.version} for d in installed.distributions],
            "strip": stripped.as_dict(),
            "prune": pruned.as_dict(),
            "strip_saved_by_package": sum_by_package(surviving_strip, owners),
            "prune_saved_by_package": sum_by_package(pruned.saved_by_path(), owners),
            "bytecode": bytecode.as_dict(),
            "model": model.as_dict(artifact_size(build / MODEL_DIR / model_file)),
        }
        if archive is not None:
            build_info["deps"] = {
                **archive.as_dict(),
                "packages": sum_by_package(deps_sizes, owners),
            }
        (task / BUILD_INFO).parent.mkdir()
        (task / BUILD_INFO).write_text(json.dumps(build_info, indent=1, sort_keys=True) + "\n")

        began = time.perf_counter()
        options.out.mkdir(parents=True, exist_ok=True)
        pending_zip = options.out / f".{ZIP_NAME}.partial"
        digest = write_zip(collect(task), pending_zip)
        stage("zip", lambda: f"{_mb(digest.size)} sha256 {digest.sha256[:16]}…", began)

    report = zip_report(pending_zip, options.target, compat_report)
    began = time.perf_counter()
    if options.smoke:
        expected = {s["name"]: s["probabilities"] for s in model.check.get("samples", [])}
        imports = (*options.runtime.smoke_imports,)
        staged = StagedArchive(pending_deps, archive.sha256) if archive is not None else None
        smoke = smoke_run(pending_zip, options.target, samples, expected, imports, staged)
    else:
        smoke = SmokeResult(ran=False, note="skipped (--no-smoke)")
    report["smoke"] = smoke.as_dict()
    stage("smoke", lambda: _smoke_summary(smoke), began)
    final_zip = options.out / ZIP_NAME
    if archive is not None:
        os.replace(pending_deps, options.out / DEPS_NAME)
        report["deps"] = {**build_info["deps"], "path": str(options.out / DEPS_NAME)}
    else:
        # A plain zip needs no archive: one left from a staged build would mislead.
        (options.out / DEPS_NAME).unlink(missing_ok=True)
    os.replace(pending_zip, final_zip)
    report["zip"]["path"] = str(final_zip)
    report["timings"] = timings
    _write_json_atomically(options.out / REPORT_NAME, report)
    return report


def builder_record() -> dict:
    """Which builder produced the zip: native, or docker with its base image."""
    return {
        "name": os.environ.get("LAMBDAPACK_BUILDER", "native"),
        "base_image": os.environ.get("LAMBDAPACK_BASE_IMAGE"),
        "python": platform.python_version(),
    }


def _smoke_summary(smoke: SmokeResult) -> str:
    if not smoke.ran:
        return f"not run: {smoke.note}"
    return f"{smoke.images} images classified, import {smoke.import_s:.2f} s"


def _compat_hint(target: Target) -> str:
    hint = (
        "A wheel's platform tag promised more than its files deliver. Pin an older version of "
        "the package that ships the file (e.g. --require 'ai-edge-litert==1.4.0'), or drop the "
        "requirement."
    )
    if target.os.glibc < (2, 34):
        hint += " Or choose a newer runtime: --python 3.12 and later run Amazon Linux 2023 (glibc 2.34)."
    return hint


def _compat_message(report: compat.CompatReport, target: Target) -> str:
    lines = [f"{len(report.findings)} native files cannot load on {target.runtime} ({target.os.name}):"]
    lines += [f"  {f.path}: {f.problem}" for f in report.findings[:15]]
    if len(report.findings) > 15:
        lines.append(f"  … and {len(report.findings) - 15} more")
    return "\n".join(lines)


def _check_handler_dir(handler_dir: Path) -> None:
    if not (handler_dir / HANDLER_MODULE).is_file() or not (handler_dir / HANDLER_PACKAGE).is_dir():
        raise InputError(
            f"{handler_dir} does not hold {HANDLER_MODULE} and {HANDLER_PACKAGE}/",
            "Point --handler-dir at lambdapack's handler/ folder (or a copy of it).",
        )


def _add_handler(handler_dir: Path, task: Path) -> None:
    shutil.copy2(handler_dir / HANDLER_MODULE, task / HANDLER_MODULE)
    shutil.copytree(
        handler_dir / HANDLER_PACKAGE,
        task / HANDLER_PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


def _file_sizes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _write_json_atomically(path: Path, data: dict) -> None:
    pending = path.with_name(f".{path.name}.partial")
    pending.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(pending, path)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
