"""A folder built beside its destination replaces it only when complete."""

import pytest

from lambdapack.atomic import replaced_when_complete


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
