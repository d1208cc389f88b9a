"""Benchmark the S3-staged TensorFlow function against the LiteRT zip, in one run.

1. Packs the sample model twice: the LiteRT zip, and ``--runtime tensorflow
   --stage-deps s3`` (function.zip + deps.tar.zst).
2. Cold start under the real runtime client, a fresh sandbox each run, from
   process start to the first response (one S3 image classified and its
   result written), median of ``--runs``:
   - the LiteRT zip;
   - staged TensorFlow: download from the local endpoint + verify + unpack
     into the sandbox's /tmp + import + load + first inference;
   - TensorFlow imported in place: the same files already unpacked beside
     the handler (what a container image or a zip without the 250 MB limit
     would give): import + load + first inference.
3. The dependency archive per zstd level: size, compression time, and the
   time the handler's own bootstrap takes to verify and unpack it.

Usage: python scripts/bench_staged.py [--runs 3] [--levels 1,3,6,10,15]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import zstandard

ROOT = Path(__file__).resolve().parent.parent
from lambdapack.handler.lambdapack_handler.staged import stage_file
from lambdapack.local.lambda_runtime import runtime_boto3, runtime_interface_client
from lambdapack.local.localaws import LocalAWS
from lambdapack.local.sandbox import FunctionSpec, Sandbox
from lambdapack.packing.staging import write_archive
from lambdapack.resources import default_cache_dir

SAMPLE = ROOT / "build" / "sample"
OUT = ROOT / "build" / "bench"
MiB = 1024 * 1024


def pack(name: str, *args: str) -> Path:
    out = OUT / name
    model = str(SAMPLE / "digits.keras")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pack",
            "pack",
            model,
            "--samples",
            str(SAMPLE / "samples"),
            "--out",
            str(out),
            *args,
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return out


def unpack_into(archive: Path, dest: Path) -> None:
    with (
        archive.open("rb") as raw,
        zstandard.ZstdDecompressor().stream_reader(raw) as stream,
        tarfile.open(fileobj=stream, mode="r|") as tar,
    ):
        tar.extractall(dest, filter="data")


def cold_starts(local: LocalAWS, task_of, env: dict, ephemeral_mb: int, runs: int, cache: Path) -> dict:
    """Median seconds to the first response over ``runs`` fresh sandboxes."""
    runtime = [runtime_boto3(cache), runtime_interface_client(cache)]
    totals, inits, staged, memory = [], [], [], []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-staged-") as work:
            task = task_of(Path(work))
            spec = FunctionSpec(
                "bench", task, timeout=300, memory=2048, ephemeral_mb=ephemeral_mb, environment=env
            )
            box = Sandbox(spec, runtime, Path(work) / f"sandbox{run}", local.client_environment())
            began = time.perf_counter()
            result = box.invoke(json.dumps({"bucket": "bench", "key": "digit.png"}).encode())
            totals.append(time.perf_counter() - began)
            box.stop()
            assert result.ok, result.error
            inits.append((result.init_ms or 0) / 1000)
            memory.append(result.max_memory_mb or 0)
            found = re.search(r"fetched in ([\d.]+) s, unpacked in ([\d.]+) s", result.logs)
            if found:
                staged.append((float(found.group(1)), float(found.group(2))))
    row = {
        "first_response_s": statistics.median(totals),
        "init_s": statistics.median(inits),
        "max_memory_mb": statistics.median(memory),
    }
    if staged:
        row["download_s"] = statistics.median(s[0] for s in staged)
        row["unpack_s"] = statistics.median(s[1] for s in staged)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--levels", default="1,3,6,10,15")
    args = parser.parse_args()
    cache = default_cache_dir()

    lite = pack("dist-litert")
    staged = pack("dist-tf-staged", "--runtime", "tensorflow", "--stage-deps", "s3")
    report = json.loads((staged / "report.json").read_text())
    deps = report["deps"]
    print(
        f"\nstaged TensorFlow benchmark — {os.cpu_count()} cores; deps.tar.zst "
        f"{deps['bytes'] / MiB:.1f} MB (zstd -{deps['zstd_level']}), unpacks to "
        f"{deps['unpacked_bytes'] / MiB:.1f} MB in {deps['files']:,} files; function.zip "
        f"{report['zip']['zipped_bytes'] / MiB:.1f} MB\n"
    )

    def unzipped(zip_path: Path, extra=None):
        def make(work: Path) -> Path:
            task = work / "task"
            zipfile.ZipFile(zip_path).extractall(task)
            if extra:
                extra(task)
            return task

        return make

    with LocalAWS(cache, concurrency=1) as local:
        s3 = local.client("s3")
        for bucket in ("bench", "code"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(
            Bucket="bench", Key="digit.png", Body=(SAMPLE / "heldout" / "digit-0021.png").read_bytes()
        )
        s3.upload_file(str(staged / "deps.tar.zst"), "code", "deps.tar.zst")
        staged_env = {"DEPS_BUCKET": "code", "DEPS_KEY": "deps.tar.zst", "DEPS_SHA256": deps["sha256"]}
        rows = [
            ("LiteRT zip", cold_starts(local, unzipped(lite / "function.zip"), {}, 512, args.runs, cache)),
            (
                "TensorFlow staged (S3 -> /tmp)",
                cold_starts(
                    local,
                    unzipped(staged / "function.zip"),
                    staged_env,
                    deps["ephemeral_storage_mb"],
                    args.runs,
                    cache,
                ),
            ),
            (
                "TensorFlow imported in place",
                cold_starts(
                    local,
                    unzipped(
                        staged / "function.zip", lambda task: unpack_into(staged / "deps.tar.zst", task)
                    ),
                    {},
                    512,
                    args.runs,
                    cache,
                ),
            ),
        ]
    baseline = rows[0][1]["first_response_s"]
    print(f"cold start, median of {args.runs} fresh sandboxes (first response = init + first invocation)\n")
    print("function | first response | init | of which download | of which unpack | max memory | vs LiteRT")
    print("--- | --- | --- | --- | --- | --- | ---")
    for name, row in rows:
        download = f"{row['download_s']:.2f} s" if "download_s" in row else ""
        unpack = f"{row['unpack_s']:.2f} s" if "unpack_s" in row else ""
        print(
            f"{name} | {row['first_response_s']:.2f} s | {row['init_s']:.2f} s | {download} | {unpack} | "
            f"{row['max_memory_mb']:.0f} MB | {row['first_response_s'] / baseline:.1f}x"
        )

    # Unpack into memory (tmpfs), as the sandboxes' /tmp above, where there is one.
    scratch = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None
    where = "tmpfs" if scratch else "the temp folder"
    print(
        f"\ndeps archive per zstd level ({os.cpu_count()} compression threads; unpack = the handler's "
        f"verify + unpack into {where})\n"
    )
    print("level | size | vs uncompressed | compress | verify + unpack")
    print("--- | --- | --- | --- | ---")
    with tempfile.TemporaryDirectory(prefix="bench-levels-") as work:
        tree = Path(work) / "tree"
        unpack_into(staged / "deps.tar.zst", tree)
        for level in (int(v) for v in args.levels.split(",")):
            archive = Path(work) / f"deps-{level}.tar.zst"
            digest = write_archive(tree, archive, level)
            root = Path(tempfile.mkdtemp(prefix="bench-unpack-", dir=scratch))
            began = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # its JSON log line
                stage_file(archive, digest.sha256, root)
            unpack_s = time.perf_counter() - began
            print(
                f"{level} | {digest.size / MiB:.1f} MB | {digest.size / digest.unpacked:.1%} | "
                f"{digest.seconds:.1f} s | {unpack_s:.1f} s"
            )
            subprocess.run(["rm", "-rf", str(root), str(archive)], check=True)


if __name__ == "__main__":
    main()
