"""SnapStart's runtime hooks (python3.12+, SnapStart on published versions).

Lambda takes a snapshot of the environment once init is done, and each new execution
environment is restored from it instead of running init. So:
- before the snapshot, one inference runs on a blank image of the model's input size:
  the model's weights and the interpreter's buffers are touched and in the snapshot, and
  a restored environment's first call is as fast as a warm one;
- after a restore, what must not be shared between environments is made anew: the S3
  client (its connections were made before the snapshot and do not survive it) and the
  random state (a restored process holds a copy of the snapshot's).

The Lambda runtime provides ``snapshot_restore_py``; where it is absent (python3.11,
smoke runs, the local runtime without SnapStart) nothing is registered and nothing changes.
"""

from __future__ import annotations

import io
import random


def register(app, classifier, runtime=None) -> bool:
    """Register the hooks with the runtime's ``snapshot_restore_py`` (or ``runtime``);
    False where there is no such module."""
    if runtime is None:
        try:
            import snapshot_restore_py as runtime  # provided by Lambda's python3.12+ runtimes
        except ImportError:
            return False
    runtime.register_before_snapshot(lambda: warm_up(classifier))
    runtime.register_after_restore(lambda: after_restore(app))
    return True


def warm_up(classifier):
    """One inference, on a blank PNG of the model's input size (decoded as any image is)."""
    from PIL import Image

    spec = classifier.config.input
    buffer = io.BytesIO()
    Image.new("RGB", (spec.width, spec.height)).save(buffer, "PNG")
    return classifier.classify(buffer.getvalue(), 1)


def after_restore(app) -> None:
    random.seed()  # from os.urandom: each restored environment draws its own
    app.reconnect()
