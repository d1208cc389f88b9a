"""The contract between lambdapack (the packer, deploy and wire) and the handler.

Standard library only: this module travels in every zip, and the packer imports
the same file from its installed package, so each fact here has one home.

- where the handler lives in the zip, and where pack writes its build record;
- the environment variables deploy sets and the handler reads;
- where a result goes (``OUTPUT_PREFIX + key + ".json"``, or a hashed key in a
  folder no direct result key reaches, for a key too long: ``result_key``), and
  how a result object is read back (``read_result``);
- the one recursion rule: a result key of the function must never match the
  trigger that invokes it. ``wire`` and ``deploy`` refuse a trigger that
  ``Outputs.would_trigger`` says its results would match; the handler skips
  (loudly) exactly the keys ``Outputs.is_own_result`` says it wrote.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

# --- the zip's layout --------------------------------------------------------------
HANDLER = "index.handler"  # the handler string Lambda is given
HANDLER_MODULE = "index.py"
HANDLER_PACKAGE = "lambdapack_handler"
MODEL_DIR = "model"
BUILD_RECORD = ".lambdapack/build.json"  # written into the zip by lambdapack pack

# --- environment variables (set by deploy or the user, read by the handler) ---------
OUTPUT_BUCKET = "OUTPUT_BUCKET"  # default: the input object's bucket
OUTPUT_PREFIX = "OUTPUT_PREFIX"
TOP_K = "TOP_K"
MODEL_BUCKET = "MODEL_BUCKET"
MODEL_KEY = "MODEL_KEY"
MODEL_SHA256 = "MODEL_SHA256"
DEPS_BUCKET = "DEPS_BUCKET"
DEPS_KEY = "DEPS_KEY"
DEPS_SHA256 = "DEPS_SHA256"
MAX_IMAGE_BYTES = "MAX_IMAGE_BYTES"
MAX_IMAGE_PIXELS = "MAX_IMAGE_PIXELS"
MAX_DECODE_BYTES = "MAX_DECODE_BYTES"  # the memory a decode may take; unset: from MAX_IMAGE_PIXELS
INFERENCE_THREADS = "INFERENCE_THREADS"  # unset or 0: as many as the environment's CPUs
MODEL_DIR_VARIABLE = "MODEL_DIR"  # a model folder other than the zip's (tests, benchmarks)
LAMBDA_TASK_ROOT = "LAMBDA_TASK_ROOT"  # set by Lambda: where the zip is unpacked

DEFAULT_OUTPUT_PREFIX = "results/"
DEFAULT_TOP_K = 5
RESULT_SUFFIX = ".json"


@dataclass(frozen=True)
class KeyFilter:
    """An S3 key filter as notifications use it: a prefix and a suffix ('' = any)."""

    prefix: str = ""
    suffix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)

    def overlaps(self, other: KeyFilter) -> bool:
        """Some key matches both: the prefixes nest and the suffixes nest."""
        prefixes = self.prefix.startswith(other.prefix) or other.prefix.startswith(self.prefix)
        suffixes = self.suffix.endswith(other.suffix) or other.suffix.endswith(self.suffix)
        return prefixes and suffixes


MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
# Where hashed result keys live, under the output prefix. A key that starts with it never
# gets a direct result key (it is hashed too), so no direct result key can land here.
HASHED_FOLDER = ".lambdapack-hashed/"


def result_key(output_prefix: str, key: str) -> str:
    """Where the result of ``key`` goes; two input keys never share it.

    Direct: ``OUTPUT_PREFIX + key + ".json"``, when that fits S3's 1,024 bytes and ``key``
    does not start with ``HASHED_FOLDER``. Hashed otherwise: ``OUTPUT_PREFIX +
    HASHED_FOLDER + sha256(key) + ".json"``. Why no two keys collide: two direct keys
    differ because their input keys do (the same prefix and suffix around them); a direct
    key never starts with ``OUTPUT_PREFIX + HASHED_FOLDER`` (its input key would have to
    start with HASHED_FOLDER, and such a key is hashed), so it never equals a hashed key;
    two hashed keys differ unless sha256 collides. The result object holds the input key
    (``input.key``), so a hashed result still says whose it is. Deterministic (a retry
    overwrites), under the prefix and ending in ".json" (the recursion rule holds)."""
    full = f"{output_prefix}{key}{RESULT_SUFFIX}"
    if len(full.encode("utf-8")) <= MAX_KEY_BYTES and not key.startswith(HASHED_FOLDER):
        return full
    hashed = f"{output_prefix}{HASHED_FOLDER}{hashlib.sha256(key.encode('utf-8')).hexdigest()}{RESULT_SUFFIX}"
    if len(hashed.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(
            f"the output prefix is {len(output_prefix.encode('utf-8'))} bytes: too long to leave room "
            f"for a result key within S3's {MAX_KEY_BYTES} bytes"
        )
    return hashed


def is_hashed_result(output_prefix: str, result: str) -> bool:
    """True for a result key of the hashed form (its input key is only inside the object)."""
    return result.startswith(output_prefix + HASHED_FOLDER)


@dataclass(frozen=True)
class Result:
    """What lambdapack's result object says, read back: whose it is and what came out."""

    key: str
    etag: str | None
    version_id: str | None
    label: str | None = None
    score: float | None = None
    error: str | None = None  # "TYPE: message" for an error result

    def is_for(self, etag: str | None, version_id: str | None = None) -> bool:
        """Written for this very object: the same version or ETag (a result that recorded
        neither, as when the object could not be read, counts)."""
        if self.version_id and version_id:
            return self.version_id == version_id
        if self.etag and etag:
            return self.etag == etag.strip('"')
        return True


def read_result(body: object) -> Result | None:
    """A result object's JSON as lambdapack's handler writes it, or None for anything else
    (JSON that is not lambdapack's: counted and skipped by its readers, never fatal)."""
    if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
        return None
    source = body["input"]
    key, etag, version = source.get("key"), source.get("etag"), source.get("version_id")
    if not isinstance(key, str) or not all(v is None or isinstance(v, str) for v in (etag, version)):
        return None
    error, top_k = body.get("error"), body.get("top_k")
    if error is not None:
        if not isinstance(error, dict) or not all(isinstance(error.get(f), str) for f in ("type", "message")):
            return None
        return Result(key, etag, version, error=f"{error['type']}: {error['message']}")
    if not isinstance(top_k, list) or not top_k or not isinstance(top_k[0], dict):
        return None
    label, score = top_k[0].get("label"), top_k[0].get("score")
    if not isinstance(label, str) or isinstance(score, bool) or not isinstance(score, int | float):
        return None
    return Result(key, etag, version, label=label, score=float(score))


@dataclass(frozen=True)
class Outputs:
    """Where a function writes its results: a bucket (None: each input's own) and a prefix."""

    bucket: str | None = None
    prefix: str = DEFAULT_OUTPUT_PREFIX

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Outputs:
        return cls(environ.get(OUTPUT_BUCKET) or None, environ.get(OUTPUT_PREFIX, DEFAULT_OUTPUT_PREFIX))

    def bucket_for(self, input_bucket: str) -> str:
        return self.bucket or input_bucket

    def location(self, bucket: str, key: str) -> tuple[str, str]:
        return self.bucket_for(bucket), result_key(self.prefix, key)

    @property
    def results(self) -> KeyFilter:
        """The keys this function's results can have."""
        return KeyFilter(self.prefix, RESULT_SUFFIX)

    def is_own_result(self, bucket: str, key: str) -> bool:
        """True for a key this function could have written as a result (never process it)."""
        return bucket == self.bucket_for(bucket) and self.results.matches(key)

    def would_trigger(self, bucket: str, trigger: KeyFilter) -> bool:
        """True when results written for inputs of ``bucket`` could match ``trigger`` there."""
        return self.bucket_for(bucket) == bucket and self.results.overlaps(trigger)
