"""The package's imports follow the layer order of docs/ARCHITECTURE.md, without cycles.

A module may import its own layer and the layers below it; the units listed as "Anywhere" may
be imported from every layer and import only each other.

The order is read from the document itself (the numbered list under "## Layers"), so the test
and the document cannot disagree. Every import of every module of ``tusimple_duc`` (module level
and inside functions) is read with ``ast``.
"""
from __future__ import annotations

import ast
import os
import re
from typing import Dict, List, Set, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "tusimple_duc")
EXPERIMENTS = os.path.join(ROOT, "experiments")
ARCHITECTURE = os.path.join(ROOT, "docs", "ARCHITECTURE.md")


def documented_layers() -> Tuple[Dict[str, int], Set[str]]:
    """``({unit: layer number}, {units importable from anywhere})`` from ARCHITECTURE.md.

    A unit is a subpackage (``models``), a top-level module (``config``) or a module named in
    full (``io.atomic``), written in backticks before the line's first colon.
    """
    with open(ARCHITECTURE, encoding="utf-8") as f:
        section = f.read().split("## Layers", 1)[1].split("\n## ", 1)[0]
    layers: Dict[str, int] = {}
    anywhere: Set[str] = set()
    for line in section.splitlines():
        numbered = re.match(r"^(\d+)\. (.*)$", line.strip())
        if numbered:
            for unit in re.findall(r"`([a-z_.]+)`", numbered.group(2).split(":")[0]):
                layers[unit] = int(numbered.group(1))
        elif line.strip().startswith("Anywhere:"):
            anywhere.update(re.findall(r"`([a-z_.]+)`", line))
    return layers, anywhere


def python_files(top: str) -> List[str]:
    return sorted(os.path.join(folder, name) for folder, _, names in os.walk(top)
                  for name in names if name.endswith(".py"))


def package_files() -> List[str]:
    return python_files(PACKAGE)


def module_name(path: str) -> str:
    """``tusimple_duc/models/resnet.py`` -> ``tusimple_duc.models.resnet`` (a package: its folder)."""
    dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted


def imports_of(path: str, modules: Set[str]) -> List[Tuple[str, int]]:
    """Every package module that ``path`` imports, with the line of the import.

    ``from tusimple_duc.io import atomic`` and ``from tusimple_duc.io.atomic import atomic_open``
    both import the module ``tusimple_duc.io.atomic``.
    """
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import (the package imports absolutely)"
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.append((submodule if submodule in modules else node.module, node.lineno))
    return [(name, line) for name, line in found if name in modules]


def edges() -> List[Tuple[str, str, int]]:
    """``(importing module, imported module, line)`` for every import inside the package.

    The package's own ``__init__`` (it only sets up the runtime) is neither source nor target.
    """
    modules = {module_name(path) for path in package_files()}
    return [(module_name(path), target, line) for path in package_files()
            for target, line in imports_of(path, modules)
            if "tusimple_duc" not in (module_name(path), target) and target != module_name(path)]


def unit_of(module: str, layers: Dict[str, int], anywhere: Set[str]) -> str:
    """The most specific documented unit that ``module`` (``tusimple_duc.x.y``) belongs to."""
    parts = module.split(".")[1:]
    for length in range(len(parts), 0, -1):
        candidate = ".".join(parts[:length])
        if candidate in layers or candidate in anywhere:
            return candidate
    raise AssertionError(f"{module}: in no layer of docs/ARCHITECTURE.md")


def test_every_module_has_a_layer():
    layers, anywhere = documented_layers()
    assert len(layers) >= 8, f"docs/ARCHITECTURE.md '## Layers' lists only {sorted(layers)}"
    for path in package_files():
        if module_name(path) != "tusimple_duc":
            unit_of(module_name(path), layers, anywhere)


def test_imports_follow_the_documented_order():
    layers, anywhere = documented_layers()
    wrong = []
    for source, target, line in edges():
        source_unit, target_unit = unit_of(source, layers, anywhere), unit_of(target, layers, anywhere)
        if target_unit in anywhere or source_unit == target_unit:
            continue
        if source_unit in anywhere or layers[target_unit] > layers[source_unit]:
            wrong.append(f"{source}:{line} imports {target} ({source_unit} -> {target_unit})")
    assert not wrong, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(sorted(set(wrong)))


def test_no_import_cycles():
    graph: Dict[str, Set[str]] = {}
    for source, target, _ in edges():
        graph.setdefault(source, set()).add(target)
    colour: Dict[str, str] = {}
    cycles: List[str] = []

    def visit(node: str, trail: List[str]) -> None:
        colour[node] = "open"
        for following in sorted(graph.get(node, ())):
            if colour.get(following) == "open":
                cycles.append(" -> ".join(trail[trail.index(following):] + [following]))
            elif following not in colour:
                visit(following, trail + [following])
        colour[node] = "done"

    for node in sorted(graph):
        if node not in colour:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def imported_names(path: str) -> List[Tuple[str, str, int]]:
    """``(module, name, line)`` of every ``from module import name`` in ``path``."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    return [(node.module or "", alias.name, node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) for alias in node.names]


def test_the_library_never_imports_the_experiments():
    wrong = [f"{module_name(path)}:{line} imports {module}" for path in package_files()
             for module, _, line in imported_names(path) if module.split(".")[0] == "experiments"]
    wrong += [f"{module_name(path)}:{line} imports {target}" for path in package_files()
              for target, line in imports_of(path, {"experiments"})]
    assert not wrong, "\n".join(wrong)


def test_experiments_import_only_public_names_of_the_library():
    assert python_files(EXPERIMENTS), "experiments/ is empty"
    wrong = [f"{path}:{line} imports {module}.{name}" for path in python_files(EXPERIMENTS)
             for module, name, line in imported_names(path)
             if module.split(".")[0] == "tusimple_duc" and name.startswith("_")]
    assert not wrong, "private names of the library used by experiments:\n" + "\n".join(wrong)
