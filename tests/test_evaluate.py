"""``evaluate``, ``invoke ZIP FOLDER`` and ``results --labels-from folder`` on the packed
sample (python3.11: this machine's Python runs it, the local runtime's fast path), with the
real local runtime, a real moto S3 and the original Keras model in TensorFlow."""

from __future__ import annotations

import json
import shutil

import boto3
import pytest

from .conftest import SAMPLE, heldout_labels, run_cli

pytestmark = pytest.mark.functional


def keras_accuracy() -> tuple[int, int]:
    """The Keras model's own held-out accuracy, as make_sample_model.py measured it and the demo
    reports it: (right, images)."""
    metrics = json.loads((SAMPLE / "metrics.json").read_text())
    return round(metrics["test_accuracy"] * metrics["test"]), metrics["test"]


@pytest.mark.tensorflow  # --model runs the Keras model
def test_evaluate_on_the_held_out_digits_is_the_demos_accuracy(packed, heldout_classes, cache_dir, tmp_path):
    out, _, _ = packed
    page = tmp_path / "evaluate.html"
    proc = run_cli(
        "evaluate",
        str(out / "function.zip"),
        str(heldout_classes),
        "--json",
        "--html",
        str(page),
        "--model",
        str(SAMPLE / "digits.keras"),
        cache=cache_dir,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    right, images = keras_accuracy()
    assert result["images"] == images == 360
    assert result["correct"] == right and result["top1"] == pytest.approx(right / images)
    matrix = result["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == images
    assert result["confusion"]["rows"] == [str(d) for d in range(10)]
    assert sum(row[i] for i, row in enumerate(matrix)) == right  # the diagonal is what was right
    assert len(result["wrong"]) == images - right
    for wrong in result["wrong"]:  # each named by its class folder, which is its label
        assert wrong["file"].split("/")[0] == wrong["label"] != wrong["predicted"]
    assert sum(row["support"] for row in result["per_class"].values()) == images
    assert result["topk"]["2"] >= result["top1"]
    # The original Keras model on the same images: the zip converts it without changing an answer.
    assert result["model"]["agreement"] == 1.0 and result["model"]["correct"] == right
    assert page.read_text().startswith("<!doctype html>")

    shown = run_cli("evaluate", str(out / "function.zip"), str(heldout_classes), cache=cache_dir)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert f"top-1 accuracy: {right}/{images} = {right / images:.1%}" in shown.stdout
    assert "confusion matrix" in shown.stdout and "precision" in shown.stdout


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda tmp: tmp / "missing", "does not exist"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "holds no images"),
        (
            lambda tmp: shutil.copytree(SAMPLE / "samples", tmp / "flat") and tmp / "flat",
            "holds no labels",
        ),
    ],
    ids=["no-folder", "no-images", "unlabelled"],
)
def test_evaluate_refuses_a_folder_it_cannot_score_in_one_line(packed, tmp_path, make, says):
    out, _, _ = packed
    proc = run_cli("evaluate", str(out / "function.zip"), str(make(tmp_path)))
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr


def test_evaluate_refuses_a_zip_lambdapack_did_not_pack(heldout_classes, tmp_path):
    import zipfile

    foreign = tmp_path / "function.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 1\n")
    proc = run_cli("evaluate", str(foreign), str(heldout_classes))
    assert proc.returncode == 2 and "not a zip lambdapack packed" in proc.stderr
    assert "Traceback" not in proc.stderr
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("hello")
    proc = run_cli("evaluate", str(not_zip), str(heldout_classes))
    assert proc.returncode == 2 and "is not a zip file" in proc.stderr


def test_invoke_a_folder_prints_a_line_per_image_and_fails_on_an_error(packed, cache_dir, tmp_path):
    out, _, _ = packed
    folder = tmp_path / "images"
    shutil.copytree(SAMPLE / "samples", folder)
    good = run_cli("invoke", str(out / "function.zip"), str(folder), cache=cache_dir)
    assert good.returncode == 0, good.stderr[-3000:]
    lines = good.stdout.splitlines()
    files = sorted(folder.glob("*.png"))
    assert [line.split(" → ")[0] for line in lines] == [str(f) for f in files]
    label, score = lines[0].split(" → ")[1].split()
    assert label.isdigit() and 0 < float(score) <= 1

    (folder / "broken.png").write_bytes(b"not an image at all")
    bad = run_cli("invoke", str(out / "function.zip"), str(folder), cache=cache_dir)
    assert bad.returncode == 1
    broken = [line for line in bad.stdout.splitlines() if line.startswith(str(folder / "broken.png"))]
    assert len(broken) == 1 and "→ error: NotAnImage" in broken[0]
    assert len(bad.stdout.splitlines()) == len(files) + 1
    assert "1 of 11 images got an error" in bad.stderr and "Traceback" not in bad.stderr


def test_results_scored_by_the_folder_of_each_key(packed, cache_dir, aws):
    """The function (the packed zip in the local runtime) writes real results to moto's S3 for
    keys under class folders; results --labels-from folder scores them."""
    out, _, _ = packed
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="photos")
    truth = heldout_labels()
    files = sorted((SAMPLE / "heldout").glob("*.png"))[:12]
    keys = []
    for path in files:
        key = f"incoming/{truth[path.name].strip()}/{path.name}"
        s3.put_object(Bucket="photos", Key=key, Body=path.read_bytes())
        keys.append(key)
    s3.put_object(Bucket="photos", Key="incoming/loose.png", Body=files[0].read_bytes())
    keys.append("incoming/loose.png")
    args = [arg for key in keys for arg in ("--key", key)]
    invoked = run_cli(
        "invoke", str(out / "function.zip"), "--bucket", "photos", *args, cache=cache_dir, env=aws
    )
    assert invoked.returncode == 0, invoked.stderr[-3000:]
    results = json.loads(invoked.stdout)["results"]
    right = sum(
        1 for r in results if r["key"] != "incoming/loose.png" and r["top1"] == r["key"].split("/")[1]
    )

    proc = run_cli(
        "results",
        "s3://photos/results/",
        "--inputs",
        "s3://photos/incoming/",
        "--labels-from",
        "folder",
        env=aws,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"top-1 accuracy: {right}/12 = {right / 12:.1%}" in proc.stdout
    assert "1 inputs are in no folder of their own, not scored: incoming/loose.png" in proc.stdout
    assert "confusion matrix" in proc.stdout
    # Without --inputs, incoming/loose.png still sits beside the class folders: not a class "incoming".
    unbounded = run_cli("results", "s3://photos/results/", "--labels-from", "folder", env=aws)
    assert unbounded.returncode == 0, unbounded.stderr[-3000:]
    assert f"top-1 accuracy: {right}/12 = {right / 12:.1%}" in unbounded.stdout
    assert "not scored: incoming/loose.png" in unbounded.stdout


def test_invoke_a_labelled_folder_marks_each_answer_and_says_the_accuracy(
    packed, heldout_classes, cache_dir, tmp_path
):
    out, _, _ = packed
    folder = tmp_path / "labelled"
    for label in ("1", "3", "8"):
        (folder / label).mkdir(parents=True)
        for path in sorted((heldout_classes / label).glob("*.png"))[:3]:
            shutil.copy2(path, folder / label / path.name)
    proc = run_cli("invoke", str(out / "function.zip"), str(folder), cache=cache_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    right = 0
    for line in proc.stdout.splitlines():
        name, answer = line.split(" → ")
        truth, label = name.split("/")[-2], answer.split()[0]
        if label == truth:
            assert answer.endswith(" ✓")
            right += 1
        else:
            assert answer.endswith(f" ✗ true: {truth}")
    assert len(proc.stdout.splitlines()) == 9
    assert f"top-1 accuracy: {right}/9 = {right / 9:.1%}" in proc.stderr
    # The same images named by a CSV of file,label rows (paths relative to the CSV).
    table = tmp_path / "labels.csv"
    table.write_text(
        "".join(f"labelled/{p.parent.name}/{p.name},{p.parent.name}\n" for p in sorted(folder.rglob("*.png")))
    )
    by_csv = run_cli("invoke", str(out / "function.zip"), str(table), cache=cache_dir)
    assert by_csv.returncode == 0, by_csv.stderr[-3000:]
    assert f"top-1 accuracy: {right}/9 = {right / 9:.1%}" in by_csv.stderr
    assert sum(line.endswith(" ✓") for line in by_csv.stdout.splitlines()) == right


def test_evaluate_refuses_a_model_it_cannot_read_before_running_anything(packed, heldout_classes, tmp_path):
    out, _, _ = packed
    notes = tmp_path / "model.txt"
    notes.write_text("not a model")
    proc = run_cli("evaluate", str(out / "function.zip"), str(heldout_classes), "--model", str(notes))
    assert proc.returncode == 2 and "unknown model format '.txt'" in proc.stderr
    assert "Traceback" not in proc.stderr
