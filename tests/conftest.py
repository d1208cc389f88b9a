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


def heldout_labels() -> dict[str, str]:
    """The held-out digits' labels by file name (``digit-0021.png``), from ``heldout.csv``
    read as lambdapack reads any samples CSV: its paths relative to its own folder."""
    from lambdapack.errors import InputError
    from lambdapack.labelled import read_samples

    try:
        samples = read_samples(SAMPLE / "heldout.csv").samples
    except InputError as exc:  # a sample made before heldout.csv named heldout/FILE
        pytest.fail(f"{exc} — build/sample is older than scripts/make_sample_model.py: run make sample")
    return {sample.path.name: str(sample.label) for sample in samples}


@pytest.fixture(scope="session")
def heldout_classes(sample_model, tmp_path_factory) -> Path:
    """The held-out digits in one folder per class, as make_sample_model.py writes them
    (``heldout-classes/LABEL/``); made here from ``heldout.csv`` for a sample built before it did."""
    folder = SAMPLE / "heldout-classes"
    if folder.is_dir():
        return folder
    import shutil

    folder = tmp_path_factory.mktemp("heldout") / "heldout-classes"
    for name, label in heldout_labels().items():
        (folder / label).mkdir(parents=True, exist_ok=True)
        shutil.copy2(SAMPLE / "heldout" / name, folder / label / name)
    return folder


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.fixture(scope="session")
def sample_model_dir(sample_model, cache_dir, tmp_path_factory) -> Path:
    """The sample model's folder as the zip has it (``model/``: .tflite and config), made once
    for the run; the conversion is cached in ``cache_dir`` (no TensorFlow once it is there)."""
    from lambdapack.packing.model import prepare_model

    model_dir = tmp_path_factory.mktemp("model")
    prepare_model(sample_model, model_dir, cache_dir)
    return model_dir


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
def packed_target(sample_model, cache_dir, tmp_path_factory):
    """The sample packed once per target for the whole run, by the first test that asks:
    ``packed_target(python, arch)`` -> (zip path, report). Skips where that target's
    interpreter is not here (scripts/docker_setup.sh builds the images)."""
    from lambdapack.packing.interpreter import find_target_python
    from lambdapack.packing.target import Target

    packs: dict[tuple[str, str], tuple[Path, dict]] = {}

    def pack(python: str, arch: str) -> tuple[Path, dict]:
        if (python, arch) not in packs:
            if find_target_python(Target(python, arch))[0] is None:
                pytest.skip(f"no python{python} {arch} interpreter here (scripts/docker_setup.sh builds one)")
            out = tmp_path_factory.mktemp(f"dist{python}-{arch}")
            proc = pack_sample(sample_model, out, cache_dir, "--python", python, "--arch", arch)
            packs[(python, arch)] = out / "function.zip", json.loads(proc.stdout)
        return packs[(python, arch)]

    return pack


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


class EnforcedMoto:
    """moto's server with IAM enforced (tests/iam_moto.py), in a process of its own."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "iam_moto.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0"),
        )
        self._read()

    def _read(self) -> None:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"tests/iam_moto.py did not start (exit {self.proc.wait()})")
        answer = json.loads(line)
        self.endpoint = f"http://127.0.0.1:{answer['port']}"
        self.keys = {"AWS_ACCESS_KEY_ID": answer["admin"][0], "AWS_SECRET_ACCESS_KEY": answer["admin"][1]}

    def reset(self) -> None:
        """A fresh AWS: every backend cleared, a new administrator (the old keys are gone)."""
        self.proc.stdin.write("reset\n")
        self.proc.stdin.flush()
        self._read()

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def moto_server():
    """A real moto server on 127.0.0.1 for the whole session, enforcing IAM as the local AWS
    does (an administrator's keys: ``moto_keys``; state reset per test by ``aws``)."""
    server = EnforcedMoto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint(moto_server) -> str:
    return moto_server.endpoint


@pytest.fixture
def moto_keys(moto_server, monkeypatch) -> dict[str, str]:
    """The administrator's keys of the session's moto server, also set in this environment."""
    for key, value in moto_server.keys.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    fresh_default_session(monkeypatch)
    return dict(moto_server.keys)


@pytest.fixture
def aws(moto_server, monkeypatch):
    """Environment pointing boto3 (and the CLI) at the moto server, with fresh state and a
    fresh administrator (IAM is enforced: other keys are refused)."""
    moto_server.reset()
    values = {
        "AWS_ENDPOINT_URL": moto_server.endpoint,
        **moto_server.keys,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    fresh_default_session(monkeypatch)
    return values


def point_at(local, monkeypatch) -> None:
    """This test's environment (and boto3's default session) pointing at a LocalAWS, with the
    administrator's keys it printed."""
    for key, value in local.client_environment().items():
        monkeypatch.setenv(key, value)
    fresh_default_session(monkeypatch)


def fresh_default_session(monkeypatch) -> None:
    """boto3.client() uses one default session, which keeps the keys it first found: each
    test's fresh keys (new at each reset or local AWS) need a fresh one."""
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture
def local(cache_dir, monkeypatch, request):
    """A LocalAWS (IAM enforced, retries 0.1 s apart) with this shell's variables pointing at
    it and its buckets made: ``LOCAL_BUCKETS`` of the test's module (default photos).
    Concurrency: the test's indirect parameter, else the module's ``LOCAL_CONCURRENCY`` (2)."""
    from lambdapack.local.localaws import LocalAWS

    concurrency = getattr(request, "param", getattr(request.module, "LOCAL_CONCURRENCY", 2))
    with LocalAWS(cache_dir, concurrency=concurrency, retry_delays=(0.1, 0.1)) as aws:
        point_at(aws, monkeypatch)
        for bucket in getattr(request.module, "LOCAL_BUCKETS", ("photos",)):
            aws.client("s3").create_bucket(Bucket=bucket)
        yield aws
