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
