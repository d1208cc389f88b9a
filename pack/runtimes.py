"""Inference runtimes a zip can carry, as data.

A runtime names the requirements pip installs for the target, the modules
the smoke run must be able to import, and the prune rule groups that apply
to its packages (see ``prune.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    name: str
    requirements: tuple[str, ...]
    # Imported by the smoke run, beyond the handler itself.
    smoke_imports: tuple[str, ...]
    description: str


LITERT = Runtime(
    name="litert",
    requirements=("ai-edge-litert>=1.4", "numpy", "pillow"),
    smoke_imports=("numpy", "PIL.Image", "ai_edge_litert.interpreter"),
    description="TensorFlow Lite interpreter (LiteRT) + numpy + Pillow",
)

RUNTIMES: dict[str, Runtime] = {LITERT.name: LITERT}

# The Lambda Python runtime ships boto3; bundle it only on request.
BOTO3_REQUIREMENT = "boto3"
