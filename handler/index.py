"""Lambda entry point (handler string ``index.handler``).

The model is loaded once, while the module is imported — during Lambda's
init phase — and reused by every warm invocation of this container.
"""

from lambdapack_handler.app import App, Settings
from lambdapack_handler.loader import load_classifier, s3_client

CLASSIFIER = load_classifier()
# Created at init (when boto3 is there: always on Lambda), not on the first event.
APP = App(CLASSIFIER, Settings.from_env(), s3_client())


def handler(event, context):
    """Classify the images an S3 event (or a direct call) names; write JSON results."""
    return APP.handle(event, context)


def classify(data: bytes, k: int = 5) -> dict:
    """Classify one image's bytes, without S3: for smoke runs and local checks."""
    prediction = CLASSIFIER.classify(data, k)
    return {
        "top_k": prediction.labels,
        "decode_ms": prediction.decode_ms,
        "inference_ms": prediction.inference_ms,
    }
