"""Fetching the model from S3 (a real moto server on 127.0.0.1) into the temp
directory: verified, cached, and never trusted when a download was cut off."""

from __future__ import annotations

import hashlib

import boto3
import pytest

from lambdapack_handler.modelstore import ModelFetchError, fetch_model

pytestmark = pytest.mark.functional
MODEL = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def s3(moto_endpoint, moto_keys):
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="models")
    client.put_object(Bucket="models", Key="m/model.tflite", Body=MODEL)
    yield client
    for item in client.list_objects_v2(Bucket="models").get("Contents", []):
        client.delete_object(Bucket="models", Key=item["Key"])
    client.delete_bucket(Bucket="models")


SHA = hashlib.sha256(MODEL).hexdigest()


def test_model_is_downloaded_verified_and_reused_from_the_cache(s3, tmp_path):
    first = fetch_model(s3, "models", "m/model.tflite", SHA, root=tmp_path)
    assert first.downloaded and first.path.read_bytes() == MODEL and first.sha256 == SHA
    s3.delete_object(Bucket="models", Key="m/model.tflite")
    again = fetch_model(s3, "models", "m/model.tflite", SHA, root=tmp_path)
    assert not again.downloaded and again.path == first.path


def test_without_a_pinned_hash_the_etag_keys_the_cache_so_an_update_is_fetched(s3, tmp_path):
    first = fetch_model(s3, "models", "m/model.tflite", root=tmp_path)
    assert first.downloaded
    assert not fetch_model(s3, "models", "m/model.tflite", root=tmp_path).downloaded
    s3.put_object(Bucket="models", Key="m/model.tflite", Body=MODEL[::-1])
    updated = fetch_model(s3, "models", "m/model.tflite", root=tmp_path)
    assert updated.downloaded and updated.path.read_bytes() == MODEL[::-1]


def test_a_hash_mismatch_is_refused_and_leaves_nothing_behind(s3, tmp_path):
    with pytest.raises(ModelFetchError, match="does not match MODEL_SHA256"):
        fetch_model(s3, "models", "m/model.tflite", "0" * 64, root=tmp_path)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


class CutOffBody:
    """Stand-in for a connection dropped mid-download (a timeout or a reset):
    no real part here can cut a moto response off half-way."""

    def __init__(self, body, after: int):
        self.body, self.after = body, after

    def iter_chunks(self, size):
        sent = 0
        for chunk in self.body.iter_chunks(size // 16):
            if sent >= self.after:
                raise ConnectionResetError("connection reset mid-download")
            sent += len(chunk)
            yield chunk


class CuttingClient:
    def __init__(self, client):
        self.client = client

    def get_object(self, **kwargs):
        response = self.client.get_object(**kwargs)
        response["Body"] = CutOffBody(response["Body"], after=len(MODEL) // 3)
        return response

    def head_object(self, **kwargs):
        return self.client.head_object(**kwargs)


def test_an_interrupted_download_is_never_trusted_and_the_next_call_fetches_again(s3, tmp_path):
    with pytest.raises(ConnectionResetError):
        fetch_model(CuttingClient(s3), "models", "m/model.tflite", SHA, root=tmp_path)
    assert not any(p.name == "model.tflite" for p in tmp_path.rglob("*"))
    fetched = fetch_model(s3, "models", "m/model.tflite", SHA, root=tmp_path)
    assert fetched.downloaded and fetched.path.read_bytes() == MODEL


def test_a_partial_file_left_by_a_killed_process_is_ignored_and_removed(s3, tmp_path):
    folder = tmp_path / SHA
    folder.mkdir()
    (folder / ".partial-abc123").write_bytes(MODEL[:1000])
    fetched = fetch_model(s3, "models", "m/model.tflite", SHA, root=tmp_path)
    assert fetched.path.read_bytes() == MODEL
    assert sorted(p.name for p in folder.iterdir()) == ["model.tflite"]
