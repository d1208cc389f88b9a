"""Errors a user can cause, each with what happened, why, and what to do.

The CLI prints ``str(error)`` and ``error.hint`` and exits with
``error.exit_code``; it never shows a traceback for these. A pack stage that
fails sets ``error.stage`` (``packing.pipeline.run_stages``), so the message can
say where.
"""

from __future__ import annotations


class PackError(Exception):
    """Base class: an expected failure with a message and a hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint
        self.stage: str | None = None


class InputError(PackError):
    """The model, config or an option is unusable."""

    exit_code = 2


class InstallError(PackError):
    """pip could not install the runtime's dependencies for the target."""

    exit_code = 3


class ModelError(PackError):
    """The model could not be read, converted, or the conversion changed its answers."""

    exit_code = 4


class SizeLimitError(PackError):
    """The package is over a Lambda size limit."""

    exit_code = 5


class CompatibilityError(PackError):
    """A native library cannot load on the target Lambda runtime."""

    exit_code = 6


class SmokeTestError(PackError):
    """The packed zip failed to import or classify in a clean interpreter."""

    exit_code = 7


class ToolError(PackError):
    """A build tool (strip, pip) is missing or failed unexpectedly."""

    exit_code = 8


class AWSError(PackError):
    """An AWS call failed for a reason the user can fix (credentials, region, a missing resource)."""

    exit_code = 9


class DeployError(PackError):
    """The zip or the settings cannot be deployed as they are (checked before any AWS write),
    or the function is not lambdapack's and --adopt was not given."""

    exit_code = 10


class DestroyRefused(PackError):
    """destroy found a function lambdapack did not make: it changed nothing."""

    exit_code = 10


class ResultsMissing(PackError):
    """``results --wait`` timed out with images still without a result."""

    exit_code = 12


class AccuracyError(PackError):
    """On labelled samples, the zip is less accurate than the original model, or another
    preprocessing gets clearly more of them right than the configured one."""

    exit_code = 13


class WireError(PackError):
    """The S3 trigger cannot be wired safely (overlapping filters, a recursive loop)."""

    exit_code = 11
