"""The whole pipeline, locally: a local AWS endpoint, deploy, wire, upload the
held-out digits, wait for every result, and print the results, accuracy,
images per second and cold/warm starts. Everything started here is stopped.

Run by ``make demo`` after ``make pack``:
    python scripts/demo.py [--zip dist/function.zip] [--sample build/sample] [--concurrency N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import zipfile
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.aws.objects import collect_results, upload_folder
from lambdapack.aws.wire import WireSettings, wire
from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD
from lambdapack.labelled import read_samples
from lambdapack.local.localaws import LocalAWS
from lambdapack.render import progress_bar, results_table
from lambdapack.resources import default_cache_dir

BUCKET = "lambdapack-demo"
CODE_BUCKET = "lambdapack-demo-code"
FUNCTION = "digits-classifier"
PREFIX = "incoming/"


def build_record(zip_path: Path) -> dict:
    with zipfile.ZipFile(zip_path) as archive:
        return json.loads(archive.read(BUILD_RECORD))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", type=Path, default=ROOT / "dist" / "function.zip")
    parser.add_argument("--sample", type=Path, default=ROOT / "build" / "sample")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for all results")
    args = parser.parse_args()
    console = Console()
    # heldout.csv names its files relative to its own folder (heldout/digit-0021.png), as every
    # samples CSV lambdapack reads; the results are matched by the file's name.
    samples = read_samples(args.sample / "heldout.csv").samples
    labels = {sample.path.name: sample.label for sample in samples}

    console.rule("local AWS")
    with LocalAWS(default_cache_dir(), concurrency=args.concurrency) as local:
        os.environ.update(local.client_environment())
        console.print(
            f"endpoint {local.endpoint} (moto on 127.0.0.1) — functions run in the local "
            f"Lambda runtime, {args.concurrency} at once"
        )
        s3 = local.client("s3")
        s3.create_bucket(Bucket=BUCKET)

        console.rule("deploy")
        # A zip packed with --stage-deps s3 has its deps.tar.zst uploaded to a code bucket.
        code_bucket = CODE_BUCKET if "deps" in build_record(args.zip) else None
        if code_bucket:
            s3.create_bucket(Bucket=code_bucket)
        settings = DeploySettings(
            args.zip, FUNCTION, bucket=BUCKET, prefix=PREFIX, memory=1024, timeout=60, code_bucket=code_bucket
        )
        deploy(settings, AWSClient(), log=lambda line: console.print(line, markup=False, highlight=False))

        console.rule("wire")
        for line in wire(WireSettings(FUNCTION, BUCKET, prefix=PREFIX), AWSClient()).actions:
            console.print(line, markup=False, highlight=False)

        console.rule("upload")
        began = time.perf_counter()
        with progress_bar(console) as progress:
            task = progress.add_task(f"uploading to s3://{BUCKET}/{PREFIX}", total=None)
            keys = upload_folder(
                args.sample / "heldout", BUCKET, PREFIX, s3, advance=lambda: progress.advance(task)
            )
        uploaded = time.perf_counter() - began
        with progress_bar(console) as progress:
            task = progress.add_task("waiting for results", total=len(keys))
            deadline = time.monotonic() + args.timeout
            done = 0
            while done < len(keys) and time.monotonic() < deadline:
                done = sum(
                    len(page.get("Contents", []))
                    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="results/")
                )
                progress.update(task, completed=done)
                if done < len(keys):
                    time.sleep(0.2)
        elapsed = time.perf_counter() - began
        local.wait_idle(30)
        stats = local.dispatcher.stats

        console.rule("results")
        rows = collect_results(BUCKET, "results/", s3)
        console.print(results_table(rows, limit=10))
        correct = sum(1 for r in rows if r["label"] and r["label"] == labels.get(Path(r["input"]).name))
        errors = sum(1 for r in rows if r["error"])
        durations = sorted(r.duration_ms for r in stats.records if r.ok)
        warm = [r.duration_ms for r in stats.records if r.ok and not r.cold]
        inits = [r.init_ms for r in stats.records if r.init_ms]
        console.print(
            f"images: {len(keys)} uploaded in {uploaded:.1f} s, {len(rows)} results, {errors} errors, "
            f"{len(stats.failures)} invocations given up"
        )
        console.print(f"top-1 accuracy: {correct}/{len(keys)} = {correct / len(keys):.1%}")
        console.print(
            f"throughput: {len(rows) / elapsed:.1f} images/s from first upload to last result "
            f"({elapsed:.1f} s)"
        )
        console.print(
            f"invocations: {stats.invocations} ({stats.cold_starts} cold, "
            f"{stats.invocations - stats.cold_starts} warm), at most {stats.max_concurrent} at once"
        )
        if durations:
            console.print(
                f"duration per invocation: p50 {statistics.median(durations):.1f} ms, "
                f"p95 {durations[int(0.95 * (len(durations) - 1))]:.1f} ms"
                + (f"; warm p50 {statistics.median(warm):.1f} ms" if warm else "")
                + (f"; init (cold start) p50 {statistics.median(inits):.0f} ms" if inits else "")
            )
        complete = len(rows) == len(keys) and not stats.failures
    console.rule("stopped the local endpoint and every function process")
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
