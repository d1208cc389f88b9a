"""Stage 6 — the model: a ``.tflite`` as is, or Keras/SavedModel converted and
checked; for the TensorFlow runtime, a SavedModel (a Keras model exported).

Conversion runs in a child process (``convert_child``) with TensorFlow from
the build machine. The converted model is checked against the original on
the same inputs (the sample images, if given, and seeded random inputs):
top-1 agreement and the largest probability difference go into the report,
and a float32 conversion that changes any top-1 answer fails the build.
Results are cached by the model's content, the options and the samples, so
a warm rebuild does not import TensorFlow again.

The model config (input size, channels, scaling, labels) is completed from
the model itself and written next to it as ``model/config.json``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from lambdapack.handler.lambdapack_handler.config import ConfigError, parse_config
from lambdapack.handler.lambdapack_handler.contract import HANDLER_PACKAGE

from ..atomic import replaced_when_complete
from ..errors import InputError, ModelError
from ..resources import handler_dir

QUANTIZE_MODES = ("none", "dynamic", "float16")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
MAX_SAMPLES = 32
MODEL_FILE = "model.tflite"
# What the handler loads, per model format: a file for LiteRT, a folder for TensorFlow.
MODEL_ARTIFACTS = {"tflite": MODEL_FILE, "saved_model": "saved_model"}
BACKEND_OF_FORMAT = {"tflite": "litert", "saved_model": "tensorflow"}


@dataclass
class ModelResult:
    source: Path
    kind: str
    quantize: str
    config: dict  # the complete config written into the zip
    check: dict  # what convert_child measured
    cached: bool

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
        }


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
    return kinds[path.suffix.lower()]


def default_config_path(model: Path) -> Path:
    """``digits.keras`` -> ``digits.lambdapack.json`` beside it."""
    base = model.parent / (model.name if model.is_dir() else model.stem)
    return base.with_name(base.name + ".lambdapack.json")


def read_user_config(model: Path, config_path: Path | None) -> dict:
    path = config_path or default_config_path(model)
    if not path.exists():
        if config_path is not None:
            raise InputError(f"model config {path} does not exist")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"model config {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"model config {path} must be a JSON object")
    if "labels_file" in data:
        labels_path = (path.parent / data.pop("labels_file")).resolve()
        data["labels"] = [
            line.strip() for line in labels_path.read_text(encoding="utf-8").splitlines() if line.strip()
        ]
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


def sample_images(folder: Path | None) -> list[Path]:
    if folder is None:
        return []
    if not folder.is_dir():
        raise InputError(f"samples folder {folder} does not exist")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise InputError(f"samples folder {folder} holds no images")
    return images[:MAX_SAMPLES]


def prepare_model(
    model: Path,
    dest: Path,
    cache_dir: Path,
    quantize: str = "none",
    config_path: Path | None = None,
    samples: list[Path] | None = None,
    model_format: str = "tflite",
) -> ModelResult:
    """Write the model (``model.tflite`` or ``saved_model/``) and ``config.json``
    into ``dest``; return what was checked."""
    if not model.exists():
        raise InputError(f"model {model} does not exist")
    kind = model_kind(model)
    _check_request(kind, quantize, model_format)
    artifact = MODEL_ARTIFACTS[model_format]
    user_config = read_user_config(model, config_path)
    samples = samples or []
    key = _cache_key(model, kind, quantize, user_config, samples, model_format)
    cached_dir = cache_dir / "models" / key
    cached = (cached_dir / "check.json").exists() and (cached_dir / artifact).exists()
    if not cached:
        _run_child(model, kind, quantize, user_config, samples, cached_dir, model_format)
    check = json.loads((cached_dir / "check.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    _copy(cached_dir / artifact, dest / artifact)
    config = {
        **user_config,
        "name": user_config.get("name", model.stem if model.is_file() else model.name),
        "model_file": artifact,
        "sha256": artifact_sha256(dest / artifact),
        "input": check["input"],
        "labels": user_config.get("labels", [str(i) for i in range(check["classes"])]),
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
    result = ModelResult(model, kind, quantize, config, check, cached)
    _enforce_agreement(result)
    return result


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
    return ModelResult(Path(source["source"]), source["kind"], source["quantize"], config, check, cached=True)


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


def _cache_key(
    model: Path, kind: str, quantize: str, config: dict, samples: list[Path], model_format: str
) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in model.rglob("*") if p.is_file()) if model.is_dir() else [model]
    for path in files:
        digest.update(path.relative_to(model).as_posix().encode() if model.is_dir() else b"")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for sample in samples:
        digest.update(hashlib.sha256(sample.read_bytes()).digest())
    handler_version = _handler_source_digest()
    parts = [
        kind,
        quantize,
        model_format,
        json.dumps(config, sort_keys=True),
        _tensorflow_version(),
        handler_version,
    ]
    digest.update("\0".join(parts).encode())
    return digest.hexdigest()[:32]


def _handler_source_digest() -> str:
    """Preprocessing code feeds the check: a change to it must invalidate the cache."""
    digest = hashlib.sha256()
    for path in sorted((handler_dir() / HANDLER_PACKAGE).glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _tensorflow_version() -> str:
    for name in ("tensorflow", "tensorflow-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "none"


def _run_child(
    model: Path, kind: str, quantize: str, config: dict, samples: list[Path], out: Path, model_format: str
) -> None:
    # Built in a temporary folder and renamed: an interrupted conversion never
    # leaves a cache entry a later build would trust.
    with replaced_when_complete(out, ".convert-") as work:
        request = {
            "model": str(model.resolve()),
            "kind": kind,
            "format": model_format,
            "quantize": quantize,
            "config": config,
            "samples": [str(s.resolve()) for s in samples],
            "out": str(work),
        }
        (work / "request.json").write_text(json.dumps(request))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
        proc = subprocess.run(
            [sys.executable, "-m", "lambdapack.packing.convert_child", str(work / "request.json")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        check_path = work / "check.json"
        if not check_path.exists():
            raise ModelError(
                f"model conversion crashed (exit code {proc.returncode})",
                "Its last output was:\n" + "\n".join(proc.stderr.strip().splitlines()[-10:]),
            )
        check = json.loads(check_path.read_text())
        if "error" in check:
            raise ModelError(check["error"], check.get("hint", ""))
