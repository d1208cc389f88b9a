"""The contract between lambdapack (the packer, deploy and wire) and the handler.

Standard library only: this module travels in every zip, and the packer imports
the same file from its installed package, so each fact here has one home.

- where the handler lives in the zip, and where pack writes its build record;
- the environment variables deploy sets and the handler reads;
- where a result goes (``OUTPUT_PREFIX + key + ".json"``, shortened with a hash
  for the rare key whose result key would pass S3's 1,024 bytes);
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


def result_key(output_prefix: str, key: str) -> str:
    """Where the result of ``key`` goes: ``OUTPUT_PREFIX + key + ".json"`` whenever that
    fits S3's 1,024 bytes; for a longer key, the prefix, the key cut to fit (on a
    character boundary), "-", the sha256 of the whole key and ".json". Deterministic,
    so a retry overwrites it; distinct for keys that share the part kept; and still
    under the prefix and ending in ".json", so the recursion rule holds."""
    full = f"{output_prefix}{key}{RESULT_SUFFIX}"
    if len(full.encode("utf-8")) <= MAX_KEY_BYTES:
        return full
    tail = f"-{hashlib.sha256(key.encode('utf-8')).hexdigest()}{RESULT_SUFFIX}"
    room = MAX_KEY_BYTES - len(output_prefix.encode("utf-8")) - len(tail)
    if room < 0:
        raise ValueError(
            f"the output prefix is {len(output_prefix.encode('utf-8'))} bytes: too long to leave room "
            f"for a result key within S3's {MAX_KEY_BYTES} bytes"
        )
    kept = key.encode("utf-8")[:room].decode("utf-8", errors="ignore")  # never half a character
    return f"{output_prefix}{kept}{tail}"


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
