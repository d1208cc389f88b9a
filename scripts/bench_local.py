"""Benchmark the local Lambda path against a sequential loop, in one run.

1. Baseline: the packed handler in ONE process, classifying the images one
   after another (the "one server, one by one" way), reading from and writing
   to the same local S3.
2. The local path with N=1 and N=2 concurrent functions: upload under the
   wired prefix, S3 notifications invoke the deployed zip in the local runtime;
   from the first upload to the last result.
3. Cold start of the sample zip and of a MobileNetV2-sized LiteRT zip under the
   real runtime client: from process start to the first response.

Prints images per second, speedup against the baseline, cold starts,
invocation latency percentiles, and the local path's overhead per image: wall
time against the loop, and CPU time per image in each process (the loop's one;
the functions, moto's server and the local AWS itself, which also uploads).
Both zips target this machine's Python (the host path), as the loop runs in it:
scripts/bench_handler.py packs them (python3.11) into build/bench/. Usage:
    python scripts/bench_local.py [--images 1000] [--zip build/bench/dist-digits/function.zip]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.wire import WireSettings, wire
from lambdapack.local.lambda_runtime import run_beside_runtime_boto3, runtime_boto3, runtime_interface_client
from lambdapack.local.localaws import LocalAWS
from lambdapack.local.sandbox import FunctionSpec, Sandbox
from lambdapack.resources import default_cache_dir

SEQUENTIAL = """
import json, sys, time
task, boto3_dir, keys_path = sys.argv[1:4]
sys.path[:0] = [task, boto3_dir]
import index
keys = json.load(open(keys_path))
began = time.perf_counter()
for key in keys:
    index.handler({"bucket": "bench", "key": key}, None)
print(json.dumps({"seconds": time.perf_counter() - began}))
"""


THREADS = {"INFERENCE_THREADS": "1"}  # one core per function, as on a 1,769 MB Lambda


def digit_images(count: int) -> list[tuple[str, bytes]]:
    heldout = sorted((ROOT / "build" / "sample" / "heldout").glob("*.png"))
    return [
        (f"incoming/{n:04d}-{heldout[n % len(heldout)].name}", heldout[n % len(heldout)].read_bytes())
        for n in range(count)
    ]


def photo_images(count: int) -> list[tuple[str, bytes]]:
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_handler import photo

    photos = [photo(seed) for seed in range(20)]
    return [(f"incoming/photo-{n:04d}.jpg", photos[n % len(photos)]) for n in range(count)]


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def finished_children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[int(fraction * (len(ordered) - 1))]


def sequential(zip_path: Path, items, cache: Path) -> dict:
    with LocalAWS(cache, concurrency=1) as local:
        s3 = local.client("s3")
        s3.create_bucket(Bucket="bench")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: s3.put_object(Bucket="bench", Key=item[0], Body=item[1]), items))
        with tempfile.TemporaryDirectory() as work:
            task = Path(work) / "task"
            zipfile.ZipFile(zip_path).extractall(task)
            (Path(work) / "keys.json").write_text(json.dumps([key for key, _ in items]))
            env = {**local.client_environment(), **THREADS}
            keys_path = str(Path(work) / "keys.json")
            moto_before, children_before = process_cpu_s(local.moto.pid), finished_children_cpu_s()
            proc = run_beside_runtime_boto3(SEQUENTIAL, task, cache, [keys_path], env)
            proc.check_returncode()
            cpu = {
                "function": finished_children_cpu_s() - children_before,  # the loop's process, start to end
                "moto": process_cpu_s(local.moto.pid) - moto_before,
                "local AWS": 0.0,
            }
    seconds = json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]
    return {
        "cpu_ms": {part: value * 1000 / len(items) for part, value in cpu.items()},
        "mode": "sequential loop, 1 process",
        "seconds": seconds,
        "rate": len(items) / seconds,
        "cold": 1,
        "p50": None,
        "p95": None,
    }


def local_path(zip_path: Path, items, cache: Path, concurrency: int) -> dict:
    with LocalAWS(cache, concurrency=concurrency) as local:
        os.environ.update(local.client_environment())
        s3 = local.client("s3")
        s3.create_bucket(Bucket="bench")
        deploy(
            DeploySettings(zip_path, "bench", bucket="bench", prefix="incoming/"),
            AWSClient(),
            log=lambda _: 0,
        )
        wire(WireSettings("bench", "bench", prefix="incoming/"), AWSClient())
        moto_before, own_before = process_cpu_s(local.moto.pid), own_cpu_s()
        began = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda item: s3.put_object(Bucket="bench", Key=item[0], Body=item[1]), items))
        local.wait_idle(3600)
        seconds = time.perf_counter() - began
        cpu = {
            # each function's process from its start (cold start included) to now
            "function": sum(process_cpu_s(box.process.pid) for box in local.dispatcher.sandboxes()),
            "moto": process_cpu_s(local.moto.pid) - moto_before,
            "local AWS": own_cpu_s() - own_before,  # dispatcher, runtime API, and these uploads
        }
        stats = local.dispatcher.stats
        durations = [r.duration_ms for r in stats.records if r.ok]
        assert stats.invocations == len(items) and not stats.failures, "some invocations failed"
    return {
        "cpu_ms": {part: value * 1000 / len(items) for part, value in cpu.items()},
        "mode": f"local Lambda path, N={concurrency}",
        "seconds": seconds,
        "rate": len(items) / seconds,
        "cold": stats.cold_starts,
        "p50": statistics.median(durations),
        "p95": percentile(durations, 0.95),
    }


def cold_start(zip_path: Path, cache: Path, image: bytes, runs: int = 3) -> float:
    """Median seconds from process start to the first response (one real classification)."""
    times = []
    with LocalAWS(cache, concurrency=1) as local:
        s3 = local.client("s3")
        s3.create_bucket(Bucket="cold")
        s3.put_object(Bucket="cold", Key="image.jpg", Body=image)
        runtime = [runtime_boto3(cache), runtime_interface_client(cache)]
        for run in range(runs):
            with tempfile.TemporaryDirectory() as work:
                task = Path(work) / "task"
                zipfile.ZipFile(zip_path).extractall(task)
                box = Sandbox(
                    FunctionSpec("cold", task), runtime, Path(work) / f"sb{run}", local.client_environment()
                )
                began = time.perf_counter()
                result = box.invoke(json.dumps({"bucket": "cold", "key": "image.jpg"}).encode())
                times.append(time.perf_counter() - began)
                box.stop()
                assert result.ok, result.error
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--zip", type=Path, default=ROOT / "build" / "bench" / "dist-digits" / "function.zip")
    parser.add_argument(
        "--mobilenet-zip", type=Path, default=ROOT / "build" / "bench" / "dist-mobilenetv2" / "function.zip"
    )
    args = parser.parse_args()
    cache = default_cache_dir()
    workloads = []
    for name, zip_path, images in (
        ("digits CNN, 64x64 PNG", args.zip, digit_images),
        ("MobileNetV2 224, 640x480 JPEG", args.mobilenet_zip, photo_images),
    ):
        if zip_path.exists():
            workloads.append((name, zip_path, images(args.images)))
        else:
            print(f"{name}: no zip at {zip_path}: run scripts/bench_handler.py first (it packs both)")
    print(
        f"\nlocal path benchmark — {args.images} images per workload, {os.cpu_count()} cores, "
        "1 inference thread per function\n"
    )
    print(
        "workload | mode | seconds | images/s | speedup vs sequential | overhead per image | "
        "CPU per image: functions + moto + local AWS | cold starts | invocation p50 | invocation p95"
    )
    print("--- | --- | --- | --- | --- | --- | --- | --- | --- | ---")
    for name, zip_path, items in workloads:
        rows = [sequential(zip_path, items, cache)]
        rows += [local_path(zip_path, items, cache, n) for n in (1, 2)]
        base = rows[0]
        for row in rows:
            p50 = f"{row['p50']:.1f} ms" if row["p50"] is not None else "—"
            p95 = f"{row['p95']:.1f} ms" if row["p95"] is not None else "—"
            overhead = (row["seconds"] - base["seconds"]) * 1000 / len(items)
            cpu = row["cpu_ms"]
            print(
                f"{name} | {row['mode']} | {row['seconds']:.1f} | {row['rate']:.1f} | "
                f"{row['rate'] / base['rate']:.2f}x | {overhead:+.1f} ms | "
                f"{cpu['function']:.1f} + {cpu['moto']:.1f} + {cpu['local AWS']:.1f} = "
                f"{sum(cpu.values()):.1f} ms | {row['cold']} | {p50} | {p95}",
                flush=True,
            )
    photo = (ROOT / "build" / "sample" / "samples").glob("*.png").__next__().read_bytes()
    print("\ncold start, process start to first response (median of 3, real runtime client):")
    print(f"  sample digits zip: {cold_start(args.zip, cache, photo):.3f} s")
    if args.mobilenet_zip.exists():
        print(f"  MobileNetV2 224 LiteRT zip: {cold_start(args.mobilenet_zip, cache, photo):.3f} s")
    else:
        print(f"  MobileNetV2 zip not found at {args.mobilenet_zip}: run scripts/bench_handler.py first")


if __name__ == "__main__":
    main()
