"""The model config that travels with the model, so no code changes per model.

Written by ``lambdapack pack`` as ``model/config.json`` next to the model:

    {"name": "digits-cnn", "model_file": "model.tflite", "sha256": "…",
     "labels": ["0", "1", …],
     "input": {"height": 32, "width": 32, "channels": 1,
               "scale": "0..1", "resize": "stretch"},
     "output": "probabilities", "backend": "litert"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

# How 8-bit pixel values p (0..255) become model inputs.
SCALES = {
    "0..1": (1 / 255.0, 0.0),
    "-1..1": (1 / 127.5, -1.0),
    "0..255": (1.0, 0.0),
}
RESIZE_MODES = ("stretch", "center-crop")
OUTPUT_KINDS = ("auto", "probabilities", "logits")
BACKENDS = ("litert", "tensorflow")
CHANNEL_MODES = {1: "L", 3: "RGB"}


class ConfigError(ValueError):
    """The model config is missing a field or has a value the handler cannot use."""


@dataclass(frozen=True)
class InputSpec:
    height: int
    width: int
    channels: int
    scale: str = "0..1"
    resize: str = "stretch"

    @property
    def mode(self) -> str:
        return CHANNEL_MODES[self.channels]


@dataclass(frozen=True)
class ModelConfig:
    name: str
    model_file: str
    input: InputSpec
    labels: tuple[str, ...] = ()
    output: str = "auto"
    sha256: str = ""
    backend: str = "litert"
    extra: dict = field(default_factory=dict)

    def label(self, index: int) -> str:
        return self.labels[index] if index < len(self.labels) else str(index)

    def as_dict(self) -> dict:
        return {
            **self.extra,
            "name": self.name,
            "model_file": self.model_file,
            "sha256": self.sha256,
            "labels": list(self.labels),
            "input": {
                "height": self.input.height,
                "width": self.input.width,
                "channels": self.input.channels,
                "scale": self.input.scale,
                "resize": self.input.resize,
            },
            "output": self.output,
            "backend": self.backend,
        }


def parse_config(data: dict) -> ModelConfig:
    """Validate a config dict; every problem names the field and what is allowed."""
    try:
        raw_input = data["input"]
        spec = InputSpec(
            height=int(raw_input["height"]),
            width=int(raw_input["width"]),
            channels=int(raw_input["channels"]),
            scale=str(raw_input.get("scale", "0..1")),
            resize=str(raw_input.get("resize", "stretch")),
        )
        model_file = str(data["model_file"])
    except KeyError as exc:
        raise ConfigError(f"model config is missing {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model config has a bad input field: {exc}") from exc
    if spec.channels not in CHANNEL_MODES:
        raise ConfigError(f"input.channels must be 1 or 3, not {spec.channels}")
    if spec.scale not in SCALES:
        raise ConfigError(f"input.scale must be one of {', '.join(SCALES)}, not {spec.scale!r}")
    if spec.resize not in RESIZE_MODES:
        raise ConfigError(f"input.resize must be one of {', '.join(RESIZE_MODES)}")
    if spec.height < 1 or spec.width < 1:
        raise ConfigError("input.height and input.width must be positive")
    output = str(data.get("output", "auto"))
    if output not in OUTPUT_KINDS:
        raise ConfigError(f"output must be one of {', '.join(OUTPUT_KINDS)}, not {output!r}")
    backend = str(data.get("backend", "litert"))
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    known = {"name", "model_file", "input", "labels", "output", "sha256", "backend"}
    return ModelConfig(
        name=str(data.get("name", Path(model_file).stem)),
        model_file=model_file,
        input=spec,
        labels=tuple(str(label) for label in data.get("labels", ())),
        output=output,
        sha256=str(data.get("sha256", "")),
        backend=backend,
        extra={key: value for key, value in data.items() if key not in known},
    )


def load_config(path: Path) -> ModelConfig:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no model config at {path}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"model config {path} is not valid JSON: {exc}") from exc
    return parse_config(data)
