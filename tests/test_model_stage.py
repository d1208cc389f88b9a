"""The model stage with real TensorFlow conversion and a real TFLite
interpreter (in lambdapack's child process), on the sample model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pack.errors import InputError, ModelError
from pack.model import ModelResult, _enforce_agreement, prepare_model

from .conftest import SAMPLE

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def converted(sample_model, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    dest = tmp_path_factory.mktemp("model")
    samples = sorted((SAMPLE / "samples").glob("*.png"))
    return prepare_model(sample_model, dest, cache, samples=samples), dest, cache


def test_keras_model_is_converted_and_checked_against_the_original(converted):
    result, dest, _ = converted
    config = json.loads((dest / "config.json").read_text())
    assert config["input"] == {"height": 32, "width": 32, "channels": 1, "scale": "0..1", "resize": "stretch"}
    assert config["labels"] == [str(d) for d in range(10)]
    assert config["sha256"] and (dest / "model.tflite").stat().st_size > 10_000
    check = result.comparison
    assert check["inputs"] == 18 and check["sample_images"] == 10
    assert check["top1_agreement"] == 1.0
    assert check["max_probability_difference"] < 1e-4


def test_second_preparation_comes_from_the_cache(converted, sample_model, tmp_path):
    _, dest, cache = converted
    samples = sorted((SAMPLE / "samples").glob("*.png"))
    again = prepare_model(sample_model, tmp_path, cache, samples=samples)
    assert again.cached
    assert (tmp_path / "model.tflite").read_bytes() == (dest / "model.tflite").read_bytes()


def test_tflite_model_is_packed_as_is_with_its_shape_read_from_the_model(converted, tmp_path):
    _, dest, _ = converted
    model = tmp_path / "digits.tflite"
    model.write_bytes((dest / "model.tflite").read_bytes())
    out = tmp_path / "out"
    result = prepare_model(model, out, tmp_path / "cache")
    assert (out / "model.tflite").read_bytes() == model.read_bytes()
    assert result.comparison is None
    assert result.config["input"]["height"] == 32 and result.config["labels"][9] == "9"
    with pytest.raises(InputError, match="--quantize applies"):
        prepare_model(model, out, tmp_path / "cache", quantize="dynamic")


def test_saved_model_folder_is_converted(sample_model, tmp_path):
    saved = tmp_path / "digits_saved"
    code = "import sys, keras; keras.models.load_model(sys.argv[1]).export(sys.argv[2])"
    subprocess.run(
        [sys.executable, "-c", code, str(sample_model), str(saved)], check=True, capture_output=True
    )
    result = prepare_model(saved, tmp_path / "out", tmp_path / "cache")
    assert result.kind == "saved_model"
    assert result.comparison["top1_agreement"] == 1.0


def test_dynamic_quantization_shrinks_the_model_and_reports_agreement(sample_model, converted, tmp_path):
    _, dest, _ = converted
    result = prepare_model(sample_model, tmp_path / "q", tmp_path / "cache", quantize="dynamic")
    assert (tmp_path / "q" / "model.tflite").stat().st_size < (dest / "model.tflite").stat().st_size / 2
    assert result.config["quantize"] == "dynamic"
    assert 0.0 <= result.comparison["top1_agreement"] <= 1.0


def test_label_count_must_match_the_model(sample_model, tmp_path):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"labels": ["a", "b"]}))
    with pytest.raises(InputError, match="2 labels, the model has 10 classes"):
        prepare_model(sample_model, tmp_path / "o", tmp_path / "cache", config_path=config)


def test_float32_disagreement_fails_but_quantized_only_reports():
    comparison = {"inputs": 4, "top1_disagreements": ["random-1"], "max_probability_difference": 0.4}
    failing = ModelResult(SAMPLE, "keras", "none", {}, {"comparison": comparison}, False)
    with pytest.raises(ModelError, match="disagrees with the original on 1 of 4 inputs"):
        _enforce_agreement(failing)
    _enforce_agreement(ModelResult(SAMPLE, "keras", "dynamic", {}, {"comparison": comparison}, False))
