"""Runtime lifecycle: pack warns on a deprecated runtime; deploy refuses what AWS
blocks (creating after the block-create date, any update after block-update),
before it writes anything. Dates are data (lambdapack.packing.target.LIFECYCLE)."""

from __future__ import annotations

import shutil
from datetime import date

import boto3
import pytest

from lambdapack.aws.client import AWSClient
from lambdapack.aws.deploy import DeploySettings, deploy
from lambdapack.errors import DeployError
from lambdapack.packing.target import LIFECYCLE, Target


def test_every_runtime_has_its_dates_in_order():
    for python, dates in LIFECYCLE.items():
        known = [d for d in (dates.deprecated, dates.block_create, dates.block_update) if d]
        assert known == sorted(known), python
    assert set(LIFECYCLE) == {"3.10", "3.11", "3.12", "3.13", "3.14"}


def test_a_deprecated_runtime_is_warned_about_with_its_dates():
    warning = Target("3.10", "x86_64").deprecation_warning(date(2026, 11, 30))
    assert "deprecated since 2026-10-31" in warning and "2027-02-01" in warning and "--python 3.14" in warning
    assert Target("3.13", "x86_64").deprecation_warning(date(2026, 11, 30)) is None
    assert Target("3.11", "arm64").deprecation_warning(date(2027, 6, 29)) is None
    assert Target("3.11", "arm64").deprecation_warning(date(2027, 6, 30)) is not None


def test_blocks_start_on_their_dates():
    python310 = Target("3.10", "x86_64")
    assert python310.deploy_refusal(date(2027, 1, 31), creating=True) is None
    assert "since 2027-02-01" in python310.deploy_refusal(date(2027, 2, 1), creating=True)
    assert python310.deploy_refusal(date(2027, 2, 1), creating=False) is None
    assert "updating" in python310.deploy_refusal(date(2027, 3, 3), creating=False)
    assert Target("3.14", "arm64").deploy_refusal(date(2030, 1, 1), creating=True) is None


@pytest.fixture
def zip_path(packed, tmp_path):
    out, report, _ = packed
    assert report["target"]["runtime"] == "python3.11"
    path = tmp_path / "function.zip"
    shutil.copy(out / "function.zip", path)
    return path


@pytest.mark.functional
def test_deploy_refuses_to_create_on_a_blocked_runtime_before_writing_anything(zip_path, aws):
    boto3.client("s3").create_bucket(Bucket="photos")
    settings = DeploySettings(zip_path, "digits", bucket="photos", today=date(2027, 8, 1))
    with pytest.raises(DeployError, match=r"blocks creating functions on python3\.11 since 2027-07-31"):
        deploy(settings, AWSClient(), log=lambda _: None)
    assert boto3.client("iam").list_roles()["Roles"] == []
    assert boto3.client("lambda").list_functions()["Functions"] == []


@pytest.mark.functional
def test_an_existing_function_is_updated_until_the_block_update_date(zip_path, aws):
    boto3.client("s3").create_bucket(Bucket="photos")
    deploy(DeploySettings(zip_path, "digits", bucket="photos"), AWSClient(), log=lambda _: None)
    # After block-create, an existing function still takes updates …
    lines: list[str] = []
    deploy(
        DeploySettings(zip_path, "digits", bucket="photos", memory=2048, today=date(2027, 8, 15)),
        AWSClient(),
        log=lines.append,
    )
    assert any("MemorySize" in line for line in lines)
    # … until block-update: then the refusal comes before any call.
    with pytest.raises(DeployError, match=r"blocks updating functions on python3\.11 since 2027-08-31"):
        deploy(
            DeploySettings(zip_path, "digits", bucket="photos", today=date(2027, 9, 1)),
            AWSClient(),
            log=lambda _: None,
        )


@pytest.mark.functional
def test_pack_warns_about_a_deprecated_runtime(sample_model, cache_dir, tmp_path):
    from lambdapack.packing.pipeline import PackOptions, pack
    from lambdapack.packing.runtimes import LITERT

    from .conftest import SAMPLE

    options = PackOptions(
        model=sample_model,
        out=tmp_path / "out",
        target=Target("3.11", "x86_64"),
        runtime=LITERT,
        samples=SAMPLE / "samples",
        cache_dir=cache_dir,
        smoke=False,
        today=date(2027, 7, 1),
    )
    report = pack(options)
    assert any("python3.11 is deprecated since 2027-06-30" in w for w in report.warnings)
    assert report.as_dict()["warnings"] == report.warnings
