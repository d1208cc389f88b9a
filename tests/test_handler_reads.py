"""Bounded reads of an S3 body and result keys within S3's 1,024 bytes (the pure
parts; the same against a real moto S3 in test_handler_s3_records)."""

from __future__ import annotations

import hashlib
import io

import pytest

from lambdapack_handler import contract
from lambdapack_handler.imaging import ImageError

LIMIT = 1000


class Body(io.BytesIO):
    """A response body as botocore's StreamingBody reads it: a real stream, read in pieces."""

    def __init__(self, data: bytes, piece: int = 64):
        super().__init__(data)
        self.piece, self.delivered = piece, 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(self.piece if size is None or size < 0 else min(size, self.piece))
        self.delivered += len(chunk)
        return chunk


def test_an_object_over_the_limit_is_refused_from_its_length_without_reading_it():
    from lambdapack_handler.app import read_bounded

    body = Body(b"x" * 5000)
    with pytest.raises(ImageError, match="5000 bytes is over the limit of 1000") as refused:
        read_bounded({"Body": body, "ContentLength": 5000}, LIMIT)
    assert refused.value.kind == "ImageTooLarge" and body.delivered == 0 and body.closed


@pytest.mark.parametrize("length", [None, 10], ids=["no-length", "wrong-length"])
def test_without_a_true_length_no_more_than_limit_plus_one_bytes_are_read(length):
    from lambdapack_handler.app import read_bounded

    body = Body(b"x" * 5000)
    with pytest.raises(ImageError, match="more than 1000 bytes is over the limit") as refused:
        read_bounded({"Body": body, "ContentLength": length}, LIMIT)
    assert refused.value.kind == "ImageTooLarge" and body.delivered == LIMIT + 1 and body.closed


def test_an_object_within_the_limit_is_read_whole_in_pieces():
    from lambdapack_handler.app import read_bounded

    data = bytes(range(256)) * 3 + b"end"
    assert read_bounded({"Body": Body(data, piece=100), "ContentLength": len(data)}, LIMIT) == data
    assert read_bounded({"Body": Body(b"x" * LIMIT), "ContentLength": LIMIT}, LIMIT) == b"x" * LIMIT


@pytest.mark.parametrize(
    "key", ["in/cat.png", "in/" + "a" * 1004 + ".png", "in/" + "é" * 500 + ".png", "in/" + "猫" * 333 + ".jp"]
)
def test_a_result_key_that_fits_is_the_contract_s_rule(key):
    assert contract.result_key("results/", key) == "results/" + key + ".json"
    assert len(contract.result_key("results/", key).encode()) <= 1024


@pytest.mark.parametrize(
    "key",
    ["in/" + "a" * 1009 + ".png", "in/" + "é" * 503 + ".png", "in/" + "猫" * 335 + ".png", "x" * 1024],
    ids=["ascii", "two-byte", "three-byte", "longest-key"],
)
def test_a_result_key_too_long_for_s3_is_shortened_deterministically(key):
    shortened = contract.result_key("results/", key)
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert len(("results/" + key + ".json").encode()) > 1024
    assert len(shortened.encode()) <= 1024 and shortened.endswith(f"-{digest}.json")
    kept = shortened[len("results/") : -len(f"-{digest}.json")]
    assert key.startswith(kept) and len(kept.encode()) >= 1024 - len("results/") - 70 - 2
    assert contract.result_key("results/", key) == shortened  # a retry overwrites the same object
    assert contract.Outputs(None, "results/").is_own_result("b", shortened)  # the recursion guard holds
    other = key[:-5] + "Z" + key[-4:]  # same beginning, another key: another result
    assert contract.result_key("results/", other) != shortened


def test_an_output_prefix_leaving_no_room_is_a_clear_error():
    with pytest.raises(ValueError, match=r"output prefix .* too long"):
        contract.result_key("p" * 1000, "k" * 100)
