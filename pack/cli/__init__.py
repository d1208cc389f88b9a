"""The ``lambdapack`` command: one click group, commands in one module per group
(``pack``: pack, report, compare; ``local``: invoke, local, upload, results;
``evaluate``: evaluate; ``aws``: deploy, wire, unwire). Commands parse options, call the library and
render; ``main`` turns every expected failure (``PackError``) into one message
and its documented exit code, never a traceback. Nothing below this package
imports it.
"""

from __future__ import annotations

import io
import sys

import click

from .. import __version__
from ..errors import PackError
from ..render import echo, line, text
from . import aws, estimate, evaluate, init, local, pack
from .common import err


class WorkflowGroup(click.Group):
    """Lists commands in the order of the workflow (as registered), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=WorkflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lambdapack")
def cli() -> None:
    """Pack a TensorFlow/Keras image classifier for AWS Lambda, run it locally, deploy and wire it."""


# The workflow: pack and look inside, run locally, then deploy and wire.
for command in (
    *init.COMMANDS,
    *pack.COMMANDS,
    *local.COMMANDS,
    *evaluate.COMMANDS,
    *estimate.COMMANDS,
    *aws.COMMANDS,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="lambdapack", standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        shown = io.StringIO()
        exc.show(file=shown)  # it may quote what was typed: shown through the output layer
        echo(shown.getvalue().rstrip("\n"), err=True)
        sys.exit(exc.exit_code)
    except PackError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        # The last boundary: an AWS error no command translated is still one message.
        if not type(exc).__module__.startswith(("botocore", "boto3")):
            raise
        from ..aws.client import aws_error

        _fail(aws_error(exc, "the AWS call failed"))


def _fail(error: PackError) -> None:
    where = f" ({error.stage})" if error.stage else ""
    # soft_wrap: the message is one line however narrow the terminal (a test may read it).
    err.print(
        line((f"error{where}: ", "bold red"), str(error), newlines=True), highlight=False, soft_wrap=True
    )
    if error.hint:
        err.print(text(error.hint, newlines=True), highlight=False, soft_wrap=True)
    sys.exit(error.exit_code)
