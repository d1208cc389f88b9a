"""Decoding untrusted images within memory: raster formats only (never EPS and
Ghostscript), a decode budget checked from the header, full-size images
reduced before any conversion (peak memory measured in a child process), and
a bounded fuzz run where nothing but ImageError may escape."""

from __future__ import annotations

import io
import json
import os
import random
import stat
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from lambdapack_handler.config import InputSpec
from lambdapack_handler.imaging import ImageError, Limits, decode, preprocess

HANDLER = Path(__file__).resolve().parent.parent / "handler"
SPEC = InputSpec(height=32, width=32, channels=1)
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n0 0 moveto 10 10 lineto stroke\n"


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_eps_is_refused_as_not_an_image_and_ghostscript_never_runs(tmp_path, monkeypatch):
    # A stand-in `gs` on PATH (no Ghostscript is installed here): it only records that it ran.
    marker = tmp_path / "gs-ran"
    fake = tmp_path / "bin" / "gs"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {marker}\nexit 0\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", None)  # Pillow caches where gs is
    assert Image.open(io.BytesIO(EPS)).format == "EPS"  # Pillow itself would take it
    with pytest.raises(ImageError) as caught:
        preprocess(EPS, SPEC)
    assert caught.value.kind == "NotAnImage"
    assert not marker.exists()


@pytest.mark.parametrize(
    ("image", "fmt", "options", "estimate"),
    [
        (Image.new("I;16", (3000, 2000)), "PNG", {}, 3000 * 2000 * 2),
        (Image.new("RGB", (3000, 2000)), "PNG", {}, 3000 * 2000 * 4),
        # one strip holding the whole image: libtiff decodes it into a buffer of that size first
        (
            Image.new("F", (3000, 2000)),
            "TIFF",
            {"compression": "tiff_adobe_deflate", "strip_size": 1 << 40},
            48_000_000,
        ),
    ],
    ids=["png-16-bit", "png-rgb", "tiff-float32-one-strip"],
)
def test_a_decode_over_the_budget_is_refused_from_the_header(image, fmt, options, estimate):
    from lambdapack_handler.imaging import decode_bytes

    data = encode(image, fmt, **options)
    header_only = Image.open(io.BytesIO(data))
    assert decode_bytes(header_only) == estimate  # from the header alone: nothing decoded yet
    with pytest.raises(ImageError) as caught:
        decode(data, SPEC, Limits(max_decode_bytes=estimate - 1))
    assert caught.value.kind == "ImageTooLarge" and "decode budget" in str(caught.value)
    assert decode(data, SPEC, Limits(max_decode_bytes=estimate)).size == (32, 32)


def test_the_default_decode_budget_is_derived_from_the_pixel_limit():
    assert Limits().decode_budget == 8 * Limits().max_pixels
    assert Limits(max_pixels=1000).decode_budget == 8000
    assert Limits(max_decode_bytes=5).decode_budget == 5


# The child's own peak (VmHWM, reset first): ru_maxrss would start at the parent's size, which a
# forked child inherits.
MEASURE = """
import io, json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from PIL import Image
from lambdapack_handler.config import InputSpec
from lambdapack_handler.imaging import decode
height, width, channels = (int(value) for value in sys.argv[3:6])
spec = InputSpec(height=height, width=width, channels=channels, resize=sys.argv[6])
data = open(sys.argv[2], "rb").read()
decode(open(sys.argv[7], "rb").read(), spec)  # warm up: plugins, numpy

def status(field):
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) * 1024 for line in lines if line.startswith(field + ":"))

with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # resets VmHWM to the current RSS
before = status("VmRSS")
image = decode(data, spec)
grew = status("VmHWM") - before
print(json.dumps({"grew": grew, "pixels": np.asarray(image).tolist(), "mode": image.mode}))
"""


def reference(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """What decoding did before it saved memory: every step on the full-size image."""
    from PIL import ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        image = Image.fromarray(((array - low) * (255.0 / ((high - low) or 1.0))).astype(np.uint8), "L")
    image = image.convert(spec.mode)
    if spec.resize == "center-crop":
        return np.asarray(ImageOps.fit(image, (spec.width, spec.height), Image.Resampling.BILINEAR))
    return np.asarray(image.resize((spec.width, spec.height), Image.Resampling.BILINEAR))


@pytest.fixture(scope="module")
def big_images() -> dict[str, tuple[bytes, int]]:
    """Full-size test images (16 Mpx), each with the memory its pixels take decoded."""
    width, height = 4800, 3200
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)
    rows = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    # A gradient with a little curvature, in 256 steps (so that it compresses: under MAX_IMAGE_BYTES).
    smooth = np.floor((ramp[None, :] * 0.7 + rows * 0.3) ** 1.5 * 255) / 255
    sixteen = Image.fromarray((smooth * 50_000 + 3000).astype(np.uint16))
    floats = Image.fromarray((smooth * 7.5 - 2.0).astype(np.float32), "F")
    rgb = Image.fromarray(
        np.stack([smooth * 255, smooth[::-1] * 255, smooth[:, ::-1] * 255], -1).astype(np.uint8)
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90: the reduction must keep the orientation right
    palette = rgb.quantize(64)
    return {
        "png-16-bit": (encode(sixteen, "PNG", compress_level=1), width * height * 2),
        "tiff-float32": (encode(floats, "TIFF", compression="tiff_adobe_deflate"), width * height * 4),
        "png-rgb-rotated": (encode(rgb, "PNG", compress_level=1, exif=exif.tobytes()), width * height * 4),
        "png-palette": (encode(palette, "PNG", compress_level=1), width * height * 1),
    }


@pytest.mark.functional
@pytest.mark.parametrize(
    "spec",
    [SPEC, InputSpec(height=224, width=160, channels=3, resize="center-crop")],
    ids=["32x32-grey", "224x160-rgb-crop"],
)
def test_full_size_images_decode_with_no_full_size_copy_and_the_same_pixels(spec, big_images, tmp_path):
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(encode(Image.new("I;16", (8, 8)), "PNG"))
    report = {}
    for name, (data, decoded_bytes) in big_images.items():
        assert len(data) <= Limits().max_bytes, name
        path = tmp_path / name
        path.write_bytes(data)
        args = [str(HANDLER), str(path), str(spec.height), str(spec.width), str(spec.channels), spec.resize]
        proc = subprocess.run(
            [sys.executable, "-c", MEASURE, *args, str(tiny)], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outcome = json.loads(proc.stdout)
        report[name] = round(outcome["grew"] / 1e6)
        expected = reference(Image.open(io.BytesIO(data)), spec).astype(int)
        got = np.array(outcome["pixels"])
        assert got.shape == expected.shape, name
        # Box-reducing first then resampling is not bit-identical to resampling the full image.
        assert np.abs(got - expected).max() <= 3, name
        # The decoded image itself, plus little: no float64 copy (8 bytes a pixel), no second image.
        assert outcome["grew"] <= decoded_bytes * 1.15 + 12e6, (name, report)
    print(f"peak memory growth while decoding (MB) at {spec.width}x{spec.height}: {report}")


def seeds() -> dict[str, bytes]:
    """Small valid images of each format and the modes that take different paths."""
    rng = np.random.default_rng(7)
    noise = Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8))
    sixteen = Image.fromarray(rng.integers(0, 65535, (40, 48), dtype=np.uint16))
    floats = Image.fromarray(rng.normal(size=(40, 48)).astype(np.float32), "F")
    return {
        "png-rgb": encode(noise, "PNG"),
        "png-16-bit": encode(sixteen, "PNG"),
        "png-palette": encode(noise.quantize(16), "PNG", transparency=3),
        "jpeg": encode(noise, "JPEG"),
        "jpeg-progressive": encode(noise, "JPEG", progressive=True),
        "gif": encode(noise.quantize(32), "GIF"),
        "tiff-float32": encode(floats, "TIFF", compression="tiff_adobe_deflate"),
        "tiff-rgb-lzw": encode(noise, "TIFF", compression="tiff_lzw"),
        "tiff-16-bit-raw": encode(sixteen, "TIFF"),
        "webp": encode(noise, "WEBP"),
        "bmp": encode(noise, "BMP"),
    }


def exif_seeds() -> dict[str, tuple[bytes, int, int]]:
    """Images turned by their EXIF orientation, with more EXIF after it: (data, where the
    EXIF's TIFF header starts, its length)."""
    from PIL.TiffImagePlugin import IFDRational

    noise = Image.fromarray(np.random.default_rng(8).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation first: it stays readable, so the image is still turned
    exif[0x010F], exif[0x0110], exif[0x0131] = "Maker", "Model", "Software"
    exif[0x011A] = IFDRational(72, 1)
    exif.get_ifd(0x8769)[0x9003] = "2026:11:30 12:00:00"
    exif.get_ifd(0x8769)[0x920A] = IFDRational(50, 10)
    raw = exif.tobytes()[6:]  # without the "Exif\0\0" that JPEG puts before it
    found = {}
    for fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        data = encode(noise, fmt, exif=exif.tobytes())
        found[fmt.lower()] = (data, data.find(raw[:14]) if fmt != "TIFF" else 0, len(raw))
    return found


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    operation = rng.choice(["flip", "flip", "span", "truncate", "repeat"])
    if operation == "flip":
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif operation == "span":
        start = rng.randrange(len(data))
        data[start : start + rng.randint(1, 16)] = rng.randbytes(rng.randint(1, 16))
    elif operation == "truncate":
        del data[rng.randint(1, len(data) - 1) :]
    else:
        start = rng.randrange(len(data))
        data[start:start] = data[start : start + rng.randint(1, 64)]
    return bytes(data)


def mutate_exif(data: bytes, start: int, length: int, rng: random.Random) -> bytes:
    """Change 1 to 3 bytes of the EXIF after its orientation entry (in a PNG, with the chunk's
    CRC made right again, so the EXIF is read rather than the file refused)."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        data[start + 22 + rng.randrange(length - 22)] = rng.randrange(256)
    chunk = data.find(b"eXIf")
    if data.startswith(b"\x89PNG") and chunk > 0:
        end = chunk + 4 + int.from_bytes(data[chunk - 4 : chunk])
        data[end : end + 4] = zlib.crc32(data[chunk:end]).to_bytes(4)
    return bytes(data)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on the corrupt data it reads
def test_mutated_images_raise_nothing_but_image_error():
    rng = random.Random(20261130)
    specs = [SPEC, InputSpec(height=20, width=24, channels=3, scale="-1..1", resize="center-crop")]
    limits = Limits(max_pixels=4_000_000)
    cases = [(name, lambda data=data: mutate(data, rng)) for name, data in seeds().items()] * 100
    cases += [
        (f"{name}-exif", lambda seed=seed: mutate_exif(*seed, rng)) for name, seed in exif_seeds().items()
    ] * 500
    started, outcomes, escaped = time.perf_counter(), {}, []
    for number, (name, mutated) in enumerate(cases):
        try:
            batch = preprocess(mutated(), specs[number % 2], limits)
            assert np.isfinite(batch).all(), name
            outcomes["decoded"] = outcomes.get("decoded", 0) + 1
        except ImageError as exc:
            outcomes[exc.kind] = outcomes.get(exc.kind, 0) + 1
        except Exception as exc:  # what the test is for: nothing else may escape
            escaped.append(f"{name}: {type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - started
    print(f"{len(cases)} mutated images in {elapsed:.1f} s: {outcomes}")
    assert escaped == []
    assert sum(outcomes.values()) == len(cases) and elapsed < 10
