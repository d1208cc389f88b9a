"""The build side of staged dependencies (``pack/staging.py``) and deploy's
checks of a staged zip: small trees made here, unpacked by the handler's
own bootstrap; the deploy test runs against moto's server."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from pathlib import Path

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy, plan, preflight
from lambdapack.errors import DeployError, SizeLimitError
from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD
from lambdapack.packing.staging import (
    EPHEMERAL_HEADROOM_MB,
    ArchiveDigest,
    MiB,
    check_ephemeral,
    ephemeral_storage_mb,
    split_tree,
    top_level_names,
    write_archive,
)
from lambdapack_handler.staged import stage_file

from .conftest import pack_sample


def make_tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("VALUE = 42\n")
    (root / "pkg" / "sub" / "data.bin").write_bytes(os.urandom(4096))
    tool = root / "pkg" / "tool.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o700)
    return root


def test_the_archive_is_deterministic_and_unpacks_to_the_same_files(tmp_path):
    tree = make_tree(tmp_path / "tree")
    first = write_archive(tree, tmp_path / "a.tar.zst")
    # Same content, other times and permissions on disk: same bytes.
    os.utime(tree / "pkg" / "__init__.py", (1, 1))
    (tree / "pkg" / "sub" / "data.bin").chmod(0o600)
    second = write_archive(tree, tmp_path / "b.tar.zst")
    assert first.sha256 == second.sha256 == hashlib.sha256((tmp_path / "a.tar.zst").read_bytes()).hexdigest()
    assert first.files == 3 and first.unpacked == sum(
        p.stat().st_size for p in tree.rglob("*") if p.is_file()
    )

    unpacked = stage_file(tmp_path / "a.tar.zst", first.sha256, tmp_path / "root")
    for path in tree.rglob("*"):
        if path.is_file():
            assert (unpacked / path.relative_to(tree)).read_bytes() == path.read_bytes()
    assert os.access(unpacked / "pkg" / "tool.sh", os.X_OK)
    assert not os.access(unpacked / "pkg" / "__init__.py", os.X_OK)


def test_ephemeral_storage_holds_the_tree_the_archive_and_headroom():
    unpacked, archive = 900 * MiB, 220 * MiB
    needed = ephemeral_storage_mb(unpacked, archive)
    assert needed >= 900 + 220 + EPHEMERAL_HEADROOM_MB
    assert ephemeral_storage_mb(1, 1) == EPHEMERAL_HEADROOM_MB + 1  # whole MB, rounded up
    digest = ArchiveDigest("0" * 64, 3000 * MiB, 9000 * MiB, 10, 3, 1.0)
    with pytest.raises(SizeLimitError, match="10,240 MB"):
        check_ephemeral(digest)


def test_split_keeps_the_handler_and_bootstrap_and_moves_the_rest(tmp_path):
    task = tmp_path / "task"
    for name in ("index.py", "six.py"):
        (task / name).parent.mkdir(parents=True, exist_ok=True)
        (task / name).write_text("")
    for folder in ("lambdapack_handler", "model", "zstandard", "zstandard-0.25.0.dist-info", "tensorflow"):
        (task / folder).mkdir()
        (task / folder / "x").write_text("")
    (task / "__pycache__").mkdir()
    for name in ("index.cpython-311.pyc", "six.cpython-311.pyc"):
        (task / "__pycache__" / name).write_text("")
    owners = {
        "zstandard/__init__.py": "zstandard",
        "zstandard-0.25.0.dist-info/": "zstandard",
        "six.py": "six",
    }
    keep = {"index.py", "lambdapack_handler", "model", *top_level_names(owners, ["zstandard"])}
    split_tree(task, tmp_path / "deps", keep)
    assert sorted(p.relative_to(task).as_posix() for p in task.rglob("*") if p.is_file()) == [
        "__pycache__/index.cpython-311.pyc",
        "index.py",
        "lambdapack_handler/x",
        "model/x",
        "zstandard-0.25.0.dist-info/x",
        "zstandard/x",
    ]
    assert sorted(p.relative_to(tmp_path / "deps").as_posix() for p in (tmp_path / "deps").rglob("*")) == [
        "__pycache__",
        "__pycache__/six.cpython-311.pyc",
        "six.py",
        "tensorflow",
        "tensorflow/x",
    ]


@pytest.fixture
def staged_zip(tmp_path):
    """A minimal zip packed 'with --stage-deps s3' and its archive beside it."""
    tree = make_tree(tmp_path / "tree")
    out = tmp_path / "dist"
    out.mkdir()
    digest = write_archive(tree, out / "deps.tar.zst")
    with zipfile.ZipFile(out / "function.zip", "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 1\n")
        archive.writestr(
            BUILD_RECORD,
            json.dumps(
                {"target": {"runtime": "python3.11", "architecture": "x86_64"}, "deps": digest.as_dict()}
            ),
        )
    return out / "function.zip", digest


def test_preflight_needs_the_code_bucket_and_the_archive_the_zip_was_packed_with(staged_zip, tmp_path):
    zip_path, digest = staged_zip
    with pytest.raises(DeployError, match="must be uploaded to S3") as refused:
        preflight(DeploySettings(zip_path, "fn"))
    assert "--code-bucket" in refused.value.hint
    check = preflight(DeploySettings(zip_path, "fn", code_bucket="code"))
    assert check.deps.sha256 == digest.sha256 and check.ephemeral_storage == digest.ephemeral_mb

    other = tmp_path / "other.tar.zst"
    write_archive(make_tree(tmp_path / "other"), other)
    with pytest.raises(DeployError, match=r"not the archive function\.zip was packed with"):
        preflight(DeploySettings(zip_path, "fn", code_bucket="code", deps_path=other))
    shutil.move(zip_path.parent / "deps.tar.zst", tmp_path / "moved.tar.zst")
    with pytest.raises(DeployError, match="does not exist"):
        preflight(DeploySettings(zip_path, "fn", code_bucket="code"))
    # --deps finds it elsewhere; a larger --ephemeral-storage is kept.
    check = preflight(
        DeploySettings(
            zip_path, "fn", code_bucket="code", deps_path=tmp_path / "moved.tar.zst", ephemeral_storage=4096
        )
    )
    assert check.ephemeral_storage == 4096


@pytest.mark.functional
def test_deploy_uploads_the_archive_and_names_it_in_the_environment(staged_zip, aws):
    zip_path, digest = staged_zip
    s3 = boto3.client("s3")
    for bucket in ("code", "photos"):
        s3.create_bucket(Bucket=bucket)
    settings = DeploySettings(zip_path, "fn", code_bucket="code", bucket="photos")
    steps = plan(settings, preflight(settings))
    assert any(f"deps-{digest.sha256}.tar.zst" in step.describe() for step in steps)
    lines: list[str] = []
    result = deploy(settings, AWSClient(), log=lines.append)
    key = f"lambdapack/fn/deps-{digest.sha256}.tar.zst"
    assert (
        s3.get_object(Bucket="code", Key=key)["Body"].read()
        == (zip_path.parent / "deps.tar.zst").read_bytes()
    )
    config = boto3.client("lambda").get_function(FunctionName="fn")["Configuration"]
    assert config["Environment"]["Variables"] == {
        "OUTPUT_PREFIX": "results/",
        "DEPS_BUCKET": "code",
        "DEPS_KEY": key,
        "DEPS_SHA256": digest.sha256,
    }
    assert config["EphemeralStorage"]["Size"] == digest.ephemeral_mb
    read = result.policy["Statement"][0]["Resource"]
    assert f"arn:aws:s3:::code/{key}" in read
    # A second deploy finds the archive already there and changes nothing.
    lines.clear()
    deploy(settings, AWSClient(), log=lines.append)
    assert any("already at" in line for line in lines) and any("nothing to change" in line for line in lines)


@pytest.mark.functional
def test_litert_stages_the_same_way_and_a_plain_pack_removes_the_stale_archive(
    sample_model, cache_dir, tmp_path
):
    staged = json.loads(pack_sample(sample_model, tmp_path, cache_dir, "--stage-deps", "s3").stdout)
    names = zipfile.ZipFile(tmp_path / "function.zip").namelist()
    assert not any(name.startswith(("numpy/", "ai_edge_litert/", "PIL/")) for name in names)
    assert staged["deps"]["packages"]["numpy"] > 0 and staged["smoke"]["staged_s"] > 0
    assert (tmp_path / "deps.tar.zst").is_file()

    plain = json.loads(pack_sample(sample_model, tmp_path, cache_dir).stdout)
    assert "deps" not in plain and not (tmp_path / "deps.tar.zst").exists()
