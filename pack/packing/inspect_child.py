"""Runs in its own process: read what ``lambdapack init`` needs from a model.

Like ``convert_child``, kept out of the CLI's process so TensorFlow is
imported only here. It reports facts, not decisions (``model.init_config``
decides): the input shape (None for a free dimension), the number of classes,
whether the output is probabilities or logits and why, and the Keras
preprocessing layers inside the model (Rescaling, Resizing, Normalization, …)
with their settings and whether they come before the first layer with weights.

Usage: ``python -m lambdapack.packing.inspect_child REQUEST.json`` where the
request names the model, its kind (keras, saved_model, tflite), a size to run
a free-size model at, and the file to write the answer (or ``{"error": …}``) to.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

# The same failure (one message and a hint) and the same loading as the conversion child.
from lambdapack.packing.convert_child import ConversionFailure as InspectFailure
from lambdapack.packing.convert_child import child_main, first_line, load_keras_classifier, refuse_unsafe_ops

SEED = 20171124
# Random inputs in each plausible input range: probabilities sum to 1 on all of them.
PROBE_RANGES = ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0))
PROBE_INPUTS = 3
PROBE_SIZE = 32  # a free-size model with no other size to run at
# Layers that pass their input through unchanged (for finding the last activation).
PASS_THROUGH = {"Dropout", "Flatten", "Reshape", "Identity", "InputLayer", "SpatialDropout2D"}
PREPROCESSING = ("Rescaling", "Resizing", "Normalization", "CenterCrop")


def main(request_path: str) -> int:
    return child_main(
        request_path, inspect, lambda request: Path(request["out"]), "could not inspect the model"
    )


def inspect(request: dict) -> dict:
    path, kind = Path(request["model"]), request["kind"]
    size = request.get("size")
    if kind == "tflite":
        return _inspect_tflite(path, size)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf  # noqa: F401  (keras needs it as its backend)
    except ImportError as exc:
        raise InspectFailure(
            "inspecting a Keras or SavedModel model needs TensorFlow on this machine",
            'Install it with: pip install "lambdapack[convert]"',
        ) from exc
    if kind == "saved_model":
        allowed = refuse_unsafe_ops(path, request.get("allow_unsafe_ops", False))
        return {**_inspect_saved_model(path, size), "unsafe_ops_allowed": allowed}
    return _inspect_keras(path, size)


def _inspect_keras(path: Path, size: list[int] | None) -> dict:
    model = load_keras_classifier(path)
    shape = list(model.inputs[0].shape)
    layers = list(_flat_layers(model))
    found = _preprocessing_layers(layers)
    resize = next((f for f in found if f["type"] == "Resizing" and f["before_weights"]), None)
    if resize and size is None:
        size = [resize["height"], resize["width"]]
    output = _last_activation(layers)
    if output is None:
        output = _probe_output(lambda batch: np.asarray(model(batch, training=False)), shape, size)
    return {
        "input": _input(shape, "the model's input layer"),
        "classes": int(model.outputs[0].shape[-1]),
        "output": output,
        "layers": found,
    }


def _inspect_saved_model(path: Path, size: list[int] | None) -> dict:
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    except Exception as exc:
        raise InspectFailure(f"could not load the SavedModel {path}: {first_line(exc)}") from exc
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise InspectFailure(
            f"the SavedModel's serving_default signature has {len(inputs)} inputs and {len(outputs)} outputs",
            "lambdapack serves image classifiers: one image input, one score output.",
        )
    ((input_name, spec),) = inputs.items()
    ((output_name, output_spec),) = outputs.items()
    shape = spec.shape.as_list()

    def call(batch):
        return signature(**{input_name: tf.constant(batch, dtype=tf.float32)})[output_name].numpy()

    return {
        "input": _input(shape, "the SavedModel's serving_default signature"),
        "classes": int(output_spec.shape[-1]),
        "output": _probe_output(call, shape, size),
        "layers": None,  # a SavedModel keeps no Keras layers
    }


def _inspect_tflite(path: Path, size: list[int] | None) -> dict:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise InspectFailure(
            "inspecting a .tflite model needs LiteRT on this machine",
            'Install it with: pip install "lambdapack[litert]", or run init on the Keras or '
            "SavedModel model.",
        ) from exc
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=1)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise InspectFailure(f"the .tflite model cannot be loaded: {first_line(exc)}") from exc
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise InspectFailure(
            f"the model has {len(inputs)} inputs and {len(outputs)} outputs",
            "lambdapack serves image classifiers: one image input, one score output.",
        )
    signature = inputs[0].get("shape_signature")
    raw = signature if signature is not None and len(signature) else inputs[0]["shape"]
    shape = [None if int(v) < 0 else int(v) for v in raw]

    def call(batch):
        if list(interpreter.get_input_details()[0]["shape"]) != list(batch.shape):
            interpreter.resize_tensor_input(inputs[0]["index"], list(batch.shape))
            interpreter.allocate_tensors()
        interpreter.set_tensor(inputs[0]["index"], batch.astype(inputs[0]["dtype"]))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).astype(np.float32)

    float_input = np.dtype(inputs[0]["dtype"]).kind == "f"
    return {
        "input": _input(shape, "the model's input tensor"),
        "classes": int(outputs[0]["shape"][-1]),
        "output": _probe_output(call, shape, size) if float_input else _unknown_output("integer input"),
        "layers": None,  # a .tflite keeps no Keras layers
    }


def _input(shape: list, source: str) -> dict:
    if len(shape) != 4:
        raise InspectFailure(
            f"the model's input has shape {shape}",
            "lambdapack serves image models with input (batch, height, width, channels).",
        )
    _, height, width, channels = (None if v is None else int(v) for v in shape)
    return {"height": height, "width": width, "channels": channels, "source": source}


def _flat_layers(model):
    """Every layer in order, with nested models (a Sequential inside a functional model) opened."""
    for layer in model.layers:
        inner = getattr(layer, "layers", None)
        if inner:
            yield from _flat_layers(layer)
        else:
            yield layer


def _preprocessing_layers(layers) -> list[dict]:
    found, seen_weights = [], False
    for layer in layers:
        name = type(layer).__name__
        if name in PREPROCESSING:
            found.append({"type": name, "before_weights": not seen_weights, **_settings(layer, name)})
        if layer.weights and name not in PREPROCESSING:
            seen_weights = True
    return found


def _settings(layer, name: str) -> dict:
    if name == "Rescaling":
        return {"scale": _number(layer.scale), "offset": _number(layer.offset)}
    if name in ("Resizing", "CenterCrop"):
        crop = bool(getattr(layer, "crop_to_aspect_ratio", False))
        return {"height": int(layer.height), "width": int(layer.width), "crop_to_aspect_ratio": crop}
    mean = getattr(layer, "mean", None)
    variance = getattr(layer, "variance", None)
    return {
        "mean": None if mean is None else [float(v) for v in np.ravel(np.asarray(mean))],
        "variance": None if variance is None else [float(v) for v in np.ravel(np.asarray(variance))],
    }


def _number(value) -> float:
    return float(np.mean(np.asarray(value, dtype=np.float64)))


def _last_activation(layers) -> dict | None:
    """Probabilities when the model ends in softmax or sigmoid; None when it cannot tell."""
    for layer in reversed(layers):
        name = type(layer).__name__
        if name in PASS_THROUGH:
            continue
        if name == "Softmax":
            return {"kind": "probabilities", "source": "the model ends in a Softmax layer"}
        activation = getattr(getattr(layer, "activation", None), "__name__", None)
        if activation in ("softmax", "sigmoid"):
            return {"kind": "probabilities", "source": f"the last layer's activation is {activation}"}
        return None
    return None


def _probe_output(call, shape: list, size: list[int] | None) -> dict:
    """Probabilities when the outputs lie in 0..1 and sum to 1 on random inputs of every range."""
    height, width, channels = shape[1], shape[2], shape[3] or 3
    if height is None or width is None:
        height, width = size or (PROBE_SIZE, PROBE_SIZE)
    rng = np.random.default_rng(SEED)
    try:
        outputs = [
            np.asarray(call(rng.uniform(low, high, (1, height, width, channels)).astype(np.float32)))
            for low, high in PROBE_RANGES
            for _ in range(PROBE_INPUTS)
        ]
    except Exception as exc:
        return _unknown_output(f"it did not run on random inputs: {first_line(exc)}")
    count = len(outputs)
    sums_to_one = all(
        np.all(np.isfinite(o)) and o.min() >= -1e-6 and o.max() <= 1 + 1e-6 and abs(o.sum() - 1) < 1e-3
        for o in outputs
    )
    if sums_to_one:
        return {"kind": "probabilities", "source": f"its outputs sum to 1 on {count} random inputs"}
    return {
        "kind": "logits",
        "source": f"no softmax or sigmoid at its end, and its outputs do not sum to 1 on {count} "
        "random inputs",
    }


def _unknown_output(why: str) -> dict:
    return {"kind": None, "source": f"could not tell: {why}"}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
