"""Config discovery beside the model, the rules ``lambdapack init`` follows, the
same-top-1 guard and how failures of the conversion child are worded — without
TensorFlow (the functional side is tests/test_init_functional.py)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from lambdapack.errors import InputError, ModelError
from lambdapack.packing import convert_child
from lambdapack.packing.children import last_error_line
from lambdapack.packing.model import (
    ModelResult,
    _enforce_preprocessing,
    config_candidates,
    describe_model,
    find_config,
    init_config,
    model_kind,
    parse_labels,
    parse_size,
    prepare_model,
    read_user_config,
)
from lambdapack.packing.pipeline import Build, ModelStage, PackOptions
from lambdapack.packing.runtimes import RUNTIMES
from lambdapack.packing.target import Target


def model_file(folder: Path, name: str = "digits.keras") -> Path:
    """A file that passes the format check of its name (a zip, a flatbuffer's identifier) and
    is not really a model: for what happens before and around the conversion."""
    path = folder / name
    if name.endswith(".keras"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", "not really a model")
    else:
        path.write_bytes(b"\x1c\x00\x00\x00TFL3not really a model")
    return path


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("m.keras", b"PK but not a zip", "a Keras 3 .keras file (a zip archive)"),
        ("m.h5", b"\x00" * 2048, "an HDF5 file"),
        ("m.tflite", b"\x00" * 64, "a LiteRT/TFLite flatbuffer"),
    ],
)
def test_a_model_file_whose_content_is_not_its_format_is_bad_input(tmp_path, name, content, what):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        model_kind(path)
    assert str(caught.value) == f"{name} is not {what}: its content is not that format"


def test_an_hdf5_file_after_a_user_block_is_recognised(tmp_path):
    path = tmp_path / "m.h5"
    path.write_bytes(b"\x00" * 1024 + b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    assert model_kind(path) == "keras"


# --- discovery ---------------------------------------------------------------------------------------


def test_both_spellings_are_found_beside_the_model(tmp_path):
    model = model_file(tmp_path)
    assert config_candidates(model) == [
        tmp_path / "digits.lambdapack.json",
        tmp_path / "digits.keras.lambdapack.json",
    ]
    assert find_config(model) is None
    full = tmp_path / "digits.keras.lambdapack.json"
    full.write_text(json.dumps({"labels": ["a", "b"], "input": {"scale": "0..255"}}))
    assert find_config(model) == full
    assert read_user_config(model, None)["input"] == {"scale": "0..255"}
    full.rename(tmp_path / "digits.lambdapack.json")
    assert find_config(model) == tmp_path / "digits.lambdapack.json"


def test_both_spellings_at_once_is_an_error_naming_both(tmp_path):
    model = model_file(tmp_path)
    for name in ("digits.lambdapack.json", "digits.keras.lambdapack.json"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(InputError) as caught:
        find_config(model)
    assert str(tmp_path / "digits.lambdapack.json") in str(caught.value)
    assert str(tmp_path / "digits.keras.lambdapack.json") in str(caught.value)
    assert "--config" in caught.value.hint
    explicit = tmp_path / "chosen.json"
    explicit.write_text("{}")
    assert find_config(model, explicit) == explicit  # --config settles it
    with pytest.raises(InputError, match="two model configs"):
        prepare_model(model, tmp_path / "out", tmp_path / "cache")


def test_a_saved_model_folder_has_one_spelling(tmp_path):
    folder = tmp_path / "digits_saved"
    folder.mkdir()
    assert config_candidates(folder) == [tmp_path / "digits_saved.lambdapack.json"]


def test_the_model_stage_line_names_the_config_or_the_defaults(tmp_path, monkeypatch):
    from lambdapack.packing import pipeline

    model = model_file(tmp_path)
    config_path = tmp_path / "digits.lambdapack.json"
    results = []

    def fake_prepare(model, dest, cache, quantize, config, samples, model_format, allow_unsafe_ops, **more):
        config = {
            "model_file": "model.tflite",
            "input": {"scale": "0..1"},
            "backend": "litert",
            "sha256": "x",
        }
        return results.pop(0) if results else ModelResult(model, "keras", "none", config, {}, False)

    monkeypatch.setattr(pipeline, "prepare_model", fake_prepare)
    options = PackOptions(model, tmp_path / "dist", Target("3.11", "x86_64"), RUNTIMES["litert"])
    with pytest.raises(InputError, match="the zip would answer with class numbers"):
        ModelStage().execute(Build(options, tmp_path))  # no config, no labels: refused
    options.labels = ("a", "b")
    line = ModelStage().execute(Build(options, tmp_path))
    assert line == (
        f"keras -> model.tflite; no config beside the model: defaults (scale 0..1); "
        f"run lambdapack init {model}"
    )
    config = {"model_file": "model.tflite", "input": {"scale": "0..255"}, "backend": "litert", "sha256": "x"}
    results.append(ModelResult(model, "keras", "none", config, {}, True, config_path))
    assert (
        ModelStage().execute(Build(options, tmp_path))
        == f"keras -> model.tflite (cached); config {config_path}"
    )


def test_the_report_records_the_config(tmp_path):
    config = {"model_file": "model.tflite", "input": {}, "backend": "litert", "sha256": "x"}
    path = tmp_path / "digits.lambdapack.json"
    assert ModelResult(tmp_path, "keras", "none", config, {}, False, path).as_dict(1)["config"] == str(path)
    assert ModelResult(tmp_path, "keras", "none", config, {}, False).as_dict(1)["config"] is None


# --- init: its rules, from what the model says -------------------------------------------------------


def facts(height=96, width=96, channels=3, layers=(), output="probabilities", classes=3, source=None) -> dict:
    return {
        "input": {
            "height": height,
            "width": width,
            "channels": channels,
            "source": source or "the model's input layer",
        },
        "classes": classes,
        "output": {"kind": output, "source": "the last layer's activation is softmax"},
        "layers": None if layers is None else [{"before_weights": True, **layer} for layer in layers],
    }


RESCALE_255 = {"type": "Rescaling", "scale": 1 / 255, "offset": 0.0}


def fields_of(result) -> dict:
    return {name: (value, source) for name, value, source in result[1]}


def test_a_model_that_rescales_inside_takes_raw_pixels():
    config, fields, _, warnings = describe_model(facts(layers=[RESCALE_255]), Path("shapes.keras"))
    assert config["input"] == {"scale": "0..255", "resize": "stretch"}  # the model's fixed size is not copied
    assert config["name"] == "shapes" and config["output"] == "probabilities"
    named = {name: (value, source) for name, value, source in fields}
    assert named["input"] == ("96x96x3", "from the model's input layer")
    assert named["scale"] == ("0..255", "the model rescales inside: Rescaling(1/255)")
    assert "no labels given: wrote 0..2" in warnings[0]
    minus_one = {"type": "Rescaling", "scale": 1 / 127.5, "offset": -1.0}
    named = fields_of(describe_model(facts(layers=[minus_one]), Path("m.keras")))
    assert named["scale"] == ("0..255", "the model rescales inside: Rescaling(1/127.5, offset=-1)")
    # Rescaling(2, -1) maps 0..1 onto -1..1: the model takes 0..1.
    doubled = {"type": "Rescaling", "scale": 2.0, "offset": -1.0}
    assert describe_model(facts(layers=[doubled]), Path("m.keras"))[0]["input"]["scale"] == "0..1"


def test_normalization_of_raw_pixels_means_raw_pixels_and_without_layers_the_default_with_a_note():
    raw = {"type": "Normalization", "mean": [123.7, 116.3, 103.5], "variance": [3409.0, 3262.7, 3291.7]}
    config, fields, notes, _ = describe_model(facts(layers=[raw]), Path("m.keras"))
    assert fields_of((config, fields))["scale"] == (
        "0..255",
        "the model normalizes raw pixels inside: Normalization(mean 124, 116, 104)",
    )
    assert not notes
    notes = describe_model(facts(layers=[RESCALE_255, raw]), Path("m.keras"))[2]
    assert notes == [
        "the model also has Normalization(mean 124, 116, 104) inside: nothing to configure for it"
    ]
    config, _, notes, _ = describe_model(facts(layers=[]), Path("m.keras"))
    assert config["input"]["scale"] == "0..1" and any(note.startswith("check the scale") for note in notes)
    saved = facts(layers=None, source="the SavedModel's serving_default signature")
    value, source = fields_of(describe_model(saved, Path("m")))["scale"]
    assert value == "0..1" and "a SavedModel keeps no Keras layers" in source


def test_a_free_size_takes_the_resizing_inside_else_size_else_fails():
    resizing = {"type": "Resizing", "height": 32, "width": 32, "crop_to_aspect_ratio": True}
    config, fields, _, warnings = describe_model(
        facts(None, None, layers=[resizing, RESCALE_255]), Path("m.keras"), size=(48, 48)
    )
    assert config["input"] == {"height": 32, "width": 32, "scale": "0..255", "resize": "center-crop"}
    assert any("--size 48x48 ignored" in warning for warning in warnings)
    config, fields, _, _ = describe_model(facts(None, None), Path("m.keras"), size=(48, 64))
    assert config["input"]["height"] == 48 and config["input"]["width"] == 64
    assert fields_of((config, fields))["input"] == (
        "48x64x3",
        "from --size; the model's input takes any size",
    )
    with pytest.raises(InputError, match="takes images of any size") as caught:
        describe_model(facts(None, None), Path("m.keras"))
    assert "--size HxW" in caught.value.hint


def test_labels_must_match_the_classes_and_logits_are_written_as_such():
    config, fields, _, warnings = describe_model(
        facts(output="logits"), Path("m.keras"), labels=["a", "b", "c"], labels_from="--labels-file l.txt"
    )
    assert config["labels"] == ["a", "b", "c"] and config["output"] == "logits" and not warnings
    assert fields_of((config, fields))["labels"] == ("a, b, c", "from --labels-file l.txt")
    with pytest.raises(InputError, match="2 labels given \\(--labels\\), the model has 3 classes"):
        describe_model(facts(), Path("m.keras"), labels=["a", "b"])
    assert describe_model(facts(output=None), Path("m.keras"))[0]["output"] == "auto"


def test_option_parsing():
    assert parse_size("224x160") == (224, 160) and parse_size("32X32") == (32, 32)
    for bad in ("224", "0x3", "axb", "224x"):
        with pytest.raises(InputError, match="is not HxW"):
            parse_size(bad)
    assert parse_labels("cat, dog,bird") == ["cat", "dog", "bird"]
    with pytest.raises(InputError, match="empty label"):
        parse_labels("cat,,dog")


def test_init_refuses_to_overwrite_before_inspecting_anything(tmp_path):
    model = model_file(tmp_path)
    existing = tmp_path / "digits.keras.lambdapack.json"
    existing.write_text("{}")
    with pytest.raises(InputError, match="already exists") as caught:
        init_config(model)
    assert str(existing) in str(caught.value) and "--force" in caught.value.hint
    (tmp_path / "digits.lambdapack.json").write_text("{}")
    with pytest.raises(InputError, match="two model configs"):
        init_config(model, force=True)


# --- the same-top-1 guard ---------------------------------------------------------------------------


def guarded(probe: dict, config_path: Path | None = None) -> ModelResult:
    config = {"labels": ["red", "green", "blue"], "input": {"scale": probe["scale"]}}
    return ModelResult(
        Path("shapes.keras"), "keras", "none", config, {"preprocessing_probe": probe}, False, config_path
    )


def test_the_guard_fires_when_only_another_scale_tells_the_samples_apart():
    probe = {
        "scale": "0..1",
        "samples": 4,
        "distinct_top1": 1,
        "top1": 0,
        "alternatives": {"-1..1": 1, "0..255": 3},
    }
    with pytest.raises(InputError) as caught:  # a config problem: exit 2
        _enforce_preprocessing(guarded(probe))
    assert str(caught.value) == (
        "all 4 sample images get the same answer ('red') with input scale 0..1, but 3 different answers "
        "with scale 0..255: the preprocessing (the config's input scale) is probably wrong"
    )
    assert 'set "input": {"scale": "0..255"} in shapes.lambdapack.json' in caught.value.hint
    assert "lambdapack init shapes.keras" in caught.value.hint
    assert caught.value.exit_code == 2  # a config problem


def test_the_guard_stays_quiet_when_nothing_tells_the_samples_apart_or_they_differ():
    same_everywhere = {
        "scale": "0..1",
        "samples": 3,
        "distinct_top1": 1,
        "top1": 2,
        "alternatives": {"0..255": 1},
    }
    _enforce_preprocessing(guarded(same_everywhere))  # maybe every sample is of one class
    differ = {"scale": "0..255", "samples": 3, "distinct_top1": 3, "top1": 0, "alternatives": {}}
    _enforce_preprocessing(guarded(differ))
    _enforce_preprocessing(
        ModelResult(Path("m.keras"), "keras", "none", {}, {}, False)
    )  # no probe: < 3 samples


# --- the conversion child's failures: one line, never a traceback -----------------------------------


def test_the_child_turns_any_exception_into_one_error_line(tmp_path, monkeypatch):
    def broken(request, out):
        raise RuntimeError("tensor shapes do not match\nand a long story after it")

    monkeypatch.setattr(convert_child, "run", broken)
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"out": str(tmp_path)}))
    assert convert_child.main(str(request)) == 1
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["error"] == "the model check failed: RuntimeError: tensor shapes do not match"
    assert check["code"] == "crash"


def test_a_free_size_is_settled_before_converting():
    with pytest.raises(convert_child.ConversionFailure) as caught:
        convert_child._input_spec([-1, -1, -1, 3], {"scale": "0..255"})
    assert caught.value.code == "free_size" and caught.value.details["shape"] == "None x None x 3"
    spec = convert_child._input_spec([-1, -1, -1, 3], {"height": 24, "width": 40})
    assert (spec["height"], spec["width"], spec["channels"]) == (24, 40, 3)
    with pytest.raises(convert_child.ConversionFailure, match="input size 24x24 is not the model's 16x16"):
        convert_child._input_spec([-1, 16, 16, 3], {"height": 24, "width": 24})


def test_a_crashed_child_is_one_model_error_with_its_last_error_line(tmp_path, monkeypatch):
    fake = tmp_path / "python"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'I0000 some TensorFlow log line' >&2\n"
        "echo 'Traceback (most recent call last):' >&2\n"
        "echo '  File \"x.py\", line 1, in <module>' >&2\n"
        "echo 'ValueError: Cannot set tensor: Dimension mismatch. Got 1 but expected 3' >&2\n"
        "echo 'W0000 a warning printed at exit' >&2\n"
        "exit 1\n"
    )
    fake.chmod(0o755)
    model = model_file(tmp_path, "digits.tflite")
    monkeypatch.setattr(sys, "executable", str(fake))
    with pytest.raises(ModelError) as caught:
        prepare_model(model, tmp_path / "out", tmp_path / "cache")
    assert str(caught.value) == (
        "model conversion crashed (exit code 1): ValueError: Cannot set tensor: Dimension mismatch. "
        "Got 1 but expected 3"
    )
    assert "Traceback" not in caught.value.hint
    # No cache entry a later pack would trust (the entry's lock file may stay).
    assert not [path for path in (tmp_path / "cache" / "models").iterdir() if path.is_dir()]


def test_last_error_line():
    assert last_error_line("") == "no output"
    assert last_error_line("a\nFatal Python error: Segmentation fault\n\nThread 0x1\n  File x") == (
        "Fatal Python error: Segmentation fault"
    )
    assert last_error_line("one\ntwo\n") == "two"
    assert (
        last_error_line("x\nkeras.src.errors.SomeError: bad\n  trailing") == "keras.src.errors.SomeError: bad"
    )
