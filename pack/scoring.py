"""Answers scored against the truth: top-1 (and top-k) accuracy, per-class precision and
recall, the confusion matrix, the images answered wrong. Pure functions over plain data, the
one home of these figures for ``evaluate``, ``results --labels-from`` and whoever else scores
answers (pack's smoke run on labelled samples).

The count of right answers alone (init's candidate preprocessings, pack's labelled check: the
model's output indices against the labels' indices) is ``count_correct`` and ``fraction``.

An answer is an ``Answer``: the image's name, its true label, the labels the model gave best
first (empty when the image got an error), the top score and the error. An image that got an
error counts as wrong and is its own column of the confusion matrix (``ERROR_COLUMN``), so
the matrix always sums to the number of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ERROR_COLUMN = "(error)"  # the confusion matrix's column for images that got no answer


@dataclass(frozen=True)
class Answer:
    name: str  # the image as the user knows it (a relative path, a key)
    truth: str
    predicted: tuple[str, ...] = ()  # labels, best first; () when the image got an error
    score: float | None = None  # the top label's score
    error: str | None = None  # "Type: message" when the image got no answer

    @property
    def top1(self) -> str | None:
        return self.predicted[0] if self.predicted else None

    @property
    def correct(self) -> bool:
        return self.top1 == self.truth


@dataclass(frozen=True)
class ClassScore:
    label: str
    support: int  # images whose truth is this label
    predicted: int  # images answered with this label (top-1)
    correct: int
    precision: float | None  # correct / predicted; None when never predicted
    recall: float | None  # correct / support; None when no image has this label

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass(frozen=True)
class Score:
    images: int
    correct: int
    top1: float | None  # None for no images
    topk: dict[int, float]  # k > 1 → accuracy, for the k the answers carry
    per_class: tuple[ClassScore, ...]
    rows: tuple[str, ...]  # the confusion matrix's rows: true labels
    columns: tuple[str, ...]  # its columns: predicted labels (+ ERROR_COLUMN when any)
    matrix: tuple[tuple[int, ...], ...]  # matrix[row][column] images
    wrong: tuple[Answer, ...]
    errors: int = 0

    def as_dict(self) -> dict:
        """The JSON ``evaluate --json`` prints (documented in the README)."""
        return {
            "images": self.images,
            "correct": self.correct,
            "top1": self.top1,
            "topk": {str(k): v for k, v in sorted(self.topk.items())},
            "errors": self.errors,
            "per_class": {
                c.label: {k: v for k, v in c.as_dict().items() if k != "label"} for c in self.per_class
            },
            "confusion": {
                "rows": list(self.rows),
                "columns": list(self.columns),
                "matrix": [list(row) for row in self.matrix],
            },
            "wrong": [
                {
                    "file": a.name,
                    "label": a.truth,
                    "predicted": a.top1,
                    "score": a.score,
                    **({"error": a.error} if a.error else {}),
                }
                for a in self.wrong
            ],
        }


def score(answers: Sequence[Answer], labels: Sequence[str] = ()) -> Score:
    """Score ``answers``. ``labels``: the classes in the order to show them (a labelled
    folder's sorted class names); labels seen only in the answers follow, sorted."""
    truths = list(dict.fromkeys([*labels, *sorted({a.truth for a in answers} - set(labels))]))
    predicted = sorted({a.top1 for a in answers if a.top1 is not None} - set(truths))
    errors = sum(1 for a in answers if a.top1 is None)
    columns = [*truths, *predicted] + ([ERROR_COLUMN] if errors else [])
    at = {label: i for i, label in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in truths]
    row_of = {label: i for i, label in enumerate(truths)}
    for answer in answers:
        matrix[row_of[answer.truth]][at[answer.top1 if answer.top1 is not None else ERROR_COLUMN]] += 1
    correct = sum(1 for a in answers if a.correct)
    per_class = []
    for label in truths:
        support = sum(matrix[row_of[label]])
        said = sum(row[at[label]] for row in matrix)
        hits = matrix[row_of[label]][at[label]]
        per_class.append(
            ClassScore(
                label,
                support,
                said,
                hits,
                hits / said if said else None,
                hits / support if support else None,
            )
        )
    return Score(
        images=len(answers),
        correct=correct,
        top1=correct / len(answers) if answers else None,
        topk=topk_accuracy(answers),
        per_class=tuple(per_class),
        rows=tuple(truths),
        columns=tuple(columns),
        matrix=tuple(tuple(row) for row in matrix),
        wrong=tuple(a for a in answers if not a.correct),
        errors=errors,
    )


def topk_accuracy(answers: Sequence[Answer]) -> dict[int, float]:
    """Top-k accuracy for k = 2 … the fewest labels any answered image carries (an image with
    an error counts as wrong for every k). {} when the answers carry one label each."""
    answered = [a for a in answers if a.predicted]
    if not answered:
        return {}
    most = min(len(a.predicted) for a in answered)
    return {
        k: sum(1 for a in answered if a.truth in a.predicted[:k]) / len(answers) for k in range(2, most + 1)
    }


def agreement(first: Sequence[str | None], second: Sequence[str | None]) -> float | None:
    """The share of images on which two models gave the same top-1 label (None: no images).
    An image either model could not answer is a disagreement."""
    if len(first) != len(second):
        raise ValueError("agreement needs the answers of both models for the same images")
    if not first:
        return None
    return sum(1 for a, b in zip(first, second, strict=True) if a is not None and a == b) / len(first)


def answer_from_result(name: str, truth: str, body: dict) -> Answer:
    """An ``Answer`` from a result object the function wrote (``top_k`` or ``error``)."""
    error = body.get("error")
    if error:
        message = error.get("message", "") if isinstance(error, dict) else str(error)
        kind = error.get("type", "error") if isinstance(error, dict) else "error"
        return Answer(name, truth, error=f"{kind}: {message}")
    top = [item for item in body.get("top_k") or [] if isinstance(item, dict) and "label" in item]
    if not top:
        return Answer(name, truth, error="NoAnswer: the result holds no labels")
    return Answer(name, truth, tuple(str(item["label"]) for item in top), top[0].get("score"))


def count_correct(predicted: Sequence, truth: Sequence) -> int:
    """How many top-1 answers equal the truth, image by image (both in the same order)."""
    return sum(1 for got, want in zip(predicted, truth, strict=True) if got == want)


def fraction(correct: int, images: int) -> str:
    """A count of right answers as init and pack show it: ``28/30 (93.3%)``."""
    return f"{correct}/{images} ({percent(correct / images if images else None)})"


def percent(value: float | None) -> str:
    """An accuracy as every command shows it: one decimal, or "—" when there is none."""
    return "—" if value is None else f"{value:.1%}"


def label_from_folder(key: str, under: str = "") -> str | None:
    """The label of an input key by its folder: the name of the folder that holds it
    (``incoming/cat/1.png`` → ``cat``). None for a key with no folder of its own: one at the
    bucket's root, or directly under ``under`` (the prefix the images were uploaded to)."""
    parts = key.split("/")
    if len(parts) < 2 or not parts[-2]:
        return None
    if under and key.startswith(under) and "/" not in key[len(under) :].strip("/"):
        return None
    return parts[-2]


def folder_labels(keys: Sequence[str], under: str = "") -> dict[str, str | None]:
    """The label of each input key by its folder (``label_from_folder``), and None for a key
    that sits next to class folders: ``incoming/1.png`` beside ``incoming/cat/2.png`` is in
    the folder that holds the classes, not in a class (as an image beside class folders is
    in a labelled samples folder), whether or not ``under`` says where the classes begin."""
    parents = {key.rsplit("/", 1)[0] for key in keys if "/" in key}
    holders = {parent.rsplit("/", 1)[0] for parent in parents if "/" in parent}
    return {
        key: None if "/" in key and key.rsplit("/", 1)[0] in holders else label_from_folder(key, under)
        for key in keys
    }
