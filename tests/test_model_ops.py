"""A SavedModel's ops are checked before TensorFlow runs it (``graph_ops``), on real
SavedModels built here with TensorFlow (tiny: 8x8x3 in, 2 classes; nothing downloaded):
one whose serving function writes a file on the host, one that calls Python
(``tf.py_function``), one that writes a checkpoint from its serving function, and the
sample Keras model exported with ``model.export`` (which must pass). Keras files with a
Lambda layer are refused by Keras's safe mode, with lambdapack's own message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lambdapack.errors import InputError
from lambdapack.packing.graph_ops import UNSAFE_OPS, unsafe_ops
from lambdapack.packing.model import prepare_model

from .conftest import run_cli

pytestmark = [pytest.mark.functional, pytest.mark.tensorflow]

BUILD_MODELS = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from pathlib import Path
import keras, tensorflow as tf
out, written, sample = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
spec = tf.TensorSpec([None, 8, 8, 3], tf.float32)

class Tiny(tf.Module):
    def __init__(self, side_effect):
        self.w = tf.Variable(tf.ones((3, 2)) / 3)
        self.side_effect = side_effect

    @tf.function(input_signature=[spec])
    def serve(self, x):
        x = self.side_effect(x)
        return {"scores": tf.nn.softmax(tf.reduce_mean(x, axis=[1, 2]) @ self.w)}

def write_file(x):
    tf.io.write_file(written, "written by the model")
    return x

def python(x):
    y = tf.py_function(lambda t: t, [x], tf.float32)
    y.set_shape(x.shape)
    return y

def checkpoint(x):
    tf.raw_ops.SaveV2(prefix=str(out / "ckpt"), tensor_names=["x"], shape_and_slices=[""], tensors=[x])
    return x

for name, side_effect in (("writes", write_file), ("python", python), ("saves", checkpoint)):
    module = Tiny(side_effect)
    tf.saved_model.save(module, str(out / name), signatures={"serving_default": module.serve})
keras.models.load_model(sample).export(str(out / "digits_saved"), verbose=False)
L = keras.layers
lam = keras.Sequential([keras.Input((8, 8, 3)), L.Lambda(lambda t: t * 2), L.GlobalAveragePooling2D(),
                        L.Dense(2, activation="softmax")])
lam.save(out / "lam.keras")
lam.save(out / "lam.h5")
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory, sample_model) -> tuple[Path, Path]:
    """(the folder of test models, the host file the "writes" model writes when run)."""
    folder = tmp_path_factory.mktemp("models")
    written = tmp_path_factory.mktemp("host") / "written-by-model.txt"
    subprocess.run(
        [sys.executable, "-c", BUILD_MODELS, str(folder), str(written), str(sample_model)],
        check=True,
        capture_output=True,
    )
    assert not written.exists(), "saving the model must not run it"
    return folder, written


@pytest.fixture
def models(built) -> Path:
    return built[0]


@pytest.fixture
def written(built) -> Path:
    """The host file the "writes" model writes, absent at the start of each test."""
    built[1].unlink(missing_ok=True)
    return built[1]


def parsed(folder: Path):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((folder / "saved_model.pb").read_bytes())
    return proto


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_init_refuses_a_model_that_writes_a_file(models, written, cache_dir):
    proc = run_cli("init", str(models / "writes"), cache=cache_dir)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert "op WriteFile in function __inference_serve_" in line
    assert "--allow-unsafe-ops" in proc.stderr
    assert not written.exists()
    assert not (models / "writes.lambdapack.json").exists()


def test_pack_without_config_refuses_a_model_that_writes_a_file(models, written, cache_dir, tmp_path):
    proc = run_cli(
        "pack", str(models / "writes"), "--labels", "a,b", "--python", "3.11", "--out", str(tmp_path),
        "--no-smoke", cache=cache_dir,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "op WriteFile in function __inference_serve_" in one_error_line(proc)
    assert not written.exists()
    assert not (tmp_path / "function.zip").exists()


def test_conversion_and_tensorflow_runtime_check_refuse_it(models, written, cache_dir, tmp_path):
    """With a config (no inspection), the conversion child checks before loading: for
    --runtime litert and for --runtime tensorflow's export/load check."""
    config = tmp_path / "writes.json"
    config.write_text(json.dumps({"labels": ["a", "b"]}))
    for model_format in ("tflite", "saved_model"):
        with pytest.raises(InputError, match=r"op WriteFile in function __inference_serve_"):
            prepare_model(
                models / "writes", tmp_path / model_format, cache_dir, config_path=config,
                model_format=model_format,
            )  # fmt: skip
    assert not written.exists()


def test_allow_unsafe_ops_runs_it(models, written, cache_dir, tmp_path):
    """The flag lets the model through, and then its op really runs on the host: the check
    is what kept the file from being written above."""
    proc = run_cli("init", str(models / "writes"), "--allow-unsafe-ops", cache=cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert written.read_text() == "written by the model"
    assert "warning: --allow-unsafe-ops: the SavedModel ran on this machine with op WriteFile" in proc.stderr
    config = models / "writes.lambdapack.json"
    assert json.loads(config.read_text())["input"] == {"scale": "0..1", "resize": "stretch"}
    config.unlink()

    written.unlink()
    result = prepare_model(
        models / "writes", tmp_path / "served", cache_dir, model_format="saved_model", allow_unsafe_ops=True
    )
    assert result.config["backend"] == "tensorflow"
    assert written.exists()
    assert [text.split(" in ")[0] for text in result.check["unsafe_ops_allowed"]] == ["op WriteFile"]
    # The refusal is not cached away: without the flag the same model is refused again.
    with pytest.raises(InputError, match="WriteFile"):
        prepare_model(models / "writes", tmp_path / "again", cache_dir, model_format="saved_model")

    written.unlink()
    proc = run_cli(
        "pack", str(models / "writes"), "--labels", "a,b", "--python", "3.11", "--out",
        str(tmp_path / "dist"), "--no-smoke", "--allow-unsafe-ops", cache=cache_dir,
    )  # fmt: skip
    # Past the check; TensorFlow Lite then has no WriteFile (exit 4).
    assert proc.returncode == 4, proc.stderr
    assert "TensorFlow Lite could not convert" in one_error_line(proc)
    assert "--allow-unsafe-ops" not in proc.stderr


def test_py_function_is_refused(models, cache_dir):
    proc = run_cli("init", str(models / "python"), cache=cache_dir)
    assert proc.returncode == 2, proc.stderr
    assert "op EagerPyFunc in function __inference_serve_" in one_error_line(proc)
    assert "runs Python code on this machine" in proc.stderr


def test_the_exported_sample_model_passes(models, cache_dir):
    assert unsafe_ops(parsed(models / "digits_saved")) == []
    proc = run_cli("init", str(models / "digits_saved"), cache=cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((models / "digits_saved.lambdapack.json").read_text())["labels"] == [
        str(i) for i in range(10)
    ]


def test_checkpoint_ops_only_in_the_saver(models):
    """Every SavedModel's saver holds SaveV2, MergeV2Checkpoints and RestoreV2 (allowed); the
    same SaveV2 in a serving function is refused."""
    library = {f.signature.name for f in parsed(models / "writes").meta_graphs[0].graph_def.library.function}
    assert any(name.startswith("__inference__traced_save_") for name in library)
    found = unsafe_ops(parsed(models / "writes"))
    assert [(item.op, item.function.startswith("__inference_serve_")) for item in found] == [
        ("WriteFile", True)
    ]
    found = unsafe_ops(parsed(models / "saves"))
    assert [(item.op, item.function.startswith("__inference_serve_")) for item in found] == [("SaveV2", True)]


def test_every_listed_op_is_tensorflows():
    """The list names real ops (a typo would let the op through unnoticed)."""
    from tensorflow.python.framework import op_def_registry

    gone = {"Rpc", "TryRpc"}  # TensorFlow 1's tf.contrib.rpc: kept for graphs made with it
    assert [name for name in UNSAFE_OPS if name not in gone and op_def_registry.get(name) is None] == []


@pytest.mark.parametrize("name", ["lam.keras", "lam.h5"])
def test_keras_lambda_layer_is_refused_with_lambdapacks_way_out(models, cache_dir, name):
    proc = run_cli("init", str(models / name), cache=cache_dir)
    assert proc.returncode == 2, proc.stderr
    line = one_error_line(proc)
    assert "Lambda layer" in line
    assert "safe_mode" not in proc.stderr
    assert "model.export" in proc.stderr


def graph_model(nodes: list[tuple[str, str, list[str], dict]], save_tensor: str = "", restore_op: str = ""):
    """A SavedModel proto with a TensorFlow 1 style graph of ``(name, op, inputs, string attrs)``:
    the graph is all there is to check, the saver's ops sit in it."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    meta = proto.meta_graphs.add()
    meta.saver_def.save_tensor_name = save_tensor
    meta.saver_def.restore_op_name = restore_op
    for name, op, inputs, attrs in nodes:
        node = meta.graph_def.node.add(name=name, op=op, input=inputs)
        for key, value in attrs.items():
            node.attr[key].s = value.encode()
    return proto


def test_graph_nodes_print_to_a_file_and_a_tf1_saver():
    """Top-level nodes are checked too: PrintV2 to a file is refused, to stderr it is not; a
    TensorFlow 1 saver's SaveV2 and RestoreV2 pass in their own paths, a SaveV2 that a
    serving output or the restore path depends on does not."""
    nodes = [
        ("x", "Placeholder", [], {}),
        ("print_err", "PrintV2", ["x"], {"output_stream": "stderr"}),
        ("print_file", "PrintV2", ["x"], {"output_stream": "file:///tmp/out.txt"}),
        ("save/filename", "Placeholder", [], {}),
        ("save/SaveV2", "SaveV2", ["save/filename", "x"], {}),
        ("save/control_dependency", "Identity", ["save/filename", "^save/SaveV2"], {}),
        ("save/RestoreV2", "RestoreV2", ["save/filename"], {}),
        ("save/restore_all", "NoOp", ["^save/RestoreV2"], {}),
    ]
    found = unsafe_ops(graph_model(nodes, "save/control_dependency:0", "save/restore_all"))
    assert [(item.op, item.function) for item in found] == [("PrintV2", "the graph")]
    assert "prints to a file" in found[0].text()

    leaked = [*nodes, ("serving_output", "Identity", ["x", "^save/SaveV2"], {})]
    found = unsafe_ops(graph_model(leaked, "save/control_dependency:0", "save/restore_all"))
    assert sorted(item.op for item in found) == ["PrintV2", "SaveV2"]

    # A save op on the restore path (which a TensorFlow 1 SavedModel runs at load) is refused.
    writes_at_load = [*nodes[:-1], ("save/evil", "SaveV2", ["save/filename", "x"], {})]
    writes_at_load.append(("save/restore_all", "NoOp", ["^save/RestoreV2", "^save/evil"], {}))
    found = unsafe_ops(graph_model(writes_at_load, "save/control_dependency:0", "save/restore_all"))
    assert sorted(item.op for item in found) == ["PrintV2", "SaveV2"]
