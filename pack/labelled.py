"""Sample images, with their labels when the user gives them: the one place that reads them.

Three layouts, wherever lambdapack takes sample images:

- **class folders** (``kind="folders"``): a folder with one subfolder per class, images
  inside each (at any depth). The subfolder names, sorted, are the labels: the convention
  of Keras's ``image_dataset_from_directory`` (and torchvision's ``ImageFolder``), so a
  model trained from those folders has its outputs in that order. Images directly in the
  root next to class folders are an error (which class are they?), and so is a class
  folder holding no image (the class would still take an output index).
- **a CSV file** (``kind="csv"``): rows ``file,label``, an optional ``file,label`` header;
  paths relative to the CSV's folder. Its labels are the distinct labels, sorted.
- **a flat folder** (``kind="flat"``): the images directly in it, unlabelled (as before).

Hidden files and folders (a leading dot: ``.DS_Store``, macOS's ``._x.png``) are skipped.
A file is an image by its suffix (``images.is_image``, ``images.images_under``). Any problem is one
``InputError`` line naming the folder or the CSV row; names are shown through
``render.visible`` (they are the user's text, never markup).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .images import IMAGE_SUFFIXES, images_under, is_image
from .render import visible

KINDS = ("folders", "csv", "flat")
CSV_HEADER = ("file", "label")


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str | None  # None: unlabelled (a flat folder)


@dataclass(frozen=True)
class SampleSet:
    root: Path  # the folder, or the CSV file, given
    samples: tuple[Sample, ...]
    labels: tuple[str, ...]  # sorted class names, () when unlabelled
    kind: str  # "folders" | "csv" | "flat"

    @property
    def labelled(self) -> bool:
        return bool(self.labels)

    @property
    def paths(self) -> list[Path]:
        return [sample.path for sample in self.samples]

    def take(self, limit: int) -> SampleSet:
        """At most ``limit`` samples, every class represented as evenly as it can be: one of
        each label in turn (labels sorted, samples in their order). Unlabelled: the first."""
        if len(self.samples) <= limit:
            return self
        if not self.labelled:
            return SampleSet(self.root, self.samples[:limit], self.labels, self.kind)
        queues = [[s for s in self.samples if s.label == label] for label in self.labels]
        chosen: list[Sample] = []
        depth = 0
        while len(chosen) < limit:
            chosen.extend(queue[depth] for queue in queues if depth < len(queue))
            depth += 1
        kept = set(chosen[:limit])
        return SampleSet(self.root, tuple(s for s in self.samples if s in kept), self.labels, self.kind)


def read_samples(where: Path) -> SampleSet:
    """The sample images at ``where``: class folders, a ``file,label`` CSV, or a flat folder."""
    if not where.exists():
        raise InputError(f"samples {_name(where)} do not exist")
    if where.is_file():
        if where.suffix.lower() != ".csv":
            raise InputError(
                f"samples {_name(where)} is a file, not a folder or a .csv",
                "Give a folder of images, a folder with one subfolder of images per class, or a "
                "CSV of file,label rows.",
            )
        return _read_csv(where)
    return _read_folder(where)


def _name(path: Path) -> str:
    return visible(path)


def _visible_children(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise InputError(f"samples folder {_name(folder)} cannot be read: {exc.strerror or exc}") from exc


def _read_folder(folder: Path) -> SampleSet:
    children = _visible_children(folder)
    loose = [p for p in children if p.is_file() and is_image(p)]
    classes = {p.name: images_under(p) for p in children if p.is_dir()}
    with_images = {name: images for name, images in classes.items() if images}
    if loose and with_images:
        raise InputError(
            f"samples folder {_name(folder)} holds images ({_name(loose[0].name)}, …) next to class "
            f"folders ({_name(', '.join(sorted(with_images)[:3]))}, …)",
            "Labelled samples: one subfolder per class and every image inside one (the layout of "
            "Keras's image_dataset_from_directory). Unlabelled samples: images only, no subfolders "
            "of images.",
        )
    if loose:
        return SampleSet(folder, tuple(Sample(p, None) for p in loose), (), "flat")
    if not with_images:
        raise InputError(
            f"samples folder {_name(folder)} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}), "
            "directly or in class subfolders"
        )
    empty = sorted(name for name, images in classes.items() if not images)
    if empty:
        raise InputError(
            f"class folder {_name(folder / empty[0])} holds no images"
            + (f" (nor do {len(empty) - 1} other class folders)" if len(empty) > 1 else ""),
            "Each subfolder is a class and takes an output of the model (sorted by name): add "
            "images of that class, or remove the folder if the model has no such class.",
        )
    labels = tuple(sorted(classes))
    samples = tuple(Sample(path, label) for label in labels for path in classes[label])
    return SampleSet(folder, samples, labels, "folders")


def _read_csv(path: Path) -> SampleSet:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"samples CSV {_name(path)} cannot be read: {exc.strerror or exc}") from exc
    try:
        content = data.decode("utf-8-sig")  # a byte-order mark, as spreadsheets write it
    except UnicodeDecodeError as exc:
        row = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"samples CSV {_name(path)} is not UTF-8 text (row {row}, byte {exc.start})",
            "Save it as UTF-8 CSV.",
        ) from exc
    try:
        rows = list(csv.reader(io.StringIO(content, newline="")))
    except csv.Error as exc:
        raise InputError(f"samples CSV {_name(path)} is not a valid CSV: {exc}") from exc
    base = path.parent
    samples: list[Sample] = []
    first_row: dict[Path, int] = {}
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if not samples and tuple(c.lower() for c in cells) == CSV_HEADER:
            continue
        where = f"samples CSV {_name(path)} row {number}"
        if len(cells) != 2 or not cells[0] or not cells[1]:
            raise InputError(
                f"{where} is not file,label: {_name(','.join(row))}",
                "Write one image a row: its path (relative to the CSV's folder) and its label.",
            )
        file = (base / cells[0]).resolve() if not Path(cells[0]).is_absolute() else Path(cells[0])
        if not file.is_file():
            raise InputError(f"{where} names {_name(cells[0])}, which is not a file in {_name(base)}")
        if not is_image(file):
            raise InputError(
                f"{where} names {_name(cells[0])}, which is not an image "
                f"({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
        if file in first_row:
            raise InputError(f"{where} names {_name(cells[0])} again (first on row {first_row[file]})")
        first_row[file] = number
        samples.append(Sample(file, cells[1]))
    if not samples:
        raise InputError(f"samples CSV {_name(path)} names no images", "Write file,label rows.")
    labels = tuple(sorted({sample.label for sample in samples if sample.label is not None}))
    return SampleSet(path, tuple(samples), labels, "csv")
