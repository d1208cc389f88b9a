"""Cold start in the local runtime: this machine's Python against a container, in one run.

Packs the sample for python3.11 (this machine's Python) and python3.13 (the default
target), then measures, in fresh execution environments, the time from starting the
function to its first response (one real classification of an S3 image from a
local S3 on 127.0.0.1) and the init duration the runtime reports:
  - the python3.11 zip in this machine's Python (the fast path),
  - the same zip in a python3.11 container (lambdapack-base:bookworm): the container's cost,
  - the python3.13 zip in its container (lambdapack-base:trixie): the default target.
Prints medians of --runs and the ratios against the fast path.

Usage: python scripts/bench_cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

from lambdapack.local.lambda_runtime import runtime_boto3, runtime_interface_client
from lambdapack.local.s3event import s3_event
from lambdapack.local.sandbox import FunctionSpec, Sandbox
from lambdapack.packing.interpreter import TargetPython
from lambdapack.packing.target import Target
from lambdapack.resources import default_cache_dir

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "build" / "sample"
OUT = ROOT / "build" / "bench-cold"


def pack(python: str) -> Path:
    out = OUT / f"python{python}"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "lambdapack",
            "pack",
            str(SAMPLE / "digits.keras"),
            "--samples",
            str(SAMPLE / "samples"),
            "--python",
            python,
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out / "function.zip"


def cold_starts(
    zip_path: Path, python: TargetPython | None, target: Target, runs: int, endpoint: str
) -> dict:
    cache = default_cache_dir()
    if python is None:
        paths = [runtime_boto3(cache), runtime_interface_client(cache)]
    else:
        paths = [runtime_boto3(cache, target), runtime_interface_client(cache, target)]
    first, init = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-cold-") as work:
            task = Path(work) / "task"
            zipfile.ZipFile(zip_path).extractall(task)
            spec = FunctionSpec("bench", task, runtime=target.runtime, memory=1024, timeout=60)
            passed = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
            sandbox = Sandbox(spec, paths, Path(work) / "sandbox", passed, python)
            began = time.perf_counter()
            result = sandbox.invoke(json.dumps(s3_event("bench", ["in/digit.png"])).encode())
            first.append(time.perf_counter() - began)
            sandbox.stop()
            assert result.ok, result.error
            init.append((result.init_ms or 0) / 1000)
    return {"first_response_s": statistics.median(first), "init_s": statistics.median(init)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    s3.create_bucket(Bucket="bench")
    s3.put_object(
        Bucket="bench", Key="in/digit.png", Body=(SAMPLE / "heldout" / "digit-0021.png").read_bytes()
    )
    os.environ.setdefault("AWS_REGION", "us-east-1")
    try:
        zip311, zip313 = pack("3.11"), pack("3.13")
        t311, t313 = Target("3.11", "x86_64"), Target("3.13", "x86_64")
        rows = [
            ("python3.11 zip, this machine's Python", cold_starts(zip311, None, t311, args.runs, endpoint)),
            (
                "python3.11 zip, container (bookworm)",
                cold_starts(
                    zip311,
                    TargetPython("3.11", "x86_64", "lambdapack-base:bookworm"),
                    t311,
                    args.runs,
                    endpoint,
                ),
            ),
            (
                "python3.13 zip, container (trixie), the default",
                cold_starts(
                    zip313,
                    TargetPython("3.13", "x86_64", "lambdapack-base:trixie"),
                    t313,
                    args.runs,
                    endpoint,
                ),
            ),
        ]
    finally:
        server.stop()
    base = rows[0][1]["first_response_s"]
    print(f"cold start to first response, median of {args.runs}, {os.cpu_count()} cores, 1,024 MB")
    print("| function | first response | init (runtime's figure) | vs this machine's Python |")
    print("| --- | --- | --- | --- |")
    for name, row in rows:
        print(
            f"| {name} | {row['first_response_s']:.2f} s | {row['init_s']:.2f} s | "
            f"{row['first_response_s'] / base:.2f}x |"
        )


if __name__ == "__main__":
    main()
