"""The smoke run imports every image plugin left in the zip: Pillow's ``Image.init``
skips a plugin that fails to import, so a pruned module a plugin needs (Pillow 12's GIF
plugin imports ImageMath) would otherwise ship a zip that calls every GIF "not an image"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from lambdapack.packing.smoke import CHILD


def run_child(task: Path, tmp_path: Path, plugins: dict[str, str]) -> dict:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"images": [], "k": 1, "imports": [], "plugins": plugins}))
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(CHILD), str(task), str(request)],
        capture_output=True,
        text=True,
        cwd=task,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_plugin_that_cannot_import_is_a_failure_and_a_removed_one_is_not(tmp_path):
    task = tmp_path / "task"
    package = task / "imaging"
    package.mkdir(parents=True)
    (task / "index.py").write_text("def classify(data, k):\n    return {'top_k': []}\n")
    (package / "__init__.py").write_text("")
    (package / "PngImagePlugin.py").write_text("X = 1\n")
    (package / "GifImagePlugin.py").write_text("from . import ImageMath\n")  # pruned
    (package / "helpers.py").write_text("raise ImportError('not a plugin: never imported')\n")
    outcome = run_child(task, tmp_path, {"imaging": "ImagePlugin"})
    assert list(outcome["import_failures"]) == ["imaging.GifImagePlugin"]
    assert "ImageMath" in outcome["import_failures"]["imaging.GifImagePlugin"]

    (package / "GifImagePlugin.py").unlink()  # the plugin itself pruned: nothing to check
    assert run_child(task, tmp_path, {"imaging": "ImagePlugin"})["import_failures"] == {}
