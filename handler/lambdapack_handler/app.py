"""The Lambda handler: for each object, classify it and write a JSON result.

Failure semantics (S3 invokes asynchronously and Lambda retries errors twice):
- a permanently bad object (not an image, truncated, too large) gets an
  error result object and the other records go on;
- a transient failure (throttling, network) raises, so Lambda retries; output
  keys are derived from input keys, so a retry overwrites, never duplicates.
Keys that are the function's own results (``contract.Outputs.is_own_result``,
the same rule ``wire`` checks triggers with) are skipped, and the summary and
log say so: a function that processes its own results would trigger itself forever.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from . import contract
from .classifier import Classifier
from .events import ObjectRef, parse_event
from .imaging import ImageError


@dataclass(frozen=True)
class Settings:
    output_bucket: str | None
    output_prefix: str
    top_k: int

    @classmethod
    def from_env(cls) -> Settings:
        outputs = contract.Outputs.from_env(os.environ)
        return cls(
            output_bucket=outputs.bucket,
            output_prefix=outputs.prefix,
            top_k=int(os.environ.get(contract.TOP_K, contract.DEFAULT_TOP_K)),
        )

    @property
    def outputs(self) -> contract.Outputs:
        return contract.Outputs(self.output_bucket, self.output_prefix)

    def output_location(self, ref: ObjectRef) -> tuple[str, str]:
        return self.outputs.location(ref.bucket, ref.key)

    def is_own_output(self, ref: ObjectRef) -> bool:
        return self.outputs.is_own_result(ref.bucket, ref.key)


class App:
    def __init__(self, classifier: Classifier, settings: Settings, s3=None) -> None:
        self.classifier = classifier
        self.settings = settings
        self._s3 = s3

    @property
    def s3(self):
        if self._s3 is None:
            import boto3  # provided by the Lambda runtime, not the zip

            self._s3 = boto3.client("s3")
        return self._s3

    def handle(self, event: object, context: object = None) -> dict:
        refs, skipped = parse_event(event)
        request_id = getattr(context, "aws_request_id", None)
        results = []
        for ref in refs:
            if self.settings.is_own_output(ref):
                _log(
                    {
                        "request_id": request_id,
                        "key": ref.key,
                        "outcome": "skipped",
                        "why": "a result of this function (under the output prefix, ending in "
                        f"{contract.RESULT_SUFFIX}): recursion guard",
                    }
                )
                skipped.append(f"{ref.key}: a result under the output prefix, not processed")
                continue
            results.append(self._process(ref, request_id))
        return {
            "processed": len(results),
            "ok": sum(1 for r in results if r["ok"]),
            "errors": sum(1 for r in results if not r["ok"]),
            "skipped": skipped,
            "results": results,
        }

    def _process(self, ref: ObjectRef, request_id: str | None) -> dict:
        start = time.perf_counter()
        body: dict = {
            "input": {"bucket": ref.bucket, "key": ref.key, "etag": None},
            "model": {"name": self.classifier.config.name, "sha256": self.classifier.model_sha256},
            "request_id": request_id,
        }
        timings: dict = {}
        try:
            obj = self.s3.get_object(Bucket=ref.bucket, Key=ref.key)
            data = obj["Body"].read()
        except Exception as exc:
            if _error_code(exc) not in PERMANENT_READ_ERRORS:
                raise  # transient (throttling, network, 5xx) or misconfigured: let Lambda retry
            body["error"] = {"type": "NoSuchKey", "message": "the object no longer exists"}
        else:
            body["input"]["etag"] = obj.get("ETag", "").strip('"')
            timings["download_ms"] = round((time.perf_counter() - start) * 1000, 3)
            try:
                prediction = self.classifier.classify(data, self.settings.top_k)
            except ImageError as exc:
                body["error"] = {"type": exc.kind, "message": str(exc)}
            else:
                body["top_k"] = prediction.labels
                timings["decode_ms"] = round(prediction.decode_ms, 3)
                timings["inference_ms"] = round(prediction.inference_ms, 3)
        body["timings"] = timings
        out_bucket, out_key = self.settings.output_location(ref)
        self.s3.put_object(
            Bucket=out_bucket,
            Key=out_key,
            Body=json.dumps(body, sort_keys=True).encode(),
            ContentType="application/json",
        )
        ok = "error" not in body
        log = {
            "request_id": request_id,
            "key": ref.key,
            "outcome": "ok" if ok else "error",
            "result": f"s3://{out_bucket}/{out_key}",
            **timings,
        }
        if not ok:
            log["error"] = body["error"]["type"]
        _log(log)
        summary = {"key": ref.key, "ok": ok, "result_key": out_key}
        summary.update({"top1": body["top_k"][0]["label"]} if ok else {"error": body["error"]})
        return summary


PERMANENT_READ_ERRORS = {"NoSuchKey", "404"}


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _log(record: dict) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)
