"""Benchmark the handler per image, warm, against the raw interpreter, in one run.

Packs a MobileNetV2-sized model (architecture only, weights=None) with
lambdapack, starts the project's local AWS (moto on 127.0.0.1), uploads generated 640x480
JPEG "photos", and runs the packed zip's handler in a clean interpreter (the
task folder, a boto3 standing in for the runtime's, the standard library).
For each image, one single-record S3 event; the handler's own timings split
download, decode+resize and inference, and the rest of the call is the
result upload. In the same process, the raw ``interpreter.invoke()`` of the
same model is timed on a preprocessed input. Prints medians and the peak RSS.

Goals: handler overhead excluding S3 (decode+resize+inference) ≤ 1.5x the
raw invoke; peak RSS ≤ 128 MB (Lambda's smallest memory size).

Usage: python scripts/bench_handler.py [--images 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench_pack import make_mobilenet

from lambdapack.local.lambda_runtime import run_beside_runtime_boto3
from lambdapack.local.localaws import LocalAWS
from lambdapack.resources import default_cache_dir

CHILD = """
import json, resource, statistics, sys, time
task, boto3_dir, keys_path = sys.argv[1:4]
sys.path[:0] = [task, boto3_dir]
import index

keys = json.load(open(keys_path))
def event(key):
    return {"Records": [{"eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "photos"}, "object": {"key": key}}}]}
for key in keys[:3]:          # warm-up: first calls pay one-time costs
    index.handler(event(key), None)
rows = []
for key in keys:
    began = time.perf_counter()
    summary = index.handler(event(key), None)
    total = (time.perf_counter() - began) * 1000
    result = index.APP.s3.get_object(Bucket="photos", Key=summary["results"][0]["result_key"])
    timings = json.loads(result["Body"].read())["timings"]
    timings["total_ms"] = total
    rows.append(timings)
backend = index.CLASSIFIER.backend
interpreter = backend._interpreter
from lambdapack_handler.imaging import preprocess
data = index.APP.s3.get_object(Bucket="photos", Key=keys[0])["Body"].read()
batch = preprocess(data, index.CLASSIFIER.config.input)
backend.predict(batch)
raw = []
for _ in range(len(keys)):
    began = time.perf_counter()
    interpreter.invoke()
    raw.append((time.perf_counter() - began) * 1000)
median = lambda name: statistics.median(r[name] for r in rows)
out = {name: median(name) for name in ("download_ms", "decode_ms", "inference_ms", "total_ms")}
out["upload_ms"] = statistics.median(r["total_ms"] - r["download_ms"] - r["decode_ms"] - r["inference_ms"]
                                     for r in rows)
out["raw_invoke_ms"] = statistics.median(raw)
out["threads"] = backend.threads
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def photo(seed: int) -> bytes:
    """A 640x480 JPEG with smooth structure and noise, like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640]
    base = np.stack([(x * (1 + seed % 3)) % 256, (y * 2) % 256, (x + y) % 256], axis=-1)
    pixels = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cache = default_cache_dir()
    model = make_mobilenet(ROOT / "build" / "bench")
    out = ROOT / "build" / "bench" / "dist-mobilenetv2"
    subprocess.run(
        [sys.executable, "-m", "pack", "pack", str(model), "--out", str(out)],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    # The project's local AWS serves S3; nothing is deployed, so its dispatcher stays idle.
    with LocalAWS(cache, concurrency=1) as local:
        s3 = local.client("s3")
        s3.create_bucket(Bucket="photos")
        keys = [f"incoming/photo-{i:03d}.jpg" for i in range(args.images)]
        for number, key in enumerate(keys):
            s3.put_object(Bucket="photos", Key=key, Body=photo(number))
        with tempfile.TemporaryDirectory() as work:
            task = Path(work) / "task"
            zipfile.ZipFile(out / "function.zip").extractall(task)
            (Path(work) / "keys.json").write_text(json.dumps(keys))
            env = {"INFERENCE_THREADS": str(args.threads), **local.client_environment()}
            keys_path = str(Path(work) / "keys.json")
            proc = run_beside_runtime_boto3(CHILD, task, cache, [keys_path], env)
            proc.check_returncode()
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    overhead = result["decode_ms"] + result["inference_ms"]
    print(
        f"\nhandler benchmark — MobileNetV2 224 float32 LiteRT, {args.images} JPEG 640x480, "
        f"{result['threads']} thread(s), medians per image, warm, S3 = moto on 127.0.0.1\n"
    )
    print(
        "download (S3) | decode+resize | inference | result upload (S3) | whole call | raw invoke | "
        "(decode+inference)/raw | peak RSS"
    )
    print("--- | --- | --- | --- | --- | --- | --- | ---")
    print(
        f"{result['download_ms']:.2f} ms | {result['decode_ms']:.2f} ms | {result['inference_ms']:.2f} ms | "
        f"{result['upload_ms']:.2f} ms | {result['total_ms']:.2f} ms | {result['raw_invoke_ms']:.2f} ms | "
        f"{overhead / result['raw_invoke_ms']:.2f}x | {result['peak_rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
