"""A folder built beside its destination replaces it only when complete."""

import pytest

from lambdapack.atomic import replaced_when_complete, write_whole


def test_a_failed_build_leaves_the_old_folder_and_no_leftovers(tmp_path):
    dest = tmp_path / "cache" / "entry"
    dest.mkdir(parents=True)
    (dest / "old").write_text("old")
    with pytest.raises(RuntimeError), replaced_when_complete(dest, ".build-") as work:
        (work / "half").write_text("half")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in dest.iterdir()) == ["old"]
    assert [p.name for p in dest.parent.iterdir()] == ["entry"]

    with replaced_when_complete(dest, ".build-") as work:
        (work / "new").write_text("new")
    assert sorted(p.name for p in dest.iterdir()) == ["new"]
    assert [p.name for p in dest.parent.iterdir()] == ["entry"]


def test_a_file_is_replaced_whole_and_a_failed_write_leaves_the_old_one(tmp_path, monkeypatch):
    dest = tmp_path / "cache" / "answer.json"
    write_whole(dest, b"old")
    assert dest.read_bytes() == b"old"

    import lambdapack.atomic as atomic

    def broken_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_whole(dest, b"new")
    monkeypatch.undo()
    assert dest.read_bytes() == b"old" and [p.name for p in dest.parent.iterdir()] == ["answer.json"]
    write_whole(dest, b"new")
    assert dest.read_bytes() == b"new" and [p.name for p in dest.parent.iterdir()] == ["answer.json"]
