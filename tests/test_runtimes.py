"""The runtimes as data: what pip is asked for, per target architecture."""

from lambdapack.packing.runtimes import LITERT, TENSORFLOW


def test_tensorflow_asks_pip_for_a_distribution_that_publishes_wheels_for_the_arch():
    # tensorflow-cpu has no aarch64 wheels; pip markers cannot say this (they describe
    # the build machine, not --platform), so the runtime picks per architecture.
    assert TENSORFLOW.requirements_for("x86_64")[0] == "tensorflow-cpu"
    assert TENSORFLOW.requirements_for("arm64")[0] == "tensorflow"
    assert LITERT.requirements_for("arm64") == LITERT.requirements_for("x86_64") == LITERT.requirements
