"""The images in a folder, by their suffix (what ``upload`` and ``estimate`` send)."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

# What counts as an image file, by its suffix (upload, estimate, sample images).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def other_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that ``image_files`` leaves out (by their suffix)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES)
