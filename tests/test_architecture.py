"""The package's shape: imports flow one way (no circle, type-only imports included), no module
reaches up to the package ``__init__``, and the scripts use only public names."""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "autoinit"
# scripts another engineer owns, checked once they are merged
SCRIPTS = sorted(p for p in (ROOT / "scripts").glob("*.py") if p.name != "benchmark.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, here: str, is_package: bool) -> Iterator[tuple[str, list[str]]]:
    """Every ``(module, names)`` a tree imports, ``if TYPE_CHECKING`` and function-level
    imports included; relative imports resolved against ``here``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = here.split(".") if is_package else here.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            yield module, [alias.name for alias in node.names]


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = graph.setdefault(name, set())
        for module, names in imported(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            for target in (module, *(f"{module}.{n}" for n in names)):
                if target in modules and target != name:
                    deps.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert len(graph) > 40 and "autoinit.config" in graph["autoinit.cli"]
    assert cycles(graph) == []


def test_a_circle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_the_package_init():
    reaching_up = [
        module_name(path) for path in PACKAGE.rglob("*.py") if path.name != "__init__.py" or
        path.parent != PACKAGE
        for module, _ in imported(ast.parse(path.read_text()), module_name(path),
                                  path.name == "__init__.py")
        if module == "autoinit"
    ]
    assert reaching_up == []


def public_names(module: str) -> set[str]:
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    return set(names)


def script_trees(path: Path) -> Iterator[ast.AST]:
    """The script, and the Python programs it holds as strings (run in child processes)."""
    tree = ast.parse(path.read_text())
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "autoinit" in node.value:
            try:
                yield ast.parse(node.value)
            except SyntaxError:
                continue


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_use_only_public_names(path):
    private = []
    for tree in script_trees(path):
        aliases: dict[str, str] = {}  # a name bound to an autoinit module -> the module
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases.update({a.asname or a.name: a.name for a in node.names
                                if a.name.startswith("autoinit")})
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("autoinit"):
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    if importlib.util.find_spec(node.module) and _is_module(submodule):
                        aliases[alias.asname or alias.name] = submodule
                    elif alias.name not in public_names(node.module):
                        private.append(f"from {node.module} import {alias.name}")
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases
                    and not _is_module(f"{aliases[node.value.id]}.{node.attr}")
                    and node.attr not in public_names(aliases[node.value.id])):
                private.append(f"{aliases[node.value.id]}.{node.attr}")
    assert private == []


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
