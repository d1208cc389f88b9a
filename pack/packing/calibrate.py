"""The preprocessing chosen by accuracy on labelled samples (``lambdapack init``), and
pack's proof on labelled samples (``pack``'s model and smoke stages).

A candidate is one input scale and one resize mode the handler implements
(``config.SCALES`` x ``config.RESIZE_MODES``; the handler has no caffe-style
mean/BGR preprocessing, so it is not a candidate). ``calibrate_child`` runs the
original model on every labelled image under every candidate and reports its
answers; this module scores them against the labels and decides, purely:

- ``init`` writes the best candidate. A near-tie (within one image in a hundred,
  ``near_tie``) between scales is resolved only by the model itself (a Rescaling
  layer inside says 0..255); otherwise init writes nothing and asks for ``--scale``.
  A near-tie between resize modes keeps what the model says, else ``stretch``
  (the handler's default and Keras's ``image_dataset_from_directory`` default),
  and says so.
- ``pack`` fails (``AccuracyError``) when a candidate scores clearly higher than the
  configured preprocessing (``clearly_better``), or when the zip's top-1 on the
  labelled samples is lower than the original model's by more than ``max_drop``
  (default: one image in a hundred).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from lambdapack.handler.lambdapack_handler.config import RESIZE_MODES, SCALES

from ..errors import AccuracyError, InputError, ModelError
from ..labelled import SampleSet
from ..render import visible
from ..scoring import count_correct, fraction
from .children import raise_child_error, run_child

# A difference of at most one image in a hundred is a near-tie (said, not decided on).
TIE_PER_HUNDRED = 1.0
# Another preprocessing is "clearly" better than the configured one only by more than the
# tie margin and by at least this many images (one image either way is noise on small sets).
CLEARLY_MIN_IMAGES = 2
DEFAULT_MAX_DROP = 1.0  # percentage points: pack's --max-accuracy-drop
MAX_LABELLED_SAMPLES = 500  # labelled images init and pack run (every class represented: SampleSet.take)


def candidates() -> list[tuple[str, str]]:
    """Every (scale, resize) the handler implements, in a fixed order."""
    return [(scale, resize) for resize in RESIZE_MODES for scale in SCALES]


@dataclass(frozen=True)
class CandidateScore:
    """One candidate preprocessing's count of right answers (``scoring.count_correct``)."""

    scale: str
    resize: str
    correct: int
    images: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.images if self.images else 0.0

    @property
    def name(self) -> str:
        return f"{self.scale} {self.resize}"

    def text(self) -> str:
        return fraction(self.correct, self.images)


def near_tie(a: int, b: int, images: int) -> bool:
    """Within one image in a hundred of each other."""
    return abs(a - b) * 100 <= images * TIE_PER_HUNDRED


def clearly_better(other: int, configured: int, images: int) -> bool:
    return other - configured >= CLEARLY_MIN_IMAGES and not near_tie(other, configured, images)


def too_large_a_drop(original: int, zipped: int, images: int, max_drop: float) -> bool:
    """The zip gets more than ``max_drop`` percentage points fewer images right."""
    return (original - zipped) * 100 > images * max_drop


def truth_indices(samples: SampleSet, labels: list[str]) -> list[int]:
    """Each sample's label as an output index of the model; a label the model lacks is an error."""
    index = {label: number for number, label in enumerate(labels)}
    missing = sorted({s.label for s in samples.samples if s.label not in index}, key=str)
    if missing:
        what = "class folder" if samples.kind == "folders" else "label"
        raise InputError(
            f"the samples' {what} {visible(missing[0])} (in {visible(samples.root)}) is not one of the "
            f"model's labels ({visible(', '.join(labels[:8]))}{', …' if len(labels) > 8 else ''})",
            "Name the sample classes as the model's labels, or give the model's labels in output "
            "order with --labels.",
        )
    return [index[s.label] for s in samples.samples]


def candidate_scores(answers: list[dict], truth: list[int]) -> list[CandidateScore]:
    """Top-1 accuracy of each candidate's answers (``convert_child.candidate_answers``)."""
    return [
        CandidateScore(a["scale"], a["resize"], count_correct(a["top1"], truth), len(truth)) for a in answers
    ]


def find(scores: list[CandidateScore], scale: str, resize: str) -> CandidateScore:
    return next(s for s in scores if (s.scale, s.resize) == (scale, resize))


@dataclass
class Choice:
    scale: str
    resize: str
    scale_source: str
    resize_source: str
    notes: list[str]
    warnings: list[str]


def choose(
    scores: list[CandidateScore],
    inspected_scale: str,
    scale_from_model: bool,
    inspected_resize: str,
    resize_from_model: bool,
    forced_scale: str | None = None,
    forced_resize: str | None = None,
) -> Choice:
    """What ``init`` writes. ``*_from_model``: the inspection read it from a layer inside the
    model (evidence), not a default. Raises InputError on a scale tie nothing settles."""
    images = scores[0].images
    best = max(s.correct for s in scores)
    tied = [s for s in scores if near_tie(s.correct, best, images)]
    notes: list[str] = []
    warnings: list[str] = []
    measured = f"measured: top-1 {{}} on {images} labelled images"

    if forced_scale is not None:
        scale, scale_source = forced_scale, "from --scale"
    else:
        scales = sorted({s.scale for s in tied}, key=list(SCALES).index)
        if len(scales) == 1:
            scale = scales[0]
            top = max((s for s in tied if s.scale == scale), key=lambda s: s.correct)
            scale_source = measured.format(top.text()) + ", the best"
        elif scale_from_model and inspected_scale in scales:
            scale = inspected_scale
            scale_source = (
                f"a near-tie between {', '.join(scales)} on the labelled images; kept what the model "
                "says about itself"
            )
            notes.append(f"the labelled images do not tell {' and '.join(scales)} apart (a near-tie)")
        else:
            raise InputError(
                f"the labelled images do not tell the input scale: {_tie_text(tied)} — a near-tie "
                "(within one image in a hundred), and the model says nothing about its scale",
                f"Pass the scale the model was trained with: --scale {'|'.join(scales)}; or add "
                "labelled images the model tells apart under one scale only.",
            )
    if forced_resize is not None:
        resize, resize_source = forced_resize, "from --resize"
    else:
        with_scale = [s for s in scores if s.scale == scale]
        top = max(s.correct for s in with_scale)
        resizes = [s.resize for s in with_scale if near_tie(s.correct, top, images)]
        if len(resizes) == 1:
            resize = resizes[0]
            resize_source = measured.format(find(scores, scale, resize).text()) + ", the best"
        else:
            resize = inspected_resize if resize_from_model else "stretch"
            why = "what the model says" if resize_from_model else "the default, as Keras's image loading"
            tie = "a tie" if len({find(scores, scale, r).correct for r in resizes}) == 1 else "a near-tie"
            resize_source = f"{tie} between {' and '.join(resizes)} on the labelled images: kept {why}"
    chosen = find(scores, scale, resize)
    better = [s for s in scores if clearly_better(s.correct, chosen.correct, images)]
    if better and (forced_scale or forced_resize):
        top = max(better, key=lambda s: s.correct)
        warnings.append(
            f"{chosen.name} gets {chosen.text()} of the labelled images right, {top.name} gets "
            f"{top.text()}: the preprocessing given is probably not the model's "
            f"(pack will fail; {fix_flags(chosen, top)} fixes it)"
        )
    return Choice(scale, resize, scale_source, resize_source, notes, warnings)


def fix_flags(configured: CandidateScore, better: CandidateScore) -> str:
    """The init flags that turn ``configured`` into ``better``: ``--scale -1..1``."""
    flags = [f"--scale {better.scale}"] if better.scale != configured.scale else []
    flags += [f"--resize {better.resize}"] if better.resize != configured.resize else []
    return " ".join(flags)


def _tie_text(tied: list[CandidateScore]) -> str:
    return ", ".join(f"{s.name} {s.text()}" for s in sorted(tied, key=lambda s: -s.correct))


def table(scores: list[CandidateScore], chosen: tuple[str, str] | None, label: str = "written") -> list[str]:
    """The candidates and their accuracy, best first, one line each."""
    lines = [f"{'scale':<7} {'resize':<12} top-1"]
    for s in sorted(scores, key=lambda s: (-s.correct, candidates().index((s.scale, s.resize)))):
        mark = f"  <- {label}" if chosen == (s.scale, s.resize) else ""
        lines.append(f"{s.scale:<7} {s.resize:<12} {s.text()}{mark}")
    return lines


def measure(
    model: Path,
    kind: str,
    size: dict,
    samples: SampleSet,
    allow_unsafe_ops: bool = False,
) -> list[dict]:
    """The original model's answers under every candidate (``calibrate_child``, TensorFlow in
    a child process, as the inspection and the conversion run)."""
    with tempfile.TemporaryDirectory(prefix="lambdapack-calibrate-") as work:
        answer = Path(work) / "answer.json"
        request = {
            "model": str(model.resolve()),
            "kind": kind,
            "input": size,
            "images": [str(p.resolve()) for p in samples.paths],
            "out": str(answer),
            "allow_unsafe_ops": allow_unsafe_ops,
        }
        found = run_child(
            "calibrate_child",
            request,
            Path(work),
            answer,
            "measuring the preprocessing",
            "It runs the model in a child process with TensorFlow; it stopped before answering.",
        )
    raise_child_error(found)
    return found["candidates"]


# --- init: labels from the samples, the preprocessing measured ----------------------------------


def labels_for_init(samples: SampleSet | None, labels: list[str] | None, labels_from: str) -> tuple:
    """The labels init writes and where they came from: ``--labels`` when given (the labelled
    samples' classes must then be among them, and for class folders be exactly them), else the
    labelled samples' sorted class names."""
    if samples is None or not samples.labelled:
        return labels, labels_from
    if labels is None:
        if samples.kind == "folders":
            source = (
                f"the class folders of {visible(samples.root)}, sorted: the order Keras's "
                "image_dataset_from_directory gives classes"
            )
        else:
            source = f"the labels in {visible(samples.root)}, sorted"
        return list(samples.labels), source
    given, found = set(labels), set(samples.labels)
    extra = sorted(found - given)
    missing = sorted(given - found) if samples.kind == "folders" else []
    if extra or missing:
        what = "class folders" if samples.kind == "folders" else "sample labels"
        parts = []
        if extra:
            parts.append(f"{what} not in {labels_from}: {visible(', '.join(extra[:5]))}")
        if missing:
            parts.append(f"{labels_from} with no class folder: {visible(', '.join(missing[:5]))}")
        raise InputError(
            f"{labels_from} and the {what} of {visible(samples.root)} differ: {'; '.join(parts)}",
            "Name the class folders as the model's labels, or leave out --labels to take the folder "
            "names (sorted, the order Keras's image_dataset_from_directory trains with).",
        )
    return labels, labels_from


@dataclass
class InitMeasurement:
    table: list[str]
    notes: list[str]
    warnings: list[str]


def measure_for_init(
    config: dict,
    fields: list[tuple[str, str, str]],
    facts: dict,
    model: Path,
    kind: str,
    samples: SampleSet,
    allow_unsafe_ops: bool = False,
    forced_scale: str | None = None,
    forced_resize: str | None = None,
) -> InitMeasurement:
    """Run the original model on the labelled samples under every candidate, write the best
    into ``config["input"]`` and its source into ``fields`` (both changed in place)."""
    model_input = config["input"]
    shape = facts["input"]
    size = {
        "height": model_input.get("height", shape["height"]),
        "width": model_input.get("width", shape["width"]),
        "channels": model_input.get("channels", shape["channels"] or 3),
    }
    taken = samples.take(MAX_LABELLED_SAMPLES)
    truth = truth_indices(taken, config["labels"])
    scores = candidate_scores(measure(model, kind, size, taken, allow_unsafe_ops), truth)
    sources = {name: source for name, _value, source in fields}
    choice = choose(
        scores,
        model_input["scale"],
        not sources["scale"].startswith("the default"),
        model_input["resize"],
        not sources["resize"].startswith("the default"),
        forced_scale,
        forced_resize,
    )
    model_input.update(scale=choice.scale, resize=choice.resize)
    replaced = {"scale": (choice.scale, choice.scale_source), "resize": (choice.resize, choice.resize_source)}
    fields[:] = [(name, *replaced[name]) if name in replaced else (name, v, s) for name, v, s in fields]
    heading = f"preprocessing measured on {len(truth)} labelled images ({visible(samples.root)}):"
    shown = table(scores, (choice.scale, choice.resize))
    return InitMeasurement([heading, *shown], choice.notes, choice.warnings)


# --- pack: the proof on labelled samples ----------------------------------------------------------


@dataclass
class LabelledCheck:
    """What pack measured on labelled samples: the original model's top-1 under every candidate
    (the configured one included), and, after the smoke run, the zip's."""

    images: int
    configured: tuple[str, str]
    scores: list[CandidateScore]
    root: Path = Path(".")  # the samples given (a folder or a CSV)
    zip_correct: int | None = None
    zip_from: str = ""  # "smoke run (python3.13 container)" or "the converted model on this machine"
    max_drop: float = DEFAULT_MAX_DROP

    @property
    def original(self) -> CandidateScore:
        return find(self.scores, *self.configured)

    def as_dict(self) -> dict:
        original = self.original
        return {
            "images": self.images,
            "preprocessing": {"scale": self.configured[0], "resize": self.configured[1]},
            "original_correct": original.correct,
            "original_top1": original.accuracy,
            "zip_correct": self.zip_correct,
            "zip_top1": None if self.zip_correct is None else self.zip_correct / self.images,
            "zip_from": self.zip_from,
            "max_drop": self.max_drop,
            "candidates": [
                {"scale": s.scale, "resize": s.resize, "correct": s.correct, "top1": s.accuracy}
                for s in self.scores
            ],
        }

    def model_dict(self) -> dict:
        """What the build record keeps: the original model's part (the zip's comes later)."""
        return {k: v for k, v in self.as_dict().items() if not k.startswith("zip_") and k != "max_drop"}

    def zip_summary(self) -> str:
        assert self.zip_correct is not None
        zipped = CandidateScore(*self.configured, self.zip_correct, self.images)
        return f"labelled top-1: zip {zipped.text()}, original model {self.original.text()}"

    def summary(self) -> str:
        original = self.original
        return f"labelled samples: the original model gets {original.text()} right with {original.name}"


def labelled_check(config: dict, check: dict, samples: SampleSet, max_drop: float) -> LabelledCheck:
    """Score the answers the conversion child recorded (``check["candidates"]``) against the
    samples' labels, as output indices of ``config["labels"]``."""
    if "candidates" not in check:
        raise ModelError(
            "the model was prepared without labelled samples, but the pack has them",
            "Prepare it again with the same --samples (the Docker builder does it on the host).",
        )
    truth = truth_indices(samples, list(config["labels"]))
    configured = (config["input"]["scale"], config["input"]["resize"])
    scores = candidate_scores(check["candidates"], truth)
    return LabelledCheck(len(truth), configured, scores, samples.root, max_drop=max_drop)


def zip_answers(check: LabelledCheck, top1: list[int], truth: list[int], source: str) -> None:
    """Record the zip's answers (output indices, in sample order) on ``check``."""
    check.zip_correct = count_correct(top1, truth)
    check.zip_from = source


def check_preprocessing(check: LabelledCheck, config_where: str, model: Path) -> None:
    """Another candidate scoring clearly higher than the configured preprocessing fails the pack,
    naming the fix."""
    configured = check.original
    better = [s for s in check.scores if clearly_better(s.correct, configured.correct, check.images)]
    if not better:
        return
    top = max(better, key=lambda s: (s.correct, -candidates().index((s.scale, s.resize))))
    flags = fix_flags(configured, top)
    raise AccuracyError(
        f"on the {check.images} labelled samples the model gets {configured.text()} right with the "
        f"configured preprocessing ({configured.name}), but {top.text()} with {top.name}: the "
        "preprocessing is probably wrong",
        f"Fix it: lambdapack init {visible(model)} --force --samples {visible(check.root)} {flags} "
        f'(or set "input" in {visible(config_where)}); init --samples without --scale and --resize '
        "measures every candidate and writes the best, or says which tie it cannot settle.",
    )


def check_zip(check: LabelledCheck) -> None:
    """The zip's top-1 on the labelled samples more than ``max_drop`` points below the original's."""
    assert check.zip_correct is not None
    original = check.original
    if too_large_a_drop(original.correct, check.zip_correct, check.images, check.max_drop):
        zipped = CandidateScore(original.scale, original.resize, check.zip_correct, check.images)
        raise AccuracyError(
            f"the zip gets {zipped.text()} of the labelled samples right ({check.zip_from}), the "
            f"original model {original.text()}: a drop of more than {check.max_drop:g} points",
            "Quantization is the usual cause: pack with --quantize none (or float16); or allow the "
            "drop with --max-accuracy-drop POINTS.",
        )
