"""Compare two zips entry by entry, and say which differences are expected.

Two builders (native and Docker) given the same inputs should produce the
same files; what may legitimately differ is what the build interpreter
writes itself: bytecode (another patch release marshals differently), the
RECORD hashes of console scripts pip wrote with that interpreter's path in
their first line (the scripts themselves are pruned), and the build record.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from lambdapack.handler.lambdapack_handler.contract import BUILD_RECORD

from ..errors import InputError

EXPLANATIONS = (
    (lambda p: p.endswith(".pyc"), "bytecode written by a different build of the interpreter"),
    (
        lambda p: p.endswith(".dist-info/RECORD"),
        "RECORD hashes of console scripts pip wrote for the build interpreter (the scripts are pruned)",
    ),
    (lambda p: p == BUILD_RECORD, "the build record: which builder and interpreter made the zip"),
)


@dataclass
class Comparison:
    only_in_first: list[str] = field(default_factory=list)
    only_in_second: list[str] = field(default_factory=list)
    explained: dict[str, str] = field(default_factory=dict)
    unexplained: list[str] = field(default_factory=list)

    @property
    def same_files(self) -> bool:
        return not self.only_in_first and not self.only_in_second

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def explain(path: str) -> str | None:
    for matches, reason in EXPLANATIONS:
        if matches(PurePosixPath(path).as_posix()):
            return reason
    return None


def compare(first: Path, second: Path) -> Comparison:
    for path in (first, second):
        if not zipfile.is_zipfile(path):
            raise InputError(f"{path} is not a zip file")
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
        left = {i.filename: (i.CRC, i.file_size) for i in a.infolist() if not i.is_dir()}
        right = {i.filename: (i.CRC, i.file_size) for i in b.infolist() if not i.is_dir()}
    result = Comparison(sorted(set(left) - set(right)), sorted(set(right) - set(left)))
    for path in sorted(set(left) & set(right)):
        if left[path] == right[path]:
            continue
        reason = explain(path)
        if reason:
            result.explained[path] = reason
        else:
            result.unexplained.append(path)
    return result
