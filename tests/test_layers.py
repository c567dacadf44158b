"""The package's shape (DESIGN.md "The shape of the code"): layers import only downwards and no
module imports itself back through others, lazy imports inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

import gpualloc

PACKAGE = Path(gpualloc.__file__).parent
# a layer may import its own layer and any layer of a lower rank
RANK = {"models": 0, "sources": 1, "optimizer": 1, "analysis": 2, "present": 3, "cli": 4}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every gpualloc module ``path`` imports, at any depth of the file."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("gpualloc")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("gpualloc"):
                continue
            for alias in node.names:  # ``from pkg import module`` names a module
                sub = f"{target}.{alias.name}"
                found.add(sub if _exists(sub) else target)
    return found


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def _graph() -> nx.DiGraph:
    g = nx.DiGraph()
    for path in PACKAGE.rglob("*.py"):
        mod = _module(path)
        g.add_node(mod)
        for target in _imports(path):
            if target != mod and not mod.startswith(target + "."):  # a package's own parents
                g.add_edge(mod, target)
    return g


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in RANK else None


def test_no_import_cycles() -> None:
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, f"import cycles: {cycles[:5]}"


@pytest.mark.parametrize("layer", sorted(RANK))
def test_layer_imports_only_downwards(layer: str) -> None:
    upward = [(a, b) for a, b in _graph().edges
              if _layer(a) == layer and _layer(b) is not None and RANK[_layer(b)] > RANK[layer]]
    assert not upward, f"{layer} imports upwards: {upward}"


def test_sources_and_optimizer_are_independent() -> None:
    g = _graph()
    crossing = [(a, b) for a, b in g.edges if {_layer(a), _layer(b)} == {"sources", "optimizer"}]
    assert not crossing, crossing


def test_models_import_no_solver() -> None:
    solvers = ("ortools", "pulp", "highspy")
    for path in (PACKAGE / "models").rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not any(n.split(".")[0] in solvers for n in names), path


def test_the_readme_entry_point_still_works() -> None:
    from gpualloc import models, optimizer

    assert callable(optimizer.solve) and callable(models.load_instance)
