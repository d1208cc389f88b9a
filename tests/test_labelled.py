"""Reading sample images with their labels (``lambdapack.labelled``): class folders, a
``file,label`` CSV, a flat folder; real files in tmp_path, every bad input one InputError."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lambdapack.errors import InputError
from lambdapack.labelled import Sample, read_samples


def image(path: Path, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), colour).save(path)
    return path


def test_class_folders_are_labels_sorted_and_hidden_files_are_skipped(tmp_path):
    root = tmp_path / "data"
    image(root / "dots" / "b.png")
    image(root / "dots" / "a.jpg")
    image(root / "checker" / "nested" / "c.png")  # any depth inside a class folder
    image(root / "Stripes" / "d.png")  # sorted as Python (and Keras) sort: uppercase first
    image(root / "dots" / "._a.png")  # macOS resource fork: hidden
    image(root / ".cache" / "x.png")  # a hidden folder is no class
    (root / "dots" / "notes.txt").write_text("not an image")
    (root / "README.md").write_text("a file that is not an image, beside the classes")

    found = read_samples(root)
    assert found.kind == "folders" and found.labelled and found.root == root
    assert found.labels == ("Stripes", "checker", "dots")
    assert found.samples == (
        Sample(root / "Stripes" / "d.png", "Stripes"),
        Sample(root / "checker" / "nested" / "c.png", "checker"),
        Sample(root / "dots" / "a.jpg", "dots"),
        Sample(root / "dots" / "b.png", "dots"),
    )


def test_a_flat_folder_is_unlabelled_samples_as_before(tmp_path):
    image(tmp_path / "b.png")
    image(tmp_path / "a.JPG")
    (tmp_path / "empty-subfolder").mkdir()  # holds no images: not a class
    image(tmp_path / ".hidden.png")
    found = read_samples(tmp_path)
    assert found.kind == "flat" and not found.labelled and found.labels == ()
    assert found.samples == (Sample(tmp_path / "a.JPG", None), Sample(tmp_path / "b.png", None))


def test_images_beside_class_folders_are_refused(tmp_path):
    image(tmp_path / "loose.png")
    image(tmp_path / "cat" / "1.png")
    with pytest.raises(InputError, match=r"holds images \(loose.png, …\) next to class folders \(cat, …\)"):
        read_samples(tmp_path)


def test_a_class_folder_without_images_and_a_folder_without_any_are_refused(tmp_path):
    image(tmp_path / "cat" / "1.png")
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "readme.txt").write_text("no image")
    with pytest.raises(InputError, match=r"class folder .*dog holds no images") as caught:
        read_samples(tmp_path)
    assert "takes an output of the model" in caught.value.hint

    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    with pytest.raises(InputError, match="holds no images"):
        read_samples(empty)
    with pytest.raises(InputError, match="do not exist"):
        read_samples(tmp_path / "missing")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InputError, match=r"is a file, not a folder or a \.csv"):
        read_samples(tmp_path / "a.txt")


def test_a_csv_names_files_relative_to_its_folder_with_or_without_a_header(tmp_path):
    image(tmp_path / "img" / "1.png")
    image(tmp_path / "img" / "2.png")
    image(tmp_path / "3.png")
    csv = tmp_path / "labels.csv"
    csv.write_text("\ufefffile,label\nimg/1.png,dog\n\nimg/2.png, cat\n3.png,dog\n", encoding="utf-8")
    found = read_samples(csv)
    assert found.kind == "csv" and found.root == csv and found.labels == ("cat", "dog")
    assert found.samples == (
        Sample(tmp_path / "img" / "1.png", "dog"),
        Sample(tmp_path / "img" / "2.png", "cat"),
        Sample(tmp_path / "3.png", "dog"),
    )
    bare = tmp_path / "bare.csv"
    bare.write_text("img/1.png,dog\n")
    assert read_samples(bare).samples == (Sample(tmp_path / "img" / "1.png", "dog"),)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("file,label\nimg/1.png,dog\nmissing.png,cat\n", r"row 3 names missing.png, which is not a file"),
        ("img/1.png\n", r"row 1 is not file,label: img/1.png"),
        ("img/1.png,dog,extra\n", r"row 1 is not file,label"),
        ("img/1.png,\n", r"row 1 is not file,label"),
        ("notes.txt,dog\n", r"row 1 names notes.txt, which is not an image"),
        ("img/1.png,dog\nimg/../img/1.png,cat\n", r"row 2 names img/../img/1.png again \(first on row 1\)"),
        ("file,label\n", r"names no images"),
    ],
)
def test_bad_csv_rows_are_one_line_naming_the_row(tmp_path, content, message):
    image(tmp_path / "img" / "1.png")
    (tmp_path / "notes.txt").write_text("x")
    csv = tmp_path / "labels.csv"
    csv.write_text(content)
    with pytest.raises(InputError, match=message):
        read_samples(csv)


def test_a_csv_that_is_not_utf8_is_refused(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_bytes("file,label\nbild.png,K\xe4se\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"is not UTF-8 text \(row 2, byte 21\)"):
        read_samples(csv)


def test_names_are_shown_escaped_never_as_terminal_controls(tmp_path):
    image(tmp_path / "cat" / "1.png")
    (tmp_path / "evil\u202e\x1b[31m").mkdir()
    with pytest.raises(InputError) as caught:
        read_samples(tmp_path)
    assert "\u202e" not in str(caught.value) and "\x1b" not in str(caught.value)
    assert "\\u202e\\x1b[31m" in str(caught.value)


def test_take_keeps_every_class_represented(tmp_path):
    for index in range(6):
        image(tmp_path / "a" / f"{index}.png")
    image(tmp_path / "b" / "0.png")
    image(tmp_path / "c" / "0.png")
    image(tmp_path / "c" / "1.png")
    found = read_samples(tmp_path)
    taken = found.take(5)
    assert [(s.label, s.path.name) for s in taken.samples] == [
        ("a", "0.png"),
        ("a", "1.png"),
        ("b", "0.png"),
        ("c", "0.png"),
        ("c", "1.png"),
    ]
    assert taken.labels == found.labels and found.take(9) is found
