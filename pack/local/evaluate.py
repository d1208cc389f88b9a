"""``lambdapack evaluate``: a zip's answers on labelled images, scored.

The images of a labelled folder (``labelled.read_samples``: one subfolder per class, or a
CSV ``file,label``) are classified by the zip in its target's local runtime, exactly as
``invoke`` does (``invoke.classify_files``: a private S3, the S3 event an upload sends, the
result objects the function writes), then scored (``scoring.score``). With the original
model, TensorFlow also answers for the same images with the zip's own preprocessing
(``packing.model.original_answers``), and the two are compared.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lambdapack.handler.lambdapack_handler.contract import MODEL_DIR

from ..errors import InputError
from ..packing.report import build_record_in, read_member
from ..render import visible
from ..scoring import Answer, Score, agreement, answer_from_result, score
from .invoke import InvokeOptions, classify_files

MODEL_CONFIG = f"{MODEL_DIR}/config.json"


@dataclass
class Evaluation:
    zip: str
    folder: str
    layout: str  # "folders" or "csv": where the labels came from
    runtime: str
    score: Score
    seconds: float
    original: dict | None = None  # with --model: the original model's score and the agreement
    unknown_labels: list[str] = field(default_factory=list)  # folder labels the model never gives
    invocation_errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = {
            "zip": self.zip,
            "folder": self.folder,
            "labels_from": self.layout,
            "runtime": self.runtime,
            "seconds": round(self.seconds, 3),
            **self.score.as_dict(),
            "unknown_labels": self.unknown_labels,
        }
        if self.original is not None:
            data["model"] = self.original
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"


def zip_config(zip_path: Path) -> tuple[dict, dict]:
    """The zip's model config (``model/config.json``) and its build record; an ``InputError``
    for a zip lambdapack did not pack."""
    if not zipfile.is_zipfile(zip_path):
        raise InputError(f"{visible(zip_path)} is not a zip file", "Pack one first: lambdapack pack MODEL.")
    try:
        with zipfile.ZipFile(zip_path) as archive:
            record = build_record_in(archive)
            config = json.loads(read_member(archive, MODEL_CONFIG))
    except KeyError as exc:
        raise InputError(
            f"{visible(zip_path)} holds no {MODEL_CONFIG}: it is not a zip lambdapack packed",
            "Pack the model with lambdapack pack MODEL.",
        ) from exc
    except (ValueError, zipfile.BadZipFile) as exc:
        raise InputError(f"{visible(zip_path)}: its {MODEL_CONFIG} cannot be read ({exc})") from exc
    if not isinstance(config, dict) or not isinstance(config.get("input"), dict):
        raise InputError(f"{visible(zip_path)}: its {MODEL_CONFIG} is not a lambdapack model config")
    return config, record


def evaluate(zip_path: Path, samples, options: InvokeOptions, model: Path | None = None) -> Evaluation:
    """Classify every image of ``samples`` (a labelled ``labelled.SampleSet``) with the zip and
    score the answers; with ``model``, the original model's too."""
    if not samples.labelled:
        raise InputError(
            f"{visible(samples.root)} holds no labels: evaluate needs one subfolder per class (their "
            "names are the labels) or a CSV of file,label rows",
            "Put each class's images in a folder named after it, or pass a CSV of file,label rows "
            "(paths relative to the CSV).",
        )
    config, record = zip_config(zip_path)
    if model is not None:
        from ..packing.model import model_kind

        model_kind(model)  # a file that is no model is refused before anything runs
    began = time.perf_counter()
    files = [sample.path for sample in samples.samples]
    names = [_name(sample.path, samples.root) for sample in samples.samples]
    truths = [sample.label for sample in samples.samples]
    objects, results = classify_files(zip_path, files, options)
    answers = [
        answer_from_result(name, truth, body)
        for name, truth, body in zip(names, truths, objects, strict=True)
    ]
    scored = score(answers, samples.labels)
    evaluation = Evaluation(
        zip=str(zip_path),
        folder=str(samples.root),
        layout=samples.kind,
        runtime=(record.get("target") or {}).get("runtime", "this machine's Python"),
        score=scored,
        seconds=time.perf_counter() - began,
        unknown_labels=sorted(set(samples.labels) - {str(label) for label in config.get("labels") or []})
        if config.get("labels")
        else [],
        invocation_errors=[
            f"{(r.error or {}).get('errorType', 'Error')}: {(r.error or {}).get('errorMessage', '')}"
            for r in results
            if not r.ok
        ],
    )
    if model is not None:
        evaluation.original = original_model(model, config, files, names, truths, samples.labels, answers)
    return evaluation


def original_model(
    model: Path,
    config: dict,
    files: list[Path],
    names: list[str],
    truths: list[str],
    labels: tuple[str, ...],
    zip_answers: list[Answer],
) -> dict:
    """The original model's answers on the same images and preprocessing, scored, and how
    often the zip gave the same top-1 label."""
    from ..packing.model import original_answers

    known = [str(label) for label in config.get("labels") or []]
    answers = []
    for name, truth, found in zip(names, truths, original_answers(model, config, files), strict=True):
        probabilities = found.get("probabilities")
        if probabilities is None:
            answers.append(Answer(name, truth, error=found.get("error", "no answer")))
            continue
        order = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])
        top = tuple(known[i] if i < len(known) else str(i) for i in order[:5])
        answers.append(Answer(name, truth, top, probabilities[order[0]]))
    original = score(answers, labels)
    disagree = [
        {"file": mine.name, "zip": mine.top1, "model": theirs.top1}
        for mine, theirs in zip(zip_answers, answers, strict=True)
        if mine.top1 != theirs.top1 or mine.top1 is None
    ]
    return {
        "path": str(model),
        "top1": original.top1,
        "correct": original.correct,
        "agreement": agreement([a.top1 for a in zip_answers], [a.top1 for a in answers]),
        "disagreements": disagree,
    }


def _name(path: Path, root: Path) -> str:
    """An image as the user knows it: its path under the labelled folder (or the CSV's)."""
    try:
        return path.relative_to(root if root.is_dir() else root.parent.resolve()).as_posix()
    except ValueError:
        return str(path)
