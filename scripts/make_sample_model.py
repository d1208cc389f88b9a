"""Train the sample model: a small Keras CNN on scikit-learn's handwritten digits.

The digits (1,797 real 8x8 scans that ship inside scikit-learn; nothing is
downloaded) are upscaled to 64x64 RGB PNGs, like photos a user would upload.
Training inputs are made by the handler's own preprocessing from those PNG
bytes, so what the model learns is exactly what it is served. A stratified
20 % is held out and written as PNGs for the demo and the tests.

Writes into OUT (default build/sample):
  digits.keras               the trained model
  digits.lambdapack.json     its config: labels and input scaling
  heldout/*.png, heldout.csv the held-out test images and their labels (file,label rows, the
                             files relative to OUT: lambdapack evaluate ZIP OUT/heldout.csv)
  heldout-classes/LABEL/*.png the same images in one folder per class (lambdapack evaluate)
  samples/*.png              one held-out image per class (for pack --samples)
  metrics.json               test accuracy of the Keras model
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lambdapack.handler.lambdapack_handler.config import InputSpec
from lambdapack.handler.lambdapack_handler.imaging import preprocess

IMAGE_SIZE = 64  # what is uploaded
MODEL_SIZE = 32  # what the model sees
SEED = 0
CONFIG = {
    "name": "digits-cnn",
    "labels": [str(d) for d in range(10)],
    "input": {"scale": "0..1", "resize": "stretch"},
    "output": "probabilities",
}


def digit_png(pixels: np.ndarray) -> bytes:
    """An 8x8 scan (0..16) as a 64x64 RGB PNG."""
    grey = Image.fromarray((pixels * (255.0 / 16.0)).round().astype(np.uint8), "L")
    image = grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def build_model():
    import keras

    return keras.Sequential(
        [
            keras.Input((MODEL_SIZE, MODEL_SIZE, 1), name="image"),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.25),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="digits_cnn",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/sample"))
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()

    import keras

    keras.utils.set_random_seed(SEED)
    digits = load_digits()
    pngs = [digit_png(image) for image in digits.images]
    spec = InputSpec(height=MODEL_SIZE, width=MODEL_SIZE, channels=1, scale="0..1")
    inputs = np.concatenate([preprocess(png, spec) for png in pngs])
    labels = digits.target.astype(np.int64)
    indices = np.arange(len(pngs))
    train_idx, test_idx = train_test_split(indices, test_size=0.2, random_state=SEED, stratify=labels)

    model = build_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(
        inputs[train_idx],
        labels[train_idx],
        epochs=args.epochs,
        batch_size=32,
        verbose=0,
        validation_split=0.1,
    )
    _, accuracy = model.evaluate(inputs[test_idx], labels[test_idx], verbose=0)

    out = args.out
    heldout = out / "heldout"
    by_class = out / "heldout-classes"
    samples = out / "samples"
    for folder in (out, heldout, samples):
        folder.mkdir(parents=True, exist_ok=True)
    model.save(out / "digits.keras")
    (out / "digits.lambdapack.json").write_text(json.dumps(CONFIG, indent=2) + "\n")
    seen_classes: set[int] = set()
    with (out / "heldout.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        for index in sorted(test_idx):
            label = int(labels[index])
            name = f"digit-{index:04d}.png"
            (heldout / name).write_bytes(pngs[index])
            (by_class / str(label)).mkdir(parents=True, exist_ok=True)
            (by_class / str(label) / name).write_bytes(pngs[index])
            writer.writerow([f"{heldout.name}/{name}", label])  # relative to the CSV's folder
            if label not in seen_classes:
                seen_classes.add(label)
                (samples / name).write_bytes(pngs[index])
    metrics = {"test_accuracy": float(accuracy), "train": len(train_idx), "test": len(test_idx)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(f"sample model: test accuracy {accuracy:.3f} on {len(test_idx)} held-out digits -> {out}")


if __name__ == "__main__":
    main()
