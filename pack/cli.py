"""The ``lambdapack`` command. It parses options and calls the library; all
work happens in ``pipeline.py`` and friends, all terminal layout in ``render.py``."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from . import __version__
from .errors import PackError
from .pipeline import PackOptions, default_cache_dir, default_handler_dir, pack
from .prune import GROUPS, ORPHANS_GROUP
from .render import render
from .report import zip_report
from .runtimes import RUNTIMES
from .target import ARCHES, PYTHON_VERSIONS, Target, TargetError

err = Console(stderr=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lambdapack")
def cli() -> None:
    """Pack a TensorFlow/Keras image classifier for AWS Lambda, and check what is in the zip."""


@cli.command("pack")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Folder for function.zip and report.json.",
)
@click.option(
    "--python",
    "python_version",
    type=click.Choice(PYTHON_VERSIONS),
    default="3.11",
    show_default=True,
    help="Python version of the Lambda runtime (python3.X).",
)
@click.option(
    "--arch",
    type=click.Choice(tuple(ARCHES)),
    default="x86_64",
    show_default=True,
    help="Lambda architecture.",
)
@click.option(
    "--runtime",
    "runtime_name",
    type=click.Choice(tuple(RUNTIMES)),
    default="litert",
    show_default=True,
    help="Inference runtime put in the zip.",
)
@click.option(
    "--quantize",
    type=click.Choice(("none", "dynamic", "float16")),
    default="none",
    show_default=True,
    help="Quantization when converting a Keras/SavedModel model.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Model config JSON (labels, input scale, resize). Default: MODEL.lambdapack.json beside the model.",
)
@click.option(
    "--samples",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of sample images: used to check the conversion and to smoke-test the zip.",
)
@click.option(
    "--require",
    "requirements",
    multiple=True,
    metavar="REQUIREMENT",
    help="An extra requirement to install into the zip (repeatable).",
)
@click.option(
    "--find-links",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of wheels pip may install from (repeatable).",
)
@click.option(
    "--bundle-boto3", is_flag=True, help="Put boto3 in the zip (the Lambda runtime already has one)."
)
@click.option(
    "--keep",
    multiple=True,
    type=click.Choice((*GROUPS, ORPHANS_GROUP)),
    help="A prune group not to remove (repeatable).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Wheel and model cache. Default: $LAMBDAPACK_CACHE or ~/.cache/lambdapack.",
)
@click.option("--refresh", is_flag=True, help="Ask the package index again instead of the wheel cache.")
@click.option(
    "--handler-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder with index.py and lambdapack_handler/ (default: lambdapack's own).",
)
@click.option("--no-smoke", is_flag=True, help="Skip the smoke run of the finished zip.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def pack_command(
    model: Path,
    out: Path,
    python_version: str,
    arch: str,
    runtime_name: str,
    quantize: str,
    config_path: Path | None,
    samples: Path | None,
    requirements: tuple[str, ...],
    find_links: tuple[Path, ...],
    bundle_boto3: bool,
    keep: tuple[str, ...],
    cache_dir: Path | None,
    refresh: bool,
    handler_dir: Path | None,
    no_smoke: bool,
    as_json: bool,
) -> None:
    """Pack MODEL (.tflite, .keras, .h5 or a SavedModel folder) into OUT/function.zip."""
    options = PackOptions(
        model=model,
        out=out,
        target=_target(python_version, arch),
        runtime=RUNTIMES[runtime_name],
        quantize=quantize,
        config=config_path,
        samples=samples,
        requirements=requirements,
        bundle_boto3=bundle_boto3,
        find_links=find_links,
        keep=keep,
        cache_dir=cache_dir or default_cache_dir(),
        refresh=refresh,
        handler_dir=handler_dir or default_handler_dir(),
        smoke=not no_smoke,
    )

    def progress(stage: str, summary: str, seconds: float) -> None:
        line = Text(f"{stage:<8} ", style="bold") + Text(summary) + Text(f" ({seconds:.1f} s)", style="dim")
        err.print(line, highlight=False)

    report = pack(options, progress)
    _show(report, as_json)


@cli.command("report")
@click.argument("zip_path", metavar="ZIP", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--python",
    "python_version",
    type=click.Choice(PYTHON_VERSIONS),
    default=None,
    help="Target to check native libraries against (default: what pack recorded).",
)
@click.option("--arch", type=click.Choice(tuple(ARCHES)), default=None, help="Target architecture.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def report_command(zip_path: Path, python_version: str | None, arch: str | None, as_json: bool) -> None:
    """Sizes per package, the largest files, Lambda limits and native-library checks for ZIP."""
    if not zipfile.is_zipfile(zip_path):
        raise PackError(f"{zip_path} is not a zip file")
    target = None
    if python_version or arch:
        target = _target(python_version or "3.11", arch or "x86_64")
    report = zip_report(zip_path, target)
    if report["target"] is None:
        err.print(
            "[yellow]no target recorded in this zip and none given: native libraries not "
            "checked (pass --python and --arch)[/]"
        )
    _show(report, as_json)


def _show(report: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
    else:
        render(report, Console())


def _target(python_version: str, arch: str) -> Target:
    try:
        return Target(python_version, arch)
    except TargetError as exc:
        raise click.BadParameter(str(exc)) from exc


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="lambdapack", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PackError as exc:
        err.print(Text("error: ", style="bold red") + Text(str(exc)), highlight=False)
        if exc.hint:
            err.print(Text(exc.hint), highlight=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
