"""What the parent knows of lambdapack's child processes (``convert_child``, ``inspect_child``,
``calibrate_child``: TensorFlow runs in them, never in the CLI's process): which of their
error codes are the user's input to fix, how a crash is said in one line, and how one is run
(``run_child``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ..errors import InputError, ModelError

# Errors from a child that are the user's input to fix (exit 2), not the model's (exit 4).
CHILD_INPUT_PROBLEMS = ("free_size", "input_size", "free_size_tflite", "unsafe_ops")


def last_error_line(stderr: str) -> str:
    """The line of a child's stderr that says what went wrong: the exception line of a
    traceback, else a fatal message, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no output"
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)(:|$)", line):
            return line
    for line in reversed(lines):
        if re.search(r"fatal|abort|segmentation fault|killed|error", line, re.IGNORECASE):
            return line
    return lines[-1]


def exit_text(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def run_child(module: str, request: dict, folder: Path, answer: Path, crashed: str, hint: str) -> dict:
    """Run ``python -m lambdapack.packing.MODULE REQUEST.json`` (the request written into
    ``folder``; TensorFlow's logging quiet, no GPU) and return the JSON it wrote to ``answer``.
    A child that stopped before writing it is a ``ModelError``: ``crashed`` (what was running),
    how it ended and its stderr's telling line, and ``hint``."""
    (folder / "request.json").write_text(json.dumps(request))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="-1")
    proc = subprocess.run(
        [sys.executable, "-m", f"lambdapack.packing.{module}", str(folder / "request.json")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if not answer.exists():
        raise ModelError(
            f"{crashed} crashed ({exit_text(proc.returncode)}): {last_error_line(proc.stderr)}", hint
        )
    return json.loads(answer.read_text())


def raise_child_error(found: dict) -> None:
    """A child's ``error`` answer as the error the user gets: an ``InputError`` (exit 2) for
    the codes that are the user's input to fix, else a ``ModelError``."""
    if "error" in found:
        problem = InputError if found.get("code") in CHILD_INPUT_PROBLEMS else ModelError
        raise problem(found["error"], found.get("hint", ""))
