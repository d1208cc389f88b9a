"""Model + config + image decoding: ``Classifier.classify(bytes)``.

Built once per container (``loader.load_classifier``, called by ``index.py``)
and reused by warm invocations.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .config import SCALES, ModelConfig
from .contract import MAX_DECODE_BYTES, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS
from .imaging import Limits, decode, to_array
from .inference import Backend, to_probabilities, top_k


@dataclass
class Prediction:
    labels: list[dict]
    decode_ms: float
    inference_ms: float

    @property
    def top1(self) -> str:
        return self.labels[0]["label"]


class Classifier:
    def __init__(self, config: ModelConfig, backend: Backend, model_sha256: str, limits: Limits):
        self.config = config
        self.backend = backend
        self.model_sha256 = model_sha256
        self.limits = limits

    def classify(self, data: bytes, k: int = 5) -> Prediction:
        spec = self.config.input
        start = time.perf_counter()
        image = decode(data, spec, self.limits)
        load_pixels = getattr(self.backend, "load_pixels", None)
        if load_pixels is not None:  # LiteRT: scaled straight into the interpreter's input
            load_pixels(np.asarray(image), SCALES[spec.scale])
            decoded = time.perf_counter()
            scores = self.backend.run()
        else:
            batch = to_array(image, spec)
            decoded = time.perf_counter()
            scores = self.backend.predict(batch)
        done = time.perf_counter()
        probabilities = to_probabilities(scores, self.config.output)
        labels = [
            {"label": self.config.label(index), "index": index, "score": round(score, 6)}
            for index, score in top_k(probabilities, k)
        ]
        return Prediction(labels, (decoded - start) * 1000, (done - decoded) * 1000)


def limits_from_env(environ: Mapping[str, str] = os.environ) -> Limits:
    defaults = Limits()
    decode_budget = environ.get(MAX_DECODE_BYTES)
    return Limits(
        max_bytes=int(environ.get(MAX_IMAGE_BYTES, defaults.max_bytes)),
        max_pixels=int(environ.get(MAX_IMAGE_PIXELS, defaults.max_pixels)),
        max_decode_bytes=int(decode_budget) if decode_budget else None,
    )
