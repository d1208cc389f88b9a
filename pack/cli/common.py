"""What the command modules share: the stderr console, option parsing helpers,
and how a report is shown. Command modules import this, never each other."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from ..limits import DEFAULT_MEMORY_MB
from ..packing.report import Report
from ..packing.target import Target, TargetError
from ..render import render

err = Console(stderr=True)

ALLOW_UNSAFE_OPS_HELP = (
    "UNSAFE: load a SavedModel whose graph holds file, network or Python ops (WriteFile, "
    "ReadFile, EagerPyFunc, …; refused by default). They then run on this machine with your "
    "rights. Only for a model you trust."
)


def env_pairs(values: tuple[str, ...]) -> dict[str, str]:
    """``("K=V", …)`` from repeated ``--env`` options."""
    pairs = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--env")
        pairs[key] = val
    return pairs


def target(python_version: str, arch: str) -> Target:
    try:
        return Target(python_version, arch)
    except TargetError as exc:
        raise click.BadParameter(str(exc)) from exc


def required(value, flag: str):
    if not value:
        raise click.UsageError(f"missing {flag} (or set it in lambdapack.toml)")
    return value


def aws_options(command):
    """--profile and --region, as the AWS CLI has them, on every command that calls AWS."""
    command = click.option(
        "--region", help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION, or the profile's)."
    )(command)
    return click.option("--profile", help="AWS profile from ~/.aws/config (default: AWS_PROFILE).")(command)


def function_options(command):
    """--timeout and --memory of a function run locally (invoke, evaluate)."""
    command = click.option(
        "--memory",
        type=int,
        default=DEFAULT_MEMORY_MB,
        show_default=True,
        help="Memory size of the function (enforced when it runs in a container).",
    )(command)
    return click.option(
        "--timeout", type=float, default=60.0, show_default=True, help="Function timeout in seconds."
    )(command)


def session(profile: str | None, region: str | None):
    from ..aws.client import default_session

    return default_session(profile, region)


def console() -> Console:
    """The terminal's width on a terminal; piped, wide enough that tables do not wrap."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def show(report: Report, as_json: bool, verbose: bool = False) -> None:
    if as_json:
        click.echo(report.to_json(), nl=False)
    else:
        render(report, console(), verbose)
