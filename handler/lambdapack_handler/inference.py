"""One small interface over the inference runtime: ``predict(batch) -> scores``.

- ``LiteRTBackend`` (the default) runs a ``.tflite`` model with the
  interpreter from ``ai_edge_litert`` (or the older ``tflite_runtime``).
  Integer-quantized inputs and outputs are converted with the tensor's own
  scale and zero point, so callers always deal in float32.
- ``TensorFlowBackend`` serves a SavedModel through its ``serving_default``
  signature (5–8x faster per call than calling a Keras model), for models
  that do not convert to TensorFlow Lite.

Both use as many threads as this environment has CPUs (the affinity mask, lowered to the
cgroup's CPU quota), unless ``INFERENCE_THREADS`` says otherwise.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Protocol

import numpy as np


class Backend(Protocol):
    name: str

    def predict(self, batch: np.ndarray) -> np.ndarray: ...


def available_cpus(cgroup_root: str = "/sys/fs/cgroup") -> int:
    """The CPUs this environment really has: the affinity mask, lowered to the cgroup's
    CPU quota where one is set (a container capped at 0.58 vCPU on a 2-core host sees both
    cores in its mask; two threads there only take turns). Lambda's own environments show
    their vCPUs in the mask (1,769 MB = one vCPU, 10,240 MB = six)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota - 1e-9))
    return max(1, cpus)


def cgroup_cpu_quota(root: str = "/sys/fs/cgroup") -> float | None:
    """CPUs the cgroup may use per period (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``
    over ``cpu.cfs_period_us``), or None where no quota is set or none can be read."""
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path(root, "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    with contextlib.suppress(OSError, ValueError):
        quota_us = int(Path(root, "cpu", "cpu.cfs_quota_us").read_text())
        period_us = int(Path(root, "cpu", "cpu.cfs_period_us").read_text())
        return quota_us / period_us if quota_us > 0 and period_us > 0 else None
    return None


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]
    return Interpreter


class LiteRTBackend:
    name = "litert"

    def __init__(self, model_path: str, threads: int | None = None) -> None:
        interpreter_class = _interpreter_class()
        self.threads = threads or available_cpus()
        self._interpreter = interpreter_class(model_path=model_path, num_threads=self.threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._float_input = np.dtype(self._input["dtype"]) == np.float32
        self._input_shape = tuple(int(v) for v in self._input["shape"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self._input_shape

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return run_interpreter(self._interpreter, batch, self._input, self._output)

    def load_pixels(self, pixels: np.ndarray, scale: tuple[float, float]) -> None:
        """Put one image's 8-bit pixels (height x width [x channels]) into the input tensor
        as ``pixels * factor + offset``: for a float32 input of their shape, computed in
        float32 straight into the interpreter's own buffer (no batch array, no copy by
        set_tensor: the same values ``imaging.to_array`` gives); else as ``predict`` does."""
        factor, offset = scale
        if pixels.ndim == 2:
            pixels = pixels[:, :, np.newaxis]
        if self._float_input and self._input_shape == (1, *pixels.shape):
            # A view of the input buffer; it must be gone before invoke(), which refuses
            # to run while numpy holds references into the interpreter's memory.
            view = self._interpreter.tensor(self._input["index"])()
            np.multiply(pixels[np.newaxis], np.float32(factor), out=view, dtype=np.float32)
            if offset:
                np.add(view, np.float32(offset), out=view)
            del view
            return
        batch = (pixels.astype(np.float32) * np.float32(factor) + np.float32(offset))[np.newaxis]
        self._interpreter.set_tensor(self._input["index"], _quantize(batch, self._input))

    def run(self) -> np.ndarray:
        """Invoke on the input ``load_pixels`` put in; the scores, in float32."""
        self._interpreter.invoke()
        return _dequantize(self._interpreter.get_tensor(self._output["index"]), self._output)[0]


def run_interpreter(interpreter, batch: np.ndarray, input_detail: dict, output_detail: dict) -> np.ndarray:
    """One batch through a TFLite interpreter, in float32 whatever its tensor types."""
    interpreter.set_tensor(input_detail["index"], _quantize(batch, input_detail))
    interpreter.invoke()
    return _dequantize(interpreter.get_tensor(output_detail["index"]), output_detail)[0]


class TensorFlowBackend:
    name = "tensorflow"

    def __init__(self, saved_model_dir: str, threads: int | None = None) -> None:
        import tensorflow as tf

        self.threads = threads or available_cpus()
        # Fails once TensorFlow is initialised in this process; its setting then stays.
        with contextlib.suppress(RuntimeError):
            tf.config.threading.set_intra_op_parallelism_threads(self.threads)
        self._tf = tf
        self._model = tf.saved_model.load(saved_model_dir)
        self._signature = self._model.signatures["serving_default"]
        inputs = self._signature.structured_input_signature[1]
        if len(inputs) != 1 or len(self._signature.structured_outputs) != 1:
            raise ValueError("the SavedModel signature must have one input and one output")
        (self._input_name,) = inputs.keys()
        (self._output_name,) = self._signature.structured_outputs.keys()
        self._input_spec = inputs[self._input_name]

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return tuple(self._input_spec.shape.as_list())

    def predict(self, batch: np.ndarray) -> np.ndarray:
        outputs = self._signature(**{self._input_name: self._tf.constant(batch, dtype=self._tf.float32)})
        return np.asarray(outputs[self._output_name])[0].astype(np.float32)


BACKENDS = {"litert": LiteRTBackend, "tensorflow": TensorFlowBackend}


def _quantize(batch: np.ndarray, detail: dict) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return batch.astype(dtype, copy=False)
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        return batch.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(batch / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(raw: np.ndarray, detail: dict) -> np.ndarray:
    if np.dtype(raw.dtype).kind == "f":
        return raw.astype(np.float32, copy=False)
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        return raw.astype(np.float32)
    return (raw.astype(np.float32) - zero_point) * np.float32(scale)


def to_probabilities(scores: np.ndarray, output: str) -> np.ndarray:
    """Scores as probabilities: softmax for logits, unchanged for probabilities.

    ``auto`` treats scores that are all in [0, 1] and sum to 1 as probabilities.
    """
    scores = scores.astype(np.float64).reshape(-1)
    if output == "probabilities" or (
        output == "auto" and scores.min() >= 0.0 and scores.max() <= 1.0 and abs(scores.sum() - 1.0) < 1e-3
    ):
        return scores
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def top_k(probabilities: np.ndarray, k: int) -> list[tuple[int, float]]:
    k = max(1, min(k, probabilities.size))
    # Stable: equal scores keep index order, so results are reproducible.
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(int(i), float(probabilities[i])) for i in order]
