"""Benchmark the handler per image, warm, against the raw interpreter, in one run.

Packs a MobileNetV2-sized model (architecture only, weights=None) with
lambdapack, starts the project's local AWS (moto on 127.0.0.1), uploads generated 640x480
JPEG "photos", and runs the packed zip's handler in a clean interpreter (the
task folder, a boto3 standing in for the runtime's, the standard library).
For each image, one single-record S3 event; the handler's own timings split
download, decode+resize and inference, and the rest of the call is the
result upload. In the same process, the raw ``interpreter.invoke()`` of the
same model is timed on a preprocessed input. Prints medians and the peak RSS.

Then the cold start on the host path: the zip under the real runtime client
(awslambdaric, this machine's Python 3.11, the local runtime API), fresh execution
environments, time from starting the function to its first response (one S3
image classified), split into the runtime client's own start, the handler's
imports, S3 client and model load (``index.INIT_MS``, logged as ``cold_start``)
and the first invocation. Median of --cold-runs.

Goals (issue 15): (decode+resize+inference) ≤ 1.3x the raw invoke; peak RSS
≤ 128 MB (Lambda's smallest memory size); cold start ≤ 0.25 s to first response.
The last line is ``handler: overhead X.XXx raw invoke, peak RSS N MB``.

Usage: python scripts/bench_handler.py [--images 40] [--threads 1] [--cold-runs 3]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from bench_pack import make_mobilenet

from lambdapack.local.lambda_runtime import run_beside_runtime_boto3, runtime_boto3, runtime_interface_client
from lambdapack.local.localaws import LocalAWS
from lambdapack.local.s3io import s3_event
from lambdapack.local.sandbox import FunctionSpec, Sandbox
from lambdapack.resources import default_cache_dir

CHILD = """
import json, statistics, sys, time
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
# VmHWM, not getrusage's ru_maxrss: Linux carries the parent's peak across fork+exec into
# ru_maxrss, so it reported the benchmark's own process (moto, boto3) instead of the handler.
out["peak_rss_mb"] = next(int(line.split()[1]) for line in open("/proc/self/status")
                          if line.startswith("VmHWM:")) / 1024
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
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()
    cache = default_cache_dir()
    model = make_mobilenet(ROOT / "build" / "bench")
    out = ROOT / "build" / "bench" / "dist-mobilenetv2"
    subprocess.run(
        [
            *(sys.executable, "-m", "pack", "pack", str(model), "--out", str(out)),
            *("--python", "3.11", "--handler-dir", str(ROOT / "handler")),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    # The project's local AWS serves S3; nothing is deployed, so its dispatcher stays idle.
    with LocalAWS(cache, concurrency=1) as local:
        cold = None
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
            if proc.returncode:
                sys.exit(f"the handler run failed:\n{proc.stderr[-4000:]}")
            cold = cold_starts(out / "function.zip", keys[0], args.cold_runs, cache, env)
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
    print(
        f"\ncold start, host path (awslambdaric, this machine's Python), median of {args.cold_runs}: "
        f"first response {cold['first_response_ms']:.0f} ms = runtime client {cold['runtime_client_ms']:.0f} "
        f"+ imports {cold['imports_ms']:.0f} + S3 client {cold['s3_client_ms']:.0f} "
        f"+ model load {cold['model_load_ms']:.0f} + first invocation {cold['first_invocation_ms']:.0f} ms "
        f"(decode {cold['decode_ms']:.1f}, inference {cold['inference_ms']:.1f}, S3 and the rest "
        f"{cold['first_invocation_ms'] - cold['decode_ms'] - cold['inference_ms']:.0f}); "
        f"init {cold['init_ms']:.0f} ms; peak memory {cold['max_memory_mb']:.0f} MB"
    )
    peak = max(result["peak_rss_mb"], cold["max_memory_mb"])
    print(f"handler: overhead {overhead / result['raw_invoke_ms']:.2f}x raw invoke, peak RSS {peak:.0f} MB")


def cold_starts(zip_path: Path, key: str, runs: int, cache: Path, env: dict[str, str]) -> dict:
    """Medians over ``runs`` fresh execution environments of the zip under the runtime client."""
    paths = [runtime_boto3(cache), runtime_interface_client(cache)]
    rows = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-cold-") as work:
            task = Path(work) / "task"
            zipfile.ZipFile(zip_path).extractall(task)
            spec = FunctionSpec("bench", task, runtime="python3.11", memory=1024, timeout=60)
            sandbox = Sandbox(spec, paths, Path(work) / "sandbox", env)
            began = time.perf_counter()
            result = sandbox.invoke(json.dumps(s3_event("photos", [key])).encode())
            first = (time.perf_counter() - began) * 1000
            logs = sandbox.log_path.read_text()
            sandbox.stop()
            if not result.ok:
                sys.exit(f"the cold start failed: {result.error}\n{logs[-4000:]}")
            records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
            init = next(r["cold_start"] for r in records if "cold_start" in r)
            timings = next(r for r in records if r.get("outcome") == "ok")
            rows.append(
                {
                    "first_response_ms": first,
                    "init_ms": result.init_ms or 0.0,
                    "runtime_client_ms": (result.init_ms or 0.0) - init["total_ms"],
                    "imports_ms": init["imports_ms"] + init["staged_ms"],
                    "s3_client_ms": init["s3_client_ms"],
                    "model_load_ms": init["model_load_ms"],
                    "first_invocation_ms": first - (result.init_ms or 0.0),
                    "decode_ms": timings["decode_ms"],
                    "inference_ms": timings["inference_ms"],
                    "max_memory_mb": result.max_memory_mb or 0,
                }
            )
    return {name: statistics.median(row[name] for row in rows) for name in rows[0]}


if __name__ == "__main__":
    main()
