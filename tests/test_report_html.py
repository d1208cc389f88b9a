"""``lambdapack report --html``: the squarified layout on its own, the treemap of a zip made
here, and the command's output and exit codes with and without the page."""

from __future__ import annotations

import itertools
import json
import random
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from lambdapack.packing.report import zip_files, zip_report
from lambdapack.pages import MAP_H, MAP_W, Box, model_facts, package_colours, report_page, squarify, treemap
from lambdapack.render import size

from .conftest import run_cli

EPS = 1e-6
MANY = (lambda rng: [rng.randint(1, 10_000_000) for _ in range(400)])(random.Random(15))


def make_zip(path: Path, elf: bool = False) -> Path:
    """A small zip laid out like a packed one: two distributions with their RECORD, loose
    modules, the handler and the model, and empty files."""
    rng = random.Random(15)
    files = {
        "numpy/__init__.py": b"# numpy\n" * 250,
        "numpy/core/__init__.py": b"",
        "numpy/core/_multiarray_umath.so": rng.randbytes(300_000),
        "numpy/linalg/_umath_linalg.so": rng.randbytes(90_000),
        "PIL/Image.py": b"# Image\n" * 6_000,
        "PIL/_imaging.so": rng.randbytes(120_000),
        "PIL/py.typed": b"",
        "six.py": b"# six\n" * 5_000,
        "index.py": b"from lambdapack_handler import handler\n" * 20,
        "lambdapack_handler/__init__.py": b"# handler\n" * 50,
        "model/model.tflite": rng.randbytes(80_000),
        "model/config.json": b'{"name": "shapes", "labels": ["a", "b"]}',
    }
    records = {
        "numpy-2.2.6.dist-info": [name for name in files if name.startswith("numpy/")],
        "pillow-11.0.0.dist-info": [name for name in files if name.startswith("PIL/")],
    }
    for dist, names in records.items():
        files[f"{dist}/METADATA"] = b"Metadata-Version: 2.1\n"
        files[f"{dist}/RECORD"] = "".join(f"{name},,\n" for name in [*names, f"{dist}/METADATA"]).encode()
    if elf:
        files["fast/_speed.cpython-311-x86_64-linux-gnu.so"] = Path(shutil.which("true")).read_bytes()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


# --- the layout ---------------------------------------------------------------------------------


def overlap(a: Box, b: Box) -> float:
    width = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    height = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(width, 0.0) * max(height, 0.0)


def assert_tiles(boxes: list[Box], sizes: list[float], canvas: Box) -> None:
    """Inside the canvas, no two overlapping, areas proportional to sizes, the canvas covered."""
    assert len(boxes) == len(sizes)
    for box in boxes:
        assert box.w >= 0 and box.h >= 0
        assert box.x >= canvas.x - EPS and box.y >= canvas.y - EPS
        assert box.x + box.w <= canvas.x + canvas.w + EPS and box.y + box.h <= canvas.y + canvas.h + EPS
    for a, b in itertools.combinations(boxes, 2):
        assert overlap(a, b) <= EPS * canvas.area
    per_unit = canvas.area / sum(sizes)
    for box, value in zip(boxes, sizes, strict=True):
        assert box.area == pytest.approx(value * per_unit, rel=1e-9, abs=1e-9)
    assert sum(box.area for box in boxes) == pytest.approx(canvas.area)


@pytest.mark.parametrize(
    "sizes",
    [
        [6, 6, 4, 3, 2, 2, 1],  # the paper's example
        [1],
        [5, 5, 5, 5],
        [1, 1_000_000, 3, 70_000, 2, 2],  # any order, one huge
        MANY,
    ],
    ids=["paper", "one", "equal", "unsorted", "many"],
)
@pytest.mark.parametrize("canvas", [Box(0, 0, 1200, 720), Box(10, 20, 30, 400)], ids=["wide", "tall"])
def test_squarify_tiles_the_canvas_in_proportion(sizes, canvas):
    assert_tiles(squarify(sizes, canvas), sizes, canvas)


def test_squarify_keeps_the_given_order_and_makes_squarish_boxes():
    boxes = squarify([6, 6, 4, 3, 2, 2, 1], Box(0, 0, 6, 4))
    # The paper's result: the two 6s side by side in a 3 x 2 strip at the left.
    corners = [(b.x, b.y, b.w, b.h) for b in boxes[:2]]
    assert corners == [pytest.approx((0, 0, 3, 2)), pytest.approx((0, 2, 3, 2))]
    worst = max(max(b.w / b.h, b.h / b.w) for b in boxes)
    assert worst < 3


def test_squarify_refuses_sizes_that_have_no_area():
    assert squarify([], Box(0, 0, 10, 10)) == []
    with pytest.raises(ValueError):
        squarify([3, 0], Box(0, 0, 10, 10))


def test_the_treemap_nests_files_inside_their_package(tmp_path):
    files = zip_files(make_zip(tmp_path / "function.zip"))
    canvas = Box(0, 0, MAP_W, MAP_H)
    tiles = treemap(files, canvas)
    nonempty = [f for f in files if f.unzipped]
    assert sum(len(members) for _, members in tiles) == len(nonempty)
    assert_tiles([p.box for p, _ in tiles], [p.unzipped for p, _ in tiles], canvas)
    for package, members in tiles:
        assert package.unzipped == sum(f.unzipped for f in nonempty if f.package == package.package)
        assert_tiles([m.box for m in members], [m.unzipped for m in members], package.box)
        # Across the whole map too, each file's area is its share of the zip.
        for member in members:
            assert member.box.area == pytest.approx(
                canvas.area * member.unzipped / sum(f.unzipped for f in files)
            )


# --- the page -----------------------------------------------------------------------------------


def test_the_page_shows_every_file_by_package_with_its_size(tmp_path):
    path = make_zip(tmp_path / "function.zip")
    report = zip_report(path)
    page = report_page(report, zip_files(path))
    with zipfile.ZipFile(path) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    rects = dict(re.findall(r'<rect class="file" data-path="([^"]+)" data-bytes="(\d+)"', page))
    assert rects == {name: str(n) for name, n in sizes.items() if n}
    # Each tooltip: the path, then its size as the terminal writes it.
    assert f"<title>numpy/core/_multiarray_umath.so\n{size(300_000)} (300,000 bytes) unzipped" in page
    packages = dict(re.findall(r'<g class="package" data-package="([^"]+)" data-bytes="(\d+)"', page))
    assert packages == {row.name: str(row.unzipped) for row in report.packages}
    assert set(packages) == {"numpy", "pillow", "six", "handler", "model"}
    assert "2 empty files have no area" in page and "uncompressed (unzipped) size" in page
    assert f'<b data-total="unzipped" data-bytes="{report.zip.unzipped_bytes}">' in page
    for limit in report.limits:
        assert (
            f'data-limit="{limit.name}" data-value="{limit.value}" data-limit-bytes="{limit.limit}"' in page
        )
    for forbidden in ("<script", "src=", "href=", "@import", "url(", "<link", "http"):
        assert forbidden not in page.lower()


def test_report_html_keeps_the_output_and_exit_code(tmp_path):
    plain = make_zip(tmp_path / "plain.zip")
    foreign = make_zip(tmp_path / "foreign.zip", elf=True)  # an x86_64 extension, checked for arm64
    for zip_path, options, code in ((plain, (), 0), (foreign, ("--python", "3.11", "--arch", "arm64"), 6)):
        page = tmp_path / "pages" / f"{zip_path.stem}.html"
        without = run_cli("report", str(zip_path), "--json", *options)
        with_page = run_cli("report", str(zip_path), "--json", *options, "--html", str(page))
        assert without.returncode == with_page.returncode == code, with_page.stderr
        assert json.loads(with_page.stdout) == json.loads(without.stdout)
        assert page.read_text().startswith("<!doctype html>") and f"wrote {page}" in with_page.stderr


def test_an_unwritable_page_is_a_message(tmp_path):
    plain = make_zip(tmp_path / "plain.zip")
    (tmp_path / "file").write_text("")
    proc = run_cli("report", str(plain), "--html", str(tmp_path / "file" / "page.html"))
    assert proc.returncode == 2 and "cannot write" in proc.stderr and "Traceback" not in proc.stderr


# --- the model section's facts -----------------------------------------------------------------


def test_the_model_section_tells_what_pack_measured(tmp_path):
    """The build record's model section (as pack writes it) and the smoke run (from pack's
    report.json): each fact in words, the labelled accuracy from whichever pack measured."""
    report = zip_report(make_zip(tmp_path / "function.zip"))
    assert model_facts(report) == [("model", "no build record in this zip: not packed by lambdapack")]
    report.build["model"] = {
        "source": "/home/me/models/stripes.h5",
        "kind": "keras",
        "format": "tflite",
        "quantize": "dynamic",
        "bytes": 2_400_000,
        "tensorflow": "2.20.0",
        "input": {"height": 96, "width": 96, "channels": 3, "scale": "-1..1", "resize": "stretch"},
        "classes": 3,
        "config": None,
        "conversion_check": {"inputs": 98, "top1_agreement": 0.98, "max_probability_difference": 0.031},
        "labelled": {
            "images": 90,
            "original_correct": 88,
            "original_top1": 88 / 90,
            "preprocessing": {"scale": "-1..1", "resize": "stretch"},
        },
    }
    facts = dict(model_facts(report))
    assert facts["source"] == "Keras (.keras/.h5): stripes.h5"
    assert (
        facts["conversion"]
        == "Keras (.keras/.h5) → .tflite (run by LiteRT), converted by TensorFlow 2.20.0: 2.3 MB"
    )
    assert facts["quantization"] == "dynamic"
    assert facts["input"] == "96×96×3, scale -1..1, resize stretch, 3 classes"
    assert facts["conversion check"].startswith("top-1 agreement 98.0% with the original on 98 inputs")
    assert facts["labelled accuracy"] == (
        "the original model 88/90 (97.8%) on pack's labelled samples (scale -1..1, resize stretch)"
    )
    assert facts["smoke run"] == "not known: pack's report.json of this zip is not beside it"
    report.smoke = {
        "ran": True,
        "images": 90,
        "interpreter": "python3.13 (container)",
        "import_s": 0.41,
        "first_inference_ms": 3.2,
        "max_difference": 2e-7,
        "accuracy": {
            "images": 90,
            "zip_correct": 87,
            "zip_top1": 87 / 90,
            "original_correct": 88,
            "original_top1": 88 / 90,
            "preprocessing": {"scale": "-1..1", "resize": "stretch"},
        },
    }
    facts = dict(model_facts(report))
    assert facts["labelled accuracy"] == (
        "the zip 87/90 (96.7%), the original model 88/90 (97.8%) on pack's labelled samples "
        "(scale -1..1, resize stretch)"
    )
    assert facts["smoke run"] == (
        "90 images classified by python3.13 (container), answers within 2e-07 of the conversion check "
        "(import 0.41 s, first inference 3.2 ms)"
    )
    page = report_page(report, zip_files(tmp_path / "function.zip"))
    assert page.index('data-fact="source"') < page.index('class="treemap"')  # above the treemap


def test_every_package_gets_a_colour_of_its_own():
    names = [f"package{index}" for index in range(60)]
    colours = package_colours(names)
    assert len(set(colours.values())) == 60 and list(colours) == names
