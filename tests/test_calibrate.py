"""The rules of choosing preprocessing by accuracy and of pack's labelled check
(``lambdapack.packing.calibrate``): pure, no TensorFlow; sample sets are real files."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lambdapack.errors import AccuracyError, InputError
from lambdapack.labelled import read_samples
from lambdapack.packing import calibrate
from lambdapack.packing.calibrate import CandidateScore, LabelledCheck, choose


def scores(correct: dict[tuple[str, str], int], images: int) -> list[CandidateScore]:
    """Every candidate, with ``correct`` for the ones named and 0 for the others."""
    return [CandidateScore(s, r, correct.get((s, r), 0), images) for s, r in calibrate.candidates()]


def folders(root: Path, classes: dict[str, int]) -> Path:
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            Image.new("RGB", (4, 4)).save(root / name / f"{index}.png")
    return root


def test_candidates_are_every_scale_and_resize_the_handler_implements():
    from lambdapack.handler.lambdapack_handler.config import RESIZE_MODES, SCALES

    assert sorted(calibrate.candidates()) == sorted((s, r) for s in SCALES for r in RESIZE_MODES)


def test_a_near_tie_is_one_image_in_a_hundred_and_clearly_better_needs_two_images():
    assert calibrate.near_tie(99, 100, 100) and not calibrate.near_tie(98, 100, 100)
    assert not calibrate.near_tie(29, 30, 30)  # one image of thirty is more than 1 %
    assert not calibrate.clearly_better(30, 29, 30)  # one image: noise on a small set
    assert calibrate.clearly_better(30, 28, 30)
    assert not calibrate.clearly_better(1000, 991, 1000)  # 0.9 %: a near-tie
    assert calibrate.too_large_a_drop(100, 98, 100, 1.0) and not calibrate.too_large_a_drop(100, 99, 100, 1.0)
    assert not calibrate.too_large_a_drop(100, 95, 100, 5.0)


def test_the_best_candidate_is_written_and_its_accuracy_said():
    measured = scores({("-1..1", "stretch"): 28, ("-1..1", "center-crop"): 25, ("0..1", "stretch"): 10}, 30)
    choice = choose(measured, "0..1", False, "stretch", False)
    assert (choice.scale, choice.resize) == ("-1..1", "stretch")
    assert choice.scale_source == "measured: top-1 28/30 (93.3%) on 30 labelled images, the best"
    assert choice.warnings == []


def test_a_scale_tie_is_settled_only_by_the_model_itself():
    tied = scores({("0..1", "stretch"): 20, ("0..255", "stretch"): 20}, 20)
    kept = choose(tied, "0..255", True, "stretch", False)  # a Rescaling layer inside says 0..255
    assert kept.scale == "0..255" and "near-tie between 0..1, 0..255" in kept.scale_source
    with pytest.raises(InputError, match="do not tell the input scale") as caught:
        choose(tied, "0..1", False, "stretch", False)  # only the default: not guessed
    assert "--scale 0..1|0..255" in caught.value.hint
    forced = choose(tied, "0..1", False, "stretch", False, forced_scale="0..255")
    assert forced.scale == "0..255" and forced.scale_source == "from --scale"


def test_a_resize_tie_keeps_what_the_model_says_or_stretch_and_says_so():
    tied = scores({("-1..1", "stretch"): 40, ("-1..1", "center-crop"): 40}, 40)
    choice = choose(tied, "0..1", False, "stretch", False)
    assert choice.resize == "stretch"
    assert choice.resize_source.startswith("a tie between stretch and center-crop")
    crop = choose(tied, "0..1", False, "center-crop", True)
    assert crop.resize == "center-crop" and "kept what the model says" in crop.resize_source


def test_a_forced_scale_that_scores_clearly_lower_is_warned_naming_the_fix():
    measured = scores({("-1..1", "stretch"): 24, ("0..1", "stretch"): 8, ("0..1", "center-crop"): 8}, 24)
    choice = choose(measured, "0..1", False, "stretch", False, forced_scale="0..1")
    assert choice.scale == "0..1"
    assert len(choice.warnings) == 1 and "--scale -1..1 fixes it" in choice.warnings[0]
    assert "--resize" not in choice.warnings[0]  # only what differs


def test_pack_fails_with_its_own_exit_code_when_another_preprocessing_is_clearly_better(tmp_path):
    check = LabelledCheck(
        24, ("0..1", "stretch"), scores({("-1..1", "stretch"): 24, ("0..1", "stretch"): 8}, 24)
    )
    with pytest.raises(AccuracyError) as caught:
        calibrate.check_preprocessing(check, "m.lambdapack.json", Path("m.h5"))
    assert caught.value.exit_code == 13
    assert "8/24 (33.3%) right with the configured preprocessing (0..1 stretch)" in str(caught.value)
    assert "24/24 (100.0%) with -1..1 stretch" in str(caught.value)
    assert "lambdapack init m.h5 --force --samples . --scale -1..1 (or set" in caught.value.hint
    fine = LabelledCheck(24, ("-1..1", "stretch"), check.scores)
    calibrate.check_preprocessing(fine, "m.lambdapack.json", Path("m.h5"))  # nothing better


def test_pack_fails_when_the_zip_drops_more_than_the_threshold():
    check = LabelledCheck(200, ("0..1", "stretch"), scores({("0..1", "stretch"): 190}, 200))
    calibrate.zip_answers(check, [0] * 188 + [1] * 12, [0] * 200, "the smoke run")
    assert check.zip_correct == 188
    calibrate.check_zip(check)  # 1 point: allowed by default
    calibrate.zip_answers(check, [0] * 187 + [1] * 13, [0] * 200, "the smoke run")
    with pytest.raises(AccuracyError, match=r"the zip gets 187/200 \(93.5%\).*original model 190/200"):
        calibrate.check_zip(check)
    check.max_drop = 2.0
    calibrate.check_zip(check)
    assert check.as_dict()["zip_top1"] == pytest.approx(0.935)


def test_labels_come_from_the_folders_and_must_match_given_labels(tmp_path):
    samples = read_samples(folders(tmp_path / "s", {"dots": 1, "checker": 1, "stripes": 1}))
    labels, source = calibrate.labels_for_init(samples, None, "--labels")
    assert labels == ["checker", "dots", "stripes"] and "class folders" in source
    given = ["stripes", "dots", "checker"]  # another output order, the same names: fine
    assert calibrate.labels_for_init(samples, given, "--labels") == (given, "--labels")
    with pytest.raises(
        InputError, match=r"--labels and the class folders of .* differ: class folders not in"
    ):
        calibrate.labels_for_init(samples, ["dots", "checker", "waves"], "--labels")
    with pytest.raises(InputError, match=r"the samples' class folder stripes .* is not one of the model's"):
        calibrate.truth_indices(samples, ["checker", "dots"])
    assert calibrate.truth_indices(samples, given) == [2, 1, 0]


def test_a_csv_may_name_some_of_the_labels(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    (tmp_path / "l.csv").write_text("a.png,dots\n")
    samples = read_samples(tmp_path / "l.csv")
    assert calibrate.labels_for_init(samples, ["checker", "dots"], "--labels")[0] == ["checker", "dots"]
