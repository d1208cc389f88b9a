"""Staged dependencies (the bootstrap for full TensorFlow): fetched from a real
moto S3 into the temp directory, verified, unpacked atomically, reused, and
never trusted half-done."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import boto3
import pytest
import zstandard

from lambdapack_handler.staged import COMPLETE, StagedDepsError, stage, stage_from_env

pytestmark = pytest.mark.functional


def archive(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor(level=3).compress(raw.getvalue())


DEPS = archive({"staged_hello/__init__.py": b"GREETING = 'hello from S3'\n"})
SHA = hashlib.sha256(DEPS).hexdigest()


@pytest.fixture(autouse=True)
def own_sys_path(monkeypatch):
    """Staging puts trees on sys.path: each test gets its own copy of it."""
    monkeypatch.setattr(sys, "path", list(sys.path))


@pytest.fixture
def s3(aws):
    client = boto3.client("s3")
    client.create_bucket(Bucket="code")
    client.put_object(Bucket="code", Key="deps/deps.tar.zst", Body=DEPS)
    return client


def importable(tree) -> str:
    code = f"import sys; sys.path.insert(0, {str(tree)!r}); import staged_hello; print(staged_hello.GREETING)"
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True
    ).stdout.strip()


def test_archive_is_fetched_verified_unpacked_and_reused(s3, tmp_path):
    tree = stage(s3, "code", "deps/deps.tar.zst", SHA, root=tmp_path)
    assert tree == tmp_path / SHA and (tree / COMPLETE).exists()
    assert importable(tree) == "hello from S3"
    assert str(tree) in sys.path
    sys.path.remove(str(tree))
    s3.delete_object(Bucket="code", Key="deps/deps.tar.zst")
    assert stage(s3, "code", "deps/deps.tar.zst", SHA, root=tmp_path) == tree  # warm: no download
    sys.path.remove(str(tree))
    assert sorted(p.name for p in tmp_path.iterdir()) == [SHA]


def test_a_hash_mismatch_fails_and_nothing_is_used(s3, tmp_path):
    with pytest.raises(StagedDepsError, match="not DEPS_SHA256"):
        stage(s3, "code", "deps/deps.tar.zst", "0" * 64, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_archive_is_a_clear_error_naming_it(s3, tmp_path):
    missing = r"could not download .* s3://code/deps/gone\.tar\.zst: .*NoSuchKey"
    with pytest.raises(StagedDepsError, match=missing):
        stage(s3, "code", "deps/gone.tar.zst", SHA, root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_unpack_is_not_trusted_and_stale_trees_are_removed(s3, tmp_path):
    half = tmp_path / SHA
    (half / "staged_hello").mkdir(parents=True)  # an unpack cut off before .complete
    (half / "staged_hello" / "__init__.py").write_text("raise ImportError('half a tree')\n")
    (tmp_path / ("f" * 64)).mkdir()  # a complete tree of an older archive
    (tmp_path / ("f" * 64) / COMPLETE).write_text("")
    (tmp_path / ".unpack-abc").mkdir()  # leftovers of an interrupted start
    tree = stage(s3, "code", "deps/deps.tar.zst", SHA, root=tmp_path)
    sys.path.remove(str(tree))
    assert importable(tree) == "hello from S3"
    assert sorted(p.name for p in tmp_path.iterdir()) == [SHA]


def test_a_corrupt_archive_with_the_right_hash_is_a_clear_error(aws, tmp_path):
    client = boto3.client("s3")
    client.create_bucket(Bucket="code")
    broken = b"this is not zstd"
    client.put_object(Bucket="code", Key="bad.tar.zst", Body=broken)
    with pytest.raises(StagedDepsError, match="could not be unpacked"):
        stage(client, "code", "bad.tar.zst", hashlib.sha256(broken).hexdigest(), root=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("data_filter", [True, False], ids=["tarfile-data-filter", "python-before-3.11.4"])
def test_only_files_inside_the_tree_are_unpacked(tmp_path, monkeypatch, data_filter):
    from lambdapack_handler.staged import stage_file

    if not data_filter:  # what Python 3.11.0–3.11.3 (Debian bookworm has 3.11.2) lack
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    good = tmp_path / "good.tar.zst"
    good.write_bytes(DEPS)
    tree = stage_file(good, SHA, tmp_path / "root")
    assert importable(tree) == "hello from S3"

    evil = tmp_path / "evil.tar.zst"
    evil.write_bytes(archive({"pkg/ok.py": b"", "../escaped.py": b"x = 1\n"}))
    with pytest.raises(StagedDepsError, match="could not be unpacked"):
        stage_file(evil, hashlib.sha256(evil.read_bytes()).hexdigest(), tmp_path / "other")
    assert not (tmp_path / "escaped.py").exists()
    assert [p.name for p in (tmp_path / "other").iterdir()] == []


def task_packed_with(tmp_path, sha256: str) -> dict[str, str]:
    """An environment whose task folder carries a build record naming ``sha256``."""
    (tmp_path / "task" / ".lambdapack").mkdir(parents=True)
    (tmp_path / "task" / ".lambdapack" / "build.json").write_text(json.dumps({"deps": {"sha256": sha256}}))
    return {"LAMBDA_TASK_ROOT": str(tmp_path / "task")}


def test_a_staged_zip_without_its_deps_settings_says_how_to_deploy_it(tmp_path):
    with pytest.raises(StagedDepsError, match="DEPS_BUCKET and DEPS_KEY are not set") as missing:
        stage_from_env(task_packed_with(tmp_path, SHA))
    assert "lambdapack deploy --code-bucket" in str(missing.value)
    assert stage_from_env({"LAMBDA_TASK_ROOT": str(tmp_path / "nothing")}) is None  # a plain zip


def test_deps_of_another_build_are_refused_before_any_download(s3, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    env = task_packed_with(tmp_path, "a" * 64) | {
        "DEPS_BUCKET": "code",
        "DEPS_KEY": "deps/deps.tar.zst",
        "DEPS_SHA256": SHA,
    }
    with pytest.raises(StagedDepsError, match="do not match"):
        stage_from_env(env, s3=s3)
    assert not (tmp_path / "tmp").exists()
    env = task_packed_with(tmp_path / "matching", SHA) | {
        k: v for k, v in env.items() if k.startswith("DEPS")
    }
    tree = stage_from_env(env, s3=s3)
    sys.path.remove(str(tree))
    assert tree == tmp_path / "tmp" / "lambdapack-deps" / SHA and importable(tree) == "hello from S3"


STAGE_AT = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import boto3
from lambdapack_handler.staged import stage
client = boto3.client("s3")
start = float(sys.argv[4])
time.sleep(max(0.0, start - time.time()))  # every process starts staging at the same moment
tree = stage(client, "code", "deps/many.tar.zst", sys.argv[2], root=Path(sys.argv[3]))
"""


def test_processes_starting_at_once_in_one_temp_dir_unpack_once_and_all_get_the_whole_tree(aws, tmp_path):
    # Lambda Managed Instances run several processes in one environment with one /tmp.
    import random
    import time

    rng = random.Random(5)
    files = {f"pkg_{n // 50}/mod_{n}.py": rng.randbytes(20_000) for n in range(400)}
    deps = archive(files)
    sha = hashlib.sha256(deps).hexdigest()
    client = boto3.client("s3")
    client.create_bucket(Bucket="code")
    client.put_object(Bucket="code", Key="deps/many.tar.zst", Body=deps)
    handler = Path(__file__).resolve().parent.parent / "handler"
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", STAGE_AT, str(handler), sha, str(tmp_path / "deps"), start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outcomes = [(proc.wait(timeout=120), *proc.communicate()) for proc in procs]
    assert [code for code, _, _ in outcomes] == [0, 0, 0], [err[-1500:] for _, _, err in outcomes]
    sources = [json.loads(out.strip().splitlines()[-1])["source"] for _, out, _ in outcomes]
    assert sum(source.startswith("fetched") for source in sources) == 1, sources
    assert sum(source.startswith("reused, unpacked by another process") for source in sources) == 2, sources
    tree = tmp_path / "deps" / sha
    assert sorted(p.name for p in (tmp_path / "deps").iterdir()) == [sha]  # no leftovers
    unpacked = {str(p.relative_to(tree)): p.read_bytes() for p in tree.rglob("*") if p.is_file()}
    assert unpacked == {**files, COMPLETE: b""}
