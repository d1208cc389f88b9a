"""The pack pipeline: stages run in one loop.

Each stage is an object with a ``NAME``, a one-line ``PURPOSE`` and one
``execute(build) -> summary``; ``run_stages`` times each one, reports its
progress and tags any ``PackError`` with the stage it came from, in one place.

    model    convert/check the model, complete its config    (model.py)
    install  pip, for the exact Lambda target                 (install.py, target.py)
    strip    strip symbols, keep any file that stops loading  (strip.py)
    prune    delete dead weight by data-driven rules          (prune.py)
    handler  add index.py and the handler package             (lambdapack.handler)
    compile  unchecked-hash .pyc when this Python is the target's (bytecode.py)
    stage    with --stage-deps s3: split off the dependencies into deps.tar.zst (staging.py)
    check    unzipped size against 250 MB; every ELF file against the target (compat.py)
    zip      deterministic archive, then the report           (zipper.py, report.py)
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import ClassVar

from lambdapack.handler.lambdapack_handler.contract import (
    BUILD_RECORD,
    HANDLER_MODULE,
    HANDLER_PACKAGE,
    MODEL_DIR,
)

from .. import __version__
from ..atomic import folder_lock
from ..errors import CompatibilityError, InputError, PackError, SizeLimitError
from ..labelled import SampleSet
from ..limits import UNZIPPED_BYTES
from ..resources import default_cache_dir, handler_dir
from . import calibrate, compat
from .bytecode import BytecodeResult, compile_tree
from .elf import read_elf_file
from .install import Installer, InstallResult
from .interpreter import find_target_python
from .model import (
    ModelResult,
    allowed_text,
    artifact_size,
    default_config_path,
    load_prepared,
    prepare_model,
    require_labels,
    sample_set,
)
from .prune import PruneResult, active_rules, matching_rule, prune_tree
from .report import (
    OVER_LIMIT_HINT,
    Report,
    over_limit_message,
    owners_from_records,
    sum_by_package,
    zip_report,
)
from .runtimes import BOOTSTRAP_REQUIREMENTS, BOTO3_REQUIREMENT, Runtime
from .smoke import SmokeResult, StagedArchive, smoke_run
from .staging import (
    DEFAULT_LEVEL,
    DEPS_NAME,
    ArchiveDigest,
    check_ephemeral,
    split_tree,
    top_level_names,
    write_archive,
)
from .strip import StripResult, elf_files, strip_tree
from .target import Target
from .zipper import collect, write_zip

STAGED_OVER_LIMIT_HINT = (
    "With --stage-deps s3 only the handler, its bootstrap and the model stay in the zip: the "
    "model itself is too large. Convert and quantize it (--runtime litert --quantize dynamic), "
    "or serve a smaller one."
)
ZIP_NAME = "function.zip"
REPORT_NAME = "report.json"
LOCK_NAME = ".lambdapack.lock"  # held by the pack writing into the folder (atomic.folder_lock)


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
    handler_dir: Path = field(default_factory=handler_dir)
    smoke: bool = True
    prepared_model: Path | None = None  # set by the Docker builder: the host converted it
    stage_deps: str = "none"  # "s3": dependencies go to deps.tar.zst, unpacked at cold start
    deps_level: int = DEFAULT_LEVEL  # zstd level of deps.tar.zst
    image: str | None = None  # a container image of the target's Python (else found: interpreter.py)
    allow_unsafe_ops: bool = False  # run a SavedModel's file, network and Python ops (graph_ops)
    labels: tuple[str, ...] | None = None  # --labels: the zip's labels, over the config's
    max_accuracy_drop: float = calibrate.DEFAULT_MAX_DROP  # points, on labelled samples
    today: date = field(default_factory=date.today)  # for the runtime's lifecycle dates

    @property
    def staged(self) -> bool:
        return self.stage_deps == "s3"


@dataclass
class Build:
    """What the stages share: the options, the work folders, and each stage's result."""

    options: PackOptions
    root: Path  # a temporary folder for the whole build
    samples: list[Path] = field(default_factory=list)
    sample_set: SampleSet | None = None  # the samples as read (labelled or not)
    labelled: calibrate.LabelledCheck | None = None  # with labelled samples: the accuracy check
    model: ModelResult | None = None
    installed: InstallResult | None = None
    stripped: StripResult | None = None
    owners: dict[str, str] = field(default_factory=dict)  # file -> distribution, before pruning
    pruned: PruneResult | None = None
    bytecode: BytecodeResult | None = None
    archive: ArchiveDigest | None = None
    compat: compat.CompatReport | None = None
    record: dict = field(default_factory=dict)  # the build record written into the zip
    report: Report | None = None
    smoke: SmokeResult | None = None

    @property
    def task(self) -> Path:
        """The future /var/task: everything that goes into the zip."""
        return self.root / "task"

    @property
    def deps_tree(self) -> Path:
        return self.root / "deps"

    @property
    def pending_zip(self) -> Path:
        return self.options.out / f".{ZIP_NAME}.partial"

    @property
    def pending_deps(self) -> Path:
        return self.options.out / f".{DEPS_NAME}.partial"


class Stage:
    NAME: ClassVar[str]
    PURPOSE: ClassVar[str]

    def applies(self, options: PackOptions) -> bool:
        return True

    def execute(self, build: Build) -> str:
        """Do the stage's work; return a one-line summary for the progress display."""
        raise NotImplementedError


class ModelStage(Stage):
    NAME = "model"
    PURPOSE = "convert the model and check the conversion, or take it as it is"

    def execute(self, build: Build) -> str:
        options = build.options
        build.sample_set = found = sample_set(options.samples)
        build.samples = found.paths if found is not None else []
        labelled = found if found is not None and found.labelled else None
        labels = list(options.labels) if options.labels else None
        if options.prepared_model is not None:  # the host checked the labels when it prepared it
            build.model = load_prepared(options.prepared_model, build.root / MODEL_DIR)
        else:
            require_labels(options.model, options.config, labels, found)
            build.model = prepare_model(
                options.model,
                build.root / MODEL_DIR,
                options.cache_dir,
                options.quantize,
                options.config,
                build.samples,
                options.runtime.model_format,
                allow_unsafe_ops=options.allow_unsafe_ops,
                labels=labels,
                labelled=labelled,
            )
        cached = " (cached)" if build.model.cached else ""
        if options.prepared_model is not None and build.model.config_path is None:
            used = "prepared on the host"
        else:
            used = build.model.config_summary()
        line = f"{build.model.kind} -> {build.model.config['model_file']}{cached}; {used}"
        parts = [line, *allowed_text(build.model.check.get("unsafe_ops_allowed"))]
        if labelled is not None:
            model = build.model
            build.labelled = calibrate.labelled_check(
                model.config, model.check, labelled, options.max_accuracy_drop
            )
            model.labelled = build.labelled.model_dict()
            where = model.config_path or default_config_path(options.model)
            calibrate.check_preprocessing(build.labelled, str(where), options.model)
            parts.append(build.labelled.summary())
        return "; ".join(parts)


class InstallStage(Stage):
    NAME = "install"
    PURPOSE = "pip-install the runtime's dependencies for the exact Lambda target"

    def execute(self, build: Build) -> str:
        options = build.options
        requirements = [*options.runtime.requirements_for(options.target.arch), *options.requirements]
        if options.bundle_boto3:
            requirements.append(BOTO3_REQUIREMENT)
        if options.staged:
            requirements += BOOTSTRAP_REQUIREMENTS
        build.task.mkdir(parents=True, exist_ok=True)
        rules = active_rules(_kept_groups(options))
        build.installed = Installer(options.cache_dir).install(
            requirements,
            options.target,
            build.task,
            options.find_links,
            options.refresh,
            shipped=lambda path: matching_rule(path, rules) is None,
        )
        names = ", ".join(f"{d.name} {d.version}" for d in build.installed.distributions)
        summary = names + ("" if build.installed.downloaded else " (from the wheel cache)")
        # Releases skipped because their native files cannot load on the target.
        return "\n".join([summary, *(f"  {line}" for line in build.installed.skipped)])


class StripStage(Stage):
    NAME = "strip"
    PURPOSE = "strip symbols from native files, keeping the original of any that stops loading"

    def execute(self, build: Build) -> str:
        build.stripped = strip_tree(build.task, build.options.target)
        # Who owns what, before prune trims each RECORD to the files that stay.
        build.owners = owners_from_records(
            {
                p.relative_to(build.task).as_posix(): p.read_text(errors="replace")
                for p in build.task.glob("*.dist-info/RECORD")
            }
        )
        return f"{len(build.stripped.files)} ELF files, saved {_mb(build.stripped.saved)}"


class PruneStage(Stage):
    NAME = "prune"
    PURPOSE = "delete what the function never imports, by rules kept as data"

    def execute(self, build: Build) -> str:
        options = build.options
        build.pruned = prune_tree(build.task, _kept_groups(options))
        return f"saved {_mb(build.pruned.saved)}"


class HandlerStage(Stage):
    NAME = "handler"
    PURPOSE = "add the handler (index.py and its package) and the model"

    def execute(self, build: Build) -> str:
        source = build.options.handler_dir
        shutil.copy2(source / HANDLER_MODULE, build.task / HANDLER_MODULE)
        shutil.copytree(
            source / HANDLER_PACKAGE,
            build.task / HANDLER_PACKAGE,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        shutil.copytree(build.root / MODEL_DIR, build.task / MODEL_DIR)
        return f"{HANDLER_MODULE}, {HANDLER_PACKAGE}/, {MODEL_DIR}/"


class CompileStage(Stage):
    NAME = "compile"
    PURPOSE = "ship unchecked-hash .pyc compiled by the target's Python"

    def execute(self, build: Build) -> str:
        options = build.options
        python, note = find_target_python(options.target, options.image, same_arch=False)
        build.bytecode = compile_tree(build.task, options.target, python, note)
        return build.bytecode.note


class StageDepsStage(Stage):
    NAME = "stage"
    PURPOSE = "move the dependencies into deps.tar.zst, unpacked into /tmp at cold start"

    def applies(self, options: PackOptions) -> bool:
        return options.staged

    def execute(self, build: Build) -> str:
        options = build.options
        bootstrap = top_level_names(build.owners, BOOTSTRAP_REQUIREMENTS)
        split_tree(build.task, build.deps_tree, {HANDLER_MODULE, HANDLER_PACKAGE, MODEL_DIR, *bootstrap})
        options.out.mkdir(parents=True, exist_ok=True)
        build.archive = archive = write_archive(build.deps_tree, build.pending_deps, options.deps_level)
        check_ephemeral(archive)
        return (
            f"{DEPS_NAME} {_mb(archive.size)} (unpacks to {_mb(archive.unpacked)}, "
            f"zstd -{archive.level}), sha256 {archive.sha256[:16]}…"
        )


class CheckStage(Stage):
    NAME = "check"
    PURPOSE = "size against Lambda's limit; every native file against the target's libraries"

    def execute(self, build: Build) -> str:
        options = build.options
        sizes = _file_sizes(build.task)
        unzipped = sum(sizes.values())
        if unzipped > UNZIPPED_BYTES:
            hint = options.runtime.over_limit_hint or OVER_LIMIT_HINT
            if options.staged:
                hint = STAGED_OVER_LIMIT_HINT
            raise SizeLimitError(over_limit_message(unzipped, sum_by_package(sizes, build.owners)), hint)
        elves = {p.relative_to(build.task).as_posix(): read_elf_file(p) for p in elf_files(build.task)}
        if options.staged:
            # Both trees are on sys.path at run time: libraries may need each other.
            elves |= {
                f"deps/{p.relative_to(build.deps_tree).as_posix()}": read_elf_file(p)
                for p in elf_files(build.deps_tree)
            }
        build.compat = compat.check(elves, options.target)
        if not build.compat.ok:
            raise CompatibilityError(
                _compat_message(build.compat, options.target), _compat_hint(options.target)
            )
        build.record = _build_record(build, sizes)
        return f"{len(elves)} ELF files load on {options.target.runtime}"


class ZipStage(Stage):
    NAME = "zip"
    PURPOSE = "write a deterministic zip with the build record, and report what is in it"

    def execute(self, build: Build) -> str:
        record_path = build.task / BUILD_RECORD
        record_path.parent.mkdir()
        record_path.write_text(json.dumps(build.record, indent=1, sort_keys=True) + "\n")
        build.options.out.mkdir(parents=True, exist_ok=True)
        digest = write_zip(collect(build.task), build.pending_zip)
        build.report = zip_report(build.pending_zip, build.options.target, build.compat)
        return f"{_mb(digest.size)} sha256 {digest.sha256[:16]}…"


class SmokeStage(Stage):
    NAME = "smoke"
    PURPOSE = "unzip and classify the samples in a clean interpreter of the target"

    def execute(self, build: Build) -> str:
        options = build.options
        assert build.model is not None
        if not options.smoke:
            build.smoke = SmokeResult(ran=False, note="skipped (--no-smoke)")
        else:
            expected = [s["probabilities"] for s in build.model.check.get("samples", [])]
            staged = StagedArchive(build.pending_deps, build.archive.sha256) if build.archive else None
            python, note = find_target_python(options.target, options.image)
            build.smoke = smoke_run(
                build.pending_zip,
                build.samples,
                expected,
                options.runtime.smoke_imports,
                python,
                note,
                staged,
            )
        accuracy = self._labelled(build)
        if not build.smoke.ran:
            return "; ".join([f"not run: {build.smoke.note}", *accuracy])
        return "; ".join(
            [
                f"{build.smoke.images} image{'s' * (build.smoke.images != 1)} classified by "
                f"{build.smoke.interpreter}, import {build.smoke.import_s:.2f} s",
                *accuracy,
            ]
        )

    @staticmethod
    def _labelled(build: Build) -> list[str]:
        """With labelled samples: the zip's top-1 against the original model's, on the same
        images (the smoke run's answers; without one, the converted model's on this machine)."""
        check, smoke, model = build.labelled, build.smoke, build.model
        if check is None or build.sample_set is None:
            return []
        assert smoke is not None and model is not None
        truth = calibrate.truth_indices(build.sample_set, list(model.config["labels"]))
        if smoke.ran and smoke.top1 is not None:
            calibrate.zip_answers(check, smoke.top1, truth, f"the smoke run in {smoke.interpreter}")
        else:
            converted = [
                max(range(len(s["probabilities"])), key=s["probabilities"].__getitem__)
                for s in model.check["samples"]
            ]
            calibrate.zip_answers(
                check, converted, truth, "the converted model on this machine: no smoke run"
            )
        calibrate.check_zip(check)
        return [check.zip_summary()]


STAGES: tuple[Stage, ...] = (
    ModelStage(),
    InstallStage(),
    StripStage(),
    PruneStage(),
    HandlerStage(),
    CompileStage(),
    StageDepsStage(),
    CheckStage(),
    ZipStage(),
    SmokeStage(),
)

Progress = Callable[[str, str, float], None]  # stage, summary, seconds


def _quiet(stage: str, summary: str, seconds: float) -> None:
    pass


def run_stages(stages: Sequence[Stage], build: Build, progress: Progress) -> dict[str, float]:
    """Run each stage that applies, in order; return the seconds each took."""
    timings: dict[str, float] = {}
    for stage in stages:
        if not stage.applies(build.options):
            continue
        began = time.perf_counter()
        try:
            summary = stage.execute(build)
        except PackError as exc:
            exc.stage = exc.stage or stage.NAME
            raise
        timings[stage.NAME] = round(time.perf_counter() - began, 3)
        progress(stage.NAME, summary, timings[stage.NAME])
    return timings


def pack(options: PackOptions, progress: Progress = _quiet) -> Report:
    """Build ``function.zip`` (and ``deps.tar.zst`` when staging) and ``report.json``
    in ``options.out``; return the report."""
    _check_handler_dir(options.handler_dir)

    def waiting(holder: str) -> None:
        progress("wait", f"process {holder} is packing into {options.out}: waiting for it to finish", 0.0)

    # One pack at a time into a folder: its outputs and their .partial files are per folder.
    with folder_lock(options.out, LOCK_NAME, waiting):
        try:
            with tempfile.TemporaryDirectory(prefix="lambdapack-build-") as root:
                build = Build(options, Path(root))
                timings = run_stages(STAGES, build, progress)
                return _publish(build, timings)
        finally:
            for name in (ZIP_NAME, DEPS_NAME):
                (options.out / f".{name}.partial").unlink(missing_ok=True)


def _publish(build: Build, timings: dict[str, float]) -> Report:
    """Every check passed: move the outputs into place and write report.json."""
    options, report = build.options, build.report
    assert report is not None and build.smoke is not None
    report.smoke = build.smoke.as_dict()
    if build.labelled is not None:
        report.smoke["accuracy"] = build.labelled.as_dict()
    if build.archive is not None:
        os.replace(build.pending_deps, options.out / DEPS_NAME)
        report.build["deps"] = {**build.record["deps"], "path": str(options.out / DEPS_NAME)}
    else:
        # A plain zip needs no archive: one left from a staged build would mislead.
        (options.out / DEPS_NAME).unlink(missing_ok=True)
    final_zip = options.out / ZIP_NAME
    os.replace(build.pending_zip, final_zip)
    report.zip.path = str(final_zip)
    report.timings = timings
    warning = options.target.deprecation_warning(options.today)
    if warning:
        report.warnings.append(warning)
    write_report(report, options.out / REPORT_NAME)
    return report


def write_report(report: Report, path: Path) -> None:
    pending = path.with_name(f".{path.name}.partial")
    pending.write_text(report.to_json())
    os.replace(pending, path)


def _build_record(build: Build, sizes: dict[str, int]) -> dict:
    """What the zip records about its own build (``lambdapack report`` reads it back)."""
    options = build.options
    assert build.model and build.installed and build.stripped and build.pruned and build.bytecode
    deps_sizes = _file_sizes(build.deps_tree) if options.staged else {}
    surviving_strip = {
        f.path: f.saved for f in build.stripped.files if f.path in sizes or f.path in deps_sizes
    }
    model_file = build.task / MODEL_DIR / build.model.config["model_file"]
    record = {
        "lambdapack": __version__,
        "target": options.target.as_dict(),
        "runtime": options.runtime.name,
        "builder": builder_record(),
        "distributions": [{"name": d.name, "version": d.version} for d in build.installed.distributions],
        "install": {"skipped": list(build.installed.skipped)},
        "strip": build.stripped.as_dict(),
        "prune": build.pruned.as_dict(),
        "strip_saved_by_package": sum_by_package(surviving_strip, build.owners),
        "prune_saved_by_package": sum_by_package(build.pruned.saved_by_path(), build.owners),
        "bytecode": build.bytecode.as_dict(),
        "model": build.model.as_dict(artifact_size(model_file)),
    }
    if build.archive is not None:
        record["deps"] = {**build.archive.as_dict(), "packages": sum_by_package(deps_sizes, build.owners)}
    return record


def _kept_groups(options: PackOptions) -> tuple[str, ...]:
    """Prune groups that stay: the user's --keep and those the runtime imports from."""
    return (*options.keep, *options.runtime.unsafe_prune_groups)


def builder_record() -> dict:
    """Which builder produced the zip: native, or docker with its base image."""
    return {
        "name": os.environ.get("LAMBDAPACK_BUILDER", "native"),
        "base_image": os.environ.get("LAMBDAPACK_BASE_IMAGE"),
        "python": platform.python_version(),
    }


def _compat_hint(target: Target) -> str:
    hint = (
        "A wheel's platform tag promised more than its files deliver. Pin another release of the "
        "package that ships the file (--require 'NAME==VERSION'), or drop the requirement."
    )
    return hint + target.newer_runtime_hint()


def _compat_message(report: compat.CompatReport, target: Target) -> str:
    return compat.problems_message(
        f"{len(report.findings)} native files cannot load on {target.runtime} ({target.os.name}):",
        [(f.path, f.problem) for f in report.findings],
        shown=15,
    )


def _check_handler_dir(folder: Path) -> None:
    if not (folder / HANDLER_MODULE).is_file() or not (folder / HANDLER_PACKAGE).is_dir():
        raise InputError(
            f"{folder} does not hold {HANDLER_MODULE} and {HANDLER_PACKAGE}/",
            "Point --handler-dir at a folder laid out like lambdapack's own handler "
            "(lambdapack.resources.handler_dir()).",
        )


def _file_sizes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
