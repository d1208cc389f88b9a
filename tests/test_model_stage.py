"""The model stage with real TensorFlow conversion and a real TFLite
interpreter (in lambdapack's child process), on the sample model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from lambdapack.errors import InputError, ModelError
from lambdapack.packing.model import ModelResult, _enforce_agreement, prepare_model

from .conftest import SAMPLE

pytestmark = [pytest.mark.functional, pytest.mark.tensorflow]


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
    # The config beside the model was used, and the samples tell the digits apart under its scale.
    assert result.config_path == SAMPLE / "digits.lambdapack.json"
    assert result.as_dict(0)["config"] == str(SAMPLE / "digits.lambdapack.json")
    probe = result.check["preprocessing_probe"]
    assert probe["scale"] == "0..1" and probe["samples"] == 10 and probe["distinct_top1"] >= 8


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


@pytest.fixture(scope="module")
def saved_model(sample_model, tmp_path_factory):
    saved = tmp_path_factory.mktemp("saved") / "digits_saved"
    code = "import sys, keras; keras.models.load_model(sys.argv[1]).export(sys.argv[2])"
    subprocess.run(
        [sys.executable, "-c", code, str(sample_model), str(saved)], check=True, capture_output=True
    )
    return saved


def test_saved_model_folder_is_converted(saved_model, tmp_path):
    result = prepare_model(saved_model, tmp_path / "out", tmp_path / "cache")
    assert result.kind == "saved_model"
    assert result.comparison["top1_agreement"] == 1.0


BOTH_BACKENDS = """
import json, sys
from pathlib import Path
from lambdapack.handler.lambdapack_handler.loader import load_classifier
litert = load_classifier({"MODEL_DIR": sys.argv[1]})
tf = load_classifier({"MODEL_DIR": sys.argv[2]})
answers = []
for image in sorted(Path(sys.argv[3]).glob("*.png")):
    data = image.read_bytes()
    a, b = litert.classify(data, 10), tf.classify(data, 10)
    answers.append([a.top1, b.top1, max(abs(x["score"] - y["score"]) for x, y in zip(
        sorted(a.labels, key=lambda r: r["index"]), sorted(b.labels, key=lambda r: r["index"])))])
print(json.dumps({"answers": answers, "backends": [litert.backend.name, tf.backend.name]}))
"""


def test_tensorflow_backend_serves_the_saved_model_with_the_same_answers(converted, saved_model, tmp_path):
    _, litert_dir, _ = converted
    tf_dir = tmp_path / "tf"
    tf_dir.mkdir()
    config = json.loads((litert_dir / "config.json").read_text())
    config.update(backend="tensorflow", model_file="saved", sha256="")
    (tf_dir / "config.json").write_text(json.dumps(config))
    shutil.copytree(saved_model, tf_dir / "saved")
    proc = subprocess.run(
        [sys.executable, "-c", BOTH_BACKENDS, str(litert_dir), str(tf_dir), str(SAMPLE / "samples")],
        capture_output=True,
        text=True,
        check=True,
    )
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["backends"] == ["litert", "tensorflow"]
    assert len(outcome["answers"]) == 10
    for litert_top1, tf_top1, difference in outcome["answers"]:
        assert litert_top1 == tf_top1
        assert difference < 1e-4


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


def test_for_the_tensorflow_runtime_a_keras_model_is_exported_and_checked(sample_model, tmp_path):
    samples = sorted((SAMPLE / "samples").glob("*.png"))
    result = prepare_model(
        sample_model, tmp_path / "out", tmp_path / "cache", samples=samples, model_format="saved_model"
    )
    assert (tmp_path / "out" / "saved_model" / "saved_model.pb").is_file()
    assert result.config["backend"] == "tensorflow" and result.config["model_file"] == "saved_model"
    assert (
        result.comparison["top1_agreement"] == 1.0 and result.comparison["max_probability_difference"] < 1e-5
    )
    assert len(result.check["samples"]) == len(samples)


def test_for_the_tensorflow_runtime_a_saved_model_is_served_as_it_is(saved_model, tmp_path):
    result = prepare_model(saved_model, tmp_path / "out", tmp_path / "cache", model_format="saved_model")
    copied = tmp_path / "out" / "saved_model"
    assert (copied / "saved_model.pb").read_bytes() == (saved_model / "saved_model.pb").read_bytes()
    assert result.comparison is None and result.config["input"]["height"] == 32


def test_the_tensorflow_runtime_refuses_what_it_cannot_serve(converted, sample_model, tmp_path):
    _, dest, _ = converted
    tflite = tmp_path / "digits.tflite"
    tflite.write_bytes((dest / "model.tflite").read_bytes())
    with pytest.raises(InputError, match="runs on --runtime litert"):
        prepare_model(tflite, tmp_path / "a", tmp_path / "cache", model_format="saved_model")
    with pytest.raises(InputError, match="--quantize applies when converting to TensorFlow Lite"):
        prepare_model(
            sample_model, tmp_path / "b", tmp_path / "cache", quantize="dynamic", model_format="saved_model"
        )
