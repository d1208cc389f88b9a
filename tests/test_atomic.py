"""A folder built beside its destination replaces it only when complete."""

import time

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


def test_callers_racing_for_one_folder_build_it_once_and_never_replace_it_under_a_reader(tmp_path):
    """The local AWS starts two functions at once on a fresh cache: both need the runtime's
    folder. The second waits for the first build and uses it; a folder one function already
    runs from is never deleted by a later build (CI lost an invocation to exactly that)."""
    import threading
    import time

    from lambdapack.atomic import built_once

    dest = tmp_path / "runtime" / "awslambdaric"
    builds = []

    def build(work):
        builds.append(work)
        time.sleep(0.3)  # a pip install: long enough for every caller to arrive meanwhile
        (work / "module.py").write_text(f"build {len(builds)}")

    answers = []
    callers = [threading.Thread(target=lambda: answers.append(built_once(dest, build))) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(builds) == 1 and sorted(answers) == [False, True, True, True]
    assert (dest / "module.py").read_text() == "build 1"

    # In use: a later caller finds it complete and leaves it as it is.
    held = (dest / "module.py").open()
    assert built_once(dest, build) is True and len(builds) == 1
    assert held.read() == "build 1" and (dest / "module.py").exists()
    held.close()


def test_a_second_process_waits_for_the_first_build_and_uses_it(tmp_path):
    """The lock is a file lock: two lambdapack processes sharing one cache build once."""
    import subprocess
    import sys

    dest = tmp_path / "cache" / "entry"
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from lambdapack.atomic import built_once\n"
        "def build(work):\n"
        "    time.sleep(1.0)\n"
        "    (work / 'by').write_text(sys.argv[2])\n"
        "print(built_once(Path(sys.argv[1]), build))\n"
    )
    first = subprocess.Popen(
        [sys.executable, "-c", code, str(dest), "first"], stdout=subprocess.PIPE, text=True
    )
    # The first holds the lock (its temporary folder is there) before the second starts.
    deadline = time.monotonic() + 30
    while not [p for p in dest.parent.glob(".entry-*")] and time.monotonic() < deadline:
        time.sleep(0.02)
    second = subprocess.run([sys.executable, "-c", code, str(dest), "second"], capture_output=True, text=True)
    assert first.communicate()[0].strip() == "False" and second.stdout.strip() == "True", second.stderr
    assert (dest / "by").read_text() == "first"


def test_without_file_locks_both_build_and_the_first_complete_folder_stays(tmp_path, monkeypatch):
    """On a file system with no locks (flock fails), both callers build; the second finds
    the first's folder complete and throws its own away instead of replacing it under
    whoever runs from it."""
    import errno
    import threading

    import lambdapack.atomic as atomic

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(atomic.fcntl, "flock", no_locks)
    dest = tmp_path / "runtime" / "boto3"
    started = threading.Barrier(2)

    def build(work):
        started.wait(timeout=10)  # both are building at once
        time.sleep(0.2 if threading.current_thread().name == "slow" else 0.0)
        (work / "by").write_text(threading.current_thread().name)

    callers = [
        threading.Thread(target=atomic.built_once, args=(dest, build), name=name) for name in ("fast", "slow")
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert (dest / "by").read_text() == "fast"
    assert [p.name for p in dest.parent.iterdir() if p.is_dir()] == ["boto3"]  # the slow one's work is gone
