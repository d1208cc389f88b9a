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
def test_a_result_key_too_long_for_s3_is_hashed_deterministically(key):
    hashed = contract.result_key("results/", key)
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert len(("results/" + key + ".json").encode()) > 1024
    assert hashed == f"results/{contract.HASHED_FOLDER}{digest}.json"
    assert contract.result_key("results/", key) == hashed  # a retry overwrites the same object
    assert contract.Outputs(None, "results/").is_own_result("b", hashed)  # the recursion guard holds
    other = key[:-5] + "Z" + key[-4:]  # same beginning, another key: another result
    assert contract.result_key("results/", other) != hashed


def old_shortened_result_key(key: str) -> str:
    """The rule lambdapack had before: the key cut to fit, "-", its sha256 and ".json"."""
    tail = f"-{hashlib.sha256(key.encode()).hexdigest()}.json"
    kept = key.encode()[: 1024 - len("results/") - len(tail)].decode(errors="ignore")
    return f"results/{kept}{tail}"


def test_the_two_colliding_long_keys_get_two_result_keys():
    """Issue 20: a key of 1,023 bytes and one of 1,011 bytes equal to the first's old
    shortened result key (less the prefix and .json) shared one result key."""
    first = "incoming/" + "a" * 1010 + ".png"
    second = old_shortened_result_key(first)[len("results/") : -len(".json")]
    assert (len(first.encode()), len(second.encode())) == (1023, 1011)
    assert "results/" + second + ".json" == old_shortened_result_key(first)  # the old collision
    assert contract.result_key("results/", first) != contract.result_key("results/", second)


def test_a_key_that_looks_like_a_hashed_result_is_hashed_too():
    """No direct result key can land in the hashed folder: an input key starting with it is
    itself hashed, so it cannot take the result key of a long key."""
    long_key = "k" * 1020
    hashed = contract.result_key("results/", long_key)
    impostor = hashed[len("results/") : -len(".json")]  # would map straight onto it
    assert contract.result_key("results/", impostor) != hashed
    assert contract.is_hashed_result("results/", contract.result_key("results/", impostor))
    assert not contract.is_hashed_result("results/", contract.result_key("results/", "in/cat.png"))


@pytest.mark.parametrize(
    "body",
    [[1, 2], {"error": "disk full"}, {"top_k": [{}]}, {"input": {"key": "a"}, "top_k": [{}]}, "x", None],
    ids=["list", "error-string", "empty-top-k", "no-label", "string", "null"],
)
def test_json_that_is_not_a_lambdapack_result_reads_as_none(body):
    assert contract.read_result(body) is None


def test_a_result_is_for_the_same_object_only():
    result = contract.read_result(
        {"input": {"key": "a.png", "etag": "e1", "version_id": None}, "top_k": [{"label": "7", "score": 0.9}]}
    )
    assert result == contract.Result("a.png", "e1", None, label="7", score=0.9)
    assert result.is_for('"e1"') and not result.is_for('"e2"')


def test_an_output_prefix_leaving_no_room_is_a_clear_error():
    with pytest.raises(ValueError, match=r"output prefix .* too long"):
        contract.result_key("p" * 1000, "k" * 100)
