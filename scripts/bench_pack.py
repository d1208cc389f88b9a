"""Benchmark lambdapack's pack against a naive baseline, in one run.

For the sample digits model and a MobileNetV2-sized model (architecture only,
weights=None: nothing is downloaded), prints:
- zipped and unzipped size of lambdapack's zip against a naive one
  (``pip install -t`` for the same target, handler and model, zip -9; no
  strip, no prune);
- pack time with an empty lambdapack cache (wheels come from pip's own HTTP
  cache if it has them; the model is converted) and warm (second run);
- cold start of the packed zip in a clean interpreter (``python -I -S``):
  import of the handler (which loads the model) and first inference, with the
  shipped .pyc and with every __pycache__ removed; median of N runs.

Usage: python scripts/bench_pack.py [--runs 3] [--json build/bench/pack.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from lambdapack.packing.install import platform_args
from lambdapack.packing.runtimes import LITERT
from lambdapack.packing.target import Target
from lambdapack.packing.zipper import collect, write_zip
from lambdapack.resources import handler_dir

MiB = 1024 * 1024
TARGET = Target("3.11", "x86_64")

COLD_START = """
import json, sys, time
start = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import index
loaded = time.perf_counter()
with open(sys.argv[2], "rb") as handle:
    index.classify(handle.read())
done = time.perf_counter()
print(json.dumps({"import_load_s": loaded - start, "first_inference_s": done - loaded}))
"""


def make_mobilenet(folder: Path) -> Path:
    model = folder / "mobilenetv2.keras"
    if model.exists():
        return model
    folder.mkdir(parents=True, exist_ok=True)
    code = (
        "import os, sys; os.environ['TF_CPP_MIN_LOG_LEVEL']='2'; import keras;"
        "keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classes=1000)"
        ".save(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, str(model)], check=True)
    (folder / "mobilenetv2.lambdapack.json").write_text(
        json.dumps({"name": "mobilenetv2", "input": {"scale": "-1..1"}, "output": "probabilities"})
    )
    return model


def lambdapack(model: Path, out: Path, cache: Path, samples: Path | None) -> float:
    args = [sys.executable, "-m", "lambdapack", "pack", str(model), "--out", str(out)]
    if samples:
        args += ["--samples", str(samples)]
    env = dict(os.environ, LAMBDAPACK_CACHE=str(cache))
    began = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, env=env, cwd=ROOT)
    return time.perf_counter() - began


def naive_zip(model_dir: Path, wheelhouse: Path, work: Path) -> Path:
    """pip install -t for the same target, plus handler and model; no strip, no prune."""
    tree = work / "naive"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--target",
            str(tree),
            "--find-links",
            str(wheelhouse),
            *platform_args(TARGET),
            *LITERT.requirements,
        ],
        check=True,
        capture_output=True,
    )
    shutil.copy2(handler_dir() / "index.py", tree / "index.py")
    shutil.copytree(handler_dir() / "lambdapack_handler", tree / "lambdapack_handler")
    shutil.copytree(model_dir, tree / "model")
    out = work / "naive.zip"
    write_zip(collect(tree), out)
    return out


def unzipped_size(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def cold_starts(zip_path: Path, image: Path, runs: int, with_pyc: bool) -> dict:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as work:
            task = Path(work) / "task"
            zipfile.ZipFile(zip_path).extractall(task)
            if not with_pyc:
                for cache in list(task.rglob("__pycache__")):
                    shutil.rmtree(cache)
            began = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-I", "-S", "-B", "-c", COLD_START, str(task), str(image)],
                cwd=task,
                env={"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(task)},
                capture_output=True,
                text=True,
                check=True,
            )
            wall = time.perf_counter() - began
            record = json.loads(proc.stdout.splitlines()[-1])
            record["process_s"] = wall
            results.append(record)
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def bench_model(name: str, model: Path, samples: Path | None, image: Path, runs: int, work: Path) -> dict:
    cache = work / f"cache-{name}"
    out = work / f"dist-{name}"
    cold = lambdapack(model, out, cache, samples)
    warm = lambdapack(model, out, cache, samples)
    packed = out / "function.zip"
    with tempfile.TemporaryDirectory() as model_dir:
        zipfile.ZipFile(packed).extractall(
            model_dir, [n for n in zipfile.ZipFile(packed).namelist() if n.startswith("model/")]
        )
        naive = naive_zip(Path(model_dir) / "model", cache / "wheels" / TARGET.key(), work / name)
    return {
        "model": name,
        "zipped": packed.stat().st_size,
        "unzipped": unzipped_size(packed),
        "naive_zipped": naive.stat().st_size,
        "naive_unzipped": unzipped_size(naive),
        "pack_cold_s": cold,
        "pack_warm_s": warm,
        "cold_start_with_pyc": cold_starts(packed, image, runs, True),
        "cold_start_without_pyc": cold_starts(packed, image, runs, False),
    }


def print_table(rows: list[dict]) -> None:
    def mb(value: int) -> str:
        return f"{value / MiB:.1f}"

    print(
        f"\nlambdapack pack benchmark — target {TARGET.runtime} {TARGET.arch}, "
        f"sizes in MiB (2^20 bytes), times in seconds, cold starts are medians\n"
    )
    header = (
        "model",
        "zip",
        "naive zip",
        "unzipped",
        "naive unzipped",
        "pack cold",
        "pack warm",
        "import+load (pyc)",
        "first inf. (pyc)",
        "import+load (no pyc)",
        "first inf. (no pyc)",
    )
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in rows:
        with_pyc, without = row["cold_start_with_pyc"], row["cold_start_without_pyc"]
        print(
            " | ".join(
                [
                    row["model"],
                    mb(row["zipped"]),
                    mb(row["naive_zipped"]),
                    mb(row["unzipped"]),
                    mb(row["naive_unzipped"]),
                    f"{row['pack_cold_s']:.1f}",
                    f"{row['pack_warm_s']:.1f}",
                    f"{with_pyc['import_load_s']:.3f}",
                    f"{with_pyc['first_inference_s']:.4f}",
                    f"{without['import_load_s']:.3f}",
                    f"{without['first_inference_s']:.4f}",
                ]
            )
        )
    for row in rows:
        speedup = row["cold_start_without_pyc"]["import_load_s"] / row["cold_start_with_pyc"]["import_load_s"]
        print(
            f"\n{row['model']}: zip {row['zipped'] / row['naive_zipped']:.0%} of naive, unzipped "
            f"{row['unzipped'] / row['naive_unzipped']:.0%} of naive; .pyc make import+load "
            f"{speedup:.1f}x faster"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    sample = ROOT / "build" / "sample"
    if not (sample / "digits.keras").exists():
        sys.exit("run `make sample` first")
    mobilenet = make_mobilenet(ROOT / "build" / "bench")
    image = sorted((sample / "samples").glob("*.png"))[0]
    with tempfile.TemporaryDirectory(prefix="lambdapack-bench-") as work:
        rows = [
            bench_model(
                "digits-cnn", sample / "digits.keras", sample / "samples", image, args.runs, Path(work)
            ),
            bench_model("mobilenetv2-224", mobilenet, None, image, args.runs, Path(work)),
        ]
    print_table(rows)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
