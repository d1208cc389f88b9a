import base64
import hashlib
import os
import zipfile

from lambdapack.packing.zipper import collect, write_zip


def make_tree(root, mtime):
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "b.py").write_text("b = 1\n")
    (root / "a.py").write_text("a = 1\n")
    tool = root / "pkg" / "tool.sh"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o700)
    (root / "pkg" / "b.py").chmod(0o600)
    for path in root.rglob("*"):
        os.utime(path, (mtime, mtime))


def test_same_inputs_give_identical_bytes_whatever_the_timestamps(tmp_path):
    make_tree(tmp_path / "one", 1_000_000)
    make_tree(tmp_path / "two", 1_700_000_000)
    first = write_zip(collect(tmp_path / "one"), tmp_path / "one.zip")
    second = write_zip(collect(tmp_path / "two"), tmp_path / "two.zip")
    assert first.sha256 == second.sha256
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()


def test_entries_are_sorted_with_normalised_modes_and_dates(tmp_path):
    make_tree(tmp_path / "t", 1_700_000_000)
    write_zip(collect(tmp_path / "t"), tmp_path / "t.zip")
    with zipfile.ZipFile(tmp_path / "t.zip") as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["a.py", "pkg/b.py", "pkg/tool.sh"]
    modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in infos}
    assert modes == {"a.py": 0o644, "pkg/b.py": 0o644, "pkg/tool.sh": 0o755}
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_code_sha256_is_what_lambda_reports(tmp_path):
    make_tree(tmp_path / "t", 0)
    result = write_zip(collect(tmp_path / "t"), tmp_path / "t.zip")
    raw = hashlib.sha256((tmp_path / "t.zip").read_bytes()).digest()
    assert result.code_sha256 == base64.b64encode(raw).decode()
    assert result.sha256 == raw.hex()
