"""The worst images the default limits let in are read and classified by a
child Python that cannot take more than 512 MiB.

The cap is the kernel's RLIMIT_AS on the child's address space: an allocation
past it fails (and the image would not get its label, which fails the test).
Address space counts every mapping, resident or not, so it is stricter than the
resident-memory cap Lambda enforces; the child's peak resident memory (VmHWM)
is checked against the cap too. It is used rather than a memory cgroup because
this machine has cgroup v2 without the memory controller, and the v1 memory
cgroups here belong to the machinery that runs the session, not to the project.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lambdapack_handler.imaging import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Limits

pytestmark = pytest.mark.functional
CAP = 512 * 1024 * 1024
HANDLER = Path(__file__).resolve().parent.parent / "handler"
SIDE = int(DEFAULT_MAX_PIXELS**0.5)  # 6,324 x 6,324: the most pixels allowed

CAPPED = """
import json, os, resource, sys
cap = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
sys.path.insert(0, sys.argv[2])
from lambdapack_handler.app import read_bounded
from lambdapack_handler.loader import load_classifier

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":"))

classifier = load_classifier({"MODEL_DIR": sys.argv[3], "INFERENCE_THREADS": "1"})  # default limits
report = {"started": {"address_space": status("VmSize"), "resident": status("VmRSS")}, "images": {}}
for path in sys.argv[4:]:
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # peak resident memory from here, for this image alone
    with open(path, "rb") as body:  # read as the handler reads an S3 body
        response = {"Body": body, "ContentLength": os.path.getsize(path)}
        data = read_bounded(response, classifier.limits.max_bytes)
    label = classifier.classify(data, 1).top1
    del data
    report["images"][os.path.basename(path)] = {"peak_resident": status("VmHWM"), "top1": label}
report["peak_address_space"] = status("VmPeak")
print(json.dumps(report))
"""


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def worst_images(folder: Path) -> list[Path]:
    """The most pixels allowed in 8-bit RGB (PNG, and progressive 4:4:4 JPEG, whose decoder
    keeps every coefficient), 16-bit and float32 (TIFF in one strip, decoded whole by
    libtiff), WebP as large as the default decode budget lets it be, and the most bytes."""
    steps = (np.arange(SIDE) // 25 % 256).astype(np.uint8)  # bands: compresses to a few MB
    rgb = np.empty((SIDE, SIDE, 3), np.uint8)
    rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2] = steps, steps[:, None], 255 - steps
    images = {
        "rgb8.png": encode(Image.fromarray(rgb), "PNG", compress_level=1),
        "rgb8-progressive-444.jpg": encode(Image.fromarray(rgb), "JPEG", progressive=True, subsampling=0),
    }
    del rgb
    sixteen = Image.fromarray((steps.astype(np.uint16)[None, :] * 250 + steps[:, None]).astype(np.uint16))
    images["gray16.png"] = encode(sixteen, "PNG", compress_level=1)
    del sixteen
    floats = Image.fromarray(np.broadcast_to(steps.astype(np.float32) * 0.25 - 7, (SIDE, SIDE)).copy(), "F")
    images["float32-one-strip.tif"] = encode(
        floats, "TIFF", compression="tiff_adobe_deflate", strip_size=1 << 40
    )
    del floats
    webp_side = int((Limits().decode_budget / 16) ** 0.5)  # 4 full-size copies of 4 bytes a pixel
    images["rgb8.webp"] = encode(Image.new("RGB", (webp_side, webp_side), (90, 30, 200)), "WEBP", method=0)
    images["noise-20MiB.png"] = largest_png()
    paths = []
    for name, data in images.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def largest_png() -> bytes:
    """Noise (it does not compress) padded with an ancillary chunk to exactly MAX_IMAGE_BYTES."""
    noise = np.random.default_rng(3).integers(0, 256, (2600, 2680, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG", compress_level=1)
    pad = DEFAULT_MAX_BYTES - len(data) - 12
    assert pad >= 0
    chunk = b"zzZz" + bytes(pad)  # a private, safe-to-copy chunk PNG readers skip
    padding = pad.to_bytes(4, "big") + chunk + zlib.crc32(chunk).to_bytes(4, "big")
    return data[:-12] + padding + data[-12:]  # before IEND


def test_the_worst_images_within_the_limits_are_classified_in_512_mib(sample_model_dir, tmp_path_factory):
    model_dir = sample_model_dir
    paths = worst_images(tmp_path_factory.mktemp("worst"))
    assert os.path.getsize(paths[-1]) == DEFAULT_MAX_BYTES
    assert all(os.path.getsize(path) <= DEFAULT_MAX_BYTES for path in paths)
    # One thread for inference, BLAS and malloc arenas, as a 512 MB function (a fraction of one
    # vCPU) would run: per-CPU reservations would otherwise make the address space machine-dependent.
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MALLOC_ARENA_MAX="2")
    proc = subprocess.run(
        [sys.executable, "-c", CAPPED, str(CAP), str(HANDLER), str(model_dir), *map(str, paths)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # a failed allocation ends here
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    images = report["images"]
    figures = {name: round(image["peak_resident"] / 2**20) for name, image in images.items()}
    started = {name: round(value / 2**20) for name, value in report["started"].items()}
    peak = round(report["peak_address_space"] / 2**20)
    print(f"MiB at the start {started}, peak resident per image {figures}, peak address space {peak}")
    assert sorted(images) == sorted(path.name for path in paths)
    assert all(image["top1"] in list("0123456789") for image in images.values())
    assert max(image["peak_resident"] for image in images.values()) <= CAP
    assert report["peak_address_space"] <= CAP
