"""The Lambda handler: for each object, classify it and write a JSON result.

Failure semantics (S3 invokes asynchronously and Lambda retries errors twice):
- a permanently bad object (not an image, truncated, too large, deleted,
  archived) gets an error result object and the other records go on; an
  object over ``MAX_IMAGE_BYTES`` is refused from its Content-Length, and no
  more than the limit plus one byte is ever read from a body;
- a transient failure (throttling, network, AccessDenied) is logged and
  raised, so Lambda retries; output keys are derived from input keys
  (``contract.result_key``), so a retry overwrites, never duplicates.
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
from .clients import new_s3_client
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
            self._s3 = new_s3_client()  # botocore is provided by the Lambda runtime, not the zip
        return self._s3

    def reconnect(self) -> None:
        """A new S3 client (and connections), made now: after a SnapStart restore those made
        before the snapshot are not to be trusted, and making it in the after-restore hook
        puts its cost in the restore rather than in the first image's invocation. (Where
        there was none — no botocore, as in smoke runs — it is still made on first use.)"""
        if self._s3 is not None:
            self._s3 = new_s3_client()

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
            "input": {"bucket": ref.bucket, "key": ref.key, "etag": None, "version_id": ref.version_id},
            "model": {"name": self.classifier.config.name, "sha256": self.classifier.model_sha256},
            "request_id": request_id,
        }
        timings: dict = {}
        request = {"Bucket": ref.bucket, "Key": ref.key}
        if ref.version_id:
            request["VersionId"] = ref.version_id  # the version the event is about, not a newer one
        try:
            obj = self.s3.get_object(**request)
            body["input"]["etag"] = obj.get("ETag", "").strip('"')
            body["input"]["version_id"] = obj.get("VersionId") or ref.version_id
            data = read_bounded(obj, self.classifier.limits.max_bytes)
        except ImageError as exc:  # over MAX_IMAGE_BYTES: refused unread
            body["error"] = {"type": exc.kind, "message": str(exc)}
        except Exception as exc:
            code = _error_code(exc)
            if code not in PERMANENT_READ_ERRORS:
                _log_retry(ref, request_id, code, exc)
                raise  # transient (throttling, network, 5xx) or misconfigured: let Lambda retry
            kind, message = PERMANENT_READ_ERRORS[code]
            body["error"] = {"type": kind, "message": message}
        else:
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
        if ok:
            summary.update({"top1": body["top_k"][0]["label"], "score": body["top_k"][0]["score"]})
        else:
            summary["error"] = body["error"]
        return summary


def read_bounded(response: dict, limit: int) -> bytes:
    """The body of a get_object response; ImageTooLarge when it has more than ``limit``
    bytes: refused from its Content-Length without reading it, and never more than
    ``limit + 1`` bytes read (should the length be missing or wrong)."""
    stream = response["Body"]
    try:
        length = response.get("ContentLength")
        if isinstance(length, int) and length > limit:
            raise _too_large(f"{length} bytes", limit)
        chunks, size = [], 0
        while size <= limit:
            chunk = stream.read(limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise _too_large(f"more than {limit} bytes", limit)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
    finally:
        stream.close()  # unread bytes are dropped with the connection, never buffered


def _too_large(size: str, limit: int) -> ImageError:
    return ImageError("ImageTooLarge", f"{size} is over the limit of {limit} bytes (MAX_IMAGE_BYTES)")


# Read errors that retrying cannot fix: the object gets an error result instead.
PERMANENT_READ_ERRORS = {
    "NoSuchKey": ("NoSuchKey", "the object no longer exists"),
    "404": ("NoSuchKey", "the object no longer exists"),
    "NoSuchVersion": ("NoSuchVersion", "this version of the object no longer exists"),
    "InvalidObjectState": (
        "InvalidObjectState",
        "the object is archived (S3 Glacier Flexible Retrieval or Deep Archive, or an archive tier "
        "of Intelligent-Tiering) and cannot be read until it is restored",
    ),
}

# Why a transient read error happened, for the log line written before Lambda retries.
RETRY_HINTS = {
    "AccessDenied": "S3 denied s3:GetObject: the function's role needs s3:GetObject on this object "
    "(and kms:Decrypt if it is encrypted with a KMS key). Without s3:ListBucket on the bucket, S3 also "
    "answers AccessDenied instead of NoSuchKey for a key that does not exist",
}


def _log_retry(ref: ObjectRef, request_id: str | None, code: str | None, exc: Exception) -> None:
    where = f"s3://{ref.bucket}/{ref.key}" + (f" (version {ref.version_id})" if ref.version_id else "")
    _log(
        {
            "request_id": request_id,
            "key": ref.key,
            "outcome": "retry",
            "error": code or type(exc).__name__,
            "why": f"reading {where} failed: {RETRY_HINTS.get(code or '', exc)}; raised so Lambda retries",
        }
    )


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _log(record: dict) -> None:
    print(json.dumps(record, sort_keys=True), flush=True)
