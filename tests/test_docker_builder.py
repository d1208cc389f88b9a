"""The Docker builder on a real engine, with local Debian base images made by
scripts/docker_setup.sh (no registry is reachable here, so nothing is pulled).
Skips, with the reason, where no engine or base image is available."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from lambdapack.packing.compare import compare

from .conftest import SAMPLE, run_cli
from .test_pack_functional import classify_heldout

pytestmark = pytest.mark.functional


def _engine_problem() -> str | None:
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:
        return f"no Docker engine here ({type(exc).__name__}); run scripts/docker_setup.sh"
    for tag in ("lambdapack-base:bookworm", "lambdapack-base:trixie"):
        try:
            client.images.get(tag)
        except Exception:
            return f"base image {tag} missing; run scripts/docker_setup.sh"
    return None


PROBLEM = _engine_problem()


def needs_engine(test):
    """A test that runs containers: marked so, and skipped (saying why) without an engine."""
    return pytest.mark.container(pytest.mark.skipif(PROBLEM is not None, reason=PROBLEM or "")(test))


def docker_pack(out, cache, *extra):
    proc = run_cli(
        "pack",
        str(SAMPLE / "digits.keras"),
        "--samples",
        str(SAMPLE / "samples"),
        "--out",
        str(out),
        "--builder",
        "docker",
        "--docker-host-network",
        "--json",
        *extra,
        cache=cache,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout), proc.stderr


@pytest.fixture(scope="module")
def bookworm(sample_model, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("docker-bookworm")
    report, log = docker_pack(out, cache_dir, "--python", "3.11", "--base-image", "lambdapack-base:bookworm")
    return out, report, log


@needs_engine
def test_docker_build_runs_the_same_pipeline_with_the_images_python(bookworm):
    _, report, log = bookworm
    assert report["builder"]["name"] == "docker"
    assert report["builder"]["base_image"] == "lambdapack-base:bookworm"
    assert report["builder"]["python"].startswith("3.11.")
    assert report["smoke"]["ran"] and report["bytecode"]["compiled"] and report["elf"]["ok"]
    for stage in ("install", "strip", "prune", "compile", "check", "zip", "smoke"):
        assert f"\n{stage} " in "\n" + log, stage


@needs_engine
def test_the_docker_built_zip_classifies_the_heldout_digits_in_a_clean_interpreter(bookworm, tmp_path):
    out, _, _ = bookworm
    outcome = classify_heldout(out / "function.zip", tmp_path)
    assert outcome["outside"] == [] and outcome["accuracy"] >= 0.95


@needs_engine
def test_native_and_docker_builds_have_the_same_files_and_only_explained_differences(bookworm, packed):
    docker_out, _, _ = bookworm
    native_out, _, _ = packed
    result = compare(native_out / "function.zip", docker_out / "function.zip")
    assert result.same_files, (result.only_in_first, result.only_in_second)
    assert result.unexplained == []
    assert ".lambdapack/build.json" in result.explained
    cli = run_cli("compare", str(native_out / "function.zip"), str(docker_out / "function.zip"))
    assert cli.returncode == 0 and "same files" in cli.stdout and "0 unexplained" in cli.stdout


@needs_engine
def test_the_builder_image_is_cached_by_tag(bookworm, cache_dir, tmp_path):
    _, log = docker_pack(
        tmp_path, cache_dir, "--python", "3.11", "--base-image", "lambdapack-base:bookworm", "--no-smoke"
    )
    assert "(cached)" in log


@needs_engine
def test_a_python_this_machine_lacks_is_compiled_and_smoke_tested_in_its_own_image(
    sample_model, cache_dir, tmp_path
):
    report, _ = docker_pack(tmp_path, cache_dir, "--python", "3.13", "--base-image", "lambdapack-base:trixie")
    assert report["target"]["runtime"] == "python3.13"
    assert report["builder"]["python"].startswith("3.13.")
    assert report["bytecode"]["compiled"] and "3.13" in report["bytecode"]["note"]
    assert report["smoke"]["ran"] and report["smoke"]["images"] == 10
    names = zipfile.ZipFile(tmp_path / "function.zip").namelist()
    assert any(name.endswith(".cpython-313.pyc") for name in names)
    assert report["elf"]["ok"]  # the ELF check, not the container (glibc 2.41), vouches for AL2023


@needs_engine
@pytest.mark.tensorflow
def test_staged_tensorflow_builds_and_unpacks_with_the_images_python(sample_model, cache_dir, tmp_path):
    # bookworm's Python 3.11.2 predates tarfile's "data" filter: the bootstrap's own checks unpack.
    report, log = docker_pack(
        tmp_path,
        cache_dir,
        "--python",
        "3.11",
        "--base-image",
        "lambdapack-base:bookworm",
        "--runtime",
        "tensorflow",
        "--stage-deps",
        "s3",
    )
    assert report["builder"]["python"].startswith("3.11.") and "\nstage " in "\n" + log
    assert Path(report["deps"]["path"]) == tmp_path / "deps.tar.zst" and (tmp_path / "deps.tar.zst").is_file()
    assert report["smoke"]["ran"] and report["smoke"]["staged_s"] > 0 and report["smoke"]["images"] == 10
    assert report["smoke"]["max_difference"] < 1e-3


@needs_engine
def test_a_base_image_that_is_missing_and_cannot_be_pulled_is_a_clear_error(
    sample_model, cache_dir, tmp_path
):
    proc = run_cli(
        "pack",
        str(SAMPLE / "digits.keras"),
        "--out",
        str(tmp_path),
        "--builder",
        "docker",
        "--base-image",
        "lambdapack-test/no-such-image:1",
        cache=cache_dir,
    )
    assert proc.returncode == 8, proc.stderr[-2000:]
    assert "is not on this machine and cannot be pulled" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr


def test_no_engine_is_a_clear_error(sample_model, cache_dir, tmp_path):
    env_backup = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = f"unix://{tmp_path}/no-docker.sock"
    try:
        proc = run_cli(
            "pack",
            str(SAMPLE / "digits.keras"),
            "--out",
            str(tmp_path),
            "--builder",
            "docker",
            cache=cache_dir,
        )
    finally:
        if env_backup is None:
            os.environ.pop("DOCKER_HOST")
        else:
            os.environ["DOCKER_HOST"] = env_backup
    assert proc.returncode == 8
    assert "no Docker engine answers" in proc.stderr and "--builder native" in " ".join(proc.stderr.split())
