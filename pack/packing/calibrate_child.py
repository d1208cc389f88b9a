"""Runs in its own process: the model's top-1 answer for each labelled sample image under
each candidate preprocessing (``calibrate.candidates()``: every input scale and resize
mode the handler implements), for ``lambdapack init`` to choose by accuracy.

Facts, not decisions: it reports answers (output indices); ``calibrate`` scores them
against the labels and chooses. The original model runs here (Keras or SavedModel in
TensorFlow; a ``.tflite`` in LiteRT), loaded as the conversion child loads it, and every
image goes through the handler's own preprocessing (``imaging.decode``/``to_array``),
so a candidate is exactly what the zip would feed the model.

Usage: ``python -m lambdapack.packing.calibrate_child REQUEST.json``; the request names the
model, its kind, the input size (height, width, channels), the images and the answer file.
``convert_child.candidate_answers`` is shared with the conversion child, which runs it on
pack's labelled samples.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lambdapack.packing.convert_child import candidate_answers, child_main, load_original


def main(request_path: str) -> int:
    return child_main(
        request_path, run, lambda request: Path(request["out"]), "measuring the preprocessing failed"
    )


def run(request: dict) -> dict:
    from lambdapack.handler.lambdapack_handler.config import InputSpec

    call = load_original(Path(request["model"]), request["kind"], request.get("allow_unsafe_ops", False))
    size = request["input"]
    spec = InputSpec(height=size["height"], width=size["width"], channels=size["channels"])
    images = [Path(image).read_bytes() for image in request["images"]]
    return {"candidates": candidate_answers(call, spec, images, request["images"])}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
