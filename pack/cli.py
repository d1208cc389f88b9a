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
from .runtimes import RUNTIMES, STAGE_MODES
from .staging import DEFAULT_LEVEL
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
    help="Folder for function.zip, report.json (and deps.tar.zst).",
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
@click.option("--prepared-model", type=click.Path(exists=True, file_okay=False, path_type=Path), hidden=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
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
    prepared_model: Path | None,
    as_json: bool,
) -> None:
    """Pack MODEL (.tflite, .keras, .h5 or a SavedModel folder) into OUT/function.zip
    (and OUT/deps.tar.zst with --stage-deps s3)."""
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
        stage_deps=stage_deps,
        deps_level=deps_level,
    )

    def progress(stage: str, summary: str, seconds: float) -> None:
        line = Text(f"{stage:<8} ", style="bold") + Text(summary) + Text(f" ({seconds:.1f} s)", style="dim")
        err.print(line, highlight=False)

    if builder == "docker":
        report = _pack_in_docker(options, base_image, docker_host_network)
    else:
        options.prepared_model = prepared_model
        report = pack(options, progress)
    _show(report, as_json)


def _pack_in_docker(options: PackOptions, base_image: str | None, host_network: bool) -> dict:
    from .docker_builder import DockerOptions, pack_in_docker

    if options.find_links:
        raise click.UsageError("--find-links folders are not mounted into the build container")
    args = [
        "/model",
        "--python",
        options.target.python,
        "--arch",
        options.target.arch,
        "--runtime",
        options.runtime.name,
        "--stage-deps",
        options.stage_deps,
        "--deps-level",
        str(options.deps_level),
    ]
    for requirement in options.requirements:
        args += ["--require", requirement]
    for group in options.keep:
        args += ["--keep", group]
    args += ["--bundle-boto3"] * options.bundle_boto3 + ["--refresh"] * options.refresh
    args += ["--no-smoke"] * (not options.smoke)
    return pack_in_docker(
        options.model,
        options.out,
        args,
        options.target.python,
        options.cache_dir,
        DockerOptions(base_image=base_image, host_network=host_network),
        options.samples,
        options.quantize,
        options.config,
        log=lambda line: err.print(Text(line), highlight=False),
        model_format=options.runtime.model_format,
    )


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


@cli.command("compare")
@click.argument("first", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("second", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare_command(first: Path, second: Path, as_json: bool) -> None:
    """Compare two zips (e.g. native and Docker builds): files, and which differences are expected."""
    from .compare import compare

    result = compare(first, second)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        for path in result.only_in_first:
            click.echo(f"only in {first.name}: {path}")
        for path in result.only_in_second:
            click.echo(f"only in {second.name}: {path}")
        for path, reason in result.explained.items():
            click.echo(f"differs (expected: {reason}): {path}")
        for path in result.unexplained:
            click.echo(f"differs (unexplained): {path}")
        click.echo("same files" if result.same_files else "different files", nl=False)
        click.echo(
            f"; {len(result.explained)} explained and {len(result.unexplained)} unexplained differences"
        )
    if not result.same_files or result.unexplained:
        raise SystemExit(1)


def _env_pairs(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--env")
        pairs[key] = val
    return pairs


@cli.command("deploy")
@click.argument("zip_path", metavar="[ZIP]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--function", "function", help="Lambda function name.")
@click.option("--role", help="Execution role ARN (default: create lambdapack-FUNCTION with least privilege).")
@click.option("--code-bucket", help="Upload the zip to this bucket and deploy from there.")
@click.option(
    "--deps",
    "deps_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The zip's staged dependencies (default: the deps.tar.zst pack wrote beside it).",
)
@click.option("--memory", type=int, help="Memory in MB (128–10240). Default 1024.")
@click.option("--timeout", type=int, help="Timeout in seconds (1–900). Default 60.")
@click.option(
    "--ephemeral-storage",
    type=int,
    help="/tmp size in MB (512–10240). Default 512, or what staged dependencies need.",
)
@click.option(
    "--env", "env", multiple=True, metavar="KEY=VALUE", help="A function environment variable (repeatable)."
)
@click.option("--alias", help="Alias to point at the published version. Default live.")
@click.option("--bucket", help="The input bucket (limits the created role to it).")
@click.option("--prefix", help="The input prefix (limits the created role to it).")
@click.option("--output-bucket", help="Where results go (default: the input bucket).")
@click.option("--output-prefix", help="Prefix of result objects. Default results/.")
@click.option("--dry-run", is_flag=True, help="Print the plan; make no AWS call.")
def deploy_command(
    zip_path,
    function,
    role,
    code_bucket,
    deps_path,
    memory,
    timeout,
    ephemeral_storage,
    env,
    alias,
    bucket,
    prefix,
    output_bucket,
    output_prefix,
    dry_run,
) -> None:
    """Create or update the Lambda function from ZIP (default dist/function.zip)."""
    from .awsclient import AWSClient
    from .deploy import DeploySettings, deploy, plan, preflight
    from .settings import load_settings, pick

    file = load_settings()
    name = pick(function, file, "function")
    if not name:
        raise click.UsageError("no function name: pass --function or set function in lambdapack.toml")
    settings = DeploySettings(
        zip_path=Path(pick(zip_path, file, "zip", "dist/function.zip")),
        function=name,
        role=pick(role, file, "role"),
        code_bucket=pick(code_bucket, file, "code_bucket"),
        memory=int(pick(memory, file, "memory", 1024)),
        timeout=int(pick(timeout, file, "timeout", 60)),
        ephemeral_storage=int(pick(ephemeral_storage, file, "ephemeral_storage", 512)),
        env={**{k: str(v) for k, v in file.get("env", {}).items()}, **_env_pairs(env)},
        alias=pick(alias, file, "alias", "live") or None,
        bucket=pick(bucket, file, "bucket"),
        prefix=pick(prefix, file, "prefix", ""),
        output_bucket=pick(output_bucket, file, "output_bucket"),
        output_prefix=pick(output_prefix, file, "output_prefix", "results/"),
        deps_path=deps_path,
    )
    if dry_run:
        check = preflight(settings)
        click.echo(
            f"dry run: {settings.zip_path} ({check.runtime}, {check.architecture}, "
            f"{check.zipped:,} bytes, {check.upload} upload) — no AWS call made. Plan:"
        )
        for number, step in enumerate(plan(settings, check), 1):
            click.echo(f"  {number}. {step}")
        return
    deploy(settings, AWSClient(), log=click.echo)


@cli.command("wire")
@click.option("--function", "function", help="Lambda function name.")
@click.option("--bucket", help="Bucket whose new objects trigger the function.")
@click.option("--prefix", help="Only keys with this prefix (e.g. incoming/).")
@click.option("--suffix", help="Only keys with this suffix (e.g. .jpg).")
@click.option("--events", multiple=True, help="S3 event types (repeatable). Default s3:ObjectCreated:*.")
@click.option(
    "--allow-recursion",
    is_flag=True,
    help="Wire even though the function's results could trigger it again (not recommended).",
)
def wire_command(function, bucket, prefix, suffix, events, allow_recursion) -> None:
    """Let S3 invoke the function for new objects in BUCKET (merging, never overwriting)."""
    from .awsclient import AWSClient
    from .settings import load_settings, pick
    from .wire import DEFAULT_EVENTS, WireSettings, wire

    file = load_settings()
    settings = WireSettings(
        function=_required(pick(function, file, "function"), "--function"),
        bucket=_required(pick(bucket, file, "bucket"), "--bucket"),
        prefix=pick(prefix, file, "prefix", ""),
        suffix=pick(suffix, file, "suffix", ""),
        events=tuple(pick(events, file, "events", DEFAULT_EVENTS)),
        allow_recursion=allow_recursion,
    )
    result = wire(settings, AWSClient())
    for warning in result.warnings:
        err.print(Text("warning: ", style="yellow") + Text(warning))
    for action in result.actions:
        click.echo(action)
    if not result.changed:
        click.echo(f"{settings.function} is already wired to s3://{settings.bucket}: nothing to change")


@cli.command("unwire")
@click.option("--function", "function", help="Lambda function name.")
@click.option("--bucket", help="The wired bucket.")
def unwire_command(function, bucket) -> None:
    """Remove only lambdapack's notification entry and permission statement."""
    from .awsclient import AWSClient
    from .settings import load_settings, pick
    from .wire import unwire

    file = load_settings()
    result = unwire(
        _required(pick(function, file, "function"), "--function"),
        _required(pick(bucket, file, "bucket"), "--bucket"),
        AWSClient(),
    )
    for action in result.actions:
        click.echo(action)
    if not result.changed:
        click.echo("nothing to remove")


def _required(value, flag: str):
    if not value:
        raise click.UsageError(f"missing {flag} (or set it in lambdapack.toml)")
    return value


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


def _register_local_commands() -> None:
    from .cli_local import register

    register(cli)


_register_local_commands()


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
