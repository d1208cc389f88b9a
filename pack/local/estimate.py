"""``lambdapack estimate``: run a zip in the local Lambda runtime at each memory size,
time it, and project what N images cost and how long they take (``pricing``).

Measured, not guessed: for each memory size the zip's own code runs under AWS's
runtime interface client (``Sandbox``) in a container of the target's Python whose
memory is capped at that size and whose CPU share is memory / 1,769 MB of one vCPU,
as Lambda allocates it. Each invocation is a real S3 event for one image: the
function reads the image from, and writes its result to, a private S3 (moto's
server on 127.0.0.1, started and stopped here). Per size: several cold starts (each
a new execution environment: its init, then the first invocation), warm invocations
(each sample image's median, averaged over the images) and the container's peak
memory. Cold starts and warm invocations of all sizes are interleaved in rounds, so
that this machine's other load falls on all of them alike.

SnapStart (a python3.12+ zip that Lambda allows it for, ``limits.snapstart_problem``):
after the cold starts, each size gets one parked, initialised process (``Snapshot``:
the version's init once, in a container with that size's memory cap and CPU share) and
as many environments as cold starts are restored from it, one at a time, each timed:
its Restore Duration (fork and after-restore hooks, the runtime's figure) and its first
invocation. The SnapStart projection bills those instead of init + first invocation.

Every figure carries its spread: the cold starts' min–max, and the warm figure's
min–max over the rounds. Projections are made at both ends, and a size is called
cheapest or fastest only when its whole range beats every other size's range and its
median beats every other median by more than ``pricing.MATERIAL`` (20 %)
(``pricing.verdict``); otherwise the sizes are "within noise" of each other, so two
runs on the same zip do not contradict each other's verdicts.

A size whose CPU share is more vCPUs than this machine has cores cannot be
emulated: its row says so and holds no figures (nothing is extrapolated). When
no container of the target's Python is on this machine, the zip runs in this
machine's Python with no CPU share (memory is still capped), and the result says the
figures are uncapped.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .. import limits, pricing
from ..errors import InputError
from ..images import image_files
from ..limits import MEMORY_MB, ONE_VCPU_MB
from ..packing.interpreter import TargetPython
from ..packing.report import build_record_in
from ..packing.target import Target, TargetError, host_arch, host_python
from .private_s3 import PrivateS3
from .s3event import s3_event
from .taskdir import unzipped

MEASURED_MEMORY_MB = (512, limits.DEFAULT_MEMORY_MB, ONE_VCPU_MB, 3008)  # what estimate measures by default
DEFAULT_WARM = 32  # warm invocations per memory size (at least 4 per sample image)
DEFAULT_COLD = 3  # cold starts per memory size: the init's spread is known, not one draw
ROUNDS = 4  # the warm invocations of all sizes, interleaved in this many rounds
MAX_IMAGES = 16
PREFIX = "incoming/"
CONFIG_IN_ZIP = "model/config.json"
DEFAULT_INPUT = (224, 224)  # when the zip does not say (a zip lambdapack did not pack)
PRESSURE = Path("/proc/pressure/cpu")  # Linux's pressure stall information for the CPUs
BUSY = 0.25  # above this share of the measuring with a task waiting for a CPU, say so


@dataclass
class SizeMeasurement:
    """One memory size: what the zip did there (or why it was not run)."""

    memory_mb: int
    vcpus: float
    measured: bool = False
    note: str | None = None
    init_ms: float | None = None
    cold_ms: float | None = None
    warm_ms: dict[str, list[float]] = field(default_factory=dict)  # per sample image
    peak_memory_mb: int | None = None
    error: dict | None = None
    init_samples: list[float] = field(default_factory=list)  # one per cold start
    cold_samples: list[float] = field(default_factory=list)
    warm_rounds: list[dict[str, list[float]]] = field(default_factory=list)  # per round, per image
    # SnapStart (python3.12+): environments restored from one parked, initialised process
    restore_ms: float | None = None  # median Restore Duration (the runtime's figure)
    restored_ms: float | None = None  # median first invocation of a restored environment
    restore_samples: list[float] = field(default_factory=list)
    restored_samples: list[float] = field(default_factory=list)
    restore_note: str | None = None  # why restores were not measured (None: they were, or not tried)

    @property
    def restores_ok(self) -> bool:
        return self.restore_ms is not None and self.restored_ms is not None

    @property
    def ok(self) -> bool:
        return self.measured and self.error is None and bool(self.warm_ms) and self.init_ms is not None

    @property
    def warm_count(self) -> int:
        return sum(len(durations) for durations in self.warm_ms.values())

    @property
    def warm_per_image_ms(self) -> float | None:
        """The figure projections use: each image's median warm duration, averaged over the
        images (each sample image weighs the same, whatever its count)."""
        return _per_image(self.warm_ms)

    def spread(self) -> dict | None:
        """Each measured figure's min and max: over the cold starts (init, first invocation),
        and over the rounds for the warm figure (each round's per-image figure, computed as
        ``warm_per_image_ms`` is)."""
        if not self.ok:
            return None
        rounds = [_per_image(round_) for round_ in self.warm_rounds if round_]
        warm = [figure for figure in (*rounds, self.warm_per_image_ms) if figure is not None]
        inits = self.init_samples or [self.init_ms]
        colds = self.cold_samples or [self.cold_ms]
        spread = {
            "init_ms": [min(inits), max(inits)],
            "cold_ms": [min(colds), max(colds)],
            "warm_per_image_ms": [min(warm), max(warm)],
            "cold_starts": len(inits),
            "warm_rounds": len(rounds),
        }
        if self.restores_ok:
            restores = self.restore_samples or [self.restore_ms]
            restored = self.restored_samples or [self.restored_ms]
            spread["restore_ms"] = [min(restores), max(restores)]
            spread["restored_ms"] = [min(restored), max(restored)]
            spread["restores"] = len(restores)
        return spread

    @property
    def warm_p50_ms(self) -> float | None:
        every = [ms for durations in self.warm_ms.values() for ms in durations]
        return statistics.median(every) if every else None

    @property
    def warm_mean_ms(self) -> float | None:
        every = [ms for durations in self.warm_ms.values() for ms in durations]
        return statistics.fmean(every) if every else None

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "spread": self.spread(),
            "warm_count": self.warm_count,
            "warm_per_image_ms": self.warm_per_image_ms,
            "warm_p50_ms": self.warm_p50_ms,
            "warm_mean_ms": self.warm_mean_ms,
        }


def _per_image(durations: dict[str, list[float]]) -> float | None:
    """Each image's median duration, averaged over the images (each weighs the same)."""
    medians = [statistics.median(d) for d in durations.values() if d]
    return statistics.fmean(medians) if medians else None


@dataclass
class Measurements:
    zip: str
    runtime: str
    architecture: str
    how: str  # which interpreter ran the zip
    cpu_capped: bool  # memory and CPU share enforced (a container)
    cores: int
    images: list[dict]  # the sample images: name, width, height, bytes
    sizes: list[SizeMeasurement]
    notes: list[str] = field(default_factory=list)
    ephemeral_mb: int = 512  # what the function needs (staged dependencies need more)
    cpu_pressure: float | None = None  # share of the measuring some task waited for a CPU


def cpu_stall_us(path: Path = PRESSURE) -> int | None:
    """Microseconds, since boot, that some task on this machine waited for a CPU (the
    ``some`` line of Linux's pressure stall information), or None where it is not kept."""
    try:
        for line in path.read_text().splitlines():
            kind, *fields = line.split()
            if kind == "some":
                return int(dict(field.split("=", 1) for field in fields)["total"])
    except (OSError, ValueError, KeyError):
        return None
    return None


def busy_note(pressure: float | None) -> str | None:
    """The note for a machine that was busy while it measured (None when it was not, or
    when the kernel does not say)."""
    if pressure is None or pressure <= BUSY:
        return None
    return (
        f"this machine was busy: for {pressure:.0%} of the measuring some task waited for a CPU "
        f"({PRESSURE}), so the sizes may not have had their whole CPU share and the figures move "
        "with that load; no size is named cheapest or fastest — measure on a quieter machine"
    )


@dataclass(frozen=True)
class Runner:
    """Where the zip runs: the runtime folders (boto3, awslambdaric) and the interpreter."""

    paths: list[Path]
    python: TargetPython | None  # None: this process's Python, no CPU share (memory capped)

    @property
    def capped(self) -> bool:
        return self.python is not None

    @property
    def description(self) -> str:
        if self.python is None:
            return f"this machine's Python {host_python()}"
        return self.python.description


def vcpus(memory_mb: int) -> float:
    """Lambda's CPU allocation: proportional to memory, one full vCPU at 1,769 MB."""
    return memory_mb / ONE_VCPU_MB


def too_big_for_here(memory_mb: int, cores: int) -> str | None:
    """Why ``memory_mb`` cannot be emulated on ``cores`` cores (None: it can)."""
    share = vcpus(memory_mb)
    if share <= cores:
        return None
    return (
        f"not measured: {memory_mb:,} MB gets {share:.2f} vCPU on Lambda and this machine has "
        f"{cores} core{'s' if cores != 1 else ''}; no figures rather than extrapolated ones"
    )


def zip_target(zip_path: Path) -> tuple[Target, dict, dict]:
    """The zip's target (from its build record; this machine's Python for a zip lambdapack
    did not pack), its model config ({} when it has none) and its build record ({} too)."""
    if not zipfile.is_zipfile(zip_path):
        raise InputError(f"{zip_path} is not a zip file", "Pack one first: lambdapack pack MODEL.")
    with zipfile.ZipFile(zip_path) as archive:
        record = build_record_in(archive)
        target = record.get("target") or {}
        try:
            config = json.loads(archive.read(CONFIG_IN_ZIP))
        except (KeyError, ValueError):
            config = {}
    runtime = target.get("runtime", f"python{host_python()}")
    try:
        return (
            Target(runtime.removeprefix("python"), target.get("architecture", host_arch() or "x86_64")),
            config if isinstance(config, dict) else {},
            record,
        )
    except TargetError as exc:
        raise InputError(f"{zip_path}: {exc}") from exc


def runner_for(target: Target, cache_dir: Path) -> Runner:
    """A container of the target's Python whenever one is here (memory and CPU share
    enforced), for this machine's own Python too; else this machine's Python, with no CPU share."""
    from .lambda_runtime import LocalRuntimes

    paths, python = LocalRuntimes(cache_dir).for_target(target, contained=True)
    return Runner(paths, python)


def sample_images(folder: Path | None, config: dict, into: Path) -> list[Path]:
    """The images to classify: every image in ``folder``, or a few generated here with
    Pillow — JPEG and PNG at the model's input size and at 640x480."""
    if folder is not None:
        return image_files(folder)
    import numpy as np
    from PIL import Image

    spec = config.get("input") if isinstance(config.get("input"), dict) else {}
    size = (int(spec.get("width") or DEFAULT_INPUT[0]), int(spec.get("height") or DEFAULT_INPUT[1]))
    rng = np.random.default_rng(15)
    into.mkdir(parents=True, exist_ok=True)
    made = []
    for width, height in (size, (640, 480)):
        # A smooth gradient with noise: photo-like sizes once compressed, the same bytes every run.
        y, x = np.mgrid[0:height, 0:width]
        base = np.stack([x * 255 / max(width, 1), y * 255 / max(height, 1), (x + y) % 256], axis=-1)
        pixels = np.clip(base + rng.normal(0, 24, base.shape), 0, 255).astype("uint8")
        image = Image.fromarray(pixels, "RGB")
        for suffix, kind in ((".jpg", "JPEG"), (".png", "PNG")):
            path = into / f"sample-{width}x{height}{suffix}"
            image.save(path, kind)
            made.append(path)
    return made


def describe_images(paths: list[Path], root: Path) -> list[dict]:
    from PIL import Image

    described = []
    for path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
        except OSError:
            width = height = None
        described.append(
            {
                "name": path.relative_to(root).as_posix(),
                "width": width,
                "height": height,
                "bytes": path.stat().st_size,
            }
        )
    return described


def measure(
    zip_path: Path,
    memory_sizes: list[int],
    cache_dir: Path,
    images_dir: Path | None = None,
    warm: int | None = None,
    cold: int = DEFAULT_COLD,
    region: str = limits.DEFAULT_REGION,
    cores: int | None = None,
    log: Callable[[str], None] | None = None,
) -> Measurements:
    """Run ``zip_path`` at each memory size and time it (see the module's docstring).

    Every size gets ``cold`` execution environments in turn, one after another across the
    sizes (each cold start is timed alone; the last environment stays for the warm
    invocations). The warm invocations then run in ``ROUNDS`` rounds; in each round
    every size runs its block back to back, cycling through the images. Interleaving
    the sizes spreads this machine's own load (other processes) over all of them
    alike, instead of letting it fall on whichever size ran at the time."""
    from .sandbox import FunctionSpec, Sandbox
    from .snapstart import Snapshot

    say = log or (lambda _line: None)
    for memory in memory_sizes:
        if memory not in MEMORY_MB:
            raise InputError(f"--memory {memory}: Lambda's memory size is {MEMORY_MB}")
    if cold < 1:
        raise InputError("at least one cold start per memory size is needed")
    target, config, record = zip_target(zip_path)
    deps = record.get("deps") if isinstance(record.get("deps"), dict) else {}
    ephemeral_mb = int(deps.get("ephemeral_storage_mb") or 512)
    cores = cores or os.cpu_count() or 1
    runner = runner_for(target, cache_dir)
    notes = []
    if not runner.capped:
        notes.append(
            "uncapped: no container of the target's Python is here, so every size ran in this "
            "machine's Python with all its cores (memory capped, CPU not) — the sizes differ only "
            "in price, not in speed (scripts/docker_setup.sh builds the images)"
        )
    elif runner.python is not None and runner.python.arch != host_arch():
        notes.append(
            f"{target.arch} runs under QEMU user emulation here: durations are far longer than "
            "on Lambda's own hardware"
        )
    if runner.capped and all(too_big_for_here(memory, cores) for memory in memory_sizes):
        largest = min(MEMORY_MB.high, cores * ONE_VCPU_MB)
        raise InputError(
            f"none of {', '.join(f'{m:,} MB' for m in memory_sizes)} can be measured here: a size gets "
            f"memory / {ONE_VCPU_MB:,} MB vCPUs on Lambda and this machine has {cores} "
            f"core{'s' if cores != 1 else ''}",
            f"Choose --memory sizes up to {largest:,} MB here, or estimate on a machine with more cores.",
        )
    say(f"measuring {zip_path.name} at {', '.join(f'{m:,} MB' for m in memory_sizes)} …")
    started, stalled = time.monotonic(), cpu_stall_us()
    sizes = [SizeMeasurement(memory, round(vcpus(memory), 3)) for memory in memory_sizes]
    with (
        tempfile.TemporaryDirectory(prefix="lambdapack-estimate-") as work_dir,
        unzipped(zip_path, cache_dir) as task,
    ):
        work = Path(work_dir)
        images = sample_images(images_dir, config, work / "images")
        if len(images) > MAX_IMAGES:
            notes.append(f"{len(images)} images given: the first {MAX_IMAGES} (by name) were used")
            images = images[:MAX_IMAGES]
        warm = warm if warm is not None else max(DEFAULT_WARM, 4 * len(images))
        if warm < 1:
            raise InputError("at least one warm invocation per memory size is needed")
        sandboxes: dict[int, Sandbox] = {}
        with PrivateS3(region) as s3:
            keys = s3.upload(images, PREFIX)
            root = images_dir or work / "images"
            events = [
                (path.relative_to(root).as_posix(), json.dumps(s3_event(s3.bucket, [key])).encode())
                for path, key in zip(images, keys, strict=True)
            ]
            environments = itertools.count()

            def new_spec(row: SizeMeasurement, snapstart: bool = False) -> FunctionSpec:
                return FunctionSpec(
                    name=f"estimate-{row.memory_mb}",
                    task_dir=task,
                    memory=row.memory_mb,
                    timeout=60.0,
                    region=region,
                    runtime=target.runtime,
                    architecture=target.arch,
                    version="1" if snapstart else "$LATEST",  # SnapStart: a published version
                    snapstart=snapstart,
                )

            def new_sandbox(row: SizeMeasurement, snapshot: Snapshot | None = None) -> Sandbox:
                """A new execution environment at ``row``'s size (restored from ``snapshot``)."""
                return Sandbox(
                    snapshot.spec if snapshot else new_spec(row),
                    runner.paths,
                    work / f"sandbox-{next(environments)}",
                    s3.function_environment(),
                    runner.python,
                    snapshot=snapshot,
                )

            def restore(row: SizeMeasurement) -> None:
                """One parked, initialised process for ``row``'s size, in a container with that
                size's memory cap and CPU share; ``cold`` environments restored from it, one
                at a time (each stopped before the next), their first invocation timed."""
                snapshot = Snapshot(
                    new_spec(row, snapstart=True),
                    runner.paths,
                    work / f"snapshot-{row.memory_mb}",
                    work,
                    s3.function_environment(),
                    runner.python,
                    capped=runner.capped,
                )
                try:
                    for _ in range(cold):
                        sandbox = new_sandbox(row, snapshot)
                        try:
                            if not _restored(sandbox, events[0][1], row):
                                break
                        finally:
                            sandbox.stop()
                finally:
                    snapshot.stop()

            try:
                for row in sizes:
                    row.note = too_big_for_here(row.memory_mb, cores) if runner.capped else None
                    if row.note:
                        say(f"{row.memory_mb:>6} MB  {row.note}")
                for start in range(cold):
                    for row in sizes:
                        if row.note or row.error:
                            continue
                        if id(row) in sandboxes:  # its previous environment ends: a new one starts cold
                            sandboxes.pop(id(row)).stop()
                        sandboxes[id(row)] = new_sandbox(row)
                        _cold(sandboxes[id(row)], events[0][1], row)
                        if start == cold - 1 or row.error:
                            say(_cold_line(row))
                if limits.snapstart_problem(target.runtime, ephemeral_mb) is None:
                    for row in sizes:
                        if not (row.note or row.error):
                            restore(row)
                            say(_restore_line(row))
                live = [row for row in sizes if id(row) in sandboxes and row.error is None]
                block = math.ceil(warm / ROUNDS)
                cursor = {id(row): 1 for row in live}  # the cold start used the first image
                for _ in range(ROUNDS):
                    for row in live:
                        row.warm_rounds.append({})
                        for _ in range(min(block, warm - row.warm_count)):
                            if row.error is None:
                                name, event = events[cursor[id(row)] % len(events)]
                                cursor[id(row)] += 1
                                _warm(sandboxes[id(row)], name, event, row)
                for row in live:
                    say(_warm_line(row))
            finally:
                for sandbox in sandboxes.values():
                    sandbox.stop()
        described = describe_images(images, images_dir or work / "images")
    pressure = None
    if stalled is not None and (now := cpu_stall_us()) is not None:
        pressure = min(1.0, (now - stalled) / 1e6 / max(time.monotonic() - started, 1e-6))
    if note := busy_note(pressure):
        notes.append(note)
    return Measurements(
        zip=str(zip_path),
        runtime=target.runtime,
        architecture=target.arch,
        how=runner.description,
        cpu_capped=runner.capped,
        cores=cores,
        images=described,
        sizes=sizes,
        notes=notes,
        cpu_pressure=pressure,
        ephemeral_mb=ephemeral_mb,
    )


def _cold(sandbox, event: bytes, row: SizeMeasurement) -> None:
    """The first invocation of a new execution environment: its init, then the invocation.
    The size's init and first-invocation figures are the medians of its cold starts."""
    row.measured = True
    result = sandbox.invoke(event)
    if _succeeded(result, row):
        row.init_samples.append(result.init_ms)
        row.cold_samples.append(result.duration_ms)
        row.init_ms = statistics.median(row.init_samples)
        row.cold_ms = statistics.median(row.cold_samples)
        row.peak_memory_mb = max(row.peak_memory_mb or 0, result.max_memory_mb or 0) or None


def _restored(sandbox, event: bytes, row: SizeMeasurement) -> bool:
    """A new execution environment restored from the size's parked process: its Restore
    Duration, then its first invocation. A restore that fails leaves the size's other figures
    alone: the row says why (``restore_note``) and no restore figure is kept."""
    result = sandbox.invoke(event)
    probe = SizeMeasurement(row.memory_mb, row.vcpus)
    if not _succeeded(result, probe) or not result.restored:
        why = probe.error or {"errorType": "Estimate.NotRestored", "errorMessage": "it started cold"}
        row.restore_note = f"SnapStart restores not measured: {why['errorType']}: {why['errorMessage']}"
        row.restore_samples, row.restored_samples = [], []
        row.restore_ms = row.restored_ms = None
        return False
    row.restore_samples.append(result.restore_ms)
    row.restored_samples.append(result.duration_ms)
    row.restore_ms = statistics.median(row.restore_samples)
    row.restored_ms = statistics.median(row.restored_samples)
    return True


def _warm(sandbox, name: str, event: bytes, row: SizeMeasurement) -> None:
    result = sandbox.invoke(event)
    if not _succeeded(result, row):
        return
    if result.cold:  # the environment was replaced (a crash): not a warm figure
        row.error = {"errorType": "Estimate.Restarted", "errorMessage": "the function restarted mid-way"}
        return
    row.warm_ms.setdefault(name, []).append(result.duration_ms)
    if row.warm_rounds:
        row.warm_rounds[-1].setdefault(name, []).append(result.duration_ms)
    if result.max_memory_mb is not None:
        row.peak_memory_mb = max(row.peak_memory_mb or 0, result.max_memory_mb)


def _succeeded(result, row: SizeMeasurement) -> bool:
    """True when the invocation classified its image; else the row records why not."""
    if not result.ok:
        row.error = {k: result.error.get(k) for k in ("errorType", "errorMessage")}
        return False
    try:
        body = json.loads(result.payload or b"null")
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("ok") != 1:
        first = (body or {}).get("results", [{}])[0] if isinstance(body, dict) else {}
        row.error = {
            "errorType": "Estimate.NotClassified",
            "errorMessage": "the function did not classify the image: "
            + json.dumps(first.get("error", body)),
        }
        return False
    return True


def _cold_line(row: SizeMeasurement) -> str:
    inits, colds = row.init_samples, row.cold_samples
    if row.error or not inits:
        return _size_line(row, "no cold start succeeded")
    return _size_line(
        row,
        f"cold starts ({len(inits)}): init {row.init_ms:,.0f} ms [{min(inits, default=0):,.0f}–"
        f"{max(inits, default=0):,.0f}], first invocation {row.cold_ms:,.1f} ms "
        f"[{min(colds, default=0):,.1f}–{max(colds, default=0):,.1f}]",
    )


def _restore_line(row: SizeMeasurement) -> str:
    if not row.restores_ok:
        return _size_line(row, row.restore_note or "no restore measured")
    restores, restored = row.restore_samples, row.restored_samples
    return _size_line(
        row,
        f"SnapStart restores ({len(restores)}): restore {row.restore_ms:,.0f} ms [{min(restores):,.0f}–"
        f"{max(restores):,.0f}], first invocation {row.restored_ms:,.1f} ms "
        f"[{min(restored):,.1f}–{max(restored):,.1f}]",
    )


def _warm_line(row: SizeMeasurement) -> str:
    return _size_line(
        row,
        f"warm: {row.warm_per_image_ms:,.1f} ms per image "
        f"(p50 {row.warm_p50_ms:,.1f}, mean {row.warm_mean_ms:,.1f}, {row.warm_count} invocations)",
    )


def _size_line(row: SizeMeasurement, measured: str) -> str:
    """One memory size's progress line: what was measured, or its error."""
    if row.error:
        return f"{row.memory_mb:>6} MB  error: {row.error['errorType']}: {row.error['errorMessage']}"
    return f"{row.memory_mb:>6} MB  {measured}"


# --- what N images cost and take, from the measurements ------------------------------------

SCHEMA = 1
WARM_FIGURE = (
    "warm duration per image: the median of each sample image's warm invocations, averaged over the images"
)


def estimate(
    measurements: Measurements,
    images: int,
    region: str = limits.DEFAULT_REGION,
    concurrency: int | None = None,
) -> dict:
    """The estimate as one JSON-ready dict (``"schema": 1``): every measured size with its
    projection for ``images`` images, the cheapest and fastest size, one process in a loop
    on this machine for comparison, and every price and rule used with its source and date."""
    if images < 1:
        raise InputError("--images must be at least 1")
    prices = pricing.prices_for(region)
    scaling = pricing.SCALING
    if concurrency is not None:
        if concurrency < 1:
            raise InputError("--concurrency must be at least 1")
        scaling = replace(scaling, account_concurrency=concurrency)
    arch = measurements.architecture
    rows, costs, walls = [], {}, {}
    snapstart_problem = limits.snapstart_problem(measurements.runtime, measurements.ephemeral_mb)
    snapstart_rows = []
    for size in measurements.sizes:
        row = {**size.as_dict(), "projection": None, "cheapest": False, "fastest": False, "within_noise": []}
        if size.ok:
            spread = row["spread"]

            def at(init_ms: float, cold_ms: float, warm_ms: float, memory_mb: int = size.memory_mb):
                return pricing.project(images, memory_mb, arch, init_ms, cold_ms, warm_ms, prices, scaling)

            projection = at(size.init_ms, size.cold_ms, size.warm_per_image_ms)
            low, high = (
                at(*(spread[k][end] for k in ("init_ms", "cold_ms", "warm_per_image_ms"))) for end in (0, 1)
            )
            spread["total_usd"] = [low.total_usd, high.total_usd]
            spread["wall_s"] = [low.wall_s, high.wall_s]
            costs[size.memory_mb] = (low.total_usd, projection.total_usd, high.total_usd)
            walls[size.memory_mb] = (low.wall_s, projection.wall_s, high.wall_s)
            row["projection"] = projection.as_dict()
            if snapstart_problem is None:
                restored = {}
                if size.restores_ok:
                    restored = {
                        "restore_ms": size.restore_ms,
                        "restored_first_ms": size.restored_ms,
                        "warm_ms": size.warm_per_image_ms,
                        "scaling": scaling,
                    }
                snap = pricing.snapstart(projection, size.init_ms, arch, prices, **restored)
                if size.restores_ok:
                    snap["spread"] = {k: spread[k] for k in ("restore_ms", "restored_ms", "restores")}
                else:
                    snap["why_not_measured"] = size.restore_note or "no restore was measured"
                snapstart_rows.append(snap)
        rows.append(row)
    verdicts = {"cheapest": pricing.verdict(costs), "fastest": pricing.verdict(walls)}
    if busy_note(measurements.cpu_pressure):  # the sizes did not get their CPU shares: no verdict
        why = f"this machine was busy for {measurements.cpu_pressure:.0%} of the measuring"
        verdicts = {mark: pricing.Verdict(None, tuple(sorted(costs)), why) for mark in verdicts}
    for row in rows:
        for mark, found in verdicts.items():
            row[mark] = row["memory_mb"] == found.best
            if row["memory_mb"] in found.within_noise and not found.withheld:
                row["within_noise"].append(mark)
    cheapest, fastest = verdicts["cheapest"].best, verdicts["fastest"].best
    measured = [size for size in measurements.sizes if size.ok]
    sequential = None
    if measured:
        largest = max(measured, key=lambda size: size.memory_mb)
        sequential = {
            "what": "one process on this machine doing the same work in a loop: one init, then every "
            "image warm, one after another",
            "memory_mb": largest.memory_mb,
            "init_ms": largest.init_ms,
            "warm_ms": largest.warm_per_image_ms,
            "wall_s": pricing.sequential_s(images, largest.init_ms, largest.warm_per_image_ms),
        }
    return {
        "schema": SCHEMA,
        "zip": measurements.zip,
        "runtime": measurements.runtime,
        "architecture": arch,
        "images": images,
        "region": region,
        "measured_with": {
            "how": measurements.how,
            "cpu_capped": measurements.cpu_capped,
            "cores": measurements.cores,
            "sample_images": measurements.images,
            "s3": "a private S3 (moto's server) on 127.0.0.1: real S3 adds its own latency to each read "
            "and write",
            "warm_figure": WARM_FIGURE,
            "cpu_pressure": measurements.cpu_pressure,
        },
        "prices": prices.as_dict(),
        "billing": asdict(pricing.BILLING),
        "scaling": asdict(scaling),
        "sizes": rows,
        "cheapest_memory_mb": cheapest,
        "fastest_memory_mb": fastest,
        "verdicts": {mark: found.as_dict() for mark, found in verdicts.items()},
        "snapstart": {
            "available": snapstart_problem is None,
            "why_not": snapstart_problem,
            "sizes": snapstart_rows,
            "what": "each new execution environment restored from a snapshot instead of running its "
            "init, measured: per size, one parked, initialised process (in a container with the size's "
            "memory cap and CPU share) and environments restored from it one at a time, each timed "
            "(Restore Duration, then its first invocation; medians, min–max in spread). The job is "
            "projected again with every new environment billed its restore duration and its first "
            "invocation instead of init + first invocation; the billed duration saved, against the "
            "restore charge (per GB restored) and the cache charge (per GB-second while the version "
            "exists, at least 3 hours). A size whose restores could not be measured says why "
            "(why_not_measured) and counts the billed init alone: an upper bound (measured: false)",
        },
        "sequential": sequential,
        "assumptions": [
            f"all {images:,} images are uploaded at once; each upload invokes the function "
            "asynchronously with one image",
            "every new execution environment is one cold start: its init, then the first invocation",
            "ranges: each figure's min–max (init and first invocation over the cold starts, warm over "
            "the rounds), projected at both ends; cheapest/fastest only where a size's whole range "
            f"beats every other's and every other median is more than {pricing.MATERIAL:.0%} above its "
            "own, else 'within noise'",
            "cost: Lambda duration (init + first invocation per environment, warm duration for the "
            "others, each rounded up to 1 ms, times memory in GB) + one Lambda request per image + "
            "S3: one PUT (the upload), one GET and one PUT (the result) per image",
            "not counted: the free tier, S3 storage and data transfer, CloudWatch Logs, retries",
        ],
        "notes": list(measurements.notes),
    }
