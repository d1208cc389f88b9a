"""What the parent knows of lambdapack's child processes (``convert_child``, ``inspect_child``,
``calibrate_child``: TensorFlow runs in them, never in the CLI's process): which of their
error codes are the user's input to fix, and how a crash is said in one line."""

from __future__ import annotations

import re

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
