"""The LiteRT backend's in-place input path gives exactly what ``preprocess`` + ``predict`` give."""

import io
import os
import sys

import numpy as np
import pytest
from PIL import Image

from lambdapack_handler import clients
from lambdapack_handler.classifier import Classifier
from lambdapack_handler.config import ModelConfig, parse_config
from lambdapack_handler.imaging import Limits, preprocess
from lambdapack_handler.inference import LiteRTBackend


class FakeInterpreter:
    """Enough of LiteRT's Interpreter: invoke() refuses to run while numpy holds a view
    of the input buffer (as the real one does), and the output is a checksum of the input."""

    def __init__(self, shape, dtype=np.float32, quantization=(0.0, 0)):
        self.buffer = np.zeros(shape, dtype)
        self.details = {"index": 0, "shape": np.array(shape), "dtype": dtype, "quantization": quantization}
        self.output = np.zeros((1, 3), np.float32)
        self.set_calls = 0

    def get_input_details(self):
        return [self.details]

    def get_output_details(self):
        return [{"index": 1, "shape": np.array((1, 3)), "dtype": np.float32, "quantization": (0.0, 0)}]

    def tensor(self, index):
        assert index == 0
        return lambda: self.buffer[...]

    def set_tensor(self, index, value):
        if value.shape != self.buffer.shape:
            raise ValueError("Cannot set tensor: Dimension mismatch")
        self.set_calls += 1
        self.buffer[...] = value

    def invoke(self):
        # the buffer's own attribute and getrefcount's argument: no view may be alive
        # (counted outside the assert, which pytest rewrites to keep its operands)
        references = sys.getrefcount(self.buffer)
        assert references == 2, "a view of the input is still held"
        values = self.buffer.astype(np.float64)
        self.output[0] = (values.sum(), values.min(), values.max())

    def get_tensor(self, index):
        return (self.output if index == 1 else self.buffer).copy()


def backend_with(interpreter) -> LiteRTBackend:
    backend = LiteRTBackend.__new__(LiteRTBackend)
    backend.threads = 1
    backend._interpreter = interpreter
    backend._input = interpreter.get_input_details()[0]
    backend._output = interpreter.get_output_details()[0]
    backend._float_input = np.dtype(backend._input["dtype"]) == np.float32
    backend._input_shape = tuple(int(v) for v in backend._input["shape"])
    return backend


def jpeg(size=(96, 80), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def config(channels: int, scale: str) -> ModelConfig:
    return parse_config(
        {
            "model_file": "m.tflite",
            "labels": ["a", "b", "c"],
            "input": {"height": 32, "width": 40, "channels": channels, "scale": scale},
            "output": "logits",
        }
    )


@pytest.mark.parametrize(("channels", "scale"), [(3, "-1..1"), (3, "0..1"), (1, "0..255"), (1, "0..1")])
def test_in_place_input_is_bit_identical_to_preprocess(channels, scale):
    cfg = config(channels, scale)
    interpreter = FakeInterpreter((1, 32, 40, channels))
    classifier = Classifier(cfg, backend_with(interpreter), "", Limits())
    data = jpeg()
    classifier.classify(data, k=3)
    assert interpreter.set_calls == 0  # written in place, not copied in by set_tensor
    expected = preprocess(data, cfg.input)
    assert interpreter.buffer.dtype == expected.dtype and interpreter.buffer.shape == expected.shape
    assert np.array_equal(interpreter.buffer, expected)


def test_same_scores_as_the_predict_path():
    cfg = config(3, "-1..1")
    data = jpeg(seed=3)
    in_place = FakeInterpreter((1, 32, 40, 3))
    labels = Classifier(cfg, backend_with(in_place), "", Limits()).classify(data, k=3).labels
    old = FakeInterpreter((1, 32, 40, 3))
    scores = backend_with(old).predict(preprocess(data, cfg.input))
    assert np.array_equal(in_place.get_tensor(1)[0], scores)
    assert len(labels) == 3


def test_a_layout_the_pixels_do_not_have_is_refused_as_before():
    cfg = config(3, "0..1")
    interpreter = FakeInterpreter((1, 3, 32, 40))  # channels first: same size, other layout
    with pytest.raises(ValueError, match="Dimension mismatch"):
        Classifier(cfg, backend_with(interpreter), "", Limits()).classify(jpeg(), k=1)


def test_an_integer_input_is_quantized_through_set_tensor():
    cfg = config(3, "0..1")
    interpreter = FakeInterpreter((1, 32, 40, 3), np.uint8, quantization=(1 / 255, 0))
    data = jpeg(seed=5)
    Classifier(cfg, backend_with(interpreter), "", Limits()).classify(data, k=1)
    assert interpreter.set_calls == 1
    expected = np.clip(np.round(preprocess(data, cfg.input) * 255), 0, 255).astype(np.uint8)
    assert np.array_equal(interpreter.buffer, expected)


def test_the_s3_client_comes_from_botocore_without_boto3(monkeypatch):
    pytest.importorskip("botocore")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    before = "s3transfer" in sys.modules
    client = clients.s3_client()
    assert client.meta.service_model.service_name == "s3"
    assert hasattr(client, "get_object") and hasattr(client, "put_object")
    if not before:
        assert "s3transfer" not in sys.modules  # boto3's transfer manager is not loaded


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "58000 100000\n"}, 1),  # 1,024 MB locally: 0.58 vCPU is one thread
        ({"cpu.max": "170000 100000\n"}, 2),  # 3,008 MB: 1.7 vCPU rounds up to two
        ({"cpu.max": "max 100000\n"}, None),  # no quota: the affinity mask decides
        ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),  # nothing readable
    ],
)
def test_threads_follow_the_cgroup_quota_under_the_affinity_mask(tmp_path, files, expected):
    from lambdapack_handler.inference import available_cpus

    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    mask = len(os.sched_getaffinity(0))
    assert available_cpus(str(tmp_path)) == min(mask, expected if expected else mask)
