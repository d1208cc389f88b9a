"""Issue 21's user path, with real TensorFlow and a real pack: a model that expects inputs in
-1..1 from a preprocessing step outside it (as MobileNetV2's ``preprocess_input``), labelled
samples in class folders, no --labels.

The model is trained here in seconds on synthetic images (nothing downloaded): three classes
of noisy images, dark, mid and bright grey, fed to it scaled to -1..1. Fed 0..1 instead, dark
looks mid and mid looks bright: the scale decides its accuracy, as it did for the user."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

pytestmark = [pytest.mark.functional, pytest.mark.tensorflow]  # init and pack run the Keras model

LEVELS = {"bright": 215, "dark": 40, "mid": 128}  # the class folders; sorted, the output order

TRAIN = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from pathlib import Path
import numpy as np, keras
keras.utils.set_random_seed(7)
rng = np.random.default_rng(7)
levels = [215, 40, 128]  # bright, dark, mid: the sorted folder names' order
x = np.array([np.clip(rng.normal(level, 25, (16, 16, 3)), 0, 255) / 127.5 - 1.0
              for level in levels for _ in range(100)], "float32")
y = np.repeat(np.arange(3), 100)
L = keras.layers
model = keras.Sequential([keras.Input((16, 16, 3)), L.Conv2D(4, 3, activation="relu"),
                          L.GlobalAveragePooling2D(), L.Dense(3)])  # logits, no softmax
model.compile(optimizer=keras.optimizers.Adam(0.05),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, y, epochs=30, batch_size=32, verbose=0)
model.save(Path(sys.argv[1]) / "levels.h5")
"""

# The Keras model and the zip's own handler (its model/ folder) on the same images.
BOTH = """
import json, sys
from pathlib import Path
import numpy as np, keras
from lambdapack.handler.lambdapack_handler.config import InputSpec
from lambdapack.handler.lambdapack_handler.imaging import preprocess
from lambdapack.handler.lambdapack_handler.loader import load_classifier
model = keras.models.load_model(sys.argv[1], compile=False)
labels = sorted(["bright", "dark", "mid"])
spec = InputSpec(16, 16, 3, scale="-1..1")
zipped = load_classifier({"MODEL_DIR": sys.argv[2]})
images = sorted(Path(sys.argv[3]).glob("*/*.png"))
keras_answers = [labels[int(np.argmax(model(preprocess(p.read_bytes(), spec))))] for p in images]
zip_answers = [zipped.classify(p.read_bytes(), 1).top1 for p in images]
print(json.dumps({"truth": [p.parent.name for p in images], "keras": keras_answers, "zip": zip_answers}))
"""


def class_folders(root: Path, per_class: int, seed: int) -> Path:
    """Noisy grey images, 20x20 (the model takes 16x16: the handler resizes), per class."""
    rng = np.random.default_rng(seed)
    for name, level in LEVELS.items():
        (root / name).mkdir(parents=True)
        for index in range(per_class):
            pixels = np.clip(rng.normal(level, 25, (20, 20, 3)), 0, 255).astype("uint8")
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


@pytest.fixture(scope="module")
def levels(tmp_path_factory) -> Path:
    """A folder with the trained model (levels.h5), samples/ and heldout/ in class folders."""
    folder = tmp_path_factory.mktemp("levels")
    subprocess.run([sys.executable, "-c", TRAIN, str(folder)], check=True, capture_output=True)
    class_folders(folder / "samples", 8, seed=1)
    class_folders(folder / "heldout", 10, seed=2)
    return folder


def model_copy(levels: Path, dest: Path) -> Path:
    (dest / "levels.h5").write_bytes((levels / "levels.h5").read_bytes())
    return dest / "levels.h5"


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_init_measures_minus_one_to_one_and_the_labels_and_the_zip_answers_as_keras(
    levels, tmp_path, cache_dir
):
    model = model_copy(levels, tmp_path)
    samples = levels / "samples"
    init = run_cli("init", str(model), "--samples", str(samples), check=True)
    written = json.loads((tmp_path / "levels.lambdapack.json").read_text())
    assert written["labels"] == ["bright", "dark", "mid"] and written["input"]["scale"] == "-1..1"
    assert written["output"] == "logits"
    assert f"labels   bright, dark, mid (from the class folders of {samples}, sorted" in init.stdout
    assert "scale    -1..1 (measured: top-1 " in init.stdout
    # The table: every candidate with its accuracy, the one written marked.
    rows = [line.split() for line in init.stdout.splitlines() if line.strip().endswith(("%)", "<- written"))]
    assert len(rows) == 6 and rows[0][:2] == ["-1..1", "stretch"] and rows[0][-1] == "written"
    correct = {(row[0], row[1]): int(row[2].split("/")[0]) for row in rows}
    assert correct[("-1..1", "stretch")] > correct[("0..1", "stretch")]
    assert "tie between stretch and center-crop" in init.stdout  # square images: the same inputs

    out = tmp_path / "dist"
    packed = run_cli(
        "pack", str(model), "--samples", str(samples), "--out", str(out), "--python", "3.11", "--json",
        cache=cache_dir, check=True,
    )  # fmt: skip
    accuracy = json.loads(packed.stdout)["smoke"]["accuracy"]
    assert accuracy["images"] == 24 and accuracy["zip_correct"] == accuracy["original_correct"]
    assert accuracy["zip_from"].startswith("the smoke run in")
    assert "labelled top-1: zip " in one_line(packed.stderr)

    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(out / "function.zip") as archive:
        archive.extractall(unzipped, [n for n in archive.namelist() if n.startswith("model/")])
    proc = subprocess.run(
        [sys.executable, "-c", BOTH, str(model), str(unzipped / "model"), str(levels / "heldout")],
        capture_output=True,
        text=True,
    )
    answers = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answers["zip"] == answers["keras"]  # the zip's top-1 on held-out images is Keras's
    right = sum(a == t for a, t in zip(answers["zip"], answers["truth"], strict=True))
    assert right >= 27, answers  # and the model is right on them (30 held-out images)


def test_a_forced_wrong_scale_fails_the_pack_and_names_the_right_one(levels, tmp_path, cache_dir):
    model = model_copy(levels, tmp_path)
    samples = levels / "samples"
    init = run_cli("init", str(model), "--samples", str(samples), "--scale", "0..1", check=True)
    assert "scale    0..1 (from --scale)" in init.stdout
    assert "--scale -1..1 fixes it" in one_line(init.stderr)
    out = tmp_path / "dist"
    proc = run_cli("pack", str(model), "--samples", str(samples), "--out", str(out), cache=cache_dir)
    message = one_line(proc.stderr)
    assert proc.returncode == 13, proc.stderr
    assert "with the configured preprocessing (0..1 stretch), but" in message
    assert "with -1..1 stretch: the preprocessing is probably wrong" in message
    assert f"lambdapack init {model} --force --samples {samples} --scale -1..1" in message
    assert "Traceback" not in proc.stderr and not (out / "function.zip").exists()


def test_without_init_labelled_samples_give_the_labels_and_catch_the_scale(levels, tmp_path, cache_dir):
    model = model_copy(levels, tmp_path)
    flat = tmp_path / "flat"
    flat.mkdir()
    for image in sorted((levels / "samples").glob("*/0.png")):
        (flat / f"{image.parent.name}.png").write_bytes(image.read_bytes())
    refused = run_cli(
        "pack", str(model), "--samples", str(flat), "--out", str(tmp_path / "d"), cache=cache_dir
    )
    assert refused.returncode == 2 and "the zip would answer with class numbers" in refused.stderr
    assert "Run lambdapack init" in refused.stderr

    # Class folders give the labels; the scale read from the model (nothing inside says it: the
    # default, 0..1) is then measured against -1..1 and the pack fails, naming it.
    labelled = run_cli(
        "pack", str(model), "--samples", str(levels / "samples"), "--out", str(tmp_path / "d"),
        cache=cache_dir,
    )  # fmt: skip
    assert labelled.returncode == 13, labelled.stderr
    assert "--scale -1..1" in one_line(labelled.stderr)

    mismatch = run_cli("init", str(model), "--samples", str(levels / "samples"), "--labels", "dark,mid,light")
    assert mismatch.returncode == 2
    assert "--labels and the class folders of" in one_line(mismatch.stderr)
    assert "class folders not in --labels: bright" in one_line(mismatch.stderr)
    assert not (tmp_path / "levels.lambdapack.json").exists()
