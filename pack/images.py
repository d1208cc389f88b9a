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


def images_in(paths: list[Path]) -> list[Path]:
    """The images named on a command line: a file as it is, a folder's images (``image_files``,
    sorted, its subfolders included), in the order given; the same file once."""
    found: list[Path] = []
    for path in paths:
        found.extend(image_files(path) if path.is_dir() else [path])
    return list(dict.fromkeys(found))
