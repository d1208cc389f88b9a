"""The ``smoke`` stage: unzip into a fresh folder and classify, the way
``/var/task`` would, in a separate interpreter that sees only that folder and
the standard library (``python -I -S``, a scrubbed environment).

It proves the zip imports (no module pruned that is needed, every native
library loads, no dependency left behind on the build machine) and that the
packed runtime gives the same answers as the build machine's check.
It runs in the target's own Python on the target's architecture
(``interpreter.TargetPython``: this machine's interpreter, or a container of
the target's Python, arm64 under QEMU); with none at hand the report says it
was not run, and why.

With staged dependencies the child first unpacks ``deps.tar.zst`` with the
zip's own bootstrap (``lambdapack_handler.staged``), exactly as a cold start
does, and its tree counts as part of the function.
"""

from __future__ import annotations

import io
import json
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from lambdapack.handler.lambdapack_handler.contract import LAMBDA_TASK_ROOT

from ..errors import SmokeTestError
from ..limits import DEFAULT_REGION
from .interpreter import TargetPython

CHILD = Path(__file__).with_name("smoke_child.py")
TOLERANCE = 1e-3  # largest probability difference allowed against the build check
TIMEOUT_S = 300
# Every image plugin left in the zip must import: Pillow skips one that fails (a module it
# needs pruned), and the handler would then refuse that format as "not an image".
PLUGIN_PACKAGES = {"PIL": "ImagePlugin"}


@dataclass(frozen=True)
class StagedArchive:
    path: Path
    sha256: str


@dataclass
class SmokeResult:
    ran: bool
    note: str = ""
    images: int = 0
    import_s: float = 0.0
    first_inference_ms: float = 0.0
    max_difference: float | None = None
    modules_from_zip: int = 0
    modules_with_pyc: int = 0
    staged_s: float | None = None
    interpreter: str = ""  # which Python ran it: this machine's, or a container's
    top1: list[int] | None = None  # the zip's answer (output index) for each image, in order

    def as_dict(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if key != "top1"}


def clean_environment(task: Path, tmp: Path) -> dict[str, str]:
    """Roughly what Lambda gives a function: no PYTHONPATH, no user site, its own /tmp."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        LAMBDA_TASK_ROOT: str(task),
        "TMPDIR": str(tmp),
        "HOME": str(tmp),
        "AWS_REGION": DEFAULT_REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "lambdapack-smoke",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def smoke_run(
    zip_path: Path,
    images: list[Path],
    expected: list[list[float]],
    imports: tuple[str, ...],
    python: TargetPython | None,
    unavailable: str = "",
    staged: StagedArchive | None = None,
) -> SmokeResult:
    if python is None:
        return SmokeResult(ran=False, note=unavailable)
    with tempfile.TemporaryDirectory(prefix="lambdapack-smoke-") as work:
        task = Path(work) / "task"
        tmp = Path(work) / "tmp"
        tmp.mkdir()
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task)
        if not images:
            images = [_blank_image(Path(work))]
        request = {
            "images": [str(p.resolve()) for p in images],
            "k": 1000,
            "imports": list(imports),
            "plugins": PLUGIN_PACKAGES,
        }
        if staged is not None:
            request["staged"] = {"archive": str(staged.path.resolve()), "sha256": staged.sha256}
        request_path = Path(work) / "request.json"
        request_path.write_text(json.dumps(request))
        visible = [Path(work), CHILD.parent, *{p.resolve().parent for p in images}]
        if staged is not None:
            visible.append(staged.path.resolve().parent)
        try:
            proc = python.run(
                ["-I", "-S", "-B", str(CHILD), str(task), str(request_path)],
                paths=visible,
                env=clean_environment(task, tmp),
                cwd=task,
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise SmokeTestError(f"the smoke run did not finish in {TIMEOUT_S} s") from exc
        if proc.returncode != 0:
            raise SmokeTestError(
                "the packed zip failed in a clean interpreter:\n" + _tail(proc.stderr),
                "Something the handler needs was not packed, was pruned, or does not load. "
                "Run with --keep GROUP to keep a prune group, or check --require.",
            )
        outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    return _judge(outcome, expected, python)


def _judge(outcome: dict, expected: list[list[float]], python: TargetPython) -> SmokeResult:
    """``expected``: the build check's probabilities for each image, in the order given (names
    may repeat across class folders); none for the blank image used when no sample is given."""
    if outcome["import_failures"]:
        raise SmokeTestError(
            "modules do not import from the packed zip: "
            + "; ".join(f"{k}: {v}" for k, v in outcome["import_failures"].items()),
            "A prune rule may have removed something they need: try --keep GROUP.",
        )
    if outcome["modules_from_elsewhere"]:
        raise SmokeTestError(
            "the smoke run imported modules from outside the zip and the standard library: "
            + ", ".join(outcome["modules_from_elsewhere"][:10]),
            "The interpreter was not isolated; this is a lambdapack bug.",
        )
    worst = None
    for result, want in zip(outcome["results"], expected, strict=False):
        name = Path(result["image"]).name
        got = {item["index"]: item["score"] for item in result["top_k"]}
        difference = max(abs(got.get(i, 0.0) - p) for i, p in enumerate(want))
        worst = difference if worst is None else max(worst, difference)
        if difference > TOLERANCE:
            raise SmokeTestError(
                f"the packed zip's answer for {name} differs from the build check by "
                f"{difference:.3g} (allowed {TOLERANCE})",
                "The zip's inference runtime disagrees with the build machine's: check the "
                "runtime version pins.",
            )
    first = outcome["results"][0]
    return SmokeResult(
        ran=True,
        images=len(outcome["results"]),
        import_s=outcome["import_s"],
        first_inference_ms=first["seconds"] * 1000,
        max_difference=worst,
        modules_from_zip=outcome["modules_from_task"],
        modules_with_pyc=outcome["modules_with_pyc"],
        staged_s=outcome.get("staged_s"),
        interpreter=python.description,
        top1=[result["top_k"][0]["index"] for result in outcome["results"]],
    )


def _blank_image(folder: Path) -> Path:
    from PIL import Image

    path = folder / "smoke.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (127, 127, 127)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
