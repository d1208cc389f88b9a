"""Which files are images, and the images in a folder: the one rule for ``upload``,
``estimate`` and sample images (``labelled.read_samples``).

A file is an image by its suffix. Hidden files and folders (a leading dot: ``.DS_Store``,
macOS's ``._x.png`` resource forks, ``.git``) are never images.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

# What counts as an image file, by its suffix (upload, estimate, sample images).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def images_under(folder: Path) -> list[Path]:
    """Every image in ``folder`` and below, hidden files and folders skipped, sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image(p) and not _hidden(p, folder))


def image_files(folder: Path) -> list[Path]:
    """``images_under``; an ``InputError`` when there are none."""
    files = images_under(folder)
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files


def other_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that ``image_files`` leaves out: not images by their suffix, or hidden."""
    kept = set(images_under(folder))
    return sorted(p for p in folder.rglob("*") if p.is_file() and p not in kept)
