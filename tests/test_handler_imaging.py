import io

import numpy as np
import pytest
from PIL import Image

from lambdapack_handler.config import InputSpec
from lambdapack_handler.imaging import RASTER_FORMATS, ImageError, Limits, decode, open_formats, preprocess
from lambdapack_handler.inference import to_probabilities, top_k

SPEC = InputSpec(height=32, width=32, channels=1, scale="0..1")


def png(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


NOISE_PNG = png(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))


def test_rgb_image_becomes_a_scaled_greyscale_batch():
    batch = preprocess(png(Image.new("RGB", (64, 48), (255, 255, 255))), SPEC)
    assert batch.shape == (1, 32, 32, 1) and batch.dtype == np.float32
    assert np.allclose(batch, 1.0)


def test_minus_one_to_one_scaling():
    spec = InputSpec(height=8, width=8, channels=3, scale="-1..1")
    batch = preprocess(png(Image.new("RGB", (8, 8), (0, 0, 0))), spec)
    assert batch.shape == (1, 8, 8, 3) and np.allclose(batch, -1.0)


def test_exif_orientation_is_applied():
    # A 40x20 (wide) JPEG whose EXIF says "rotate 90": it must be decoded as 20x40 (tall).
    image = Image.new("L", (40, 20), 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = png(image, "JPEG", exif=exif.tobytes())
    spec = InputSpec(height=40, width=20, channels=1, resize="stretch")
    decoded = decode(data, InputSpec(height=1000, width=1000, channels=1, resize="center-crop"))
    assert decoded.size == (1000, 1000)
    assert Image.open(io.BytesIO(data)).size == (40, 20)
    from PIL import ImageOps

    assert ImageOps.exif_transpose(Image.open(io.BytesIO(data))).size == (20, 40)
    assert decode(data, spec).size == (20, 40)


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", "EmptyImage"),
        (b"this is not an image", "NotAnImage"),
        (NOISE_PNG[: len(NOISE_PNG) // 2], "CorruptImage"),
    ],
)
def test_bad_images_are_permanent_errors_with_a_kind(data, kind):
    with pytest.raises(ImageError) as caught:
        preprocess(data, SPEC)
    assert caught.value.kind == kind


def test_decompression_bomb_is_refused_from_the_header():
    bomb = png(Image.new("L", (5000, 5000)), optimize=True)  # tiny file, 25 Mpixel
    assert len(bomb) < 100_000
    with pytest.raises(ImageError) as caught:
        preprocess(bomb, SPEC, Limits(max_pixels=10_000_000))
    assert caught.value.kind == "ImageTooLarge" and "pixels" in str(caught.value)


def test_too_many_bytes_is_refused_before_decoding():
    with pytest.raises(ImageError, match="over the limit"):
        preprocess(b"x" * 2048, SPEC, Limits(max_bytes=1024))


def test_sixteen_bit_greyscale_is_rescaled():
    array = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    batch = preprocess(png(Image.fromarray(array)), SPEC)
    assert 0.0 <= batch.min() < 0.1 and 0.9 < batch.max() <= 1.0


def test_probabilities_logits_and_top_k():
    probs = np.array([0.1, 0.7, 0.2])
    assert np.allclose(to_probabilities(probs, "auto"), probs)
    logits = np.array([1.0, 3.0, 2.0])
    soft = to_probabilities(logits, "auto")
    assert abs(soft.sum() - 1) < 1e-9 and soft.argmax() == 1
    assert top_k(soft, 2)[0][0] == 1 and [i for i, _ in top_k(soft, 5)] == [1, 2, 0]
    assert [i for i, _ in top_k(np.array([0.5, 0.5]), 2)] == [0, 1]


def test_the_formats_pillow_opens_are_worked_out_once():
    formats = open_formats()
    assert formats is open_formats()  # cached: load_classifier calls it at init
    assert {"JPEG", "PNG"} <= set(formats) <= set(RASTER_FORMATS)
    assert "EPS" not in formats
