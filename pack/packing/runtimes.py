"""Inference runtimes a zip can carry, as data.

A runtime names the requirements pip installs for the target, the model
format the handler serves with it, the modules the smoke run must be able to
import, and the prune rule groups that must not run on its packages (see
``prune.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    name: str
    requirements: tuple[str, ...]
    # Imported by the smoke run, beyond the handler itself.
    smoke_imports: tuple[str, ...]
    # "tflite" (converted at build time) or "saved_model" (served by TensorFlow itself).
    model_format: str = "tflite"
    # Prune groups that would remove something this runtime imports.
    unsafe_prune_groups: tuple[str, ...] = ()
    # What to say when the plain zip is over Lambda's 250 MB.
    over_limit_hint: str = ""
    # Replacements for one architecture: pip evaluates environment markers for this
    # machine, never for the --platform it installs for, so they cannot say it.
    arch_requirements: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def requirements_for(self, arch: str) -> tuple[str, ...]:
        return dict(self.arch_requirements).get(arch, self.requirements)


LITERT = Runtime(
    name="litert",
    requirements=("ai-edge-litert>=1.4", "numpy", "pillow"),
    smoke_imports=("numpy", "PIL.Image", "ai_edge_litert.interpreter"),
)

TENSORFLOW = Runtime(
    name="tensorflow",
    requirements=("tensorflow-cpu", "numpy", "pillow"),
    smoke_imports=("numpy", "PIL.Image", "tensorflow"),
    model_format="saved_model",
    # tensorflow-cpu publishes no aarch64 wheels; tensorflow's aarch64 wheels are CPU-only.
    arch_requirements=(("arm64", ("tensorflow", "numpy", "pillow")),),
    # TensorFlow imports numpy.random and friends at import time.
    unsafe_prune_groups=("numpy-extras",),
    over_limit_hint=(
        "Full TensorFlow 2.x never fits a zip. Stage its dependencies in S3 and unpack "
        "them into /tmp at cold start: add --stage-deps s3. Or use --runtime litert if the "
        "model converts to TensorFlow Lite."
    ),
)

RUNTIMES: dict[str, Runtime] = {runtime.name: runtime for runtime in (LITERT, TENSORFLOW)}

# Where the dependencies of a function travel: in the zip, or staged in S3.
STAGE_MODES = ("none", "s3")
# What the bootstrap that unpacks staged dependencies needs in the zip itself.
BOOTSTRAP_REQUIREMENTS = ("zstandard",)

# The Lambda Python runtime ships boto3; bundle it only on request.
BOTO3_REQUIREMENT = "boto3"
