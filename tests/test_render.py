"""Terminal output people read: one unit style for sizes, commands in workflow order."""

from __future__ import annotations

from click.testing import CliRunner

from lambdapack.cli import cli
from lambdapack.render import size


def test_sizes_use_one_style():
    assert size(512) == "512 B"
    assert size(6_954 * 1024) == "6.8 MB"  # not "6,954.0 KB"
    assert size(1024 * 1024) == "1.0 MB"
    assert size(1023 * 1024) == "1023.0 KB"
    assert size(41_400_000) == "39.5 MB"


def test_help_lists_commands_in_the_order_of_the_workflow():
    listed = CliRunner().invoke(cli, ["--help"]).output.split("Commands:")[1].split()
    order = [word for word in listed if word in cli.commands]
    assert order.index("pack") < order.index("report") < order.index("invoke") < order.index("local")
    assert order.index("local") < order.index("upload") < order.index("results") < order.index("deploy")
    assert order.index("deploy") < order.index("wire") < order.index("unwire")


def test_strip_fallbacks_are_one_line_unless_verbose(tmp_path):
    import io
    import zipfile

    from rich.console import Console

    from lambdapack.packing.report import zip_report
    from lambdapack.render import render

    path = tmp_path / "function.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("index.py", "def handler(e, c): pass\n")
    report = zip_report(path)
    kept = [{"path": f"numpy.libs/lib{n}.so", "reason": "load segment not page-aligned"} for n in range(5)]
    report.build["strip"] = {"saved_bytes": 0, "files": 5, "kept_original": kept}

    def shown(verbose: bool) -> str:
        out = io.StringIO()
        render(report, Console(file=out, width=200), verbose)
        return out.getvalue()

    quiet = shown(False)
    assert "5 files kept unstripped" in quiet and "lib0.so, lib1.so, lib2.so and 2 more" in quiet
    assert "page-aligned" not in quiet
    loud = shown(True)
    assert loud.count("kept unstripped") == 5 and "page-aligned" in loud
