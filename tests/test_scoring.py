"""Scoring answers against the truth (``lambdapack.scoring``): the figures evaluate and
``results --labels-from`` print, checked against counts worked out by hand."""

from __future__ import annotations

import pytest

from lambdapack.scoring import (
    ERROR_COLUMN,
    Answer,
    agreement,
    answer_from_result,
    folder_labels,
    label_from_folder,
    score,
)

ANSWERS = [
    Answer("cat/1.png", "cat", ("cat", "dog"), 0.9),
    Answer("cat/2.png", "cat", ("dog", "cat"), 0.6),
    Answer("cat/3.png", "cat", ("cat", "bird"), 0.8),
    Answer("dog/1.png", "dog", ("dog", "cat"), 0.7),
    Answer("dog/2.png", "dog", (), error="ImageError: not an image"),
    Answer("bird/1.png", "bird", ("dog", "bird"), 0.5),
]


def test_accuracy_precision_recall_and_the_matrix_by_hand():
    scored = score(ANSWERS, ("bird", "cat", "dog"))
    assert scored.images == 6 and scored.correct == 3 and scored.top1 == pytest.approx(0.5)
    # top-2: cat/2 and bird/1 have the truth second; the error counts as wrong.
    assert scored.topk == {2: pytest.approx(5 / 6)}
    assert scored.rows == ("bird", "cat", "dog")
    assert scored.columns == ("bird", "cat", "dog", ERROR_COLUMN)
    assert scored.matrix == ((0, 0, 1, 0), (0, 2, 1, 0), (0, 0, 1, 1))
    assert sum(map(sum, scored.matrix)) == len(ANSWERS)
    by_label = {row.label: row for row in scored.per_class}
    assert (by_label["cat"].precision, by_label["cat"].recall) == (1.0, pytest.approx(2 / 3))
    assert (by_label["dog"].precision, by_label["dog"].recall) == (pytest.approx(1 / 3), 0.5)
    assert by_label["bird"].precision is None and by_label["bird"].recall == 0.0
    assert [a.name for a in scored.wrong] == ["cat/2.png", "dog/2.png", "bird/1.png"]
    assert scored.errors == 1


def test_the_json_names_every_figure():
    data = score(ANSWERS, ("bird", "cat", "dog")).as_dict()
    assert {"images", "top1", "per_class", "confusion", "wrong"} <= set(data)
    assert data["per_class"]["cat"]["support"] == 3
    assert data["confusion"]["matrix"][1] == [0, 2, 1, 0]
    assert data["wrong"][1] == {
        "file": "dog/2.png",
        "label": "dog",
        "predicted": None,
        "score": None,
        "error": "ImageError: not an image",
    }


def test_answers_outside_the_known_labels_get_a_column():
    scored = score([Answer("a.png", "cat", ("tiger",), 0.9), Answer("b.png", "cat", ("cat",), 0.9)], ("cat",))
    assert scored.columns == ("cat", "tiger") and scored.matrix == ((1, 1),)
    assert scored.topk == {}  # one label per answer: no top-k


def test_no_images_has_no_accuracy():
    scored = score([], ("cat",))
    assert scored.top1 is None and scored.matrix == ((0,),) and scored.per_class[0].recall is None


def test_agreement_counts_unanswered_as_disagreeing():
    assert agreement(["a", "b", None, "c"], ["a", "c", None, "c"]) == 0.5
    assert agreement([], []) is None
    with pytest.raises(ValueError):
        agreement(["a"], [])


def test_answer_from_a_result_object():
    ok = answer_from_result(
        "x.png", "3", {"top_k": [{"label": "3", "score": 0.97}, {"label": "8", "score": 0.02}]}
    )
    assert ok.predicted == ("3", "8") and ok.score == 0.97 and ok.correct
    failed = answer_from_result("y.png", "3", {"error": {"type": "ImageError", "message": "truncated"}})
    assert failed.top1 is None and failed.error == "ImageError: truncated" and not failed.correct


@pytest.mark.parametrize(
    ("key", "under", "label"),
    [
        ("incoming/cat/1.png", "", "cat"),
        ("incoming/cat/1.png", "incoming/", "cat"),
        ("incoming/1.png", "incoming/", None),
        ("1.png", "", None),
        ("a/b/c/dog/1.png", "a/", "dog"),
    ],
)
def test_the_label_of_a_key_is_its_folder(key, under, label):
    assert label_from_folder(key, under) == label


def test_a_key_beside_class_folders_has_no_label_even_without_the_prefix():
    keys = ["incoming/cat/1.png", "incoming/dog/2.png", "incoming/3.png", "elsewhere/4.png"]
    assert folder_labels(keys) == {
        "incoming/cat/1.png": "cat",
        "incoming/dog/2.png": "dog",
        "incoming/3.png": None,  # beside the class folders: the folder that holds the classes
        "elsewhere/4.png": "elsewhere",  # nothing says it is not a class
    }
    assert folder_labels(keys, "incoming/") == folder_labels(keys)


def test_a_terminal_shows_the_largest_confusions_of_many_classes():
    """100 classes do not fit a terminal's width: the table lists the confusions instead."""
    from rich.console import Console

    from lambdapack.render import MATRIX_COLUMNS, confusion_table

    labels = [f"class{index:03d}" for index in range(100)]
    answers = [Answer(f"{label}/1.png", label, (label,), 0.9) for label in labels]
    answers += [Answer("class007/2.png", "class007", ("class042",), 0.5)] * 3
    answers += [Answer("class001/2.png", "class001", ("class002",), 0.5)]
    console = Console(width=200, record=True)
    console.print(confusion_table(score(answers, labels)))
    shown = console.export_text()
    assert "most frequent confusions" in shown
    rows = [line.split("│")[1:4] for line in shown.splitlines() if line.count("│") == 4]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["class007", "class042", "3"],
        ["class001", "class002", "1"],
    ]
    few = Console(width=200, record=True)
    few.print(confusion_table(score(answers[:MATRIX_COLUMNS], labels[:MATRIX_COLUMNS])))
    assert "confusion matrix" in few.export_text()
