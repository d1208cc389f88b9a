"""Checking a JSON document against a schema lambdapack ships (``packing/schemas/``).

The schemas are JSON Schema (draft 2020-12) files, so an editor can check a model config as it
is written (``"$schema"``); lambdapack reads the same files. This checker knows the few keywords
they use — ``type``, ``properties``, ``required``, ``additionalProperties``, ``items``,
``enum``, ``minimum``, ``minLength`` — and says the first problem in one line naming the field
(``input.height: "96" is not an integer``). No third-party validator: the Docker builder runs
``lambdapack pack`` with nothing but its own dependencies, and these keywords are a few lines.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

MODEL_CONFIG = "model-config.schema.json"
BUILD_RECORD = "build-record.schema.json"

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@cache
def load(name: str) -> dict:
    """A shipped schema, by file name."""
    return json.loads((files("lambdapack.packing") / "schemas" / name).read_text(encoding="utf-8"))


def problem(document: object, schema: dict, where: str = "") -> str | None:
    """The first way ``document`` breaks ``schema``, as ``field: what is wrong``; None if none."""
    name = where or "the document"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_TYPES[kind](document) for kind in kinds):
            return f"{name}: {_shown(document)} is not {_article(' or '.join(kinds))}"
    if "enum" in schema and document not in schema["enum"]:
        allowed = ", ".join(json.dumps(value) for value in schema["enum"])
        return f"{name}: {_shown(document)} is not one of {allowed}"
    if "minimum" in schema and _TYPES["number"](document) and document < schema["minimum"]:
        return f"{name}: {document} is less than {schema['minimum']}"
    if "minLength" in schema and isinstance(document, str) and len(document) < schema["minLength"]:
        return f"{name}: must not be empty"
    if isinstance(document, dict):
        for key in schema.get("required", ()):
            if key not in document:
                return f"{_join(where, key)}: missing"
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in document.items():
            if key in properties:
                found = problem(value, properties[key], _join(where, key))
            elif extra is False:
                found = f"{_join(where, key)}: not a known field (known: {', '.join(properties)})"
            elif isinstance(extra, dict):
                found = problem(value, extra, _join(where, key))
            else:
                found = None
            if found:
                return found
    if isinstance(document, list) and "items" in schema:
        for index, item in enumerate(document):
            if found := problem(item, schema["items"], f"{name}[{index}]"):
                return found
    return None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _shown(value: object) -> str:
    shown = json.dumps(value)
    return shown if len(shown) <= 40 else shown[:37] + "…"
