"""ELF reading, strip, orphan pruning on real files built with the C compiler,
stripped with the real strip and loaded with the real dynamic loader."""

import shutil

import pytest

from lambdapack.packing.elf import is_elf, read_elf_file
from lambdapack.packing.prune import ORPHANS_GROUP, orphaned_libraries, prune_tree
from lambdapack.packing.strip import dlopen_check, strip_tree
from lambdapack.packing.target import Target, host_arch

from .native import misalign_a_load_segment, package_tree

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None or host_arch() != "x86_64", reason="needs a C compiler on x86_64"
)
TARGET = Target("3.11", "x86_64")


def test_needed_libraries_soname_and_versions_are_read(tmp_path):
    files = package_tree(tmp_path)
    info = read_elf_file(files["ext"])
    assert info.machine == "EM_X86_64"
    assert "libdep.so" in info.needed
    assert read_elf_file(files["dep"]).soname == "libdep.so"
    assert any(lib == "libc.so.6" and name.startswith("GLIBC_") for lib, name in info.version_needs)
    assert info.problems == ()
    assert is_elf(files["ext"]) and not is_elf(tmp_path)


def test_misaligned_segment_is_seen_by_pyelftools_and_refused_by_the_loader(tmp_path):
    files = package_tree(tmp_path)
    misalign_a_load_segment(files["orphan"])
    assert any("not page-aligned" in p for p in read_elf_file(files["orphan"]).problems)
    failures = dlopen_check([files["orphan"], files["dep"]])
    assert list(failures) == [files["orphan"]]


def test_strip_saves_bytes_and_every_stripped_file_still_loads(tmp_path):
    files = package_tree(tmp_path)
    result = strip_tree(tmp_path, TARGET)
    assert result.tool and result.load_checked
    assert result.saved > 0
    assert not result.kept
    assert dlopen_check(list(files.values())) == {}


def test_strip_keeps_the_original_of_a_file_that_fails_its_load_check(tmp_path):
    files = package_tree(tmp_path)
    original = files["ext"].read_bytes()

    def checker(paths):
        # Reported by a stand-in checker: no real strip output fails to load on
        # this machine's files, so the failure is injected (the real case,
        # numpy 2's OpenBLAS, is covered by the functional pack test).
        return {p: "injected failure" for p in paths if p.name == "_ext.so"}

    result = strip_tree(tmp_path, TARGET, load_checker=checker)
    kept = {item.path: item.kept_original for item in result.kept}
    assert list(kept) == ["pkg/_ext.so"]
    assert files["ext"].read_bytes() == original


def test_orphaned_vendored_libraries_are_pruned_and_needed_ones_kept(tmp_path):
    files = package_tree(tmp_path)
    assert orphaned_libraries(tmp_path) == [files["orphan"]]
    result = prune_tree(tmp_path)
    assert [path for path, _ in result.removed[ORPHANS_GROUP]] == ["pkg.libs/liborphan.so"]
    assert files["dep"].exists() and files["ext"].exists()
    assert dlopen_check([files["ext"]]) == {}


def test_keep_orphans_leaves_them(tmp_path):
    files = package_tree(tmp_path)
    prune_tree(tmp_path, keep=[ORPHANS_GROUP])
    assert files["orphan"].exists()


def test_elf_files_are_read_from_a_zip_as_from_disk_in_memory_or_spilled(tmp_path, monkeypatch):
    import zipfile

    from lambdapack.packing import elf

    files = package_tree(tmp_path / "tree")
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files.values():
            archive.write(path, path.relative_to(tmp_path / "tree").as_posix())
        archive.writestr("pkg/__init__.py", "")
    on_disk = {p.relative_to(tmp_path / "tree").as_posix(): read_elf_file(p) for p in files.values()}
    with zipfile.ZipFile(wheel) as archive:
        assert elf.read_zip_elves(archive) == on_disk
        monkeypatch.setattr(elf, "IN_MEMORY_LIMIT", 0)  # every member through a temporary file
        assert elf.read_zip_elves(archive) == on_disk
    assert {path: elf.ElfInfo.from_dict(info.as_dict()) for path, info in on_disk.items()} == on_disk
