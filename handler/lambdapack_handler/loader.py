"""Build the container's Classifier from its environment, once, at init.

The model config always comes from the zip (``model/config.json``); its
``backend`` picks LiteRT (a ``.tflite`` file) or TensorFlow (a SavedModel
folder). The model comes from the zip too, or, for a ``.tflite``, from S3
when ``MODEL_BUCKET`` and ``MODEL_KEY`` are set (``MODEL_SHA256`` pins and
verifies it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .classifier import Classifier, limits_from_env
from .clients import s3_client
from .config import load_config
from .contract import (
    INFERENCE_THREADS,
    LAMBDA_TASK_ROOT,
    MODEL_BUCKET,
    MODEL_DIR,
    MODEL_DIR_VARIABLE,
    MODEL_KEY,
    MODEL_SHA256,
)
from .imaging import open_formats
from .inference import BACKENDS
from .modelstore import fetch_model, sha256_file


def default_model_dir(environ: Mapping[str, str] = os.environ) -> Path:
    configured = environ.get(MODEL_DIR_VARIABLE)
    if configured:
        return Path(configured)
    task_root = environ.get(LAMBDA_TASK_ROOT) or Path(__file__).resolve().parent.parent
    return Path(task_root) / MODEL_DIR


def load_classifier(environ: Mapping[str, str] = os.environ, s3=None) -> Classifier:
    model_dir = default_model_dir(environ)
    config = load_config(model_dir / "config.json")
    bucket, key = environ.get(MODEL_BUCKET), environ.get(MODEL_KEY)
    if bucket and key:
        s3 = s3 or s3_client()
        fetched = fetch_model(s3, bucket, key, environ.get(MODEL_SHA256) or None)
        path, digest = fetched.path, fetched.sha256
    else:
        path = model_dir / config.model_file
        digest = config.sha256 or (sha256_file(path) if path.is_file() else "")
    threads = int(environ.get(INFERENCE_THREADS, "0")) or None
    backend = BACKENDS[config.backend](str(path), threads=threads)
    open_formats()  # Pillow's image plugins, imported now (init) rather than by the first image
    return Classifier(config, backend, digest, limits_from_env(environ))
