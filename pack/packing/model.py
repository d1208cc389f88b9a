"""The ``model`` stage: a ``.tflite`` as is, or Keras/SavedModel converted and
checked; for the TensorFlow runtime, a SavedModel (a Keras model exported).

Conversion runs in a child process (``convert_child``) with TensorFlow from
the build machine. The converted model is checked against the original on
the same inputs (the sample images, if given, and seeded random inputs):
top-1 agreement and the largest probability difference go into the report,
and a float32 conversion that changes any top-1 answer fails the build.
Results are cached by the model's content, the options and the samples, so
a warm rebuild does not import TensorFlow again.

The model config (input size, channels, scaling, labels) is completed from
the model itself and written next to it as ``model/config.json``. The user's
part is found beside the model as ``MODEL_STEM.lambdapack.json`` or
``MODEL_FILENAME.lambdapack.json`` (both is an error), or given with
``--config``; ``lambdapack init`` writes it from what the model says about
itself (``inspect_child``, ``init_config``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lambdapack.handler.lambdapack_handler.config import SCALES, ConfigError, InputSpec, parse_config
from lambdapack.handler.lambdapack_handler.contract import HANDLER_PACKAGE

from ..atomic import built_once, write_whole
from ..errors import InputError, ModelError
from ..labelled import SampleSet, read_samples
from ..resources import handler_dir
from . import calibrate, schema
from .children import CHILD_INPUT_PROBLEMS, raise_child_error, run_child

MAX_SAMPLES = 32
MODEL_FILE = "model.tflite"
# What the handler loads, per model format: a file for LiteRT, a folder for TensorFlow.
MODEL_ARTIFACTS = {"tflite": MODEL_FILE, "saved_model": "saved_model"}
BACKEND_OF_FORMAT = {"tflite": "litert", "saved_model": "tensorflow"}
CONFIG_SUFFIX = ".lambdapack.json"
SCALE_NOT_READ = "check the scale"  # init's note when nothing in the model says its scale
DEFAULT_SCALE = InputSpec.scale  # what the handler uses when the config names none


@dataclass
class ModelResult:
    source: Path
    kind: str
    quantize: str
    config: dict  # the complete config written into the zip
    check: dict  # what convert_child measured
    cached: bool
    config_path: Path | None = None  # the user's config it was packed with; None: none found
    # With no config: what was read from the model itself (as lambdapack init does), by field.
    inferred: list[tuple[str, str, str]] = field(default_factory=list)
    labelled: dict | None = None  # pack's labelled check of the original model (calibrate.LabelledCheck)

    @property
    def comparison(self) -> dict | None:
        return self.check.get("comparison")

    def as_dict(self, model_bytes: int) -> dict:
        return {
            "source": str(self.source),
            "kind": self.kind,
            "format": "saved_model" if self.config["backend"] == "tensorflow" else "tflite",
            "quantize": self.quantize,
            "bytes": model_bytes,
            "sha256": self.config["sha256"],
            "input": self.config["input"],
            "classes": self.check.get("classes"),
            "tensorflow": self.check.get("tensorflow"),
            "conversion_check": self.comparison,
            "config": None if self.config_path is None else str(self.config_path),
            "inferred": [
                {"field": name, "value": value, "from": where} for name, value, where in self.inferred
            ],
            "labelled": self.labelled,
        }

    def config_summary(self) -> str:
        """Which config the model was packed with, for the model stage's line."""
        if self.config_path is not None:
            return f"config {self.config_path}"
        scale = self.config.get("input", {}).get("scale", DEFAULT_SCALE)
        if self.inferred:
            read = ", ".join(f"{name} {value} ({where})" for name, value, where in self.inferred[:3])
            return (
                f"no config beside the model: read from the model itself: {read}; "
                f"run lambdapack init {self.source} to keep it in a file and name the labels"
            )
        return f"no config beside the model: defaults (scale {scale}); run lambdapack init {self.source}"


def model_kind(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return "saved_model"
        raise InputError(
            f"{path} is a folder without saved_model.pb",
            "Pass a .tflite, .keras or .h5 file, or a TensorFlow SavedModel folder.",
        )
    kinds = {".tflite": "tflite", ".keras": "keras", ".h5": "keras", ".hdf5": "keras"}
    if path.suffix.lower() not in kinds:
        raise InputError(
            f"{path.name}: unknown model format {path.suffix!r}",
            "Pass a .tflite, .keras or .h5 file, or a TensorFlow SavedModel folder.",
        )
    _require_format(path, path.suffix.lower())
    return kinds[path.suffix.lower()]


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"  # at 0, or after a user block of 512 * 2^n bytes


def _require_format(path: Path, suffix: str) -> None:
    """The file is what its name says, before TensorFlow reads it (Keras answers a .keras
    file that is not a zip with "File not found")."""
    with path.open("rb") as handle:
        head = handle.read(8)
        if suffix == ".keras" and not zipfile.is_zipfile(path):
            what, hint = "a Keras 3 .keras file (a zip archive)", "Save it with model.save('NAME.keras')."
        elif suffix in (".h5", ".hdf5") and not _has_hdf5_signature(handle, head):
            what, hint = "an HDF5 file", "Save it with model.save('NAME.h5'), or as NAME.keras."
        elif suffix == ".tflite" and head[4:8] != b"TFL3":
            what, hint = (
                "a LiteRT/TFLite flatbuffer",
                "Convert it with TensorFlow's TFLiteConverter, or pass the Keras model.",
            )
        else:
            return
    raise InputError(f"{path.name} is not {what}: its content is not that format", hint)


def _has_hdf5_signature(handle, head: bytes) -> bool:
    offset = 512
    while head != HDF5_SIGNATURE:
        handle.seek(offset)
        head = handle.read(8)
        if len(head) < 8:
            return False
        offset *= 2
    return True


def default_config_path(model: Path) -> Path:
    """``digits.keras`` -> ``digits.lambdapack.json`` beside it."""
    base = model.parent / (model.name if model.is_dir() else model.stem)
    return base.with_name(base.name + CONFIG_SUFFIX)


def config_candidates(model: Path) -> list[Path]:
    """Where a model's config may sit: ``digits.lambdapack.json`` and ``digits.keras.lambdapack.json``."""
    stem = default_config_path(model)
    full = model.with_name(model.name + CONFIG_SUFFIX)
    return [stem] if full == stem else [stem, full]


def find_config(model: Path, config_path: Path | None = None) -> Path | None:
    """The config to use: ``config_path`` when given, else the one beside the model (None: none)."""
    if config_path is not None:
        return config_path
    found = [path for path in config_candidates(model) if path.exists()]
    if len(found) > 1:
        raise InputError(
            f"two model configs beside {model.name}: {found[0]} and {found[1]}",
            "Keep one of them (delete or rename the other), or choose one with --config FILE.",
        )
    return found[0] if found else None


def read_user_config(model: Path, config_path: Path | None) -> dict:
    path = find_config(model, config_path)
    if path is None:
        return {}
    if not path.exists():
        raise InputError(f"model config {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"model config {path} is not valid JSON: {exc}") from exc
    if problem := schema.problem(data, schema.load(schema.MODEL_CONFIG)):
        raise InputError(
            f"model config {path}: {problem}",
            f"Fix that field (its schema: {schema.MODEL_CONFIG}); lambdapack init MODEL writes a valid one.",
        )
    if "labels_file" in data:
        data["labels"] = read_labels_file((path.parent / data.pop("labels_file")).resolve())
    _validate_partial(data, path)
    return data


def _validate_partial(data: dict, path: Path) -> None:
    """Check the user's fields now, with placeholder sizes the model will fill in."""
    trial = {"model_file": MODEL_FILE, **data}
    trial["input"] = {"height": 1, "width": 1, "channels": 1, **data.get("input", {})}
    try:
        parse_config(trial)
    except ConfigError as exc:
        raise InputError(f"model config {path}: {exc}") from exc


def sample_set(where: Path | None) -> SampleSet | None:
    """The sample images pack uses (``labelled.read_samples``): at most MAX_SAMPLES unlabelled,
    or calibrate.MAX_LABELLED_SAMPLES labelled ones with every class represented."""
    if where is None:
        return None
    found = read_samples(where)
    return found.take(calibrate.MAX_LABELLED_SAMPLES if found.labelled else MAX_SAMPLES)


def prepare_model(
    model: Path,
    dest: Path,
    cache_dir: Path,
    quantize: str = "none",
    config_path: Path | None = None,
    samples: list[Path] | None = None,
    model_format: str = "tflite",
    allow_unsafe_ops: bool = False,
    labels: list[str] | None = None,
    labelled: SampleSet | None = None,
) -> ModelResult:
    """Write the model (``model.tflite`` or ``saved_model/``) and ``config.json``
    into ``dest``; return what was checked. A SavedModel's ops are checked before TensorFlow
    runs it (``graph_ops``); ``allow_unsafe_ops`` lets file, network and Python ops through.

    The labels: ``labels`` (pack's --labels), else the config's, else the ``labelled`` samples'
    classes; with no config and none of these, pack refuses to ship numbers (InputError).
    With ``labelled`` samples (their paths are ``samples``), the check also records the model's
    answers under every candidate preprocessing (``calibrate``) for pack's labelled check."""
    if not model.exists():
        raise InputError(f"model {model} does not exist")
    kind = model_kind(model)
    _check_request(kind, quantize, model_format)
    artifact = MODEL_ARTIFACTS[model_format]
    config_path = find_config(model, config_path)
    user_config = read_user_config(model, config_path)
    if labelled is not None and not labelled.labelled:
        labelled = None
    if samples is None and labelled is not None:
        samples = list(labelled.paths)
    labels = _labels_to_ship(user_config, labels, labelled)
    if labelled is not None and labels is not None:
        calibrate.truth_indices(labelled, labels)  # every sample's label is one of the model's
    inferred: list[tuple[str, str, str]] = []
    if config_path is None and kind in ("keras", "saved_model"):
        # No config: read the preprocessing from the model itself, as init does, rather than
        # pack with defaults that may not be the model's (a Rescaling layer inside wants 0..255).
        user_config, inferred = _inferred_config(model, kind, cache_dir, allow_unsafe_ops)
    samples = samples or []
    measure = labelled is not None
    key = _cache_key(model, kind, quantize, user_config, samples, model_format, allow_unsafe_ops, measure)
    cached_dir = cache_dir / "models" / key
    try:
        cached = built_once(
            cached_dir,
            lambda work: _run_child(
                model, kind, quantize, user_config, samples, work, model_format, allow_unsafe_ops, measure
            ),
            complete=lambda path: (path / "check.json").exists() and (path / artifact).exists(),
        )
    except _ChildInputProblem as problem:
        raise _input_problem(problem.check, model, config_path) from None
    check = json.loads((cached_dir / "check.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    _copy(cached_dir / artifact, dest / artifact)
    config = {
        **user_config,
        "name": user_config.get("name", model.stem if model.is_file() else model.name),
        "model_file": artifact,
        "sha256": artifact_sha256(dest / artifact),
        "input": check["input"],
        "labels": labels or [str(i) for i in range(check["classes"])],
        "output": user_config.get("output", "auto"),
        "quantize": quantize,
        "backend": BACKEND_OF_FORMAT[model_format],
    }
    if len(config["labels"]) != check["classes"]:
        raise InputError(
            f"the config names {len(config['labels'])} labels, the model has {check['classes']} classes",
            "Give one label per model output, in output order.",
        )
    config = parse_config(config).as_dict()
    (dest / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    result = ModelResult(model, kind, quantize, config, check, cached, config_path, inferred)
    _enforce_agreement(result)
    if labelled is None:  # with labels, pack's labelled check measures what this probe guesses
        _enforce_preprocessing(result)
    return result


def _labels_to_ship(
    user_config: dict, labels: list[str] | None, labelled: SampleSet | None
) -> list[str] | None:
    """The labels the zip answers with: --labels, the config's, the labelled samples'; None:
    class numbers (``require_labels`` keeps pack from shipping those without a config)."""
    if labels is not None:
        return labels
    if "labels" in user_config:
        return list(user_config["labels"])
    if labelled is not None and labelled.labelled:
        return list(labelled.labels)
    return None


def require_labels(
    model: Path, config_path: Path | None, labels: list[str] | None, samples: SampleSet | None
) -> None:
    """pack's rule: no model config, no --labels and no labelled samples is refused rather than
    a zip that answers "0", "1", … (a config that names no labels is its author's choice)."""
    if not model.exists():
        return  # prepare_model says so
    model_kind(model)  # a model that is not its format is said first
    if labels is not None or (samples is not None and samples.labelled):
        return
    if find_config(model, config_path) is None:
        raise InputError(
            f"no labels for {model.name}: no model config beside it, no --labels and no labelled "
            "samples; the zip would answer with class numbers",
            f"Run lambdapack init {model} --labels a,b,c (or --samples DIR with one subfolder of "
            "images per class) to write its config, or pass --labels a,b,c to pack.",
        )


def load_prepared(folder: Path, dest: Path) -> ModelResult:
    """A model prepared (converted and checked) by another process — the Docker
    builder does it on the host — copied into ``dest``."""
    for name in ("config.json", "check.json", "source.json"):
        if not (folder / name).exists():
            raise InputError(f"prepared model folder {folder} has no {name}")
    config = json.loads((folder / "config.json").read_text())
    artifact = config["model_file"]
    if not (folder / artifact).exists():
        raise InputError(f"prepared model folder {folder} has no {artifact}")
    dest.mkdir(parents=True, exist_ok=True)
    _copy(folder / artifact, dest / artifact)
    shutil.copyfile(folder / "config.json", dest / "config.json")
    source = json.loads((folder / "source.json").read_text())
    check = json.loads((folder / "check.json").read_text())
    config_path = Path(source["config"]) if source.get("config") else None
    return ModelResult(
        Path(source["source"]), source["kind"], source["quantize"], config, check, True, config_path
    )


def artifact_sha256(path: Path) -> str:
    """A model file's sha256; for a folder, the sha256 of its files' paths and hashes."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(item.read_bytes()).digest())
    return digest.hexdigest()


def artifact_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _copy(source: Path, dest: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        shutil.copyfile(source, dest)


def _check_request(kind: str, quantize: str, model_format: str) -> None:
    if model_format == "saved_model":
        if kind == "tflite":
            raise InputError(
                "a .tflite model runs on --runtime litert, not on full TensorFlow",
                "Pass the Keras or SavedModel model to --runtime tensorflow, or drop --runtime.",
            )
        if quantize != "none":
            raise InputError(
                "--quantize applies when converting to TensorFlow Lite (--runtime litert)",
                "The TensorFlow runtime serves the model as it is.",
            )
    elif kind == "tflite" and quantize != "none":
        raise InputError(
            "--quantize applies when converting a Keras or SavedModel model",
            "A .tflite model is packed as it is; quantize it when you convert it.",
        )


def _inferred_config(
    model: Path, kind: str, cache_dir: Path, allow_unsafe_ops: bool = False
) -> tuple[dict, list[tuple[str, str, str]]]:
    """The config ``lambdapack init`` would write, without writing it; and where each value
    came from (scale, size, output: what the labels cannot say)."""
    facts = _cached_inspection(model, kind, cache_dir, allow_unsafe_ops)
    config, fields, _notes, _warnings = describe_model(facts, model)
    config.pop("labels", None)  # 0..N-1, as without a config
    return config, [f for f in fields if f[0] in ("scale", "input", "output", "resize")]


def allowed_text(allowed: list[str] | None) -> list[str]:
    """What ``--allow-unsafe-ops`` let run, as a warning (none when nothing needed it)."""
    if not allowed:
        return []
    more = f" (and {len(allowed) - 1} more)" if len(allowed) > 1 else ""
    return [f"--allow-unsafe-ops: the SavedModel ran on this machine with {allowed[0]}{more}"]


def _enforce_agreement(result: ModelResult) -> None:
    comparison = result.comparison
    if comparison is None or result.quantize != "none":
        return
    if comparison["top1_disagreements"]:
        raise ModelError(
            "the converted model disagrees with the original on "
            f"{len(comparison['top1_disagreements'])} of {comparison['inputs']} inputs "
            f"({', '.join(comparison['top1_disagreements'][:5])}); largest probability "
            f"difference {comparison['max_probability_difference']:.3g}",
            "A float32 conversion should not change answers: the model may use an operation "
            "TensorFlow Lite implements differently. Check the model, or report it.",
        )


def _enforce_preprocessing(result: ModelResult) -> None:
    """Every sample image gets the same answer under the configured scale, but not under
    another: the preprocessing is probably wrong (the conversion check cannot tell, since
    the original and the converted model are fed the same wrongly scaled inputs)."""
    probe = result.check.get("preprocessing_probe")
    if not probe or probe["distinct_top1"] > 1:
        return
    alternatives = {scale: n for scale, n in probe["alternatives"].items() if n > 1}
    if not alternatives:
        return
    better = max(alternatives, key=lambda scale: (alternatives[scale], scale == "0..255"))
    labels = result.config.get("labels") or []
    answer = labels[probe["top1"]] if probe["top1"] < len(labels) else str(probe["top1"])
    where = result.config_path or default_config_path(result.source)
    raise InputError(
        f"all {probe['samples']} sample images get the same answer ({answer!r}) with input scale "
        f"{probe['scale']}, but {alternatives[better]} different answers with scale {better}: the "
        "preprocessing (the config's input scale) is probably wrong",
        f'The model looks like it expects scale {better}: set "input": {{"scale": "{better}"}} in '
        f"{where}, or run lambdapack init {result.source} to read the preprocessing from the model. "
        "If every sample really is of one class, add samples of other classes.",
    )


def _cached_inspection(model: Path, kind: str, cache_dir: Path, allow_unsafe_ops: bool = False) -> dict:
    """What ``inspect_child`` finds in the model (a TensorFlow import, seconds), kept by the
    model's content, the child's code and TensorFlow's version: a repeated pack of the same
    model does not start TensorFlow again. Failures are not kept; neither is an answer let
    through by ``allow_unsafe_ops`` used without it (the flag is part of the key)."""
    digest = hashlib.sha256(_content_digest(model))
    digest.update(Path(__file__).with_name("inspect_child.py").read_bytes())
    digest.update(Path(__file__).with_name("convert_child.py").read_bytes())
    digest.update(Path(__file__).with_name("graph_ops.py").read_bytes())
    digest.update(f"\0{kind}\0{_build_frameworks()}\0{allow_unsafe_ops}".encode())
    path = cache_dir / "inspections" / f"{digest.hexdigest()[:32]}.json"
    if path.exists():
        return json.loads(path.read_text())
    facts = _run_inspect(model, kind, None, allow_unsafe_ops)
    write_whole(path, json.dumps(facts).encode())
    return facts


def _content_digest(model: Path) -> bytes:
    """The model's bytes (every file of a SavedModel folder, with its path)."""
    digest = hashlib.sha256()
    files = sorted(p for p in model.rglob("*") if p.is_file()) if model.is_dir() else [model]
    for path in files:
        digest.update(path.relative_to(model).as_posix().encode() if model.is_dir() else b"")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.digest()


def _cache_key(
    model: Path,
    kind: str,
    quantize: str,
    config: dict,
    samples: list[Path],
    model_format: str,
    allow_unsafe_ops: bool = False,
    measure: bool = False,
) -> str:
    digest = hashlib.sha256(_content_digest(model))
    for sample in samples:
        digest.update(hashlib.sha256(sample.read_bytes()).digest())
    handler_version = _handler_source_digest()
    parts = [
        kind,
        quantize,
        model_format,
        json.dumps(config, sort_keys=True),
        _build_frameworks(),
        handler_version,
        f"allow_unsafe_ops={allow_unsafe_ops}",
        f"candidates={measure}",
    ]
    digest.update("\0".join(parts).encode())
    return digest.hexdigest()[:32]


def _handler_source_digest() -> str:
    """Preprocessing code and the conversion child feed the check: a change to either must
    invalidate the cache."""
    digest = hashlib.sha256()
    for path in sorted((handler_dir() / HANDLER_PACKAGE).glob("*.py")):
        digest.update(path.read_bytes())
    for child in ("convert_child.py", "calibrate_child.py", "graph_ops.py"):
        digest.update(Path(__file__).with_name(child).read_bytes())
    return digest.hexdigest()


def _build_frameworks() -> str:
    """What reads the model at build time: TensorFlow's and Keras's versions (under any of
    their distribution names) and the Keras backend asked for. A change to any of them may
    change what conversion and inspection find, so it is part of both cache keys."""
    found = []
    distributions = (
        ("tensorflow", "tensorflow-cpu", "tf-nightly", "tf-nightly-cpu"),
        ("keras", "keras-nightly"),
    )
    for names in distributions:
        for name in names:
            try:
                found.append(f"{name}={importlib.metadata.version(name)}")
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    found.append(f"KERAS_BACKEND={os.environ.get('KERAS_BACKEND', '')}")
    return " ".join(found)


def _run_child(
    model: Path,
    kind: str,
    quantize: str,
    config: dict,
    samples: list[Path],
    out: Path,
    model_format: str,
    allow_unsafe_ops: bool = False,
    measure: bool = False,
) -> None:
    """Convert and check the model in a child process with TensorFlow, into ``out`` (a
    folder built_once renames into the cache when this returns). ``measure``: also the
    answers under every candidate preprocessing (labelled samples)."""
    request = {
        "model": str(model.resolve()),
        "kind": kind,
        "format": model_format,
        "quantize": quantize,
        "config": config,
        "samples": [str(s.resolve()) for s in samples],
        "out": str(out),
        "allow_unsafe_ops": allow_unsafe_ops,
        "candidates": measure,
    }
    check = run_child(
        "convert_child",
        request,
        out,
        out / "check.json",
        "model conversion",
        "The conversion runs in a child process with TensorFlow; it stopped before writing its "
        "result. Out of memory is a common cause: close other programs, or convert on a larger "
        "machine.",
    )
    if "error" in check:
        if check.get("code") in CHILD_INPUT_PROBLEMS:
            raise _ChildInputProblem(check)
        raise ModelError(check["error"], check.get("hint", ""))


def original_answers(
    model: Path, config: dict, images: list[Path], allow_unsafe_ops: bool = False
) -> list[dict]:
    """The original model's answer for each image (``{"probabilities": [...]}``, or
    ``{"probabilities": None, "error": ...}``), with the preprocessing ``config["input"]``
    gives (a zip's ``model/config.json``): TensorFlow runs it in the conversion child's
    ``predict`` mode, as the conversion check does (``evaluate --model``)."""
    kind = model_kind(model)
    with tempfile.TemporaryDirectory(prefix="lambdapack-original-") as work:
        out = Path(work)
        request = {
            "mode": "predict",
            "model": str(model.resolve()),
            "kind": kind,
            "config": config,
            "images": [str(image.resolve()) for image in images],
            "out": str(out),
            "allow_unsafe_ops": allow_unsafe_ops,
        }
        check = run_child(
            "convert_child",
            request,
            out,
            out / "check.json",
            "running the original model",
            "It runs in a child process with TensorFlow; out of memory is a common cause.",
        )
    raise_child_error(check)
    return check["answers"]


class _ChildInputProblem(Exception):
    """The conversion child refused the input (size, channels): the parent words the message."""

    def __init__(self, check: dict) -> None:
        super().__init__(check["error"])
        self.check = check


def _input_problem(check: dict, model: Path, config_path: Path | None) -> InputError:
    where = config_path or default_config_path(model)
    if check.get("code") == "free_size":
        return InputError(
            f"{model.name} takes images of any size (its input is {check.get('shape', 'free')}) and the "
            "model config gives no size to feed it",
            f"Give the size it was trained on: lambdapack init {model} --size HxW writes it into {where}; "
            f'or add "input": {{"height": H, "width": W}} to {where}.',
        )
    return InputError(check["error"], check.get("hint", ""))


# --- lambdapack init: the config written from what the model says about itself ---------------------


@dataclass
class InitResult:
    path: Path  # the config written
    config: dict
    fields: list[tuple[str, str, str]]  # (name, value, where it came from), in print order
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    replaced: bool = False  # an existing config was overwritten (--force)
    table: list[str] = field(default_factory=list)  # the measured candidates, when labelled samples


def read_labels_file(path: Path) -> list[str]:
    """Class names, one a line, blank lines skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"labels file {path} cannot be read: {exc.strerror or exc}") from exc
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise InputError(
            f"labels file {path} names no labels", "Write one class name a line, in output order."
        )
    return labels


def parse_labels(text: str) -> list[str]:
    """``"cat,dog,bird"`` -> ``["cat", "dog", "bird"]``."""
    labels = [label.strip() for label in text.split(",")]
    if not all(labels):
        raise InputError(
            f"--labels {text!r} has an empty label", "Give names separated by commas: cat,dog,bird"
        )
    return labels


def parse_size(text: str) -> tuple[int, int]:
    """``"224x224"`` (height x width) -> ``(224, 224)``."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 1:
        raise InputError(
            f"--size {text!r} is not HxW", "Give the height and width in pixels, e.g. --size 224x224"
        )
    return int(match[1]), int(match[2])


def init_config(
    model: Path,
    labels: list[str] | None = None,
    labels_from: str = "--labels",
    size: tuple[int, int] | None = None,
    force: bool = False,
    allow_unsafe_ops: bool = False,
    samples: Path | None = None,
    scale: str | None = None,
    resize: str | None = None,
) -> InitResult:
    """Inspect ``model`` (in a child process) and write ``MODEL_STEM.lambdapack.json`` beside it.
    A SavedModel's ops are checked first, as ``prepare_model`` does. With labelled ``samples``
    (``labelled.read_samples``), the labels default to theirs and the scale and resize are
    measured (``calibrate``); ``scale``/``resize`` set them (measured all the same)."""
    if not model.exists():
        raise InputError(f"model {model} does not exist")
    kind = model_kind(model)
    existing = find_config(model)
    if existing is not None and not force:
        raise InputError(
            f"{existing} already exists",
            "Pass --force to overwrite it with what the model says, or edit it by hand.",
        )
    sample_set = read_samples(samples) if samples is not None else None
    labels, labels_from = calibrate.labels_for_init(sample_set, labels, labels_from)
    facts = _run_inspect(model, kind, size, allow_unsafe_ops)
    config, fields, notes, warnings = describe_model(facts, model, labels, labels_from, size)
    warnings.extend(allowed_text(facts.get("unsafe_ops_allowed")))
    table: list[str] = []
    if sample_set is not None and sample_set.labelled:
        notes = [note for note in notes if not note.startswith(SCALE_NOT_READ)]
        measured = calibrate.measure_for_init(
            config, fields, facts, model, kind, sample_set, allow_unsafe_ops, scale, resize
        )
        table, notes, warnings = measured.table, [*notes, *measured.notes], [*warnings, *measured.warnings]
    else:
        _set_given(config, fields, scale, resize)
        if scale is not None:
            notes = [note for note in notes if not note.startswith(SCALE_NOT_READ)]
        why = "the samples have no labels" if sample_set is not None else "no labelled samples given"
        notes.append(
            f"the preprocessing was not measured ({why}): --samples DIR with one subfolder of images "
            "per class measures every scale and resize on the model and writes the best (a near-tie "
            "it cannot settle is said, not guessed)"
        )
    path = existing or default_config_path(model)
    pending = path.with_name(f".{path.name}.partial")
    pending.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    os.replace(pending, path)
    return InitResult(path, config, fields, notes, warnings, replaced=existing is not None, table=table)


def _set_given(
    config: dict, fields: list[tuple[str, str, str]], scale: str | None, resize: str | None
) -> None:
    """``--scale`` and ``--resize`` into the config (and their source into ``fields``)."""
    given = {name: value for name, value in (("scale", scale), ("resize", resize)) if value is not None}
    config["input"].update(given)
    fields[:] = [
        (name, given[name], f"from --{name}") if name in given else (name, value, source)
        for name, value, source in fields
    ]


def describe_model(
    facts: dict,
    model: Path,
    labels: list[str] | None = None,
    labels_from: str = "--labels",
    size: tuple[int, int] | None = None,
) -> tuple[dict, list[tuple[str, str, str]], list[str], list[str]]:
    """From what ``inspect_child`` found: the config, each value with where it came from,
    notes and warnings. Pure: the rules ``lambdapack init`` follows, testable without TensorFlow."""
    fields: list[tuple[str, str, str]] = []
    notes: list[str] = []
    warnings: list[str] = []
    layers = facts.get("layers")
    inside = [layer for layer in layers or [] if layer.get("before_weights")]
    model_input: dict = {}

    shape = facts["input"]
    height, width, channels = shape["height"], shape["width"], shape["channels"]
    resizing = next((layer for layer in inside if layer["type"] == "Resizing"), None)
    if channels is None:
        channels = 3
        model_input["channels"] = 3
        warnings.append(
            "the model's input leaves the channels open: wrote 3 (RGB); edit input.channels if not"
        )
    if height is not None and width is not None:
        fields.append(("input", f"{height}x{width}x{channels}", f"from {shape['source']}"))
        if size is not None and tuple(size) != (height, width):
            warnings.append(f"--size {size[0]}x{size[1]} ignored: the model takes {height}x{width}")
    elif resizing is not None:
        height, width = resizing["height"], resizing["width"]
        model_input.update(height=height, width=width)
        source = f"the model resizes inside: Resizing({height}, {width}); its input takes any size"
        fields.append(("input", f"{height}x{width}x{channels}", source))
        if size is not None and tuple(size) != (height, width):
            warnings.append(
                f"--size {size[0]}x{size[1]} ignored: the model resizes to {height}x{width} itself"
            )
    elif size is not None:
        height, width = size
        model_input.update(height=height, width=width)
        fields.append(
            ("input", f"{height}x{width}x{channels}", "from --size; the model's input takes any size")
        )
    else:
        raise InputError(
            f"{model.name} takes images of any size (its input is None x None x {channels}) and has no "
            "Resizing layer inside to tell which",
            f"Pass the size it was trained on: lambdapack init {model} --size HxW (e.g. --size 224x224).",
        )

    scale, scale_source = _scale(layers, inside, facts["input"]["source"])
    model_input["scale"] = scale
    fields.append(("scale", scale, scale_source))
    if scale_source.startswith("the default"):
        notes.append(
            f"{SCALE_NOT_READ}: the handler feeds pixels scaled to {scale}; use the scaling the model was "
            f"trained with ({', '.join(SCALES)})"
        )
    resize = "stretch"
    resize_source = "the default: the image is stretched to the input size"
    if resizing is not None and resizing.get("crop_to_aspect_ratio") and "height" in model_input:
        resize, resize_source = "center-crop", "the model's Resizing crops to the aspect ratio"
    model_input["resize"] = resize
    fields.append(("resize", resize, resize_source))

    output = facts["output"]
    kind = output["kind"] or "auto"
    fields.append(("output", kind, output["source"]))
    classes = int(facts["classes"])
    fields.append(("classes", str(classes), "from the model's output"))
    if labels is not None:
        if len(labels) != classes:
            raise InputError(
                f"{len(labels)} labels given ({labels_from}), the model has {classes} classes",
                "Give one label per model output, in output order.",
            )
        fields.append(("labels", _shorten(labels), f"from {labels_from}"))
    else:
        labels = [str(index) for index in range(classes)]
        fields.append(("labels", _shorten(labels), "numbers: no labels given"))
        warnings.append(
            f"no labels given: wrote 0..{classes - 1}; name the classes with --labels a,b,c or "
            "--labels-file FILE (one a line, in output order)"
        )
    for layer in inside:
        if layer["type"] in ("Normalization", "CenterCrop") and _layer_text(layer) not in scale_source:
            notes.append(f"the model also has {_layer_text(layer)} inside: nothing to configure for it")
    config = {
        "name": model.name if model.is_dir() else model.stem,
        "labels": labels,
        "input": model_input,
        "output": kind,
    }
    return config, fields, notes, warnings


def _scale(layers: list[dict] | None, inside: list[dict], input_source: str) -> tuple[str, str]:
    """The input scale and why: a Rescaling (or Normalization of raw pixels) inside means the
    model takes raw pixels, 0..255."""
    if layers is None:
        what = "a SavedModel" if "signature" in input_source else "a .tflite model"
        return DEFAULT_SCALE, (
            f"the default: {what} keeps no Keras layers, so its preprocessing cannot be read; check it"
        )
    rescaling = next((layer for layer in inside if layer["type"] == "Rescaling"), None)
    if rescaling is not None:
        return _scale_for_rescaling(rescaling["scale"], rescaling["offset"]), (
            f"the model rescales inside: {_layer_text(rescaling)}"
        )
    normalization = next((layer for layer in inside if layer["type"] == "Normalization"), None)
    if normalization is not None and normalization.get("mean"):
        if max(abs(m) for m in normalization["mean"]) > 2:
            return "0..255", f"the model normalizes raw pixels inside: {_layer_text(normalization)}"
        return DEFAULT_SCALE, (
            f"the default: the model normalizes inside ({_layer_text(normalization)}), "
            "with a mean that suggests inputs in 0..1"
        )
    return DEFAULT_SCALE, "the default: no Rescaling layer inside the model"


def _scale_for_rescaling(scale: float, offset: float) -> str:
    """The input range the Rescaling layer maps onto a small range (0..1 or -1..1): raw
    pixels for Rescaling(1/255) or (1/127.5, -1), 0..1 for Rescaling(2, -1)."""
    for name, (low, high) in (("0..255", (0, 255)), ("0..1", (0, 1)), ("-1..1", (-1, 1))):
        ends = sorted((low * scale + offset, high * scale + offset))
        if ends[0] >= -1.01 and ends[1] <= 1.01 and ends[1] - ends[0] >= 0.9:
            return name
    return "0..255"


def _layer_text(layer: dict) -> str:
    kind = layer["type"]
    if kind == "Rescaling":
        scale, offset = layer["scale"], layer["offset"]
        inverse = 1 / scale if scale else 0
        text = f"1/{inverse:g}" if scale and abs(inverse - round(inverse, 1)) < 1e-6 else f"{scale:g}"
        return f"Rescaling({text}" + (f", offset={offset:g})" if offset else ")")
    if kind in ("Resizing", "CenterCrop"):
        return f"{kind}({layer['height']}, {layer['width']})"
    mean = layer.get("mean") or []
    return f"Normalization(mean {', '.join(f'{m:.3g}' for m in mean[:3])})" if mean else "Normalization"


def _shorten(labels: list[str], shown: int = 5) -> str:
    text = ", ".join(labels[:shown])
    return text + (f", … ({len(labels)} in all)" if len(labels) > shown else "")


def _run_inspect(
    model: Path, kind: str, size: tuple[int, int] | None, allow_unsafe_ops: bool = False
) -> dict:
    with tempfile.TemporaryDirectory(prefix="lambdapack-inspect-") as work:
        answer = Path(work) / "answer.json"
        request = {"model": str(model.resolve()), "kind": kind, "size": list(size) if size else None}
        request.update(out=str(answer), allow_unsafe_ops=allow_unsafe_ops)
        facts = run_child(
            "inspect_child",
            request,
            Path(work),
            answer,
            "inspecting the model",
            "The inspection runs in a child process with TensorFlow; it stopped before writing its answer.",
        )
    raise_child_error(facts)
    return facts
