"""Cold start in the local runtime, with its breakdown: this machine's Python against a container.

Packs the sample for python3.11 (this machine's Python) and python3.13 (the default
target) with this checkout's handler, then measures, in fresh execution environments, the
time from starting the function to its first response (one real classification of an S3
image from a local S3 on 127.0.0.1) and splits it:
  - runtime client: the runtime's Init Duration minus the handler module's own import
    (AWS's runtime interface client starting, Python included),
  - imports, S3 client, model load: the handler's ``index.INIT_MS``, which it logs as
    ``{"cold_start": {...}}`` on its first invocation,
  - first invocation: first response minus Init Duration (the S3 read, decode, inference,
    the result's S3 write, the runtime's round trips); decode and inference as the handler
    logs them.
Rows:
  - the python3.11 zip in this machine's Python (the fast path),
  - the same zip in a python3.11 container (lambdapack-base:bookworm): the container's cost,
  - the python3.13 zip in its container (lambdapack-base:trixie): the default target.
The rows' runs alternate (one cold start of each row per round), so that a shared machine's
load falls on all of them alike. Prints medians of --runs, min-max of the first response, the
ratios against the fast path, and /proc/pressure/cpu before and after.

A/B of a handler change: ``--against DIR`` also packs the python3.11 zip with the handler
folder DIR (e.g. ``git archive HEAD handler | tar -x -C /tmp/base``) and adds its row on the
host path, alternating with the others; ``--host-only`` leaves the containers out.

Usage: python scripts/bench_cold_start.py [--runs 5] [--host-only] [--against DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
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
PARTS = ("runtime_client_ms", "imports_ms", "s3_client_ms", "model_load_ms", "first_invocation_ms")


def pack(python: str, handler_dir: Path, name: str) -> Path:
    out = OUT / name
    subprocess.run(
        [
            *(sys.executable, "-m", "lambdapack", "pack", str(SAMPLE / "digits.keras")),
            *("--samples", str(SAMPLE / "samples"), "--python", python, "--out", str(out)),
            *("--handler-dir", str(handler_dir)),
        ],
        check=True,
        capture_output=True,
    )
    return out / "function.zip"


class Row:
    """One kind of function: its zip, the Python it runs in, and its cold starts so far."""

    def __init__(self, name: str, zip_path: Path, python: TargetPython | None, target: Target) -> None:
        self.name, self.zip_path, self.python, self.target = name, zip_path, python, target
        cache = default_cache_dir()
        if python is None:
            self.paths = [runtime_boto3(cache), runtime_interface_client(cache)]
        else:
            self.paths = [runtime_boto3(cache, target), runtime_interface_client(cache, target)]
        self.runs: list[dict] = []

    def cold_start(self, endpoint: str) -> None:
        with tempfile.TemporaryDirectory(prefix="bench-cold-") as work:
            task = Path(work) / "task"
            zipfile.ZipFile(self.zip_path).extractall(task)
            spec = FunctionSpec("bench", task, runtime=self.target.runtime, memory=1024, timeout=60)
            passed = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
            sandbox = Sandbox(spec, self.paths, Path(work) / "sandbox", passed, self.python)
            began = time.perf_counter()
            result = sandbox.invoke(json.dumps(s3_event("bench", ["in/digit.png"])).encode())
            first_ms = (time.perf_counter() - began) * 1000
            logs = sandbox.log_path.read_text()
            sandbox.stop()
        if not result.ok:
            sys.exit(f"{self.name}: the cold start failed: {result.error}\n{logs[-4000:]}")
        records = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
        init = next(record["cold_start"] for record in records if "cold_start" in record)
        timings = next(record for record in records if record.get("outcome") == "ok")
        init_ms = result.init_ms or 0.0
        self.runs.append(
            {
                "first_response_ms": first_ms,
                "init_ms": init_ms,
                "runtime_client_ms": init_ms - init["total_ms"],
                "imports_ms": init["imports_ms"] + init["staged_ms"],
                "s3_client_ms": init["s3_client_ms"],
                "model_load_ms": init["model_load_ms"],
                "first_invocation_ms": first_ms - init_ms,
                "decode_ms": timings["decode_ms"],
                "inference_ms": timings["inference_ms"],
            }
        )

    def median(self, name: str) -> float:
        return statistics.median(run[name] for run in self.runs)


def cpu_pressure() -> str:
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return "not available"


@contextlib.contextmanager
def bench_bucket() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 whose bucket ``bench`` holds one held-out digit at
    ``in/digit.png`` (the image every bench invocation classifies): its endpoint, for the
    ``with`` block; the server stops after it."""
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
        yield endpoint
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--host-only", action="store_true", help="only this machine's Python (no containers)")
    parser.add_argument("--against", type=Path, default=None, help="a handler folder to compare, host path")
    args = parser.parse_args()
    t311, t313 = Target("3.11", "x86_64"), Target("3.13", "x86_64")
    zip311 = pack("3.11", ROOT / "handler", "python3.11")
    rows = [Row("python3.11 zip, this machine's Python", zip311, None, t311)]
    if args.against is not None:
        against = pack("3.11", args.against.resolve(), "python3.11-against")
        name = f"python3.11 zip, this machine's Python, handler {args.against}"
        rows.append(Row(name, against, None, t311))
    if not args.host_only:
        bookworm = TargetPython("3.11", "x86_64", "lambdapack-base:bookworm")
        trixie = TargetPython("3.13", "x86_64", "lambdapack-base:trixie")
        rows.append(Row("python3.11 zip, container (bookworm)", rows[0].zip_path, bookworm, t311))
        zip313 = pack("3.13", ROOT / "handler", "python3.13")
        rows.append(Row("python3.13 zip, container (trixie), the default", zip313, trixie, t313))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    pressure_before = cpu_pressure()
    with bench_bucket() as endpoint:
        for _ in range(args.runs):
            for row in rows:
                row.cold_start(endpoint)
    pressure_after = cpu_pressure()
    base = rows[0].median("first_response_ms")
    print(
        f"cold start to first response, median of {args.runs} (alternating), {os.cpu_count()} cores, 1,024 MB"
    )
    print(f"/proc/pressure/cpu before: {pressure_before}")
    print(f"/proc/pressure/cpu after:  {pressure_after}")
    print(
        "| function | first response [min–max] | init (runtime's figure) | runtime client | imports "
        "| S3 client | model load | first invocation (decode, inference) | vs this machine's Python |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        firsts = [run["first_response_ms"] for run in row.runs]
        parts = " | ".join(f"{row.median(name):.0f} ms" for name in PARTS[:-1])
        print(
            f"| {row.name} | {row.median('first_response_ms'):.0f} ms [{min(firsts):.0f}–{max(firsts):.0f}] "
            f"| {row.median('init_ms'):.0f} ms | {parts} | {row.median('first_invocation_ms'):.0f} ms "
            f"({row.median('decode_ms'):.1f}, {row.median('inference_ms'):.1f}) "
            f"| {row.median('first_response_ms') / base:.2f}x |"
        )
    print("(each column a median of its own; they need not add up to the first response's median)")
    if args.against is not None:
        # Paired by round: the two ran back to back, under about the same load.
        pairs = zip(rows[0].runs, rows[1].runs, strict=True)
        ratios = [this["first_response_ms"] / other["first_response_ms"] for this, other in pairs]
        print(
            f"this handler / {args.against}, first response, median of the {len(ratios)} rounds' ratios: "
            f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}–{max(ratios):.2f}]"
        )


if __name__ == "__main__":
    main()
