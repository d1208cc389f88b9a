"""``lambdapack init`` and the model stage on tiny Keras models built here (nothing is
downloaded), with real TensorFlow in lambdapack's child processes.

The colour models average the image and pick its strongest channel (red, green, blue):
a Dense layer with weights 10 x identity and a bias of 2 towards red, so an image scaled
255 times too small looks black and every sample is answered "red"."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from lambdapack.errors import InputError
from lambdapack.packing.model import prepare_model

from .conftest import run_cli

pytestmark = [pytest.mark.functional, pytest.mark.tensorflow]

BUILD_MODELS = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from pathlib import Path
import numpy as np, keras
L = keras.layers
out = Path(sys.argv[1])

def colours(shape, pre, activation="softmax"):
    image = keras.Input(shape)
    x = image
    for layer in pre:
        x = layer(x)
    dense = L.Dense(3, activation=activation)
    model = keras.Model(image, dense(L.GlobalAveragePooling2D()(x)))
    dense.set_weights([np.eye(3, dtype="float32") * 10, np.array([2, 0, 0], "float32")])
    return model

shapes = colours((16, 16, 3), [L.Rescaling(1 / 255)])
shapes.save(out / "shapes.keras")
colours((None, None, 3), [L.Resizing(32, 32), L.Rescaling(1 / 255)], None).save(out / "resizes.keras")
colours((None, None, 3), [L.Rescaling(1 / 255)]).save(out / "free.keras")
keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(), L.Dense(2), L.Softmax()]).save(out / "grey.h5")
shapes.export(str(out / "shapes_saved"), verbose=False)
import tensorflow as tf
(out / "shapes.tflite").write_bytes(tf.lite.TFLiteConverter.from_keras_model(shapes).convert())
"""
COLOURS = {"a-red": (230, 20, 20), "b-green": (20, 230, 20), "c-blue": (20, 20, 230), "d-red": (200, 40, 30)}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A pristine folder of the test models (tests copy what they write configs beside)."""
    folder = tmp_path_factory.mktemp("models")
    subprocess.run([sys.executable, "-c", BUILD_MODELS, str(folder)], check=True, capture_output=True)
    return folder


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("samples")
    for name, colour in COLOURS.items():
        Image.new("RGB", (20, 20), colour).save(folder / f"{name}.png")
    return folder


def copy_model(models: Path, name: str, dest: Path) -> Path:
    source = models / name
    if source.is_dir():
        subprocess.run(["cp", "-r", str(source), str(dest / name)], check=True)
    else:
        (dest / name).write_bytes(source.read_bytes())
    return dest / name


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout


def test_init_reads_the_rescaling_inside_and_writes_raw_pixels(models, tmp_path):
    model = copy_model(models, "shapes.keras", tmp_path)
    config = tmp_path / "shapes.lambdapack.json"
    config.write_text('{"input": {"scale": "0..1"}}')
    refused = run_cli("init", str(model), "--labels", "red,green,blue")
    assert refused.returncode == 2 and "already exists" in refused.stderr and "--force" in refused.stderr
    no_traceback(refused)

    proc = run_cli("init", str(model), "--labels", "red,green,blue", "--force", check=True)
    assert f"replaced {config}" in proc.stdout
    assert "input    16x16x3 (from the model's input layer)" in proc.stdout
    assert "scale    0..255 (the model rescales inside: Rescaling(1/255))" in proc.stdout
    assert "output   probabilities (the last layer's activation is softmax)" in proc.stdout
    assert "labels   red, green, blue (from --labels)" in proc.stdout
    written = json.loads(config.read_text())
    assert written == {
        "name": "shapes",
        "labels": ["red", "green", "blue"],
        "input": {"scale": "0..255", "resize": "stretch"},  # the size comes from the model at pack time
        "output": "probabilities",
    }


def test_init_takes_the_size_of_a_resizing_layer_and_detects_logits(models, tmp_path):
    model = copy_model(models, "resizes.keras", tmp_path)
    proc = run_cli("init", str(model), check=True)
    assert (
        "input    32x32x3 (the model resizes inside: Resizing(32, 32); its input takes any size)"
        in proc.stdout
    )
    assert "output   logits (no softmax or sigmoid at its end" in proc.stdout
    assert "no labels given: wrote 0..2" in proc.stderr
    written = json.loads((tmp_path / "resizes.lambdapack.json").read_text())
    assert written["input"] == {"height": 32, "width": 32, "scale": "0..255", "resize": "stretch"}
    assert written["output"] == "logits" and written["labels"] == ["0", "1", "2"]


def test_free_size_model_init_needs_size_and_pack_says_how_then_works(models, samples, tmp_path, cache_dir):
    model = copy_model(models, "free.keras", tmp_path)
    config = tmp_path / "free.lambdapack.json"

    failed = run_cli("init", str(model))
    assert failed.returncode == 2 and "takes images of any size" in failed.stderr
    assert "--size HxW" in failed.stderr and not config.exists()
    no_traceback(failed)

    # Today's behaviour was a 1x1 input; now pack refuses and says how to give a size.
    out = tmp_path / "dist"
    refused = run_cli(
        "pack", str(model), "--samples", str(samples), "--labels", "red,green,blue", "--out", str(out),
        "--python", "3.11",
    )  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    assert "error (model): free.keras takes images of any size (its input is None x None x 3)" in " ".join(
        refused.stderr.split()
    )
    assert f"lambdapack init {model} --size HxW" in " ".join(refused.stderr.split())
    no_traceback(refused)

    init = run_cli("init", str(model), "--size", "24x24", "--labels", "red,green,blue", check=True)
    assert "input    24x24x3 (from --size; the model's input takes any size)" in init.stdout
    packed = run_cli(
        "pack", str(model), "--samples", str(samples), "--out", str(out), "--python", "3.11", "--json",
        cache=cache_dir, check=True,
    )  # fmt: skip
    assert f"keras -> model.tflite; config {config}" in " ".join(packed.stderr.split())
    report = json.loads(packed.stdout)
    assert report["model"]["config"] == str(config)
    assert report["model"]["input"]["height"] == 24 and report["smoke"]["images"] == len(COLOURS)
    # The zip's own handler classifies the colours: the model was converted at 24x24.
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(out / "function.zip") as archive:
        archive.extractall(folder, [n for n in archive.namelist() if n.startswith("model/")])
    code = (
        "import json, sys; from pathlib import Path\n"
        "from lambdapack.handler.lambdapack_handler.loader import load_classifier\n"
        "c = load_classifier({'MODEL_DIR': sys.argv[1]})\n"
        "images = sorted(Path(sys.argv[2]).glob('*.png'))\n"
        "print(json.dumps([c.classify(p.read_bytes(), 1).top1 for p in images]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder / "model"), str(samples)], capture_output=True, text=True
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["red", "green", "blue", "red"], proc.stderr


def test_wrong_scale_fails_the_pack_and_names_the_right_one(models, samples, tmp_path, cache_dir):
    model = copy_model(models, "shapes.keras", tmp_path)
    # A config with scale 0..1 feeds a model that rescales inside images 255 times too dark.
    (tmp_path / "shapes.lambdapack.json").write_text(json.dumps({"input": {"scale": "0..1"}}))
    proc = run_cli(
        "pack",
        str(model),
        "--samples",
        str(samples),
        "--out",
        str(tmp_path / "d"),
        "--python",
        "3.11",
        cache=cache_dir,
    )
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2, proc.stderr  # a config problem
    assert "all 4 sample images get the same answer ('0') with input scale 0..1" in message
    assert "3 different answers with scale 0..255" in message
    assert 'set "input": {"scale": "0..255"}' in message and "lambdapack init" in message
    no_traceback(proc)
    assert not (tmp_path / "d" / "function.zip").exists()


def test_the_right_scale_passes_the_guard(models, samples, tmp_path):
    model = copy_model(models, "shapes.keras", tmp_path)
    config = tmp_path / "shapes.keras.lambdapack.json"  # the other spelling is found too
    config.write_text(json.dumps({"labels": ["red", "green", "blue"], "input": {"scale": "0..255"}}))
    result = prepare_model(model, tmp_path / "out", tmp_path / "cache", samples=sorted(samples.glob("*.png")))
    assert result.config_path == config and result.as_dict(0)["config"] == str(config)
    probe = result.check["preprocessing_probe"]
    assert probe["scale"] == "0..255" and probe["distinct_top1"] == 3
    assert result.comparison["top1_agreement"] == 1.0
    # A size the model does not take is the config's mistake, said as such.
    config.write_text(json.dumps({"input": {"scale": "0..255", "height": 20, "width": 20}}))
    with pytest.raises(InputError, match="input size 20x20 is not the model's 16x16"):
        prepare_model(model, tmp_path / "out2", tmp_path / "cache")


def test_init_on_h5_saved_model_and_tflite(models, tmp_path):
    grey = run_cli("init", str(copy_model(models, "grey.h5", tmp_path)), check=True)
    assert "input    8x8x1 (from the model's input layer)" in grey.stdout
    assert "output   probabilities (the model ends in a Softmax layer)" in grey.stdout
    assert "scale    0..1 (the default: no Rescaling layer inside the model)" in grey.stdout
    assert json.loads((tmp_path / "grey.lambdapack.json").read_text())["input"]["scale"] == "0..1"

    saved = run_cli("init", str(copy_model(models, "shapes_saved", tmp_path)), check=True)
    assert "input    16x16x3 (from the SavedModel's serving_default signature)" in saved.stdout
    assert "output   probabilities (its outputs sum to 1 on 9 random inputs)" in saved.stdout
    assert "a SavedModel keeps no Keras layers" in saved.stdout
    assert (tmp_path / "shapes_saved.lambdapack.json").exists()

    lite = run_cli(
        "init", str(copy_model(models, "shapes.tflite", tmp_path)), "--labels", "r,g,b", check=True
    )
    assert "input    16x16x3 (from the model's input tensor)" in lite.stdout
    assert "classes  3 (from the model's output)" in lite.stdout
    wrong = run_cli("init", str(tmp_path / "shapes.tflite"), "--labels", "r,g", "--force")
    assert wrong.returncode == 2 and "2 labels given (--labels), the model has 3 classes" in wrong.stderr


def test_without_a_config_pack_reads_the_preprocessing_from_the_model(models, samples, tmp_path, cache_dir):
    """No init, no config, no samples: the scale comes from the Rescaling layer inside, not a
    default that would make every image the same class (what a new user hit). The labels must
    be given: without them (and no labelled samples) pack refuses to ship class numbers."""
    model = copy_model(models, "shapes.keras", tmp_path)
    numbers = run_cli("pack", str(model), "--out", str(tmp_path / "d"), "--python", "3.11", cache=cache_dir)
    assert numbers.returncode == 2 and "the zip would answer with class numbers" in numbers.stderr
    assert f"Run lambdapack init {model} --labels a,b,c" in " ".join(numbers.stderr.split())
    no_traceback(numbers)
    labels = ("--labels", "red,green,blue")
    proc = run_cli(
        "pack",
        str(model),
        *labels,
        "--out",
        str(tmp_path / "d"),
        "--python",
        "3.11",
        "--json",
        cache=cache_dir,
    )
    assert proc.returncode == 0, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "no config beside the model: read from the model itself" in message and "scale 0..255" in message
    report = json.loads(proc.stdout)
    assert {"field": "scale", "value": "0..255"}.items() <= next(
        f for f in report["model"]["inferred"] if f["field"] == "scale"
    ).items()
    with zipfile.ZipFile(tmp_path / "d" / "function.zip") as archive:
        packed_config = json.loads(archive.read("model/config.json"))
    assert packed_config["input"]["scale"] == "0..255" and packed_config["labels"] == ["red", "green", "blue"]

    # The same model again: what the inspection found is kept by the model's content, so the
    # second pack starts no TensorFlow (here, one that cannot be imported would fail it).
    broken = tmp_path / "no-tensorflow"
    broken.mkdir()
    (broken / "tensorflow.py").write_text("raise ImportError('TensorFlow was imported')\n")
    again = run_cli(
        "pack", str(model), *labels, "--out", str(tmp_path / "d2"), "--python", "3.11", cache=cache_dir,
        env={"PYTHONPATH": str(broken)},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "scale 0..255" in " ".join(again.stderr.split())
    edited = tmp_path / "edited"
    edited.mkdir()
    (edited / "shapes.keras").write_bytes(model.read_bytes() + b"\0")  # other content: inspected again
    fails = run_cli(
        "pack",
        str(edited / "shapes.keras"),
        *labels,
        "--out",
        str(tmp_path / "d3"),
        "--python",
        "3.11",
        cache=cache_dir,
        env={"PYTHONPATH": str(broken)},
    )
    assert fails.returncode == 4 and "inspecting a Keras or SavedModel model needs TensorFlow" in fails.stderr
