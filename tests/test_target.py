import pytest

from lambdapack.packing.target import Target, TargetError


def test_python311_x86_64_lists_every_manylinux_tag_up_to_glibc_2_26():
    target = Target("3.11", "x86_64")
    tags = target.platform_tags()
    assert tags[0] == "manylinux2014_x86_64"
    assert tags[1:] == [f"manylinux_2_{minor}_x86_64" for minor in range(17, 27)]
    assert target.runtime == "python3.11"
    assert target.os.name == "Amazon Linux 2"


def test_python312_arm64_goes_up_to_glibc_2_34_on_aarch64():
    target = Target("3.12", "arm64")
    tags = target.platform_tags()
    assert tags[0] == "manylinux2014_aarch64"
    assert tags[-1] == "manylinux_2_34_aarch64"
    assert "manylinux_2_35_aarch64" not in tags
    assert target.os.name == "Amazon Linux 2023"
    assert target.elf_machine == "EM_AARCH64"


@pytest.mark.parametrize("python", ["3.10", "3.11"])
def test_amazon_linux_2_runtimes_have_glibc_2_26(python):
    assert Target(python, "x86_64").os.glibc == (2, 26)


@pytest.mark.parametrize("python", ["3.12", "3.13", "3.14"])
def test_amazon_linux_2023_runtimes_have_glibc_2_34(python):
    assert Target(python, "x86_64").os.glibc == (2, 34)


def test_unknown_python_and_arch_are_refused_with_the_choices():
    with pytest.raises(TargetError, match=r"3\.10, 3\.11, 3\.12"):
        Target("3.9", "x86_64")
    with pytest.raises(TargetError, match="x86_64, arm64"):
        Target("3.11", "aarch64")
