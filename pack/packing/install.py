"""The ``install`` stage: install the runtime's dependencies with pip, for the target.

Three layers, as in chalice's packager: ``PipRunner`` only executes pip;
``Installer`` builds the arguments, keeps a per-target wheelhouse and turns
pip's stderr into ``InstallError``; ``platform_args`` is the pure part.

The wheelhouse (``<cache>/wheels/<runtime>-<arch>``) makes warm rebuilds
fast and offline: the first attempt resolves from it alone (``--no-index``);
only when it cannot satisfy the requirements is ``pip download`` asked to
fetch what is missing from the package index.

Wheel tags lie, so the set pip resolved (``pip install --dry-run --report``) is
checked before anything is installed: every ELF file in every wheel, with
``compat.check``. When a release's files cannot load on the target (ai-edge-litert
2.3.0 needs GLIBCXX_3.4.30, python3.13 arm64 has 3.4.29) an older release of that
distribution is chosen instead (``choose_version``: pure, over a "problems of
this release" callable), each one skipped is reported, and the set is resolved
again with the choice pinned. A version the user pinned is never replaced: its
problem is the error. Only then are the exact wheels checked installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ..errors import CompatibilityError, InstallError, ToolError
from . import compat
from .elf import ElfInfo, read_zip_elves
from .target import Target, version_text


@dataclass
class PipResult:
    returncode: int
    stdout: str
    stderr: str


# pip before 24.2 checks Requires-Python against the interpreter running it, not
# --python-version, when installing for another platform: numpy for python3.12+
# then fails with "requires a different Python" (pypa/pip#12216). lambdapack
# depends on pip>=24.2 and refuses an older one before running it.
MIN_PIP = (24, 2)


class PipRunner:
    """Runs ``python -m pip`` and returns what it printed. Nothing else."""

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self._checked = False

    def check_version(self) -> None:
        """The pip this interpreter runs is new enough to install for another Python."""
        proc = subprocess.run(
            [self.python, "-m", "pip", "--version"], capture_output=True, text=True, check=False
        )
        found = _PIP_VERSION.match(proc.stdout)
        if proc.returncode != 0 or found is None:
            raise ToolError(
                f"{self.python} has no working pip",
                f"Install lambdapack with pip, or run: {self.python} -m ensurepip",
            )
        version = (int(found.group(1)), int(found.group(2)))
        if version < MIN_PIP:
            raise ToolError(
                f"pip {found.group(1)}.{found.group(2)} in {self.python} cannot install packages for "
                f"another Python version (needs pip {MIN_PIP[0]}.{MIN_PIP[1]} or newer)",
                f'Upgrade it: {self.python} -m pip install "pip>={MIN_PIP[0]}.{MIN_PIP[1]}"',
            )

    def run(self, args: Sequence[str]) -> PipResult:
        if not self._checked:
            self.check_version()
            self._checked = True
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
        try:
            proc = subprocess.run(
                [self.python, "-m", "pip", *args],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
        except OSError as exc:
            raise ToolError(f"could not run pip with {self.python}: {exc}") from exc
        return PipResult(proc.returncode, proc.stdout, proc.stderr)


def platform_args(target: Target) -> list[str]:
    """pip options that select wheels for ``target`` instead of this machine."""
    args: list[str] = []
    for tag in target.platform_tags():
        args += ["--platform", tag]
    args += [
        "--implementation",
        "cp",
        "--python-version",
        target.python,
        "--only-binary=:all:",
    ]
    return args


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str


@dataclass
class InstallResult:
    distributions: list[Distribution]
    downloaded: bool
    # One line per release passed over because its native files cannot load on the
    # target ("ai-edge-litert 2.3.0 skipped: needs GLIBCXX_3.4.30, python3.13 arm64 has 3.4.29").
    skipped: tuple[str, ...] = ()


_NO_MATCH = re.compile(r"No matching distribution found for (\S+)")
_PIP_VERSION = re.compile(r"pip (\d+)\.(\d+)")
_WRONG_PYTHON = re.compile(r"requires? a different Python")
_CONFLICT = re.compile(r"ResolutionImpossible|conflicting dependencies|Cannot install")


class Installer:
    def __init__(self, cache_dir: Path, runner: PipRunner | None = None) -> None:
        self.cache_dir = cache_dir
        self.runner = runner or PipRunner()

    def wheelhouse(self, target: Target) -> Path:
        return self.cache_dir / "wheels" / target.key()

    def install(
        self,
        requirements: Sequence[str],
        target: Target,
        dest: Path,
        find_links: Sequence[Path] = (),
        refresh: bool = False,
        shipped: Callable[[str], bool] = lambda path: True,
    ) -> InstallResult:
        """Install ``requirements`` for ``target`` into the empty folder ``dest``, with
        releases whose native files load on the target. ``shipped(path)`` says whether a
        file goes into the zip (the prune rules): only those are checked."""
        wheelhouse = self.wheelhouse(target)
        wheelhouse.mkdir(parents=True, exist_ok=True)
        session = _Session(self.runner, target, wheelhouse, tuple(find_links), refresh, shipped)
        fixed = fixed_names(requirements)
        chosen: dict[str, str] = {}  # distribution -> the older release chosen for it
        skipped: list[str] = []
        # Ends: every round without errors either finds nothing wrong or chooses a
        # release for a distribution not chosen before; one chosen before is an error.
        while True:
            pins = [f"{name}=={version}" for name, version in chosen.items()]
            plan = session.plan([*requirements, *pins])
            failing = session.failing(plan)
            if not failing:
                break
            errors = []
            pinned = False
            for wheel, findings in failing.items():
                key = canonicalize_name(wheel.name)
                reasons = compat.summary(findings)
                if key in fixed or wheel.direct:
                    errors.append(_pinned_message(wheel, findings, target))
                    pinned = True
                    continue
                if key in chosen:
                    errors.append(_unsettled_message(wheel, findings, target))
                    continue
                first = Skip(wheel.name, wheel.version, reasons)
                choice = session.choose(wheel, first, allowed_by(requirements, wheel.name), plan)
                skipped += choice.lines()
                if choice.version is None:
                    errors.append(_exhausted_message(wheel, choice, findings, target, requirements))
                else:
                    chosen[key] = choice.version
            if errors:
                raise CompatibilityError("\n".join(errors), _compat_hint(target, pinned))
        session.install(plan, dest)
        return InstallResult(installed_distributions(dest), session.downloaded, tuple(skipped))


# --- which release: pure logic -------------------------------------------------------

# At most this many older releases of one distribution are downloaded and read ...
MAX_CHECKS = 5
# ... among the newest this many older releases its requirements allow.
WINDOW = 16


@dataclass(frozen=True)
class Skip:
    """A release passed over, and why (``compat.summary`` of its files' findings)."""

    name: str
    version: str
    reasons: tuple[str, ...]

    def line(self) -> str:
        return f"{self.name} {self.version} skipped: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class VersionChoice:
    name: str
    version: str | None  # None: no release within the bounds loads on the target
    # Releases checked and found wanting, newest first (the release pip chose first included).
    skipped: tuple[Skip, ...]
    # Releases never downloaded: between two that fail, so taken to fail too.
    untried: tuple[str, ...] = ()
    # Releases newer than the choice left unchecked when MAX_CHECKS ran out.
    unchecked: tuple[str, ...] = ()
    # Allowed older releases beyond WINDOW, never considered.
    beyond: int = 0

    def lines(self) -> list[str]:
        lines = [skip.line() for skip in self.skipped]
        if self.untried:
            lines.append(
                f"{self.name} {', '.join(self.untried)} skipped without a download: between "
                "releases that fail the check"
            )
        if self.unchecked:
            lines.append(
                f"{self.name} {', '.join(self.unchecked)} skipped without a download: lambdapack "
                f"checks at most {MAX_CHECKS} older releases of a distribution"
            )
        return lines


def older_releases(
    versions: Sequence[str], than: str, allowed: Callable[[str], bool], window: int = WINDOW
) -> tuple[list[str], int]:
    """The releases older than ``than`` that ``allowed`` accepts, newest first, at most
    ``window`` of them; and how many more there are."""
    parsed = []
    for text in set(versions):
        try:
            version = Version(text)
        except InvalidVersion:
            continue
        if version < Version(than) and allowed(text):
            parsed.append((version, text))
    ordered = [text for _, text in sorted(parsed, reverse=True)]
    return ordered[:window], max(0, len(ordered) - window)


def choose_version(
    name: str,
    first: Skip,
    candidates: Sequence[str],
    problems_of: Callable[[str], Sequence[str]],
    max_checks: int = MAX_CHECKS,
) -> VersionChoice:
    """The newest of ``candidates`` (older releases, newest first) with no problems.

    The release right below the failing one is tried first (one bad release is the
    usual case); if it fails too, the oldest candidate is tried, and if that one loads
    the boundary between failing and loading releases is found by bisection — native
    requirements only grow with newer toolchains, so a release between two failing
    ones is taken to fail. At most ``max_checks`` releases are checked; the result,
    when there is one, has always been checked itself.
    """
    found: dict[int, tuple[str, ...]] = {}

    def loads(index: int) -> bool:
        found[index] = tuple(problems_of(candidates[index]))
        return not found[index]

    def result(index: int | None) -> VersionChoice:
        failed = sorted(i for i, problems in found.items() if problems)
        skips = (first, *(Skip(name, candidates[i], found[i]) for i in failed))
        # Unchecked releases below the last failing one lie between two failing ones;
        # those between it and the choice are unknown (the checks ran out).
        last_failed = failed[-1] if failed else -1
        end = index if index is not None else last_failed
        untried = tuple(candidates[i] for i in range(last_failed) if i not in found)
        unchecked = tuple(candidates[i] for i in range(last_failed + 1, end) if i not in found)
        version = None if index is None else candidates[index]
        return VersionChoice(name, version, skips, untried, unchecked)

    count = len(candidates)
    if count == 0 or max_checks < 1:
        return result(None)
    if loads(0):
        return result(0)
    if count == 1 or max_checks < 2:
        return result(None)
    if not loads(count - 1):
        return result(None)
    failing, passing = 0, count - 1
    while passing - failing > 1 and len(found) < max_checks:
        middle = (failing + passing) // 2
        if loads(middle):
            passing = middle
        else:
            failing = middle
    return result(passing)


def fixed_names(requirements: Sequence[str]) -> set[str]:
    """Distributions the requirements pin to one version (``==2.3.0``, ``===``) or name by
    URL or file: lambdapack never replaces those."""
    fixed = set()
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue  # a path or URL pip understands: pip's resolution names it "direct"
        exact = any(
            spec.operator == "===" or (spec.operator == "==" and "*" not in spec.version)
            for spec in requirement.specifier
        )
        if exact or requirement.url:
            fixed.add(canonicalize_name(requirement.name))
    return fixed


def allowed_by(requirements: Sequence[str], name: str) -> Callable[[str], bool]:
    """Whether a release of ``name`` satisfies every requirement that names it."""
    key = canonicalize_name(name)
    specifiers = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) == key:
            specifiers.append(requirement.specifier)
    return lambda version: all(spec.contains(version, prereleases=True) for spec in specifiers)


# In the wheelhouse: what each wheel's ELF files need, read once (tensorflow's take seconds).
ELF_CACHE = ".elf"
ELF_CACHE_FORMAT = 1


def cached_wheel_elves(wheel: Path, cache: Path) -> dict[str, ElfInfo]:
    """``wheel_elves``, remembered in ``cache/<wheel>.json`` against the wheel's size and mtime."""
    stat = wheel.stat()
    stamp = [ELF_CACHE_FORMAT, stat.st_size, stat.st_mtime_ns]
    entry = cache / f"{wheel.name}.json"
    try:
        data = json.loads(entry.read_text())
        if data["stamp"] == stamp:
            return {path: ElfInfo.from_dict(info) for path, info in data["files"].items()}
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not read yet, or written by another version: read the wheel
    found = wheel_elves(wheel)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=cache, suffix=".partial", delete=False) as handle:
            json.dump({"stamp": stamp, "files": {p: i.as_dict() for p, i in found.items()}}, handle)
        os.replace(handle.name, entry)
    except OSError:
        pass  # a read-only cache only costs the next run the same reading
    return found


def index_versions(output: str) -> list[str]:
    """The versions ``pip index versions`` printed (``Available versions: 2.3.0, 2.2.0``)."""
    for line in output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Available versions":
            return [version.strip() for version in value.split(",") if version.strip()]
    return []


def wheel_elves(wheel: Path) -> dict[str, ElfInfo]:
    """The ELF files a wheel holds, by the path they get when installed."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            found = read_zip_elves(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InstallError(f"{wheel} is not a readable wheel ({exc})") from exc
    return {_installed_path(member): info for member, info in found.items()}


def _installed_path(member: str) -> str:
    """``x-1.0.data/platlib/x/_a.so`` is installed as ``x/_a.so``."""
    parts = member.split("/")
    if len(parts) > 2 and parts[0].endswith(".data") and parts[1] in ("purelib", "platlib"):
        return "/".join(parts[2:])
    return member


# --- which release: pip's side -------------------------------------------------------


@dataclass(frozen=True)
class PlannedWheel:
    """One wheel of the set pip resolved, as ``pip install --report`` names it."""

    name: str
    version: str
    path: Path
    direct: bool = False  # the user named this file or URL


@dataclass
class _Session:
    """One install: resolutions, downloads and the ELF files read, for one target."""

    runner: PipRunner
    target: Target
    wheelhouse: Path
    find_links: tuple[Path, ...]
    refresh: bool
    shipped: Callable[[str], bool] = lambda path: True  # files pruning removes are never checked
    downloaded: bool = False
    elves: dict[Path, dict[str, ElfInfo]] = field(default_factory=dict)

    @property
    def common(self) -> list[str]:
        links = [self.wheelhouse, *self.find_links]
        return [*platform_args(self.target), *(arg for link in links for arg in ("--find-links", str(link)))]

    def plan(self, requirements: Sequence[str]) -> list[PlannedWheel]:
        """The wheels pip would install, from the wheelhouse, downloading what is missing."""
        if not self.refresh:
            found, _ = self.resolve(requirements)
            if found is not None:
                return found
        download = self.runner.run(["download", "--dest", str(self.wheelhouse), *self.common, *requirements])
        if download.returncode != 0:
            raise install_error(download.stderr, requirements, self.target)
        self.downloaded = True
        found, stderr = self.resolve(requirements)
        if found is None:
            raise install_error(stderr, requirements, self.target)
        return found

    def resolve(
        self, requirements: Sequence[str], deps: bool = True
    ) -> tuple[list[PlannedWheel] | None, str]:
        """pip's resolution from local wheels alone (``--dry-run --report``), or None."""
        with tempfile.TemporaryDirectory(prefix="lambdapack-resolve-") as work:
            report = Path(work) / "report.json"
            args = ["install", "--dry-run", "--quiet", "--no-index", "--report", str(report)]
            args += ["--target", str(Path(work) / "target"), *self.common]
            args += [] if deps else ["--no-deps"]
            result = self.runner.run([*args, *requirements])
            if result.returncode != 0 or not report.exists():
                return None, result.stderr
            return _planned(json.loads(report.read_text()), self.wheelhouse), result.stderr

    def failing(self, plan: Sequence[PlannedWheel]) -> dict[PlannedWheel, list[compat.Finding]]:
        """The wheels of ``plan`` with files that cannot load on the target, and why."""
        elves: dict[str, ElfInfo] = {}
        owner: dict[str, PlannedWheel] = {}
        for wheel in plan:
            for path, info in self.read(wheel.path).items():
                elves[path] = info
                owner[path] = wheel
        failing: dict[PlannedWheel, list[compat.Finding]] = {}
        for finding in compat.check(elves, self.target).findings:
            failing.setdefault(owner[finding.path], []).append(finding)
        return failing

    def read(self, wheel: Path) -> dict[str, ElfInfo]:
        """The ELF files of ``wheel`` that will ship (pruned ones never load, so never matter)."""
        if wheel not in self.elves:
            if wheel.parent.resolve() == self.wheelhouse.resolve():
                found = cached_wheel_elves(wheel, self.wheelhouse / ELF_CACHE)
            else:
                found = wheel_elves(wheel)
            self.elves[wheel] = {path: info for path, info in found.items() if self.shipped(path)}
        return self.elves[wheel]

    def choose(
        self,
        wheel: PlannedWheel,
        first: Skip,
        allowed: Callable[[str], bool],
        plan: Sequence[PlannedWheel],
    ) -> VersionChoice:
        """An older release of ``wheel``'s distribution that loads: from the releases the
        wheelhouse holds first, then from the package index's."""
        context: dict[str, ElfInfo] = {}
        for other in plan:
            if other is not wheel:
                context.update(self.read(other.path))

        def problems_of(version: str) -> tuple[str, ...]:
            path = self.fetch(wheel.name, version)
            if path is None:
                return (f"no wheel of it for {self.target.runtime} {self.target.arch}",)
            own = self.read(path)
            findings = compat.check({**context, **own}, self.target).findings
            return compat.summary(f for f in findings if f.path in own)

        choice = None
        for offline in (True, False) if not self.refresh else (False,):
            versions = self.versions(wheel.name, offline)
            candidates, beyond = older_releases(versions, wheel.version, allowed)
            if offline and not candidates:
                continue
            choice = choose_version(wheel.name, first, candidates, problems_of)
            choice = dataclasses.replace(choice, beyond=beyond)
            if choice.version is not None:
                break
        return choice or VersionChoice(wheel.name, None, (first,))

    def versions(self, name: str, offline: bool) -> list[str]:
        """The releases of ``name`` with a wheel for the target (``pip index versions``;
        its text, which every pip lambdapack accepts prints, where ``--json`` is newer)."""
        args = ["index", "versions", *self.common, *(["--no-index"] if offline else []), name]
        result = self.runner.run(args)
        if result.returncode != 0:
            return []
        return index_versions(result.stdout)

    def fetch(self, name: str, version: str) -> Path | None:
        """The wheel of one release for the target, downloaded into the wheelhouse if needed."""
        requirement = f"{name}=={version}"
        found, _ = self.resolve([requirement], deps=False)
        if found is None:
            download = self.runner.run(
                ["download", "--no-deps", "--dest", str(self.wheelhouse), *self.common, requirement]
            )
            if download.returncode != 0:
                return None
            self.downloaded = True
            found, _ = self.resolve([requirement], deps=False)
        return found[0].path if found else None

    def install(self, plan: Sequence[PlannedWheel], dest: Path) -> None:
        """Install exactly the releases that were checked: pinned by name and version from the
        wheelhouse, as resolved (a wheel installed by its path would get a direct_url.json naming
        this machine's folder, and the zip would differ from one build machine to another); a
        file or URL the user named stays as named."""
        args = ["install", "--no-index", "--no-deps", "--no-compile", "--target", str(dest), *self.common]
        wanted = [str(wheel.path) if wheel.direct else f"{wheel.name}=={wheel.version}" for wheel in plan]
        result = self.runner.run([*args, *wanted])
        if result.returncode != 0:
            raise install_error(result.stderr, [f"{w.name}=={w.version}" for w in plan], self.target)


def _planned(report: Mapping, wheelhouse: Path) -> list[PlannedWheel]:
    wheels = []
    for item in report.get("install", []):
        url = item["download_info"]["url"]
        parsed = urlparse(url)
        path = Path(url2pathname(unquote(parsed.path)))
        if parsed.scheme != "file":
            # A requirement naming a URL: pip download saved the file under its own name.
            path = wheelhouse / path.name
            if not path.is_file():
                raise InstallError(f"pip resolved {url}, which is not in the wheel cache {wheelhouse}")
        metadata = item["metadata"]
        wheels.append(PlannedWheel(metadata["name"], metadata["version"], path, bool(item.get("is_direct"))))
    return wheels


def _where(target: Target) -> str:
    return f"{target.runtime} {target.arch} ({target.os.name}, glibc {version_text(target.os.glibc)})"


def _file_lines(findings: Sequence[compat.Finding], limit: int = 10) -> list[str]:
    lines = [f"    {f.path}: {f.problem}" for f in findings[:limit]]
    if len(findings) > limit:
        lines.append(f"    … and {len(findings) - limit} more")
    return lines


def _pinned_message(wheel: PlannedWheel, findings: Sequence[compat.Finding], target: Target) -> str:
    how = "named by file or URL" if wheel.direct else "pinned"
    lines = [
        f"{wheel.name} {wheel.version} ({how}) cannot load on {_where(target)}: "
        f"{'; '.join(compat.summary(findings))}. lambdapack does not replace a release you {how.split()[0]}:",
        *_file_lines(findings),
    ]
    return "\n".join(lines)


def _unsettled_message(wheel: PlannedWheel, findings: Sequence[compat.Finding], target: Target) -> str:
    lines = [
        f"{wheel.name} {wheel.version}, chosen because newer releases cannot load, cannot load "
        f"either on {_where(target)} beside the other distributions:",
        *_file_lines(findings),
    ]
    return "\n".join(lines)


def _exhausted_message(
    wheel: PlannedWheel,
    choice: VersionChoice,
    findings: Sequence[compat.Finding],
    target: Target,
    requirements: Sequence[str],
) -> str:
    lines = [f"no release of {wheel.name} that pip may install loads on {_where(target)}; tried:"]
    lines += [f"  {skip.line()}" for skip in choice.skipped]
    if choice.untried:
        lines.append(f"  ({', '.join(choice.untried)} not downloaded: between releases that fail)")
    if choice.unchecked:
        lines.append(f"  ({', '.join(choice.unchecked)} not downloaded: the checks ran out)")
    if choice.beyond:
        oldest = choice.skipped[-1].version
        lines.append(
            f"  {choice.beyond} older releases were not tried "
            f"(to try them: --require '{wheel.name}<{oldest}')"
        )
    elif len(choice.skipped) == 1:
        named = [r for r in requirements if _names(r, wheel.name)]
        bound = f" allowed by {', '.join(named)}" if named else ""
        lines.append(f"  no older release{bound} has a wheel for {target.runtime} {target.arch}")
    lines.append(f"  files of {wheel.name} {wheel.version}:")
    lines += _file_lines(findings)
    return "\n".join(lines)


def _compat_hint(target: Target, pinned: bool) -> str:
    if pinned:
        hint = (
            "A wheel's platform tag promised more than its files deliver. Drop the pin (name the "
            "distribution without ==) and lambdapack installs the newest release whose files load, "
            "or drop the requirement."
        )
    else:
        hint = (
            "A wheel's platform tag promised more than its files deliver, for every release tried. "
            "Drop the requirement, or pin a release not listed above with --require."
        )
    return hint + target.newer_runtime_hint()


def _names(requirement: str, name: str) -> bool:
    try:
        return canonicalize_name(Requirement(requirement).name) == canonicalize_name(name)
    except InvalidRequirement:
        return False


def install_error(stderr: str, requirements: Sequence[str], target: Target) -> InstallError:
    """Turn pip's stderr into the message a user can act on."""
    where = f"{target.runtime} on {target.arch} ({target.os.name}, glibc {version_text(target.os.glibc)})"
    missing = _NO_MATCH.search(stderr)
    if missing:
        return InstallError(
            f"pip found no wheel of {missing.group(1)} that runs on {where}",
            hint=(
                "The package publishes no binary wheel for this Python version, architecture "
                "and glibc. Pin a version that does, or choose another target "
                "(--python/--arch). lambdapack never builds from source: a compiled sdist "
                "would not match Lambda's OS."
            ),
        )
    if _WRONG_PYTHON.search(stderr):
        return InstallError(
            f"pip checked a package's Python requirement against this machine's Python instead of {where}",
            hint=f"Upgrade pip to {MIN_PIP[0]}.{MIN_PIP[1]} or newer. pip said:\n" + _tail(stderr),
        )
    if _CONFLICT.search(stderr):
        return InstallError(
            f"pip could not resolve {' '.join(requirements)} for {where}",
            hint="Relax or change the conflicting pins. pip said:\n" + _tail(stderr),
        )
    return InstallError(
        f"pip failed to install {' '.join(requirements)} for {where}",
        hint="Check the network or the package index settings. pip said:\n" + _tail(stderr),
    )


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if not line.startswith("WARNING: Location")]
    return "\n".join(kept[-lines:])


def installed_distributions(folder: Path) -> list[Distribution]:
    """Name and version of every distribution installed in ``folder``."""
    found = []
    for metadata in sorted(folder.glob("*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(encoding="utf-8", errors="replace"))
        found.append(Distribution(headers.get("Name", "?"), headers.get("Version", "?")))
    return found
