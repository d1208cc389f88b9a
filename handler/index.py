"""Lambda entry point (handler string ``index.handler``).

Everything slow happens once, while the module is imported — during Lambda's
init phase — and is reused by every warm invocation of this container:
staged dependencies (full TensorFlow) are fetched and made importable when
the function names them (before anything imports numpy), the model is
loaded, and the S3 client is created.
"""

from lambdapack_handler.clients import s3_client
from lambdapack_handler.staged import stage_from_env

S3 = s3_client()  # boto3 comes with the Lambda runtime; None where it is absent (smoke runs)
stage_from_env(s3=S3)

from lambdapack_handler.app import App, Settings  # noqa: E402  (needs the staged packages)
from lambdapack_handler.loader import load_classifier  # noqa: E402

CLASSIFIER = load_classifier(s3=S3)
APP = App(CLASSIFIER, Settings.from_env(), S3)


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
