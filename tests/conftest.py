"""Shared fixtures. Functional tests use the real sample model (built by
``make sample``, or here if missing), real pip with a wheel cache under
``build/test-cache``, real strip, and run zips in clean interpreters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "build" / "sample"
CACHE = ROOT / "build" / "test-cache"


@pytest.fixture(scope="session")
def sample_model() -> Path:
    model = SAMPLE / "digits.keras"
    if not model.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "make_sample_model.py"), "--out", str(SAMPLE)],
            check=True,
        )
    return model


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


def pack_sample(sample_model: Path, out: Path, cache_dir: Path, *options: str) -> subprocess.CompletedProcess:
    """``lambdapack pack`` of the sample model with its sample images, report as JSON; for
    python3.11 (this machine's Python: the host fast path) unless ``options`` name another."""
    return run_cli(
        "pack",
        str(sample_model),
        "--samples",
        str(SAMPLE / "samples"),
        "--out",
        str(out),
        "--json",
        "--python",
        "3.11",
        *options,
        cache=cache_dir,
        check=True,
    )


@pytest.fixture(scope="session")
def packed(sample_model, cache_dir, tmp_path_factory):
    """The sample model packed once for python3.11 x86_64 (the host's Python): (out, report, process)."""
    out = tmp_path_factory.mktemp("dist")
    proc = pack_sample(sample_model, out, cache_dir)
    return out, json.loads(proc.stdout), proc


@pytest.fixture(scope="session")
def packed_tf(sample_model, cache_dir, tmp_path_factory):
    """The sample model packed once for full TensorFlow with staged dependencies: (out, report)."""
    out = tmp_path_factory.mktemp("dist-tf")
    proc = pack_sample(sample_model, out, cache_dir, "--runtime", "tensorflow", "--stage-deps", "s3")
    return out, json.loads(proc.stdout)


def run_cli(
    *args: str, cache: Path | None = None, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the real ``lambdapack`` command in a subprocess (``env``: variables to add)."""
    env = dict(os.environ, COLUMNS="160", **(env or {}))
    if cache is not None:
        env["LAMBDAPACK_CACHE"] = str(cache)
    proc = subprocess.run(
        [sys.executable, "-m", "lambdapack", *args], capture_output=True, text=True, env=env, cwd=ROOT
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"lambdapack {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real moto server on 127.0.0.1 for the whole session (state reset per test by ``aws``),
    with no IAM checks: it serves the tests of deploy's, wire's and destroy's own logic. IAM
    is enforced in every test of the local AWS (``LocalAWS``: tests/test_local_iam.py,
    test_local_aws.py, test_local_cli.py, test_targets.py, test_staged_tensorflow.py), whose
    moto runs in a process of its own; moto's access control is a setting of the moto module,
    so turning it on here would turn it on for every moto in this process (the private S3 of
    ``lambdapack estimate`` included)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint, monkeypatch):
    """Environment pointing boto3 (and the CLI) at the moto server, with fresh state."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).read()
    values = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def local(cache_dir, monkeypatch, request):
    """A LocalAWS (IAM enforced, retries 0.1 s apart) with this shell's variables pointing at
    it and its buckets made: ``LOCAL_BUCKETS`` of the test's module (default photos).
    Concurrency: the test's indirect parameter, else the module's ``LOCAL_CONCURRENCY`` (2)."""
    from lambdapack.local.localaws import LocalAWS

    concurrency = getattr(request, "param", getattr(request.module, "LOCAL_CONCURRENCY", 2))
    with LocalAWS(cache_dir, concurrency=concurrency, retry_delays=(0.1, 0.1)) as aws:
        for key, value in aws.client_environment().items():
            monkeypatch.setenv(key, value)
        for bucket in getattr(request.module, "LOCAL_BUCKETS", ("photos",)):
            aws.client("s3").create_bucket(Bucket=bucket)
        yield aws
