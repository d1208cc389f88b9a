"""Project settings for deploy and wire: ``lambdapack.toml`` (top level) or
``[tool.lambdapack]`` in ``pyproject.toml``, so ``make deploy`` needs no flags.
Command-line options win over the file; the file wins over defaults.

    function = "digits-classifier"
    bucket = "my-photos"
    prefix = "incoming/"
    memory = 1024
    [env]
    TOP_K = "3"
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KNOWN = {
    "zip",
    "function",
    "role",
    "code_bucket",
    "memory",
    "timeout",
    "ephemeral_storage",
    "env",
    "alias",
    "bucket",
    "prefix",
    "suffix",
    "events",
    "output_bucket",
    "output_prefix",
    "on_failure",
    "max_event_age",
}


def load_settings(folder: Path | None = None) -> dict:
    folder = folder or Path.cwd()
    own = folder / "lambdapack.toml"
    if own.exists():
        return _validated(_read(own), own)
    pyproject = folder / "pyproject.toml"
    if pyproject.exists():
        return _validated(_read(pyproject).get("tool", {}).get("lambdapack", {}), pyproject)
    return {}


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from exc


def _validated(data: dict, path: Path) -> dict:
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise InputError(
            f"{path}: unknown lambdapack settings {', '.join(unknown)}",
            f"Known settings: {', '.join(sorted(KNOWN))}.",
        )
    return data


def pick(option, settings: dict, key: str, default=None):
    """The command-line value if given, else the file's, else the default."""
    if option is not None and option != ():
        return option
    return settings.get(key, default)
