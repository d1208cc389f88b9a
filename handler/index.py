"""Lambda entry point (handler string ``index.handler``).

Everything slow happens once, while the module is imported — during Lambda's
init phase — and is reused by every warm invocation of this container:
staged dependencies (full TensorFlow) are fetched and made importable when
the function names them (before anything imports numpy), the model is
loaded, and the S3 client is created. What each step took is logged once, as
``{"cold_start": {...}}`` (to stderr) on the container's first invocation.
"""

import gc
import json
import os
import sys
import time

_BEGAN = time.perf_counter()
# No cyclic garbage collection during init: the imports and the model load allocate many
# objects that live as long as the process, and every few hundred allocations made the
# collector walk them all again, for nothing to free. At the end of init they are frozen
# (gc.freeze: out of every later collection) before collection is back on; with gc.enable()
# alone, the first collection after init walked all of them and the runtime client's part
# of init grew by as much as was saved. Measured with scripts/bench_cold_start.py --host-only
# --against (the previous handler; python3.11 sample zip under the runtime client, 2 cores
# shared with other work, 15 alternating cold starts each): first response 379 -> 311 ms,
# median of the rounds' ratios 0.80x; the handler's imports 103 -> 54 ms. Disable + enable
# without the freeze: 0.95x (imports 138 -> 56 ms, runtime client's part 36 -> 111 ms).
gc.disable()

# Before numpy is imported (its OpenBLAS reads this when it is loaded): OpenBLAS otherwise
# starts a thread per CPU that spins for ~50 ms of CPU after the import, beside the rest of
# the cold start (on Lambda, a fraction of one vCPU below 1,769 MB). The handler calls no
# BLAS; LiteRT runs the model on its own threads. Measured under the runtime client (2 cores):
# the handler's imports 146-160 -> 79-87 ms (two A/B runs, medians of 6 and 10 cold starts),
# and the same peak memory. A value set on the function wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from lambdapack_handler.clients import s3_client  # noqa: E402
from lambdapack_handler.staged import stage_from_env  # noqa: E402

S3 = s3_client()  # botocore comes with the Lambda runtime; None where it is absent (smoke runs)
_CLIENT = time.perf_counter()
stage_from_env(s3=S3)
_STAGED = time.perf_counter()

from lambdapack_handler import snapstart  # noqa: E402
from lambdapack_handler.app import App, Settings  # noqa: E402  (needs the staged packages)
from lambdapack_handler.loader import load_classifier  # noqa: E402

_IMPORTED = time.perf_counter()
CLASSIFIER = load_classifier(s3=S3)
APP = App(CLASSIFIER, Settings.from_env(), S3)
_LOADED = time.perf_counter()
gc.freeze()  # what init made stays out of later collections (else the first one walks it all)
gc.enable()
# SnapStart (python3.12+): warm the model before the snapshot; new S3 client and random
# state after each restore. Nothing happens where the runtime has no SnapStart module.
snapstart.register(APP, CLASSIFIER)

# Milliseconds of this module's import, by step (the rest of Lambda's init is the runtime's).
INIT_MS = {
    "s3_client_ms": round((_CLIENT - _BEGAN) * 1000, 3),
    "staged_ms": round((_STAGED - _CLIENT) * 1000, 3),
    "imports_ms": round((_IMPORTED - _STAGED) * 1000, 3),
    "model_load_ms": round((_LOADED - _IMPORTED) * 1000, 3),
    "total_ms": round((_LOADED - _BEGAN) * 1000, 3),
}
_cold = True


def handler(event, context):
    """Classify the images an S3 event (or a direct call) names; write JSON results."""
    global _cold
    if _cold:
        _cold = False
        # stderr: CloudWatch logs it as it does stdout, which carries one record per object
        print(json.dumps({"cold_start": INIT_MS}, sort_keys=True), file=sys.stderr, flush=True)
    return APP.handle(event, context)


def classify(data: bytes, k: int = 5) -> dict:
    """Classify one image's bytes, without S3: for smoke runs and local checks."""
    prediction = CLASSIFIER.classify(data, k)
    return {
        "top_k": prediction.labels,
        "decode_ms": prediction.decode_ms,
        "inference_ms": prediction.inference_ms,
    }
