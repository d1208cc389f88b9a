"""SnapStart in the local runtime against a plain cold start, for the python3.13 sample zip in
its container (lambdapack-base:trixie), 1,024 MB.

Measures, in fresh execution environments, the time from asking for a new environment to its
first response (one real classification of an S3 image from a local S3 on 127.0.0.1):
  - a plain cold start: a new container, init, the invocation (the REPORT's Init Duration);
  - a SnapStart restore: a fork of the version's parked, initialised process (made once,
    before the runs, and not counted), its after-restore hooks, the invocation (Restore
    Duration).
Prints medians (and min-max) of --runs, and the parked process's one init.

Usage: python scripts/bench_snapstart.py [--runs 5]
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

from bench_cold_start import bench_bucket  # scripts/ is on the path when a script runs

from lambdapack.local.lambda_runtime import runtime_boto3, runtime_interface_client
from lambdapack.local.s3event import s3_event
from lambdapack.local.sandbox import FunctionSpec, Sandbox
from lambdapack.local.snapstart import Snapshot
from lambdapack.packing.interpreter import TargetPython
from lambdapack.packing.target import Target
from lambdapack.resources import default_cache_dir

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "build" / "sample"
OUT = ROOT / "build" / "bench-snapstart"
PYTHON = TargetPython("3.13", "x86_64", "lambdapack-base:trixie")


def pack() -> Path:
    command = [sys.executable, "-m", "lambdapack", "pack", str(SAMPLE / "digits.keras")]
    command += ["--samples", str(SAMPLE / "samples"), "--python", "3.13", "--out", str(OUT)]
    subprocess.run(command, check=True, capture_output=True)
    return OUT / "function.zip"


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} s [{min(values):.3f}–{max(values):.3f}]"


def measure(zip_path: Path, runs: int, endpoint: str) -> dict:
    cache = default_cache_dir()
    target = Target("3.13", "x86_64")
    paths = [runtime_boto3(cache, target), runtime_interface_client(cache, target)]
    event = json.dumps(s3_event("bench", ["in/digit.png"])).encode()
    passed = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    figures: dict = {"cold": [], "init": [], "restored": [], "restore": []}
    with tempfile.TemporaryDirectory(prefix="bench-snapstart-") as work:
        root = Path(work)
        task = root / "task"
        zipfile.ZipFile(zip_path).extractall(task)
        spec = FunctionSpec("bench", task, runtime="python3.13", memory=1024, timeout=60, version="1")
        snapspec = FunctionSpec(**{**spec.__dict__, "snapstart": True})
        snapshot = Snapshot(snapspec, paths, root / "parked", root, passed, PYTHON)
        try:
            snapshot.ready()  # the version's init, once (Lambda's at publish)
            for run in range(runs):
                plain = Sandbox(spec, paths, root / f"cold-{run}", passed, PYTHON)
                restored = Sandbox(snapspec, paths, root / f"restored-{run}", passed, PYTHON, None, snapshot)
                for box, took, inner, field in (
                    (plain, "cold", "init", "init_ms"),
                    (restored, "restored", "restore", "restore_ms"),
                ):
                    began = time.perf_counter()
                    result = box.invoke(event)
                    figures[took].append(time.perf_counter() - began)
                    box.stop()
                    assert result.ok, result.error
                    figures[inner].append(getattr(result, field) / 1000)
        finally:
            snapshot.stop()
    figures["snapshot_init_s"] = snapshot.init_ms / 1000
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with bench_bucket() as endpoint:
        figures = measure(pack(), args.runs, endpoint)
    print(
        f"python3.13 sample zip, container (trixie), 1,024 MB, {os.cpu_count()} cores, "
        f"median [min–max] of {args.runs}"
    )
    print("| new environment | to first response | runtime's figure |")
    print("| --- | --- | --- |")
    print(
        f"| plain cold start (new container) | {spread(figures['cold'])} | "
        f"Init Duration {spread(figures['init'])} |"
    )
    print(
        f"| SnapStart restore (fork of the parked process) | {spread(figures['restored'])} | "
        f"Restore Duration {spread(figures['restore'])} |"
    )
    print(f"the parked process's one init (INIT_REPORT): {figures['snapshot_init_s']:.3f} s")


if __name__ == "__main__":
    main()
