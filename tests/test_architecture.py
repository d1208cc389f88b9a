"""The package's shape, read from its own source: sub-packages for the stages of
the work, no import cycles, and nothing below the CLI importing it. Every import
counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

from .conftest import ROOT

SOURCE = ROOT / "pack"  # installed as the package lambdapack


def module_name(path: Path) -> str:
    parts = ["lambdapack", *path.relative_to(SOURCE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The lambdapack modules ``path`` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            # "from . import x" imports the module x when there is one.
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return {m for m in found if m == "lambdapack" or m.startswith("lambdapack.")}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in SOURCE.rglob("*.py")}
    return {
        name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()
    }


def test_the_package_has_sub_packages_for_its_stages():
    packages = {p.parent.name for p in SOURCE.glob("*/__init__.py")}
    assert {"packing", "aws", "local", "cli"} <= packages


def test_no_import_cycles():
    edges = graph()
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in edges[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == []


def test_nothing_below_the_cli_imports_it_and_packing_makes_no_aws_call():
    edges = graph()
    for module, imported in edges.items():
        if not module.startswith(("lambdapack.cli", "lambdapack.__main__")):  # __main__ runs the CLI
            assert not any(m.startswith("lambdapack.cli") for m in imported), module
        if module.startswith("lambdapack.packing"):
            assert not any(m.startswith(("lambdapack.aws", "lambdapack.local")) for m in imported), module


def test_scripts_use_the_library_not_the_cli():
    for script in (ROOT / "scripts").glob("*.py"):
        tree = ast.parse(script.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("lambdapack.cli"), script.name


def test_the_cycle_check_finds_a_cycle(tmp_path, monkeypatch):
    """The checks above can fail: a planted cycle is found."""
    fake = tmp_path / "pack"
    (fake / "a").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "a" / "__init__.py").write_text("from . import b\n")
    (fake / "a" / "b.py").write_text("from ..a import c\n")
    (fake / "a" / "c.py").write_text("from . import b\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["SOURCE"]), "SOURCE", fake)
    assert graph()["lambdapack.a.b"] == {"lambdapack.a", "lambdapack.a.c"}
    try:
        test_no_import_cycles()
    except AssertionError:
        return
    raise AssertionError("a planted cycle was not found")


def test_every_module_of_the_installed_package_imports():
    """Run against the installed lambdapack: a module that cannot import fails here in
    seconds instead of in a functional test's subprocess."""
    import importlib

    import lambdapack

    installed = Path(lambdapack.__file__).parent
    names = sorted(
        ".".join(["lambdapack", *p.relative_to(installed).with_suffix("").parts]).removesuffix(".__init__")
        for p in installed.rglob("*.py")
        # The handler runs in the zip, not here; __main__ runs the CLI when imported.
        if p.relative_to(installed).parts[0] != "handler" and p.name != "__main__.py"
    )
    assert len(names) > 30
    for name in names:
        importlib.import_module(name)


def test_the_cli_and_pack_need_no_boto3():
    """The Docker builder runs `lambdapack pack` in an environment without boto3: the CLI
    imports AWS and the local runtime only inside the commands that use them."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['boto3'] = sys.modules['botocore'] = None\n"
        "from lambdapack.cli import main\n"
        "main(['pack', '--help'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Usage: lambdapack pack" in proc.stdout
