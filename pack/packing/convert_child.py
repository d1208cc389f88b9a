"""Runs in its own process: convert a model to TensorFlow Lite and check it.

Kept out of the CLI's process so TensorFlow (a build-time extra, never in
the zip) is imported only when a conversion is needed, its logging stays
contained, and a crash inside it becomes a clear error, not a dead CLI.

Usage: ``python -m lambdapack.packing.convert_child REQUEST.json`` where the request names
the model, its kind, the format to produce, the quantization, the user's
config, the sample images and an output folder; it writes the model
(``model.tflite``, or a ``saved_model/`` folder that the TensorFlow runtime
serves through its ``serving_default`` signature) and ``check.json`` there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

RANDOM_INPUTS = 8
SEED = 20171124


def main(request_path: str) -> int:
    request = json.loads(Path(request_path).read_text())
    out = Path(request["out"])
    try:
        result = run(request, out)
    except ConversionFailure as exc:
        (out / "check.json").write_text(json.dumps({"error": str(exc), "hint": exc.hint}))
        return 1
    (out / "check.json").write_text(json.dumps(result))
    return 0


class ConversionFailure(Exception):
    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


def run(request: dict, out: Path) -> dict:
    kind = request["kind"]
    model_path = Path(request["model"])
    reference = None
    tf_version = None
    if kind != "tflite":
        tf = _import_tensorflow()
        tf_version = tf.__version__
        reference = _load_reference(tf, model_path, kind)
    if request.get("format", "tflite") == "saved_model":
        served, shape = _saved_model(model_path, kind, reference, out / "saved_model")
        if kind == "saved_model":
            reference = None  # served as it is: nothing was converted
    else:
        if kind == "tflite":
            tflite_bytes = model_path.read_bytes()
        else:
            tflite_bytes = _convert(tf, model_path, kind, reference, request["quantize"])
        (out / "model.tflite").write_bytes(tflite_bytes)
        served, shape = _tflite(tflite_bytes)
    spec_dict = _input_spec(shape, request["config"].get("input", {}))
    from lambdapack.handler.lambdapack_handler.config import InputSpec
    from lambdapack.handler.lambdapack_handler.imaging import ImageError, preprocess
    from lambdapack.handler.lambdapack_handler.inference import to_probabilities

    spec = InputSpec(**spec_dict)
    output_kind = request["config"].get("output", "auto")
    batches, names = [], []
    for image in request["samples"]:
        try:
            batches.append(preprocess(Path(image).read_bytes(), spec))
            names.append(Path(image).name)
        except ImageError as exc:
            raise ConversionFailure(f"sample image {image} cannot be used: {exc}") from exc
    rng = np.random.default_rng(SEED)
    low, high = {"0..1": (0, 1), "-1..1": (-1, 1), "0..255": (0, 255)}[spec.scale]
    for index in range(RANDOM_INPUTS):
        size = [1, spec.height, spec.width, spec.channels]
        batches.append(rng.uniform(low, high, size=size).astype(np.float32))
        names.append(f"random-{index}")
    converted = [to_probabilities(served(batch), output_kind) for batch in batches]
    check: dict = {
        "input": spec_dict,
        "classes": int(converted[0].size),
        "tensorflow": tf_version,
        "samples": [
            {"name": name, "probabilities": [round(float(p), 7) for p in probs]}
            for name, probs in zip(names, converted, strict=True)
            if not name.startswith("random-")
        ],
    }
    if reference is not None:
        original = [to_probabilities(reference(batch), output_kind) for batch in batches]
        agree = [int(np.argmax(a) == np.argmax(b)) for a, b in zip(original, converted, strict=True)]
        check["comparison"] = {
            "inputs": len(batches),
            "sample_images": len(request["samples"]),
            "top1_agreement": sum(agree) / len(agree),
            "top1_disagreements": [name for name, ok in zip(names, agree, strict=True) if not ok],
            "max_probability_difference": float(
                max(np.max(np.abs(a - b)) for a, b in zip(original, converted, strict=True))
            ),
        }
    return check


def _import_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise ConversionFailure(
            "converting a Keras or SavedModel model needs TensorFlow on the build machine",
            'Install it with: pip install "lambdapack[convert]" (TensorFlow is never put '
            "in the zip), or pass a .tflite model.",
        ) from exc
    return tf


def _load_reference(tf, path: Path, kind: str):
    """A callable batch -> scores (numpy) running the original model."""
    try:
        if kind == "saved_model":
            from lambdapack.handler.lambdapack_handler.inference import TensorFlowBackend

            return TensorFlowBackend(str(path)).predict
        import keras

        model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:
        raise ConversionFailure(f"could not load the model {path}: {exc}") from exc

    def call_keras(batch):
        return np.asarray(model(batch, training=False))[0]

    call_keras.model = model  # type: ignore[attr-defined]
    return call_keras


def _convert(tf, path: Path, kind: str, reference, quantize: str) -> bytes:
    try:
        if kind == "saved_model":
            converter = tf.lite.TFLiteConverter.from_saved_model(str(path))
        else:
            converter = tf.lite.TFLiteConverter.from_keras_model(reference.model)
        if quantize in ("dynamic", "float16"):
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    except Exception as exc:
        raise ConversionFailure(
            f"TensorFlow Lite could not convert {path}: {str(exc).splitlines()[0]}",
            "The model uses operations TensorFlow Lite lacks. The S3-staged TensorFlow "
            "runtime (a later lambdapack feature) serves such models.",
        ) from exc


def _tflite(model_bytes: bytes):
    """The converted model as ``batch -> scores``, and its input shape."""
    from lambdapack.handler.lambdapack_handler.inference import run_interpreter

    interpreter = _interpreter(model_bytes)
    input_detail = interpreter.get_input_details()
    output_detail = interpreter.get_output_details()
    if len(input_detail) != 1 or len(output_detail) != 1:
        raise ConversionFailure(
            f"the model has {len(input_detail)} inputs and {len(output_detail)} outputs",
            "lambdapack serves image classifiers: one image input, one score output.",
        )

    def served(batch):
        return run_interpreter(interpreter, batch, input_detail[0], output_detail[0])

    return served, [int(v) for v in input_detail[0]["shape"]]


def _saved_model(path: Path, kind: str, reference, dest: Path):
    """Write the SavedModel the TensorFlow runtime serves (a Keras model is
    exported; a SavedModel is copied), load it back the way the handler does,
    and return it as ``batch -> scores`` with its input shape."""
    import shutil

    from lambdapack.handler.lambdapack_handler.inference import TensorFlowBackend

    try:
        if kind == "saved_model":
            shutil.copytree(path, dest)
        else:
            reference.model.export(str(dest), format="tf_saved_model", verbose=False)
    except Exception as exc:
        raise ConversionFailure(f"could not export {path} as a SavedModel: {exc}") from exc
    try:
        backend = TensorFlowBackend(str(dest), threads=1)
    except (KeyError, ValueError) as exc:
        raise ConversionFailure(
            f"the SavedModel cannot be served: {exc}",
            "lambdapack serves a SavedModel through its serving_default signature, with one "
            "image input and one score output.",
        ) from exc
    return backend.predict, [-1 if v is None else int(v) for v in backend.input_shape]


def _interpreter(model_bytes: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tensorflow.lite import Interpreter  # type: ignore[no-redef]
        except ImportError as exc:
            raise ConversionFailure(
                "no TensorFlow Lite interpreter on the build machine to check the model",
                'Install one with: pip install "lambdapack[convert]"',
            ) from exc
    try:
        interpreter = Interpreter(model_content=model_bytes, num_threads=1)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ConversionFailure(f"the .tflite model cannot be loaded: {exc}") from exc
    return interpreter


def _input_spec(shape: list[int], user: dict) -> dict:
    if len(shape) != 4:
        raise ConversionFailure(
            f"the model's input has shape {shape}",
            "lambdapack serves image models with input (batch, height, width, channels).",
        )
    _, height, width, channels = shape
    height = int(user.get("height", height))
    width = int(user.get("width", width))
    channels = int(user.get("channels", channels))
    if min(height, width) < 1 or channels not in (1, 3):
        raise ConversionFailure(
            f"the model's input shape {shape} leaves the image size or channels open",
            'Give them in the model config: {"input": {"height": …, "width": …, "channels": 1|3}}',
        )
    return {
        "height": height,
        "width": width,
        "channels": channels,
        "scale": user.get("scale", "0..1"),
        "resize": user.get("resize", "stretch"),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
