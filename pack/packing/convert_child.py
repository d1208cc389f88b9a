"""Runs in its own process: convert a model to TensorFlow Lite and check it.

Kept out of the CLI's process so TensorFlow (a build-time extra, never in
the zip) is imported only when a conversion is needed, its logging stays
contained, and a crash inside it becomes a clear error, not a dead CLI.

Usage: ``python -m lambdapack.packing.convert_child REQUEST.json`` where the request names
the model, its kind, the format to produce, the quantization, the user's
config, the sample images and an output folder; it writes the model
(``model.tflite``, or a ``saved_model/`` folder that the TensorFlow runtime
serves through its ``serving_default`` signature) and ``check.json`` there.

A model whose input layer takes any size is converted at the size the config
gives (none given is an error ``code`` the parent turns into an InputError).
With three or more sample images it also probes the preprocessing: when every
sample gets the same top-1 under the configured input scale, it records how
many distinct answers each other scale gives (``preprocessing_probe``), so the
parent can say the scale is probably wrong. With labelled samples (``"candidates"`` in the
request) it also records the original model's top-1 answers under every candidate
preprocessing (``candidate_answers``, which ``calibrate_child`` runs for init too), for
pack's labelled check. Any
failure is one ``error`` line in ``check.json``, never a traceback for the user.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

RANDOM_INPUTS = 8
SEED = 20171124
# The preprocessing probe needs a few sample images: with fewer, "all the same answer" means little.
PROBE_MIN_SAMPLES = 3


def main(request_path: str) -> int:
    return child_main(
        request_path,
        lambda request: run(request, Path(request["out"])),
        lambda request: Path(request["out"]) / "check.json",
        "the model check failed",
        "The conversion check runs the model in a child process with TensorFlow; this is where it "
        "stopped. Check the model loads and runs in Keras, or report it.",
    )


def child_main(
    request_path: str,
    work: Callable[[dict], dict],
    answer_file: Callable[[dict], Path],
    crashed: str,
    hint: str | None = None,
) -> int:
    """The one ``main`` of the TensorFlow children (convert, inspect, calibrate): read the
    request, run ``work`` on it and write its answer to ``answer_file(request)``, or the
    failure: a ``ConversionFailure`` as it is, anything else as one line (``crashed``: the
    exception's type and first line; its traceback on stderr) — never a traceback for the user."""
    request = json.loads(Path(request_path).read_text())
    out = answer_file(request)
    try:
        answer = work(request)
    except ConversionFailure as exc:
        out.write_text(json.dumps({"error": str(exc), "hint": exc.hint, "code": exc.code, **exc.details}))
        return 1
    except Exception as exc:  # anything else is still one line for the user, never a traceback
        traceback.print_exc()
        line = (str(exc).strip().splitlines() or [""])[0]
        failure = {"error": f"{crashed}: {type(exc).__name__}: {line}".rstrip(": ")}
        if hint is not None:
            failure.update(hint=hint, code="crash")
        out.write_text(json.dumps(failure))
        return 1
    out.write_text(json.dumps(answer))
    return 0


class ConversionFailure(Exception):
    def __init__(self, message: str, hint: str = "", code: str = "model", **details) -> None:
        super().__init__(message)
        self.hint = hint
        self.code = code  # "model", or one of children.CHILD_INPUT_PROBLEMS (the user's input: exit 2)
        self.details = details


def run(request: dict, out: Path) -> dict:
    if request.get("mode") == "predict":
        return predict(request)
    kind = request["kind"]
    model_path = Path(request["model"])
    user_input = request["config"].get("input", {})
    reference = None
    tf_version = None
    spec_dict = None
    allowed: list[str] = []
    if kind != "tflite":
        tf = _import_tensorflow()
        tf_version = tf.__version__
        if kind == "saved_model":  # before anything of it runs: loading, the check, the export
            allowed = refuse_unsafe_ops(model_path, request.get("allow_unsafe_ops", False))
        reference = _load_reference(tf, model_path, kind)
        # The size is settled before converting: a free-size model is converted at the size
        # the config gives, never at TensorFlow Lite's placeholder of 1x1.
        spec_dict = _input_spec(reference.input_shape, user_input)
    if request.get("format", "tflite") == "saved_model":
        served, shape = _saved_model(model_path, kind, reference, out / "saved_model")
        if kind == "saved_model":
            reference = None  # served as it is: nothing was converted
    else:
        if kind == "tflite":
            tflite_bytes = model_path.read_bytes()
        else:
            fixed = _free_size(reference.input_shape) and spec_dict
            tflite_bytes = _convert(tf, model_path, kind, reference, request["quantize"], fixed or None)
        (out / "model.tflite").write_bytes(tflite_bytes)
        served, shape = _tflite(tflite_bytes)
        if kind == "tflite" and _free_size(shape):
            raise ConversionFailure(
                f"the .tflite model's input size is free ({_shape_text(shape)}): the handler feeds it "
                "one fixed size",
                "Convert it with a fixed input size, or pack the Keras or SavedModel model with a size "
                'in the config ({"input": {"height": H, "width": W}}).',
                code="free_size_tflite",
            )
    if spec_dict is None:
        spec_dict = _input_spec(shape, user_input)
    elif not _free_size(shape) and list(shape[1:3]) != [spec_dict["height"], spec_dict["width"]]:
        raise ConversionFailure(f"the converted model takes {_shape_text(shape)}, not the size asked for")
    from lambdapack.handler.lambdapack_handler.config import InputSpec
    from lambdapack.handler.lambdapack_handler.imaging import ImageError, preprocess
    from lambdapack.handler.lambdapack_handler.inference import to_probabilities

    spec = InputSpec(**spec_dict)
    output_kind = request["config"].get("output", "auto")
    batches, names = [], []
    sample_bytes = [Path(image).read_bytes() for image in request["samples"]]
    for image, data in zip(request["samples"], sample_bytes, strict=True):
        try:
            batches.append(preprocess(data, spec))
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
    if allowed:
        check["unsafe_ops_allowed"] = allowed
    probe = _preprocessing_probe(served, spec, sample_bytes, converted[: len(sample_bytes)])
    if probe is not None:
        check["preprocessing_probe"] = probe
    if request.get("candidates"):  # labelled samples: the answers under every preprocessing
        # Without a reference, what is served is the original: a .tflite or a SavedModel as it is.
        call = reference if reference is not None else served
        check["candidates"] = candidate_answers(call, spec, sample_bytes, request["samples"])
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


def predict(request: dict) -> dict:
    """The original model's probabilities for each image, preprocessed as the zip's config
    says (``request["config"]``: the ``model/config.json`` a zip carries), for ``evaluate
    --model``: the one candidate the config names, through ``outputs_under`` as init's
    candidates go. An image that cannot be read gets ``None`` and its error."""
    from lambdapack.handler.lambdapack_handler.config import InputSpec
    from lambdapack.handler.lambdapack_handler.inference import to_probabilities

    call = load_original(Path(request["model"]), request["kind"], request.get("allow_unsafe_ops", False))
    spec = InputSpec(**request["config"]["input"])
    output_kind = request["config"].get("output", "auto")
    answers: list[dict | None] = []
    readable: list[bytes] = []
    for image in request["images"]:
        try:
            readable.append(Path(image).read_bytes())
            answers.append(None)
        except OSError as exc:
            answers.append({"probabilities": None, "error": f"{type(exc).__name__}: {exc}"})
    outputs = iter(
        outputs_under(call, spec, readable, [(spec.scale, spec.resize)])[(spec.scale, spec.resize)]
    )
    for index, answer in enumerate(answers):
        if answer is not None:
            continue
        output = next(outputs)
        if isinstance(output, Exception):
            answers[index] = {"probabilities": None, "error": f"{type(output).__name__}: {output}"}
        else:
            probabilities = to_probabilities(output, output_kind)
            answers[index] = {"probabilities": [round(float(p), 7) for p in probabilities]}
    return {"answers": answers}


def load_original(path: Path, kind: str, allow_unsafe_ops: bool = False):
    """The original model as ``batch -> scores``: a ``.tflite`` in LiteRT, else Keras or a
    SavedModel in TensorFlow (a SavedModel's graph checked for unsafe ops first)."""
    if kind == "tflite":
        return _tflite(path.read_bytes())[0]
    tf = _import_tensorflow()
    if kind == "saved_model":
        refuse_unsafe_ops(path, allow_unsafe_ops)
    return _load_reference(tf, path, kind)


def _preprocessing_probe(served, spec, images: list[bytes], outputs: list) -> dict | None:
    """Do the samples all get one answer under the configured preprocessing, and more than one
    under another input scale? The conversion check cannot see a wrong scale (the original and
    the converted model get the same wrong inputs and agree); a model fed inputs 255 times too
    small or too large sees near-constant images and answers the same class for all of them."""
    from lambdapack.handler.lambdapack_handler.config import SCALES
    from lambdapack.handler.lambdapack_handler.imaging import preprocess

    if len(images) < PROBE_MIN_SAMPLES:
        return None
    top1 = [int(np.argmax(probabilities)) for probabilities in outputs]
    probe = {
        "scale": spec.scale,
        "samples": len(images),
        "distinct_top1": len(set(top1)),
        "top1": max(set(top1), key=top1.count),
        "alternatives": {},
    }
    if probe["distinct_top1"] > 1:
        return probe
    for scale in SCALES:
        if scale != spec.scale:
            other = replace(spec, scale=scale)
            answers = {int(np.argmax(served(preprocess(data, other)))) for data in images}
            probe["alternatives"][scale] = len(answers)
    return probe


def candidate_answers(call, spec, images: list[bytes], names: list[str]) -> list[dict]:
    """``[{"scale", "resize", "top1": [index per image]}]`` for every scale and resize mode
    the handler implements; an image that cannot be used fails them all."""
    from lambdapack.handler.lambdapack_handler.config import RESIZE_MODES, SCALES

    wanted = [(scale, resize) for resize in RESIZE_MODES for scale in SCALES]
    answers = []
    for (scale, resize), outputs in outputs_under(call, spec, images, wanted).items():
        for output, name in zip(outputs, names, strict=True):
            if isinstance(output, Exception):
                raise ConversionFailure(f"sample image {name} cannot be used: {output}") from output
        answers.append({"scale": scale, "resize": resize, "top1": [int(np.argmax(o)) for o in outputs]})
    return answers


def outputs_under(call, spec, images: list[bytes], preprocessings: list[tuple[str, str]]) -> dict:
    """``{(scale, resize): [the model's raw output, or the ImageError, per image]}``: each image
    through the handler's own preprocessing (``imaging.decode``, ``imaging.to_array``), so a
    candidate is exactly what the zip would feed the model. An image is decoded once per
    resize mode; the scales differ only in the arithmetic after it."""
    from lambdapack.handler.lambdapack_handler.imaging import ImageError, decode, to_array

    outputs: dict = {}
    for resize in dict.fromkeys(resize for _scale, resize in preprocessings):
        decoded: list = []
        for data in images:
            try:
                decoded.append(decode(data, replace(spec, resize=resize)))
            except ImageError as exc:
                decoded.append(exc)
        for scale in [scale for scale, mode in preprocessings if mode == resize]:
            candidate = replace(spec, scale=scale, resize=resize)
            outputs[(scale, resize)] = [
                image if isinstance(image, ImageError) else call(to_array(image, candidate))
                for image in decoded
            ]
    return outputs


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

            backend = TensorFlowBackend(str(path))

            def call_saved(batch):
                return backend.predict(batch)

            call_saved.input_shape = _dims(backend.input_shape)  # type: ignore[attr-defined]
            return call_saved
    except Exception as exc:
        raise ConversionFailure(f"could not load the model {path}: {first_line(exc)}") from exc
    model = load_keras_classifier(path)

    def call_keras(batch):
        return np.asarray(model(batch, training=False))[0]

    call_keras.model = model  # type: ignore[attr-defined]
    call_keras.input_shape = _dims(model.inputs[0].shape)  # type: ignore[attr-defined]
    return call_keras


def _dims(shape) -> list[int]:
    """A shape with free dimensions (None) as -1, like TensorFlow Lite's shape_signature."""
    return [-1 if v is None else int(v) for v in shape]


def _free_size(shape: list[int]) -> bool:
    return len(shape) == 4 and min(shape[1], shape[2]) < 1


def _shape_text(shape: list[int]) -> str:
    return " x ".join("None" if v < 1 else str(v) for v in shape[1:])


def load_keras_classifier(path: Path):
    """A Keras model with one image input and one score output; ConversionFailure otherwise.
    (inspect_child loads models the same way.) Loaded in Keras's safe mode, the default: no
    Python code stored in the file (a Lambda layer's function) is run; .h5 files too."""
    import keras

    try:
        model = keras.models.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:
        if "safe_mode" in str(exc):  # Keras refused to run Python stored in the file
            raise ConversionFailure(
                f"{path.name} holds Python code (a Lambda layer) that loading it would run: "
                "lambdapack loads Keras files in safe mode and does not run it",
                "Export the model as a SavedModel where it was made (model.export('DIR')) and pack "
                "that folder: the Lambda becomes graph ops, which lambdapack checks.",
                code="unsafe_ops",
            ) from exc
        raise ConversionFailure(f"could not load the model {path}: {first_line(exc)}") from exc
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ConversionFailure(
            f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs",
            "lambdapack serves image classifiers: one image input, one score output.",
        )
    return model


def refuse_unsafe_ops(path: Path, allow: bool) -> list[str]:
    """Refuse a SavedModel whose graph could write or read files, reach the network or run
    Python (``graph_ops``): ``saved_model.pb`` is read as a protobuf, nothing of it runs.
    (TensorFlow's loader reads saved_model.pb when it exists, and model_kind requires it.)
    With ``allow``: what it would have refused, for the parent to say it ran."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    from lambdapack.packing.graph_ops import unsafe_ops

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
    except DecodeError as exc:
        raise ConversionFailure(f"{path / 'saved_model.pb'} is not a SavedModel: {first_line(exc)}") from exc
    found = unsafe_ops(proto)
    if found and not allow:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConversionFailure(
            f"{path.name}: the SavedModel's graph holds {found[0].text()}{more}; lambdapack does not "
            "run it on this machine",
            "Loading a SavedModel runs its graph. Only if you trust the model: pass --allow-unsafe-ops "
            "(unsafe: its ops then run here with your rights).",
            code="unsafe_ops",
        )
    return [item.text() for item in found]


def first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _convert(tf, path: Path, kind: str, reference, quantize: str, fixed: dict | None = None) -> bytes:
    """The model as TensorFlow Lite; a free-size model at the ``fixed`` size (the handler
    feeds the interpreter one size: the one in the config)."""
    try:
        if fixed and kind == "saved_model":
            converter = _fixed_saved_model_converter(tf, path, fixed)
        elif fixed:
            import keras

            image = keras.Input((fixed["height"], fixed["width"], fixed["channels"]))
            pinned = keras.Model(image, reference.model(image, training=False))
            converter = tf.lite.TFLiteConverter.from_keras_model(pinned)
        elif kind == "saved_model":
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
            f"TensorFlow Lite could not convert {path}: {first_line(exc)}",
            "The model uses operations TensorFlow Lite lacks. The S3-staged TensorFlow "
            "runtime (a later lambdapack feature) serves such models.",
        ) from exc


def _fixed_saved_model_converter(tf, path: Path, fixed: dict):
    """A converter for a SavedModel's serving signature called at one fixed input size."""
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures["serving_default"]
    (input_name,) = signature.structured_input_signature[1].keys()
    (output_name,) = signature.structured_outputs.keys()
    shape = [1, fixed["height"], fixed["width"], fixed["channels"]]
    function = tf.function(lambda batch: signature(**{input_name: batch})[output_name])
    concrete = function.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded)


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

    # shape_signature keeps free dimensions as -1; "shape" would say 1.
    signature = input_detail[0].get("shape_signature")
    shape = signature if signature is not None and len(signature) else input_detail[0]["shape"]
    return served, [int(v) for v in shape]


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
        raise ConversionFailure(f"could not export {path} as a SavedModel: {first_line(exc)}") from exc
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
    """The input the handler will feed: the model's size, or for a model whose input layer
    takes any size, the size the config gives (there is no sensible default)."""
    if len(shape) != 4:
        raise ConversionFailure(
            f"the model's input has shape {shape}",
            "lambdapack serves image models with input (batch, height, width, channels).",
        )
    _, height, width, channels = shape
    given = {key: int(user[key]) for key in ("height", "width", "channels") if key in user}
    if _free_size(shape):
        if "height" not in given or "width" not in given:
            raise ConversionFailure(
                f"the model's input size is free ({_shape_text(shape)}) and the model config gives no size",
                "",
                code="free_size",
                shape=_shape_text(shape),
            )
        height, width = given["height"], given["width"]
    elif (given.get("height", height), given.get("width", width)) != (height, width):
        raise ConversionFailure(
            f"the model config's input size {given.get('height', height)}x{given.get('width', width)} is "
            f"not the model's {height}x{width}",
            "The model fixes its input size: remove input.height and input.width from the config.",
            code="input_size",
        )
    if channels < 1:
        channels = given.get("channels", -1)
    elif given.get("channels", channels) != channels:
        raise ConversionFailure(
            f"the model config's input.channels {given['channels']} is not the model's {channels}",
            "The model fixes its channels: remove input.channels from the config.",
            code="input_size",
        )
    if channels < 1:
        raise ConversionFailure(
            f"the model's input shape {shape} leaves the channels open",
            'Give them in the model config: {"input": {"channels": 1|3}}',
            code="input_size",
        )
    if channels not in (1, 3):
        raise ConversionFailure(
            f"the model takes images with {channels} channels",
            "lambdapack feeds 1 (greyscale) or 3 (RGB) channels.",
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
