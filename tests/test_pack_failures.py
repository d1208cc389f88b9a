"""What a user sees when a pack cannot succeed: a clear message, a distinct
exit code, and the previous function.zip and report.json left untouched."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from .conftest import run_cli

pytestmark = pytest.mark.functional


@pytest.fixture
def previous_output(tmp_path):
    out = tmp_path / "dist"
    out.mkdir()
    (out / "function.zip").write_bytes(b"previous good zip")
    (out / "report.json").write_text('{"previous": true}')
    return out


def assert_untouched(out: Path) -> None:
    assert (out / "function.zip").read_bytes() == b"previous good zip"
    assert json.loads((out / "report.json").read_text()) == {"previous": True}
    # (and the folder's lock, which a second pack into it waits on)
    assert sorted(p.name for p in out.iterdir()) == [".lambdapack.lock", "function.zip", "report.json"]


def test_a_wheel_whose_tag_lies_about_glibc_is_refused(sample_model, cache_dir, previous_output):
    # tflite-runtime 2.14.0 is tagged manylinux2014 (glibc 2.17) but needs GLIBC_2.29.
    proc = run_cli(
        "pack",
        str(sample_model),
        "--out",
        str(previous_output),
        "--require",
        "tflite-runtime==2.14.0",
        "--python",
        "3.11",
        cache=cache_dir,
    )
    assert proc.returncode == 6, proc.stderr
    assert "GLIBC_2.29" in proc.stderr
    assert "tflite_runtime/" in proc.stderr
    assert "python3.11 (Amazon Linux 2) has glibc 2.26" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert_untouched(previous_output)


def big_wheel(folder: Path, size: int) -> Path:
    """A real wheel carrying ``size`` bytes of incompressible data."""
    import os

    wheel = folder / "bigpkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("bigpkg/__init__.py", "")
        with archive.open("bigpkg/blob.bin", "w", force_zip64=True) as blob:
            for _ in range(size // (8 << 20) + 1):
                blob.write(os.urandom(8 << 20))
        archive.writestr(
            "bigpkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: bigpkg\nVersion: 1.0\n"
        )
        archive.writestr(
            "bigpkg-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr("bigpkg-1.0.dist-info/RECORD", "")
    return wheel


def test_a_set_over_the_unzipped_limit_is_refused_with_what_to_do(
    sample_model, cache_dir, previous_output, tmp_path
):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    big_wheel(wheels, 270 * 1024 * 1024)
    proc = run_cli(
        "pack",
        str(sample_model),
        "--out",
        str(previous_output),
        "--require",
        "bigpkg",
        "--find-links",
        str(wheels),
        cache=cache_dir,
    )
    assert proc.returncode == 5, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "over Lambda's limit of 262,144,000 bytes" in message
    assert "Heaviest packages: bigpkg" in message
    assert "--quantize" in message and "S3" in message
    assert_untouched(previous_output)


def test_no_wheel_for_the_target_is_a_clear_install_error(sample_model, cache_dir, previous_output):
    proc = run_cli(
        "pack",
        str(sample_model),
        "--out",
        str(previous_output),
        "--python",
        "3.12",
        "--require",
        "tflite-runtime==2.14.0",
        cache=cache_dir,
    )
    assert proc.returncode == 3, proc.stderr
    assert "found no wheel of tflite-runtime==2.14.0" in " ".join(proc.stderr.split())
    assert_untouched(previous_output)


def test_bad_model_config_is_an_input_error(sample_model, tmp_path, cache_dir):
    config = tmp_path / "bad.json"
    config.write_text('{"input": {"scale": "0..2"}}')
    proc = run_cli(
        "pack", str(sample_model), "--config", str(config), "--out", str(tmp_path / "o"), cache=cache_dir
    )
    assert proc.returncode == 2
    assert 'input.scale: "0..2" is not one of "0..1", "-1..1", "0..255"' in proc.stderr


def test_unknown_model_format_is_an_input_error(tmp_path, cache_dir):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"x")
    proc = run_cli("pack", str(model), "--out", str(tmp_path / "o"), cache=cache_dir)
    assert proc.returncode == 2
    assert "unknown model format '.onnx'" in proc.stderr


def test_arm64_litert_for_amazon_linux_2_is_refused(sample_model, cache_dir, tmp_path):
    # ai-edge-litert 1.4.0 for aarch64 is tagged manylinux_2_17 but needs GLIBC_2.30.
    proc = run_cli(
        "pack",
        str(sample_model),
        "--out",
        str(tmp_path),
        "--python",
        "3.11",
        "--arch",
        "arm64",
        cache=cache_dir,
    )
    assert proc.returncode == 6, proc.stderr
    message = " ".join(proc.stderr.split())
    assert "GLIBC_2.30" in message and "ai_edge_litert/" in message
    assert "--python 3.12" in message
    assert not (tmp_path / "function.zip").exists()
