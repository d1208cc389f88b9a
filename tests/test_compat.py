from lambdapack.packing.compat import check
from lambdapack.packing.elf import ElfInfo, parse_symbol_version
from lambdapack.packing.target import Target


def elf(needed=("libc.so.6",), versions=(("libc.so.6", "GLIBC_2.17"),), machine="EM_X86_64", soname=None):
    return ElfInfo(machine, "ET_DYN", False, soname, tuple(needed), tuple(versions), ())


def test_parse_symbol_versions():
    assert parse_symbol_version("GLIBC_2.29") == ("GLIBC", (2, 29))
    assert parse_symbol_version("GLIBCXX_3.4.26") == ("GLIBCXX", (3, 4, 26))
    assert parse_symbol_version("CXXABI_1.3.9") == ("CXXABI", (1, 3, 9))
    assert parse_symbol_version("GCC_4.2.0") == ("GCC", (4, 2, 0))
    assert parse_symbol_version("GLIBC_PRIVATE") is None
    assert parse_symbol_version("OPENSSL_3.0.0") is None


def test_glibc_2_29_fails_on_amazon_linux_2_and_passes_on_2023():
    files = {"tflite_runtime/_interp.so": elf(("libm.so.6",), (("libm.so.6", "GLIBC_2.29"),))}
    old = check(files, Target("3.11", "x86_64"))
    assert not old.ok
    assert "needs GLIBC_2.29 from libm.so.6" in old.findings[0].problem
    assert "glibc 2.26" in old.findings[0].problem
    assert check(files, Target("3.12", "x86_64")).ok


def test_glibcxx_newer_than_the_runtime_gcc_is_found():
    files = {"a.so": elf(("libstdc++.so.6",), (("libstdc++.so.6", "GLIBCXX_3.4.26"),), "EM_AARCH64")}
    report = check(files, Target("3.11", "arm64"))
    assert [f.path for f in report.findings] == ["a.so"]
    assert "libstdc++ 3.4.24" in report.findings[0].problem
    assert report.highest == {"GLIBCXX": "3.4.26"}


def test_library_missing_from_lambda_is_reported():
    report = check({"cv2/cv2.so": elf(("libGL.so.1", "libc.so.6"))}, Target("3.12", "x86_64"))
    assert "needs libGL.so.1" in report.findings[0].problem


def test_bundled_libraries_satisfy_needs_and_are_checked_themselves():
    files = {
        "numpy/core.so": elf(("libopenblas-1a2b.so",), (("libopenblas-1a2b.so", "OPENBLAS_9"),)),
        "numpy.libs/libopenblas-1a2b.so": elf(("libc.so.6",), (("libc.so.6", "GLIBC_2.17"),)),
    }
    report = check(files, Target("3.11", "x86_64"))
    assert report.ok
    assert report.highest == {"GLIBC": "2.17"}


def test_wrong_architecture_and_damage_are_reported():
    damaged = ElfInfo("EM_X86_64", "ET_DYN", False, None, (), (), ("load segment 3 is not page-aligned",))
    files = {"arm.so": elf(machine="EM_AARCH64"), "bad.so": damaged}
    problems = {f.path: f.problem for f in check(files, Target("3.11", "x86_64")).findings}
    assert "built for EM_AARCH64" in problems["arm.so"]
    assert "damaged" in problems["bad.so"]
