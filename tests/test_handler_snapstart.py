"""SnapStart's hooks in the handler (``lambdapack_handler.snapstart``). The module that
registers them, ``snapshot_restore_py``, exists only inside Lambda's python3.12+
runtimes: here a stand-in records what the handler registers, and the test runs the
hooks as the runtime would (before the snapshot once; after each restore)."""

from __future__ import annotations

import random
import types

import pytest

from lambdapack_handler import snapstart
from lambdapack_handler.app import App, Settings
from lambdapack_handler.loader import load_classifier

pytestmark = pytest.mark.functional


class RuntimeStandIn(types.SimpleNamespace):
    def __init__(self):
        super().__init__(before=[], after=[])

    def register_before_snapshot(self, hook):
        self.before.append(hook)
        return hook

    def register_after_restore(self, hook):
        self.after.append(hook)
        return hook


@pytest.fixture(scope="module")
def classifier(sample_model_dir):
    return load_classifier({"MODEL_DIR": str(sample_model_dir)})


def test_without_the_runtime_module_nothing_is_registered(classifier):
    assert snapstart.register(App(classifier, Settings.from_env(), s3=object()), classifier) is False


def test_the_model_runs_before_the_snapshot_and_restores_share_nothing(classifier, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    init_client = object()
    app = App(classifier, Settings.from_env(), s3=init_client)
    runtime = RuntimeStandIn()
    assert snapstart.register(app, classifier, runtime) is True
    assert len(runtime.before) == 1 and len(runtime.after) == 1

    # Before the snapshot: one real inference on a blank image of the model's input size.
    prediction = runtime.before[0]()
    assert prediction.labels and prediction.labels[0]["label"] in classifier.config.labels

    # Two environments restored from one snapshot: the same random state to begin with.
    snapshot = random.getstate()
    draws, clients = [], []
    for _ in range(2):
        random.setstate(snapshot)
        runtime.after[0]()
        # The client is made in the hook (its cost is the restore's, not the first image's).
        assert app._s3 is not None and app._s3 is not init_client
        draws.append(random.random())
        clients.append(app.s3)  # made anew after the restore, not the init's
    assert draws[0] != draws[1]
    assert init_client not in clients and clients[0] is not clients[1]
