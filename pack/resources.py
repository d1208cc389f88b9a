"""What lambdapack ships inside its own package, found with ``importlib.resources``
(never by walking up from a source file), and where it caches.

- ``handler/``: ``index.py`` and ``lambdapack_handler/``, copied into every zip;
- ``packing/image/``: ``Dockerfile.amazonlinux`` and ``build.sh``, the Docker
  builder's image and entry point.

In the source tree these live at the top (``handler/``, ``Dockerfile.amazonlinux``,
``build.sh``); ``pyproject.toml`` maps them into the package, so a wheel, a
``pipx install`` and a source build all find them the same way.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

PACKAGE = "lambdapack"
DOCKERFILE = "Dockerfile.amazonlinux"
BUILD_SCRIPT = "build.sh"


def package_dir() -> Path:
    """The installed ``lambdapack`` folder (the Docker builder mounts it into its containers)."""
    return Path(str(files(PACKAGE)))


def handler_dir() -> Path:
    return package_dir() / "handler"


def snapstart_runtime_dir() -> Path:
    """The folder of ``lambdapack_snapstart.py``, put on a SnapStart function's path locally
    (``local/snapstart.py``)."""
    return package_dir() / "local" / "snaprt"


def builder_file(name: str) -> Path:
    """``Dockerfile.amazonlinux`` or ``build.sh``."""
    return package_dir() / "packing" / "image" / name


def default_cache_dir() -> Path:
    """Wheels, converted models and runtime folders: $LAMBDAPACK_CACHE, else the user cache."""
    configured = os.environ.get("LAMBDAPACK_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lambdapack"
