"""Turn untrusted image bytes into the model's input array, with limits.

Refused with an ``ImageError`` (a permanent, per-image failure): more bytes
than ``max_bytes``, more pixels than ``max_pixels`` or a decode that would
need more memory than the decode budget (``max_decode_bytes``; both caught
from the header, before any pixel is decoded), data that is not one of the
raster formats in ``RASTER_FORMATS`` (never EPS or PostScript: Ghostscript
must not run on untrusted input), truncated or corrupt files.

Memory: the full-size image is decoded once, in its own mode (JPEGs at a
reduced scale with draft mode), then box-reduced to a few times the model's
size before anything else — EXIF orientation, conversion to the model's
channels, 16-bit and float rescaling — happens on the small copy. Modes
``reduce`` cannot handle (palette, 1-bit, 16-bit) are converted and reduced
in strips, so no full-size copy is ever made.
"""

from __future__ import annotations

import functools
import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .config import SCALES, InputSpec

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000
# The default decode budget, per allowed pixel (320 MB for 40 Mpx): at the full pixel limit it
# takes every 4-byte-per-pixel mode (RGB, RGBA, 32-bit integer and float), even as a TIFF in
# one strip, and progressive JPEGs; WebP up to half the limit.
DEFAULT_DECODE_BYTES_PER_PIXEL = 8

# Raster formats only. Image.open would otherwise try every plugin Pillow has, including EPS
# (rendered by running Ghostscript) and formats few images arrive in and fewer fuzzers reach.
RASTER_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

# Bytes per pixel of Pillow's in-memory storage (every multi-band mode is stored in 4 bytes).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# Full-size copies their decoders make (measured: 40 Mpx took 616 MB as WebP, 356 MB as AVIF).
_DECODER_COPIES = {"WEBP": 4, "AVIF": 3}
# Modes Image.reduce cannot box-average: converted strip by strip to a mode it can.
_STRIP_MODES = {"1": "L", "P": None, "PA": None, "I;16": "I", "I;16L": "I", "I;16B": "I", "I;16N": "I"}
_HIGH_BIT_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")
# Reduce to at least this many times the model's size before the final resample, as
# Image.thumbnail does: the result cannot be told from resampling the full image.
REDUCING_GAP = 3.0
STRIP_PIXELS = 1 << 18
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_SIDES = {
    Image.Transpose.TRANSPOSE,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_270,
}


class ImageError(ValueError):
    """A permanent problem with one image; ``kind`` names it for result objects."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_decode_bytes: int | None = None  # None: DEFAULT_DECODE_BYTES_PER_PIXEL per allowed pixel

    @property
    def decode_budget(self) -> int:
        if self.max_decode_bytes is not None:
            return self.max_decode_bytes
        return self.max_pixels * DEFAULT_DECODE_BYTES_PER_PIXEL


@functools.cache
def open_formats() -> tuple[str, ...]:
    """The raster formats this Pillow can open (AVIF needs a Pillow built with libavif).
    Worked out once per process: ``Image.init`` imports every plugin Pillow has (~10 ms the
    first time), so ``load_classifier`` calls this at init, not in the first invocation."""
    Image.init()
    return tuple(name for name in RASTER_FORMATS if name in Image.OPEN)


def decode(data: bytes, spec: InputSpec, limits: Limits = Limits()) -> Image.Image:
    """Decode, orient, convert and resize ``data`` to the model's size and mode."""
    if not data:
        raise ImageError("EmptyImage", "the object is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageError("ImageTooLarge", f"{len(data)} bytes is over the limit of {limits.max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=open_formats())
            _check_pixels(image, limits)
            full_size = image.size
            # JPEG can decode at 1/2, 1/4, 1/8 size directly: much faster for photos, and less
            # memory. Both sides at least the model's larger side, whatever the EXIF orientation.
            side = max(spec.width, spec.height)
            image.draft(spec.mode, (side, side))
            _check_decode_memory(image, full_size, limits)
            image.load()
            transpose = _TRANSPOSE.get(_orientation(image))
            extrema = image.getextrema() if image.mode in _HIGH_BIT_MODES else None
            image = _shrink(image, spec, transpose in _SWAPS_SIDES)
            if transpose is not None:
                image = image.transpose(transpose)
            image = _to_mode(image, spec.mode, extrema)
            return _resize(image, spec)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(
            "NotAnImage",
            f"the data is not an image in a format this function reads ({', '.join(RASTER_FORMATS)})",
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("ImageTooLarge", str(exc)) from exc
    except MemoryError as exc:
        raise ImageError(
            "ImageTooLarge", "decoding the image ran out of memory (see MAX_DECODE_BYTES)"
        ) from exc
    except OSError as exc:
        raise ImageError("CorruptImage", f"the image could not be decoded: {exc}") from exc
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageError("UnsupportedImage", f"the image could not be decoded: {exc}") from exc
    except Exception as exc:  # a plugin tripping over malformed data is the data's fault
        raise ImageError(
            "CorruptImage", f"the image could not be decoded: {type(exc).__name__}: {exc}"
        ) from exc


def _check_pixels(image: Image.Image, limits: Limits) -> None:
    pixels = image.width * image.height
    if pixels > limits.max_pixels:
        raise ImageError(
            "ImageTooLarge",
            f"{image.width}x{image.height} = {pixels} pixels is over the limit of {limits.max_pixels} pixels",
        )


def decode_bytes(image: Image.Image, full_size: tuple[int, int] | None = None) -> int:
    """The memory decoding ``image`` takes, from its header (after ``draft``): width x height
    x bytes per pixel of its mode, times the copies its decoder makes, plus what the decoder
    buffers — a progressive JPEG's coefficients for every pixel of the full-size image, a
    TIFF's largest strip or tile."""
    width, height = image.size
    needed = width * height * _BYTES_PER_PIXEL.get(image.mode, 4) * _DECODER_COPIES.get(image.format or "", 1)
    if image.format in ("JPEG", "MPO") and image.info.get("progressive"):
        needed += _jpeg_coefficient_bytes(image, full_size or image.size)
    if image.format == "TIFF":
        needed += _tiff_block_bytes(image)
    return needed


def _jpeg_coefficient_bytes(image: Image.Image, size: tuple[int, int]) -> int:
    """libjpeg keeps 2 bytes per DCT coefficient of the whole image, whatever the draft scale:
    2 bytes per pixel per component, less for subsampled components."""
    layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * 4  # (id, h, v, table) per component
    h_max = max(layer[1] for layer in layers) or 1
    v_max = max(layer[2] for layer in layers) or 1
    share = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    return math.ceil(size[0] * size[1] * 2 * share)


def _tiff_block_bytes(image: Image.Image) -> int:
    """libtiff decodes a whole strip or tile at a time: one can be as large as the image."""
    tags = getattr(image, "tag_v2", {})
    width, height = image.size
    if 322 in tags and 323 in tags:  # TileWidth, TileLength
        area = int(tags[322]) * int(tags[323])
    else:
        area = width * min(int(tags.get(278, height)), height)  # RowsPerStrip (default: all)
    bits = tags.get(258, (8,))  # BitsPerSample
    raw = math.ceil(sum(bits if isinstance(bits, tuple) else (bits,)) / 8)
    return area * max(raw, 4)


def _check_decode_memory(image: Image.Image, full_size: tuple[int, int], limits: Limits) -> None:
    needed = decode_bytes(image, full_size)
    if needed > limits.decode_budget:
        raise ImageError(
            "ImageTooLarge",
            f"decoding this {image.width}x{image.height} {image.format} image ({image.mode}) needs about "
            f"{needed} bytes, over the decode budget of {limits.decode_budget} bytes (MAX_DECODE_BYTES)",
        )


def _orientation(image: Image.Image) -> int | None:
    """The EXIF orientation; None when there is none or the EXIF data cannot be read (the
    pixels may still be fine)."""
    try:
        return image.getexif().get(ExifTags.Base.Orientation)
    except Exception:  # corrupt EXIF: decode the image as stored
        return None


def reduce_factor(size: tuple[int, int], spec: InputSpec, swapped: bool = False) -> int:
    """The largest box-reduction that keeps both sides at least REDUCING_GAP times the
    model's (the model's sides swapped when the EXIF orientation turns the image)."""
    target_w, target_h = (spec.height, spec.width) if swapped else (spec.width, spec.height)
    return max(1, int(min(size[0] / (target_w * REDUCING_GAP), size[1] / (target_h * REDUCING_GAP))))


def _shrink(image: Image.Image, spec: InputSpec, swapped: bool) -> Image.Image:
    factor = reduce_factor(image.size, spec, swapped)
    if factor == 1:
        return image
    if image.mode not in _STRIP_MODES:
        return image.reduce(factor)
    # Palettes are converted to the model's mode (what they become anyway), 16-bit to 32-bit.
    return _reduce_in_strips(image, _STRIP_MODES[image.mode] or spec.mode, factor)


def _reduce_in_strips(image: Image.Image, work_mode: str, factor: int) -> Image.Image:
    """``image.convert(work_mode).reduce(factor)`` without a full-size converted copy."""
    width, height = image.size
    rows = factor * max(1, STRIP_PIXELS // (width * factor))
    out = Image.new(work_mode, (math.ceil(width / factor), math.ceil(height / factor)))
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(top + rows, height))).convert(work_mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def _to_mode(image: Image.Image, mode: str, extrema: tuple | None) -> Image.Image:
    if image.mode == mode:
        return image
    if image.mode in _HIGH_BIT_MODES:
        image = _rescale_to_8_bits(image, extrema)
    return image.convert(mode)


def _rescale_to_8_bits(image: Image.Image, extrema: tuple | None) -> Image.Image:
    """16-bit, 32-bit and float greyscale (already small) stretched to 0..255 by the full
    image's extrema, in place in one float32 array; NaN and infinities become 0."""
    array = np.array(image, dtype=np.float32)  # a writable copy
    low, high = (float(value) for value in extrema) if extrema else (math.nan, math.nan)
    if not (math.isfinite(low) and math.isfinite(high)):  # extrema of the finite values only
        finite = array[np.isfinite(array)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scale = 255.0 / ((high - low) or 1.0)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and infinities are zeroed next
        array *= np.float32(scale)  # scaled first, then shifted: no overflow for finite values
        array -= np.float32(low * scale)
    array[~np.isfinite(array)] = 0.0
    np.clip(array, 0.0, 255.0, out=array)
    return Image.fromarray(np.rint(array, out=array).astype(np.uint8), "L")


def _resize(image: Image.Image, spec: InputSpec) -> Image.Image:
    size = (spec.width, spec.height)
    if spec.resize == "center-crop":
        return ImageOps.fit(image, size, Image.Resampling.BILINEAR)
    if image.size == size:
        return image
    return image.resize(size, Image.Resampling.BILINEAR)


def to_array(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """A float32 batch of one: shape (1, height, width, channels), scaled."""
    factor, offset = SCALES[spec.scale]
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    return (array * np.float32(factor) + np.float32(offset))[np.newaxis, ...]


def preprocess(data: bytes, spec: InputSpec, limits: Limits = Limits()) -> np.ndarray:
    return to_array(decode(data, spec, limits), spec)
