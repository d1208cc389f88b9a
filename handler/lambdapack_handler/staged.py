"""Dependencies staged in S3 (for full TensorFlow, which cannot fit a zip):
fetched into the temp directory at cold start, verified, and only then made
importable.

``DEPS_BUCKET``/``DEPS_KEY`` name a ``.tar.zst`` archive and ``DEPS_SHA256``
its hash. The archive is downloaded under a temporary name while it is
hashed; a mismatch is an error and nothing is used. It is unpacked into a
temporary folder that is renamed to ``<temp>/lambdapack-deps/<sha256>`` only
once complete (marked by ``.complete``), so a timeout or a full disk mid-way
never leaves a half tree that a later start trusts; a complete tree is reused
by warm starts, and trees of other hashes are removed to free the space.

Several processes may share one temp directory (Lambda Managed Instances run
several per execution environment): fetching, unpacking and clearing
leftovers happen only while holding an exclusive ``flock`` on the deps root
folder itself (no lock file to leave behind; the kernel drops the lock of a
process that dies). One process unpacks; the others wait, then find the
complete tree and reuse it. Whatever is not complete when a process gets the
lock was left by a process that died, and only then is it removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from .clients import s3_client
from .contract import BUILD_RECORD, DEPS_BUCKET, DEPS_KEY, DEPS_SHA256, LAMBDA_TASK_ROOT
from .modelstore import sha256_file  # standard library only, as this module

COMPLETE = ".complete"
CHUNK = 1 << 20


class StagedDepsError(RuntimeError):
    """The staged dependency archive is missing, corrupt, or cannot be unpacked."""


def deps_root() -> Path:
    return Path(tempfile.gettempdir()) / "lambdapack-deps"


def packed_sha256(environ: Mapping[str, str] = os.environ) -> str | None:
    """The archive this zip was packed with, from its build record; None if not staged."""
    task_root = environ.get(LAMBDA_TASK_ROOT) or Path(__file__).resolve().parent.parent
    try:
        record = json.loads((Path(task_root) / BUILD_RECORD).read_text())
    except (OSError, ValueError):
        return None
    return (record.get("deps") or {}).get("sha256")


def stage_from_env(environ: Mapping[str, str] = os.environ, s3=None) -> Path | None:
    """Stage what ``DEPS_*`` name, after checking they are what this zip was packed with."""
    bucket, key, sha256 = environ.get(DEPS_BUCKET), environ.get(DEPS_KEY), environ.get(DEPS_SHA256)
    expected = packed_sha256(environ)
    if not (bucket and key):
        if expected and not any(Path(entry).name == expected for entry in sys.path):
            raise StagedDepsError(
                f"this function was packed with --stage-deps s3, but DEPS_BUCKET and DEPS_KEY are not "
                f"set, so its dependencies (deps.tar.zst, sha256 {expected}) are missing: deploy it "
                "with lambdapack deploy --code-bucket BUCKET, which uploads the archive and sets them"
            )
        return None
    if not sha256:
        raise StagedDepsError(
            "DEPS_BUCKET and DEPS_KEY are set but DEPS_SHA256 is not: refusing unverified code"
        )
    if expected and sha256.lower() != expected:
        raise StagedDepsError(
            f"DEPS_SHA256 is {sha256}, but this zip was packed with the dependencies {expected}: the "
            "code and its dependencies do not match (was the code updated without lambdapack "
            "deploy?). Deploy the zip with lambdapack deploy, which sets both together"
        )
    s3 = s3 or s3_client()
    if s3 is None:
        raise StagedDepsError("boto3 is not importable here, so the staged dependencies cannot be fetched")
    return stage(s3, bucket, key, sha256)


def stage(s3, bucket: str, key: str, sha256: str, root: Path | None = None) -> Path:
    """Make the archive in S3 importable; return its folder."""
    return _stage(sha256, root, lambda folder: _download(s3, bucket, key, sha256.lower(), folder), True)


def stage_file(archive: Path | str, sha256: str, root: Path | None = None) -> Path:
    """The same from an archive on disk (the smoke run of ``lambdapack pack``)."""
    archive = Path(archive)

    def verified(folder: Path) -> Path:
        actual = sha256_file(archive)
        if actual != sha256.lower():
            raise StagedDepsError(f"{archive} has sha256 {actual}, not {sha256}: not used")
        return archive

    return _stage(sha256, root, verified, False)


def _stage(sha256: str, root: Path | None, fetch, remove_archive: bool) -> Path:
    root = root or deps_root()
    sha256 = sha256.lower()
    tree = root / sha256
    if (tree / COMPLETE).exists():
        source = "reused"
    else:
        root.mkdir(parents=True, exist_ok=True)
        with _exclusive(root, sha256) as waited:
            if (tree / COMPLETE).exists():
                source = f"reused, unpacked by another process while this one waited {waited:.2f} s"
            else:
                source = _fetch_and_unpack(root, sha256, fetch, remove_archive)
    if str(tree) not in sys.path:
        # After the task folder, as the runtime's own packages are.
        sys.path.insert(1 if sys.path else 0, str(tree))
    print(json.dumps({"staged_dependencies": str(tree), "sha256": sha256, "source": source}), flush=True)
    return tree


@contextlib.contextmanager
def _exclusive(root: Path, sha256: str):
    """Hold an exclusive flock on the deps root folder; yield how long it took to get it."""
    began = time.perf_counter()
    handle = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            message = {"staged_dependencies": str(root / sha256), "waiting": "another process is staging"}
            print(json.dumps(message), flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield time.perf_counter() - began
    finally:
        os.close(handle)  # releases the lock


def _fetch_and_unpack(root: Path, sha256: str, fetch, remove_archive: bool) -> str:
    """Fetch and unpack into ``root / sha256``; only with the lock held."""
    began = time.perf_counter()
    _remove_others(root, keep=sha256)
    archive = fetch(root)
    fetched = time.perf_counter()
    try:
        _unpack(archive, root / sha256)
    finally:
        if remove_archive:
            archive.unlink(missing_ok=True)
    return f"fetched in {fetched - began:.2f} s, unpacked in {time.perf_counter() - fetched:.2f} s"


def _remove_others(root: Path, keep: str) -> None:
    """Stale trees of another hash, and leftovers of interrupted fetches (with the lock held,
    nothing incomplete belongs to a live process)."""
    for entry in root.iterdir():
        if entry.name != keep:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    partial = root / keep
    if partial.exists() and not (partial / COMPLETE).exists():
        shutil.rmtree(partial, ignore_errors=True)


def _download(s3, bucket: str, key: str, sha256: str, root: Path) -> Path:
    handle, name = tempfile.mkstemp(prefix=".download-", suffix=".tar.zst", dir=root)
    digest = hashlib.sha256()
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        with os.fdopen(handle, "wb") as out:
            for block in body.iter_chunks(CHUNK):
                out.write(block)
                digest.update(block)
    except Exception as exc:  # botocore's errors, the network, a full disk
        Path(name).unlink(missing_ok=True)
        raise StagedDepsError(
            f"could not download the staged dependencies s3://{bucket}/{key}: {exc} (the function's "
            "role needs s3:GetObject on it; lambdapack deploy uploads it and grants that)"
        ) from exc
    if digest.hexdigest() != sha256:
        Path(name).unlink(missing_ok=True)
        raise StagedDepsError(
            f"s3://{bucket}/{key} has sha256 {digest.hexdigest()}, not DEPS_SHA256 {sha256}: not used"
        )
    return Path(name)


def _unpack(archive: Path, tree: Path) -> None:
    import zstandard

    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=tree.parent))
    try:
        with (
            archive.open("rb") as raw,
            zstandard.ZstdDecompressor().stream_reader(raw) as stream,
            tarfile.open(fileobj=stream, mode="r|") as tar,
        ):
            _extract(tar, work)
        (work / COMPLETE).write_text("")
        work.rename(tree)
    except (tarfile.TarError, zstandard.ZstdError, OSError) as exc:
        raise StagedDepsError(f"the staged dependency archive could not be unpacked: {exc}") from exc
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)


def _extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract only regular files, folders and links that stay inside ``dest``.

    The archive's hash was verified, so this guards against a bad build, not an
    attacker. Python 3.11.4+ has tarfile's "data" filter; older 3.11 patch
    releases (Debian bookworm's 3.11.2, say) get the same rules here.
    """
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = os.path.realpath(dest)
    for member in tar:
        target = os.path.realpath(os.path.join(root, member.name))
        if member.islnk() or member.issym():
            link = os.path.join(os.path.dirname(target), member.linkname)
            if member.islnk():
                link = os.path.join(root, member.linkname)
            if os.path.isabs(member.linkname) or os.path.commonpath([root, os.path.realpath(link)]) != root:
                raise tarfile.TarError(f"{member.name} links outside the archive")
        elif not (member.isfile() or member.isdir()):
            raise tarfile.TarError(f"{member.name} is not a file, folder or link")
        if os.path.commonpath([root, target]) != root:
            raise tarfile.TarError(f"{member.name} is outside the archive")
        tar.extract(member, root)
