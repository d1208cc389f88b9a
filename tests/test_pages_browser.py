"""The pages as a browser shows them: headless Chromium loads each page from a file, and the
tests read back the DOM it rendered (``--dump-dom``), a screenshot, and its network log.

- The numbers on the page are the numbers in the JSON: the estimate's bars and marks, the
  report's file and package sizes and totals.
- The page asks for nothing: no URL in a ``src``/``href``, and no request in Chromium's network
  log that the page started (Chromium's own background requests are told apart by their
  initiator; a control page with remote images proves the log sees a page's requests).

``make test`` installs Chromium (``make browser``); without it these tests are skipped.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lambdapack.local.estimate import estimate
from lambdapack.packing.report import zip_files
from lambdapack.pages import MAP_H, MAP_W, Box, estimate_page, estimate_svg, treemap, usd
from lambdapack.render import size

from .conftest import run_cli
from .test_estimate_report import measurements
from .test_report_html import assert_tiles, make_zip

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed: `make browser` (run by `make test`) installs it"
)

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing leaves this machine, whatever asks
)
BROWSER_ITSELF = "not an origin"  # the initiator of Chromium's own requests (updates, accounts)


# --- running Chromium ---------------------------------------------------------------------------


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    chart: str | None  # the data-chart of the SVG chart it is in
    text: str = ""  # the text directly inside it
    tooltip: str = ""  # the text of its <title> child


class Dom(HTMLParser):
    """The rendered DOM as a flat list of elements, in document order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._open: list[Element] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = {name: value or "" for name, value in attrs}
        outer = self._open[-1].chart if self._open else None
        element = Element(tag, values, values.get("data-chart", outer))
        self.elements.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.handle_starttag(tag, attrs)
        self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        for index in range(len(self._open) - 1, -1, -1):
            if self._open[index].tag == tag:
                del self._open[index:]
                return

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data
            if self._open[-1].tag == "title" and len(self._open) > 1:
                self._open[-2].tooltip += data

    def find(self, tag: str, **attrs: str) -> list[Element]:
        """Elements ``tag`` with these attribute values (``data_chart`` is ``data-chart``)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        return [
            e
            for e in self.elements
            if e.tag == tag and all(e.attrs.get(name) == value for name, value in wanted.items())
        ]


@dataclass
class Rendered:
    dom: Dom
    text: str  # the serialized DOM
    requests: list[str]  # URLs the page asked for


def chromium(*args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="lambdapack-chromium-") as profile:
        proc = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=180,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def render(page: Path) -> Rendered:
    """Load ``page`` in Chromium: the DOM it rendered, and what the page requested."""
    with tempfile.TemporaryDirectory(prefix="lambdapack-netlog-") as folder:
        log = Path(folder) / "net.json"
        text = chromium(f"--log-net-log={log}", "--dump-dom", page.as_uri())
        requests = page_requests(log.read_text())
    dom = Dom(text)
    assert dom.elements, f"Chromium rendered nothing for {page}"
    return Rendered(dom, text, requests)


def page_requests(net_log: str) -> list[str]:
    """URLs of the requests a page started (not Chromium's own), from a ``--log-net-log`` file."""
    try:
        log = json.loads(net_log)
    except ValueError:  # cut short at exit: the events so far
        log = json.loads(net_log.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start
        and "url" in event.get("params", {})
        and event["params"].get("initiator") != BROWSER_ITSELF
    ]


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 1600) -> Path:
    chromium(f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri())
    assert png.stat().st_size > 0
    return png


def pixels_of(png: Path, colour: str, opacity: float = 1.0, tolerance: int = 4) -> int:
    """How many pixels of ``png`` are ``colour`` (drawn at ``opacity`` over white)."""
    Image = pytest.importorskip("PIL.Image")
    rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    want = [round(opacity * c + (1 - opacity) * 255) for c in rgb]
    with Image.open(png) as image:
        return sum(
            count
            for count, pixel in image.convert("RGB").getcolors(maxcolors=1 << 24)
            if all(abs(a - b) <= tolerance for a, b in zip(pixel, want, strict=True))
        )


def assert_self_contained(rendered: Rendered) -> None:
    assert rendered.requests == []
    for element in rendered.dom.elements:
        for name, value in element.attrs.items():
            if name in ("src", "href", "xlink:href", "srcset", "action", "poster", "data"):
                raise AssertionError(f"<{element.tag} {name}={value!r}> would load something")
            assert "url(" not in value.lower(), (element.tag, name, value)
    for tag in ("script", "link", "iframe", "img", "image", "object", "embed"):
        assert not rendered.dom.find(tag), f"a <{tag}> on the page"
    assert "@import" not in rendered.text and "url(" not in rendered.text


# --- the network check can see a page's requests ------------------------------------------------


def test_the_network_log_sees_what_a_page_requests(tmp_path):
    page = tmp_path / "control.html"
    page.write_text(
        '<!doctype html><img src="http://example.com/a.png">'
        '<p style="background: url(https://example.org/b.png)">x</p>'
    )
    rendered = render(page)
    assert sorted(rendered.requests) == ["http://example.com/a.png", "https://example.org/b.png"]
    with pytest.raises(AssertionError):
        assert_self_contained(rendered)


# --- the estimate -------------------------------------------------------------------------------


def assert_charts_are_the_estimate(dom: Dom, result: dict) -> None:
    measured = [row for row in result["sizes"] if row["projection"]]
    for chart, figure, best in (("cost", "total_usd", "cheapest"), ("wall", "wall_s", "fastest")):
        assert len(dom.find("svg", data_chart=chart)) == 1
        bars = [e for e in dom.find("rect") if e.chart == chart and e.attrs.get("class") == "bar"]
        assert {int(b.attrs["data-memory-mb"]): float(b.attrs["data-value"]) for b in bars} == {
            row["memory_mb"]: row["projection"][figure] for row in measured
        }
        marked = [int(b.attrs["data-memory-mb"]) for b in bars if b.attrs.get("data-mark") == best]
        assert marked == [result[f"{best}_memory_mb"]]
        labels = [e.text for e in dom.find("text") if e.chart == chart]
        assert sum(label.endswith(f"— {best}") for label in labels) == 1
    cost_labels = [e.text for e in dom.find("text") if e.chart == "cost"]
    for row in measured:
        assert any(usd(row["projection"]["total_usd"]) in label for label in cost_labels)


def test_the_estimate_page_renders_the_estimate(tmp_path):
    result = estimate(measurements(), 10_000)
    page = tmp_path / "estimate.html"
    page.write_text(estimate_page(result))
    rendered = render(page)
    assert_self_contained(rendered)
    assert_charts_are_the_estimate(rendered.dom, result)
    # The table: the row marked cheapest (fastest) is the cheapest (fastest) size.
    rows = {
        int(tr.attrs["data-memory-mb"]): tr for tr in rendered.dom.find("tr") if "data-memory-mb" in tr.attrs
    }
    assert sorted(rows) == sorted(row["memory_mb"] for row in result["sizes"])
    cells = {memory: [] for memory in rows}
    current = None
    for element in rendered.dom.elements:
        if element.tag == "tr":
            current = int(element.attrs["data-memory-mb"]) if "data-memory-mb" in element.attrs else None
        elif element.tag == "td" and current is not None:
            cells[current].append(element.text)
    for mark in ("cheapest", "fastest"):
        assert [m for m, row in cells.items() if mark in row[-1]] == [result[f"{mark}_memory_mb"]]
    assert cells[512][0] == "512 MB" and cells[512][4] == "2,005.0 ms"
    png = screenshot(page, tmp_path / "estimate.png")
    assert pixels_of(png, "#2a7d2a") > 1000 and pixels_of(png, "#2a5dad") > 1000


def test_the_estimate_image_stands_alone(tmp_path):
    result = estimate(measurements(), 10_000)
    image = tmp_path / "estimate.svg"
    image.write_text(estimate_svg(result))
    rendered = render(image)
    assert rendered.text.lstrip().startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in rendered.text
    assert_charts_are_the_estimate(rendered.dom, result)
    assert rendered.requests == []
    png = screenshot(image, tmp_path / "estimate-svg.png", 1200, 400)
    assert pixels_of(png, "#2a7d2a") > 1000 and pixels_of(png, "#2a5dad") > 1000


def test_the_estimate_command_writes_the_page_and_the_image(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from lambdapack.cli import cli

    monkeypatch.setattr("lambdapack.local.estimate.measure", lambda *args, **kwargs: measurements())
    zip_path = make_zip(tmp_path / "function.zip")
    page, image = tmp_path / "out" / "estimate.html", tmp_path / "out" / "estimate.svg"
    args = [
        "estimate",
        str(zip_path),
        "--images",
        "10000",
        "--json",
        "--html",
        str(page),
        "--svg",
        str(image),
    ]
    outcome = CliRunner().invoke(cli, args)
    assert outcome.exit_code == 0, outcome.output
    result = json.loads(outcome.stdout)
    assert_charts_are_the_estimate(render(page).dom, result)
    assert_charts_are_the_estimate(render(image).dom, result)


# --- the report's treemap -----------------------------------------------------------------------


def assert_treemap_is_the_report(rendered: Rendered, report: dict, zip_path: Path) -> None:
    dom = rendered.dom
    with zipfile.ZipFile(zip_path) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist() if not info.is_dir()}
    files = {e.attrs["data-path"]: e for e in dom.find("rect") if e.attrs.get("class") == "file"}
    # A rectangle per file with any bytes, its size the zip's, its tooltip path and size.
    assert {path: int(e.attrs["data-bytes"]) for path, e in files.items()} == {
        p: n for p, n in sizes.items() if n
    }
    for path, element in files.items():
        assert element.tooltip.startswith(f"{path}\n{size(sizes[path])} ({sizes[path]:,} bytes) unzipped")
    for largest in report["largest_files"]:
        assert int(files[largest["path"]].attrs["data-bytes"]) == largest["unzipped"]
    packages = {e.attrs["data-package"]: int(e.attrs["data-bytes"]) for e in package_groups(dom)}
    assert packages == {row["name"]: row["unzipped"] for row in report["packages"] if row["unzipped"]}
    # The totals at the top.
    zip_facts = report["zip"]
    zipped, unzipped = dom.find("b", data_total="zipped"), dom.find("b", data_total="unzipped")
    assert int(zipped[0].attrs["data-bytes"]) == zip_facts["zipped_bytes"]
    assert zipped[0].text == size(zip_facts["zipped_bytes"])
    assert int(unzipped[0].attrs["data-bytes"]) == zip_facts["unzipped_bytes"]
    assert unzipped[0].text == size(zip_facts["unzipped_bytes"])
    limits = {e.attrs["data-limit"]: e for e in dom.find("tr") if "data-limit" in e.attrs}
    assert {name: int(e.attrs["data-value"]) for name, e in limits.items()} == {
        row["name"]: row["value"] for row in report["limits"]
    }
    # The rectangles as the browser has them: inside the map, not overlapping, in proportion.
    canvas = Box(0, 0, MAP_W, MAP_H)
    boxes = [Box(*(float(e.attrs[k]) for k in ("x", "y", "width", "height"))) for e in files.values()]
    tiles = {t.path: t.box for _, members in treemap(zip_files(zip_path), canvas) for t in members}
    for path, box in zip(files, boxes, strict=True):
        expected = tiles[path]
        assert (box.x, box.y, box.w, box.h) == pytest.approx(
            (expected.x, expected.y, expected.w, expected.h), abs=0.01
        )
        assert box.x >= 0 and box.y >= 0 and box.x + box.w <= MAP_W + 0.02 and box.y + box.h <= MAP_H + 0.02
    assert_tiles(list(tiles.values()), [sizes[path] for path in tiles], canvas)


def package_groups(dom: Dom) -> list[Element]:
    return [e for e in dom.find("g") if e.attrs.get("class") == "package"]


def report_with_page(zip_path: Path, page: Path) -> dict:
    proc = run_cli("report", str(zip_path), "--json", "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_report_page_is_the_zip_as_a_treemap(tmp_path):
    zip_path = make_zip(tmp_path / "function.zip")
    page = tmp_path / "report.html"
    report = report_with_page(zip_path, page)
    rendered = render(page)
    assert_self_contained(rendered)
    assert_treemap_is_the_report(rendered, report, zip_path)
    # Drawn: the largest file (numpy's, the first colour, darkest) covers its rectangle.
    png = screenshot(page, tmp_path / "report.png")
    largest = max(
        (t for _, members in treemap(zip_files(zip_path), Box(0, 0, MAP_W, MAP_H)) for t in members),
        key=lambda t: t.unzipped,
    )
    assert pixels_of(png, "#4e79a7", opacity=0.95) > 0.8 * largest.box.area


@pytest.mark.functional
def test_the_report_page_of_a_packed_zip(packed, tmp_path):
    out, _, _ = packed
    zip_path = out / "function.zip"
    page = tmp_path / "report.html"
    report = report_with_page(zip_path, page)
    rendered = render(page)
    assert_self_contained(rendered)
    assert_treemap_is_the_report(rendered, report, zip_path)
    assert {"handler", "model", "numpy"} <= {e.attrs["data-package"] for e in package_groups(rendered.dom)}


# --- the report page's model section, its labels and colours ----------------------------------


@pytest.mark.functional
def test_the_report_page_tells_the_models_story(packed, tmp_path):
    """Above the treemap: what the build record and pack's report.json of this zip say."""
    out, packed_report, _ = packed
    page = tmp_path / "report.html"
    report = report_with_page(out / "function.zip", page)
    dom = render(page).dom
    facts = [e.attrs["data-fact"] for e in dom.find("tr") if "data-fact" in e.attrs]
    assert facts == [
        "source",
        "conversion",
        "quantization",
        "input",
        "config",
        "conversion check",
        "labelled accuracy",
        "smoke run",
    ]
    # Each fact's row: its name (<th>), then its text (<td>).
    named = [e for e in dom.elements if e.tag in ("th", "td") and e.attrs.get("class") == "name"]
    model_cells = {
        head.text: cell.text
        for head, cell in itertools.pairwise(named)
        if head.tag == "th" and cell.tag == "td" and head.text in facts
    }
    check = report["model"]["conversion_check"]
    assert model_cells["source"] == "Keras (.keras/.h5): digits.keras"
    assert model_cells["quantization"] == report["model"]["quantize"] == "none"
    assert f"top-1 agreement {check['top1_agreement']:.1%}" in model_cells["conversion check"]
    assert f"on {check['inputs']} inputs" in model_cells["conversion check"]
    smoke = packed_report["smoke"]
    assert report["smoke"] == smoke  # report read pack's report.json of this very zip
    assert model_cells["smoke run"].startswith(
        f"{smoke['images']} images classified by {smoke['interpreter']}"
    )


def test_the_report_page_without_pack_s_report_says_the_smoke_run_is_not_known(tmp_path):
    zip_path = make_zip(tmp_path / "function.zip")
    page = tmp_path / "report.html"
    report_with_page(zip_path, page)
    assert "no build record in this zip" in render(page).text


def test_every_package_has_its_own_colour_and_labels_stay_in_their_boxes(tmp_path):
    """Fourteen packages (more than the palette's ten): fourteen colours; every label is drawn
    in a clipping box that is exactly its rectangle."""
    path = tmp_path / "function.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(14):
            name = f"package_with_a_long_name_{index:02d}"
            archive.writestr(f"{name}/__init__.py", b"#" * (40_000 + 9_000 * index))
            archive.writestr(f"{name}/data_file_with_a_long_name.bin", b"x" * (30_000 + 5_000 * index))
    page = tmp_path / "report.html"
    report_with_page(path, page)
    dom = render(page).dom
    fills = {}
    for element in dom.elements:
        if element.tag == "rect" and element.attrs.get("class") == "file":
            fills.setdefault(element.tooltip.rsplit("— ", 1)[-1], set()).add(element.attrs["fill"])
    assert len(fills) == 14 and all(len(colours) == 1 for colours in fills.values())
    assert len({next(iter(colours)) for colours in fills.values()}) == 14
    rects = [
        Box(*(float(e.attrs[k]) for k in ("x", "y", "width", "height")))
        for e in dom.elements
        if e.tag == "rect" and e.attrs.get("class") in ("file", "outline")
    ]
    clips = [e for e in dom.elements if e.tag == "svg" and e.attrs.get("class") == "label"]
    assert clips, "no label was drawn"
    for clip in clips:
        box = Box(*(float(clip.attrs[k]) for k in ("x", "y", "width", "height")))
        assert clip.attrs["overflow"] == "hidden"
        assert any(
            (box.x, box.y, box.w, box.h) == pytest.approx((r.x, r.y, r.w, r.h), abs=0.01) for r in rects
        ), f"a label's clip {box} is no rectangle of the map"


# --- the evaluate page ----------------------------------------------------------------------------


def test_the_evaluate_page_draws_the_confusion_matrix(tmp_path):
    """A page from answers scored here (labels a user could name anything, markup and a
    right-to-left override included): every cell's count is the matrix's, the cells add up to
    the images, and the labels are text, never markup."""
    from lambdapack.pages import evaluate_page
    from lambdapack.scoring import Answer, score

    hostile = '<img src="http://example.com/x.png">'
    answers = [
        Answer("cat/1.png", "cat", ("cat", "dog"), 0.9),
        Answer("cat/2.png", "cat", ("dog", "cat"), 0.6),
        Answer(f"{hostile}/1.png", hostile, (hostile,), 0.8),
        Answer("dog/\u202egnp.1", "dog", ("cat",), 0.7),
        Answer("dog/2.png", "dog", (), error="NotAnImage: not an image"),
    ]
    scored = score(answers, ("cat", "dog", hostile))
    result = {
        "zip": "function.zip",
        "folder": "labelled",
        "labels_from": "folders",
        "runtime": "python3.11",
        **scored.as_dict(),
    }
    page = tmp_path / "evaluate.html"
    page.write_text(evaluate_page(result))
    rendered = render(page)
    assert_self_contained(rendered)
    cells = [e for e in rendered.dom.find("td") if "data-count" in e.attrs]
    got = {(e.attrs["data-row"], e.attrs["data-column"]): int(e.attrs["data-count"]) for e in cells}
    want = {
        (row, column): count
        for row, counts in zip(scored.rows, scored.matrix, strict=True)
        for column, count in zip(scored.columns, counts, strict=True)
    }
    assert got == want and sum(got.values()) == len(answers)
    assert all(e.text == e.attrs["data-count"] for e in cells)
    assert hostile in rendered.dom.find("th", data_row=hostile)[0].text  # shown as the text it is
    assert "\\u202e" in rendered.text and "\u202e" not in rendered.text
    wrong = [e.attrs["data-file"] for e in rendered.dom.find("tr") if e.attrs.get("class") == "wrong"]
    assert wrong == ["cat/2.png", "dog/\\u202egnp.1", "dog/2.png"]
    # Drawn: the diagonal is green, a wrong answer red (shaded by its share of the row).
    png = screenshot(page, tmp_path / "evaluate.png")
    assert (
        pixels_of(png, "#59a14f", opacity=0.15 + 0.85 * 1.0) > 100
    )  # cat|cat is 1 of 2, hostile row all right
