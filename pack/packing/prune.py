"""The ``prune`` stage: remove what is dead weight at run time.

The rules are data: a group name, the paths it matches and why they are
never needed inside a Lambda function. A user turns a group off with
``--keep GROUP``. After the rules, one mechanism removes vendored native
libraries (auditwheel's ``<pkg>.libs/`` folders) that no remaining file
needs any more — e.g. FreeType once Pillow's font module is gone.

What is never pruned: ``*.dist-info`` (``importlib.metadata`` reads it, and
the licences live there), package ``testing`` modules (public API), and
anything a rule does not name. The smoke run proves imports still work.
Each ``RECORD`` is then made to list only the files that are still there —
it also loses pip's rows for console scripts outside the tree, whose
hashes depend on the path of the Python that ran pip, so the same inputs
give the same bytes on any machine.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath

from .elf import read_elf_file
from .strip import elf_files


@dataclass(frozen=True)
class Rule:
    group: str
    patterns: tuple[str, ...]
    reason: str


# Pillow's modules a classifier never imports: the readers of formats outside the handler's
# RASTER_FORMATS (PNG, JPEG, MPO, WEBP, GIF, BMP, TIFF, AVIF; PPM stays, Image.preinit imports
# it), and drawing, fonts, colour management, GUI toolkits and screen grabs.
PILLOW_UNUSED_PLUGINS = (
    "Blp",
    "BufrStub",
    "Cur",
    "Dcx",
    "Dds",
    "Eps",
    "Fits",
    "Fli",
    "Fpx",
    "Ftex",
    "Gbr",
    "GribStub",
    "Hdf5Stub",
    "Icns",
    "Ico",
    "Im",
    "Imt",
    "Iptc",
    "Jpeg2K",
    "McIdas",
    "Mic",
    "Mpeg",
    "Msp",
    "Palm",
    "Pcd",
    "Pcx",
    "Pdf",
    "Pixar",
    "Psd",
    "Qoi",
    "Sgi",
    "Spider",
    "Sun",
    "Tga",
    "Wmf",
    "XVThumb",
    "Xbm",
    "Xpm",
)
PILLOW_UNUSED_MODULES = (
    "PdfParser",
    "ImageCms",
    "ImageTk",
    "ImageQt",
    "ImageGrab",
    "ImageShow",
    "ImageWin",
    "ImageDraw",
    "ImageDraw2",
    "ImageFont",
    "ImageText",
    "ImageMorph",
    "ImagePath",
    "PSDraw",
    "FontFile",
    "BdfFontFile",
    "PcfFontFile",
    "GdImageFile",
    "WalImageFile",
    "TarIO",
    "ContainerIO",
    "_tkinter_finder",
    "__main__",  # python -m PIL: prints Pillow's feature report
    "report",
)
# ImageMath and _imagingmath stay: Pillow 12's GIF plugin imports ImageMath.
PILLOW_UNUSED_EXTENSIONS = ("_imagingcms", "_imagingtk", "_imagingmorph")

RULES: tuple[Rule, ...] = (
    Rule(
        "tests",
        ("**/tests/**", "**/conftest.py", "numpy/_core/_*_tests.*"),
        "test suites and test-only extension modules; no code imports them at run time",
    ),
    Rule(
        "sources",
        ("**/*.h", "**/*.hpp", "**/*.pxd", "**/*.pyx", "**/*.pxi", "**/*.c", "**/*.cpp"),
        "C, C++ and Cython sources and headers; only a compiler reads them",
    ),
    Rule(
        "static-libraries",
        ("**/*.a", "**/pkgconfig/**"),
        "static libraries and pkg-config files; only a linker reads them",
    ),
    Rule(
        "typing",
        ("**/*.pyi", "**/py.typed"),
        "type stubs; only a type checker reads them",
    ),
    Rule(
        "bytecode",
        ("**/__pycache__/**", "**/*.pyc", "**/*.pyo"),
        "bytecode written for the build machine; lambdapack compiles its own",
    ),
    Rule(
        "scripts",
        ("bin/**",),
        "console scripts pip wrote for the build machine's Python; Lambda never runs them",
    ),
    Rule(
        "pyinstaller-hooks",
        ("**/_pyinstaller/**", "**/__pyinstaller/**"),
        "PyInstaller hooks; only PyInstaller reads them",
    ),
    Rule(
        "numpy-build-tools",
        (
            "numpy/f2py/**",
            "numpy/_core/include/**",
            "numpy/_core/lib/**",
            "numpy/_core/_simd.*",
            "numpy/random/_examples/**",
            "numpy/distutils/**",
        ),
        "numpy's Fortran wrapper generator, distutils, C API headers and SIMD test module; "
        "imported only by developers building extensions",
    ),
    Rule(
        "numpy-extras",
        ("numpy/random/**", "numpy/fft/**", "numpy/polynomial/**", "numpy/ma/**"),
        "numpy subpackages numpy loads only on first use and neither the handler nor LiteRT "
        "uses; keep them with --keep numpy-extras if your code does",
    ),
    Rule(
        "litert-npu",
        ("ai_edge_litert/vendors/**", "ai_edge_litert/aot/**", "ai_edge_litert/tools/**"),
        "LiteRT's NPU vendor plugins and ahead-of-time compiler; Lambda has no NPU",
    ),
    Rule(
        "pillow-unused",
        (
            *(f"PIL/{name}ImagePlugin.py" for name in PILLOW_UNUSED_PLUGINS),
            *(f"PIL/{name}.py" for name in PILLOW_UNUSED_MODULES),
            *(f"PIL/{name}.*.so" for name in PILLOW_UNUSED_EXTENSIONS),
        ),
        "Pillow's readers for formats the handler never opens (it opens only the raster formats "
        "in lambdapack_handler.imaging.RASTER_FORMATS; Pillow skips a plugin that is not there), and "
        "its drawing, fonts, colour management, GUI and screen-grab modules, which a classifier never "
        "imports; keep them with --keep pillow-unused if your code does",
    ),
    Rule(
        "litert-gpu",
        ("ai_edge_litert/libLiteRtWebGpuAccelerator.so",),
        "LiteRT's WebGPU accelerator (16.7 MB in 2.1): nothing links it, LiteRT loads it only when "
        "a GPU is asked for, and Lambda has no GPU",
    ),
    Rule(
        "litert-unimported",
        ("tqdm/**",),
        "tqdm, a progress-bar library ai-edge-litert requires but none of its modules (nor the "
        "handler) imports",
    ),
    Rule(
        "litert-tools",
        ("ai_edge_litert/schema_py_generated.py",),
        "flatbuffer schema bindings for model-editing tools; the interpreter never imports them",
    ),
    Rule(
        "pillow-avif",
        ("PIL/_avif.*",),
        "Pillow's AVIF codec (7.7 MB with libavif); keep it with --keep pillow-avif if your images are AVIF",
    ),
    Rule(
        "tensorflow-headers",
        ("tensorflow/include/**", "tensorflow/xla_aot_runtime_src/**"),
        "TensorFlow's C++ headers and XLA AOT sources (~95 MB); only a compiler building custom "
        "ops reads them",
    ),
    Rule(
        "libclang",
        ("clang/**",),
        "libclang's Python bindings and 61 MB library; TensorFlow depends on them for code "
        "generators, nothing imports them when serving a model",
    ),
    Rule(
        "pillow-fonts",
        ("PIL/_imagingft.*",),
        "Pillow's FreeType text rendering; a classifier draws no text",
    ),
)

GROUPS = tuple(rule.group for rule in RULES)
ORPHANS_GROUP = "orphaned-libraries"
ORPHANS_REASON = "vendored native libraries no remaining file needs"


@cache
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(glob_to_regex(pattern))


def glob_to_regex(pattern: str) -> str:
    """Translate a path glob to a regex: ``**`` spans folders, ``*``/``?`` do not."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "^" + "".join(out) + "$"


def matching_rule(path: str, rules: Iterable[Rule]) -> Rule | None:
    """The first rule whose pattern matches ``path`` (a POSIX path relative to the tree)."""
    if PurePosixPath(path).parts[0].endswith(".dist-info"):
        return None
    for rule in rules:
        if any(_pattern_regex(pattern).match(path) for pattern in rule.patterns):
            return rule
    return None


@dataclass
class PruneResult:
    removed: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # group -> files
    kept_groups: tuple[str, ...] = ()

    def add(self, group: str, path: str, size: int) -> None:
        self.removed.setdefault(group, []).append((path, size))

    @property
    def saved(self) -> int:
        return sum(size for files in self.removed.values() for _, size in files)

    def saved_by_path(self) -> dict[str, int]:
        return {path: size for files in self.removed.values() for path, size in files}

    def as_dict(self) -> dict[str, object]:
        reasons = {rule.group: rule.reason for rule in RULES}
        reasons[ORPHANS_GROUP] = ORPHANS_REASON
        return {
            "saved_bytes": self.saved,
            "kept_groups": list(self.kept_groups),
            "groups": [
                {
                    "group": group,
                    "reason": reasons.get(group, ""),
                    "files": len(files),
                    "bytes": sum(size for _, size in files),
                }
                for group, files in sorted(self.removed.items())
            ],
        }


def active_rules(keep: Sequence[str]) -> tuple[Rule, ...]:
    return tuple(rule for rule in RULES if rule.group not in keep)


def prune_tree(root: Path, keep: Sequence[str] = ()) -> PruneResult:
    """Delete what the active rules match under ``root``, then orphaned libraries."""
    result = PruneResult(kept_groups=tuple(keep))
    rules = active_rules(keep)
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        rule = matching_rule(rel, rules)
        if rule is not None:
            result.add(rule.group, rel, path.lstat().st_size)
            path.unlink()
    if ORPHANS_GROUP not in keep:
        for path in orphaned_libraries(root):
            result.add(ORPHANS_GROUP, path.relative_to(root).as_posix(), path.stat().st_size)
            path.unlink()
    _remove_empty_dirs(root)
    rewrite_records(root)
    return result


def rewrite_records(root: Path) -> None:
    """Keep only the ``RECORD`` rows of files that exist under ``root``."""
    for record in sorted(root.glob("*.dist-info/RECORD")):
        rows = list(csv.reader(io.StringIO(record.read_text(errors="replace"))))
        kept = [
            row
            for row in rows
            if row
            and (
                row[0] == f"{record.parent.name}/RECORD"
                or (not row[0].startswith(("/", "..")) and (root / row[0]).is_file())
            )
        ]
        if len(kept) != len(rows):
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(kept)
            record.write_text(out.getvalue())


def orphaned_libraries(root: Path) -> list[Path]:
    """Libraries in ``*.libs/`` folders that no other remaining ELF file needs."""
    files = elf_files(root)
    needs = {path: read_elf_file(path) for path in files}
    vendored = {p for p in files if p.parent.name.endswith(".libs")}
    by_name: dict[str, Path] = {}
    for path in vendored:
        by_name[path.name] = path
        if needs[path].soname:
            by_name[needs[path].soname] = path
    # Walk from everything that is not vendored: what it needs (transitively) stays.
    alive = {p for p in files if p not in vendored}
    frontier = list(alive)
    while frontier:
        for library in needs[frontier.pop()].needed:
            dependency = by_name.get(library)
            if dependency is not None and dependency not in alive:
                alive.add(dependency)
                frontier.append(dependency)
    return sorted(vendored - alive)


def _remove_empty_dirs(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
