"""Turn untrusted image bytes into the model's input array, with limits.

Refused with an ``ImageError`` (a permanent, per-image failure): more bytes
than ``max_bytes``, more pixels than ``max_pixels`` (decompression bombs are
caught from the header, before any pixel is decoded), data Pillow cannot
identify, truncated files. EXIF orientation is applied, then the image is
converted to the model's channels, resized and scaled as its config says.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import SCALES, InputSpec

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000


class ImageError(ValueError):
    """A permanent problem with one image; ``kind`` names it for result objects."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Limits:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS


def decode(data: bytes, spec: InputSpec, limits: Limits = Limits()) -> Image.Image:
    """Decode, orient, convert and resize ``data`` to the model's size and mode."""
    if not data:
        raise ImageError("EmptyImage", "the object is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageError("ImageTooLarge", f"{len(data)} bytes is over the limit of {limits.max_bytes} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            pixels = image.width * image.height
            if pixels > limits.max_pixels:
                raise ImageError(
                    "ImageTooLarge",
                    f"{image.width}x{image.height} = {pixels} pixels is over the limit "
                    f"of {limits.max_pixels} pixels",
                )
            # JPEG can decode at 1/2, 1/4, 1/8 size directly: much faster for photos.
            image.draft(spec.mode, (spec.width, spec.height))
            image.load()
            image = ImageOps.exif_transpose(image)
            image = _to_mode(image, spec.mode)
            return _resize(image, spec)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError("NotAnImage", "the data is not an image format Pillow can read") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError("ImageTooLarge", str(exc)) from exc
    except OSError as exc:
        raise ImageError("CorruptImage", f"the image could not be decoded: {exc}") from exc
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageError("UnsupportedImage", f"the image could not be decoded: {exc}") from exc


def _to_mode(image: Image.Image, mode: str) -> Image.Image:
    if image.mode == mode:
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: rescale to 8 bits before converting.
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        span = (high - low) or 1.0
        image = Image.fromarray(((array - low) * (255.0 / span)).astype(np.uint8), "L")
    return image.convert(mode)


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
