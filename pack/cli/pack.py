"""``lambdapack pack``, ``report`` and ``compare``: parse, call ``lambdapack.packing``, render."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..packing.calibrate import DEFAULT_MAX_DROP
from ..packing.compare import compare
from ..packing.docker import DockerOptions, pack_in_docker
from ..packing.model import parse_labels
from ..packing.pipeline import REPORT_NAME, PackOptions, pack
from ..packing.prune import GROUPS, ORPHANS_GROUP
from ..packing.report import Report, pack_report_beside, zip_files, zip_report
from ..packing.runtimes import RUNTIMES, STAGE_MODES
from ..packing.staging import DEFAULT_LEVEL
from ..packing.target import ARCHES, DEFAULT_PYTHON, PYTHON_VERSIONS, Target
from ..pages import report_page, write_page
from ..render import echo, line, say, text
from ..resources import default_cache_dir
from ..resources import handler_dir as handler_folder
from .common import ALLOW_UNSAFE_OPS_HELP, err, show, target


@click.command("pack")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Folder for function.zip, report.json (and deps.tar.zst).",
)
@click.option(
    "--python",
    "python_version",
    type=click.Choice(PYTHON_VERSIONS),
    default=DEFAULT_PYTHON,
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
    help="litert: the TensorFlow Lite interpreter (the model is converted); tensorflow: full "
    "TensorFlow serving a SavedModel (never fits a zip: use with --stage-deps s3).",
)
@click.option(
    "--stage-deps",
    type=click.Choice(STAGE_MODES),
    default="none",
    show_default=True,
    help="s3: put the dependencies in OUT/deps.tar.zst, which deploy uploads to S3 and the "
    "function unpacks into /tmp at cold start (for --runtime tensorflow, which never fits a zip).",
)
@click.option(
    "--deps-level",
    type=click.IntRange(1, 22),
    default=DEFAULT_LEVEL,
    show_default=True,
    help="zstd level of deps.tar.zst.",
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
    type=click.Path(exists=True, path_type=Path),
    help="Sample images, to check the conversion and smoke-test the zip: a folder of images, or "
    "labelled ones — a folder with one subfolder per class (the sorted names are the labels) or a "
    "CSV of file,label rows. Labelled, the zip's top-1 is checked against the original model's, "
    "and the configured scale and resize against every other (exit 13 when one gets clearly more "
    "right).",
)
@click.option(
    "--labels",
    help="Class names in output order, separated by commas (over the config's labels).",
)
@click.option(
    "--max-accuracy-drop",
    type=click.FloatRange(0, 100),
    default=DEFAULT_MAX_DROP,
    show_default=True,
    metavar="POINTS",
    help="On labelled samples, fail when the zip's top-1 is lower than the original model's by "
    "more than this many percentage points.",
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
@click.option(
    "--image",
    help="A container image with the target's Python, to compile .pyc and run the smoke test in "
    "(default: this machine's Python when it is the target's, else AWS's Lambda image or a local one).",
)
@click.option(
    "--builder",
    type=click.Choice(("native", "docker")),
    default="native",
    show_default=True,
    help="Build here, or in a container of the target OS (Dockerfile.amazonlinux).",
)
@click.option(
    "--base-image", help="Base image for --builder docker (default: the AWS Lambda image of --python)."
)
@click.option(
    "--docker-host-network",
    is_flag=True,
    help="Give build containers the host's network, resolver and CA certificates.",
)
@click.option("--allow-unsafe-ops", is_flag=True, help=ALLOW_UNSAFE_OPS_HELP)
@click.option("--prepared-model", type=click.Path(exists=True, file_okay=False, path_type=Path), hidden=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--verbose", is_flag=True, help="Every detail: why each unstripped file was kept, …")
def pack_command(
    model: Path,
    out: Path,
    python_version: str,
    arch: str,
    runtime_name: str,
    stage_deps: str,
    deps_level: int,
    quantize: str,
    config_path: Path | None,
    samples: Path | None,
    labels: str | None,
    max_accuracy_drop: float,
    requirements: tuple[str, ...],
    find_links: tuple[Path, ...],
    bundle_boto3: bool,
    keep: tuple[str, ...],
    cache_dir: Path | None,
    refresh: bool,
    handler_dir: Path | None,
    no_smoke: bool,
    builder: str,
    base_image: str | None,
    docker_host_network: bool,
    image: str | None,
    allow_unsafe_ops: bool,
    prepared_model: Path | None,
    as_json: bool,
    verbose: bool,
) -> None:
    """Pack MODEL (.tflite, .keras, .h5 or a SavedModel folder) into OUT/function.zip
    (and OUT/deps.tar.zst with --stage-deps s3)."""
    options = PackOptions(
        model=model,
        out=out,
        target=target(python_version, arch),
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
        handler_dir=handler_dir or handler_folder(),
        smoke=not no_smoke,
        stage_deps=stage_deps,
        deps_level=deps_level,
        image=image,
        allow_unsafe_ops=allow_unsafe_ops,
        labels=tuple(parse_labels(labels)) if labels is not None else None,
        max_accuracy_drop=max_accuracy_drop,
    )

    def progress(stage: str, summary: str, seconds: float) -> None:
        say(err, (f"{stage:<8} ", "bold"), summary, (f" ({seconds:.1f} s)", "dim"))

    if builder == "docker":
        report = _pack_in_docker(options, base_image, docker_host_network)
    else:
        options.prepared_model = prepared_model
        report = pack(options, progress)
    show(report, as_json, verbose)


def _pack_in_docker(options: PackOptions, base_image: str | None, host_network: bool) -> Report:
    return pack_in_docker(
        options,
        DockerOptions(base_image=base_image, host_network=host_network),
        log=lambda message: err.print(text(message, newlines=True), highlight=False),
    )


@click.command("report")
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
@click.option("--verbose", is_flag=True, help="Every detail: why each unstripped file was kept, …")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page: the zip's files as a treemap (area = unzipped size).",
)
def report_command(
    zip_path: Path,
    python_version: str | None,
    arch: str | None,
    as_json: bool,
    verbose: bool,
    html_path: Path | None,
) -> None:
    """Sizes per package, the largest files, Lambda limits and native-library checks for ZIP.

    Exits with 6 when a native file cannot load on the target: an ELF file needs more
    than the runtime's libraries, or an extension module is built for another Python
    or architecture (compat.extension_findings)."""
    from ..errors import CompatibilityError
    from ..packing import compat

    checked = None
    if python_version or arch:
        checked = target(python_version or DEFAULT_PYTHON, arch or "x86_64")
    report = zip_report(zip_path, checked)
    if (packed := pack_report_beside(zip_path, REPORT_NAME)) is not None and isinstance(
        packed.get("smoke"), dict
    ):
        report.smoke = packed["smoke"]  # pack's report of this very zip: its smoke run
    if html_path is not None:
        write_page(html_path, report_page(report, zip_files(zip_path)))
        say(err, f"wrote {html_path}")
    if report.target is None or report.elf is None:
        err.print(
            line(
                (
                    "no target recorded in this zip and none given: native libraries not "
                    "checked (pass --python and --arch)",
                    "yellow",
                )
            )
        )
        show(report, as_json, verbose)
        return
    checked = Target(report.target["python"], report.target["architecture"])
    show(report, as_json, verbose)
    problems = report.elf["problems"]
    if problems:
        raise CompatibilityError(
            compat.problems_message(
                f"{len(problems)} problems: native code in {zip_path.name} cannot load on "
                f"{checked.runtime} {checked.arch} ({checked.os.name}):",
                [(problem["path"], problem["problem"]) for problem in problems],
            ),
            f"Pack the model for this target: lambdapack pack MODEL --python {checked.python} "
            f"--arch {checked.arch}",
        )


@click.command("compare")
@click.argument("first", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_command(first: Path, second: Path, as_json: bool) -> None:
    """Compare two zips (e.g. native and Docker builds): files, and which differences are expected."""
    result = compare(first, second)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        for path in result.only_in_first:
            echo(f"only in {first.name}: {path}")
        for path in result.only_in_second:
            echo(f"only in {second.name}: {path}")
        for path, reason in result.explained.items():
            echo(f"differs (expected: {reason}): {path}")
        for path in result.unexplained:
            echo(f"differs (unexplained): {path}")
        click.echo("same files" if result.same_files else "different files", nl=False)
        click.echo(
            f"; {len(result.explained)} explained and {len(result.unexplained)} unexplained differences"
        )
    if not result.same_files or result.unexplained:
        raise SystemExit(1)


COMMANDS = (pack_command, report_command, compare_command)
