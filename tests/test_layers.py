# SPDX-License-Identifier: Apache-2.0
"""The house rules of docs/architecture.md: imports point one way and never go round in a circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from conftest import ROOT

PACKAGES = ("yamlconfig", "readers", "calypso", "sam", "validator", "lab")

# Lowest first: a module may import its own layer and the layers below it, never one above.
LAYERS = (
    ("yamlconfig",),
    ("readers",),
    ("calypso",),
    ("sam",),
    ("validator.engine",),
    ("validator.journal",),
    ("validator.app",),
    ("validator.office",),
    ("validator.bench",),
    ("validator.cli", "validator.__main__"),
    ("lab",),
)

# validator bench --pcsc-taps starts the lab's private pcscd, and make bench-ingest the lab's
# private PostgreSQL (without --db), imported when that part runs.
ACCEPTED = {("validator.bench.pcsc", "lab.pcscd"), ("validator.bench.ingest", "lab.postgres")}

MAX_MODULES_PER_FOLDER = 12


def module_files() -> dict[str, Path]:
    """Every module of the project's packages by dotted name."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(path: Path) -> Iterator[str]:
    """Dotted names a module imports, type-only ones (``if TYPE_CHECKING:``) included.

    A type-only import still ties two modules together: a cycle through one is a cycle.
    """
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    modules = module_files()
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def layer_of(module: str) -> int:
    """The index of the layer a module belongs to."""
    if module == "validator":  # the package's own (empty) __init__
        return len(LAYERS) - 2
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} belongs to no layer of docs/architecture.md")


def test_imports_point_down_the_layers() -> None:
    """No module imports from a layer above its own (docs/architecture.md, import rules)."""
    graph = import_graph()
    upward = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(module) and (module, target) not in ACCEPTED
    )
    assert upward == []


def test_no_import_cycle() -> None:
    """The import graph has no cycle (Tarjan's strongly connected components)."""
    graph = import_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []


def test_folders_stay_small() -> None:
    """No package folder holds more than twelve modules, its ``__init__`` counted."""
    crowded = {}
    for package in PACKAGES:
        for folder in [ROOT / package, *(ROOT / package).rglob("*/")]:
            if folder.name == "__pycache__" or not folder.is_dir():
                continue
            count = sum(1 for _ in folder.glob("*.py"))
            if count > MAX_MODULES_PER_FOLDER:
                crowded[str(folder.relative_to(ROOT))] = count
    assert crowded == {}


def test_the_rules_see_the_whole_house() -> None:
    """The checks above read every package: a layer table that missed one would pass vacuously."""
    graph = import_graph()
    assert {module.split(".")[0] for module in graph} == set(PACKAGES)
    assert len(graph) > 150
    assert sum(len(targets) for targets in graph.values()) > 500
    for module in graph:
        layer_of(module)


# The layout file map describes files, not records: inspect may use it.
FILE_MAP_TYPES = {"FileEntry"}
LAYOUT_PACKAGE = "calypso.layouts"
LAYOUT_READERS = ("calypso.layouts", "validator.engine.layouts")


def layout_record_types() -> dict[str, set[str]]:
    """Layout module -> the record types it defines (its classes but the file map's)."""
    types = {}
    for module, path in module_files().items():
        if module.startswith(LAYOUT_PACKAGE + "."):
            tree = ast.parse(path.read_text())
            types[module] = {
                node.name
                for node in tree.body
                if isinstance(node, ast.ClassDef) and node.name not in FILE_MAP_TYPES
            }
    return types


def record_type_uses(path: Path, types: dict[str, set[str]]) -> Iterator[str]:
    """The layout record types a module names, imported or through an imported layout module."""
    aliases: dict[str, str] = {}  # local name -> layout module
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name in types.get(node.module, ()):
                    yield f"{node.module}.{alias.name}"
                submodule = f"{node.module}.{alias.name}"
                if submodule in types:
                    aliases[alias.asname or alias.name] = submodule
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in types and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr in types[aliases[node.value.id]]
        ):
            yield f"{aliases[node.value.id]}.{node.attr}"


def test_layout_record_types_stay_in_the_layouts() -> None:
    """No module but calypso/layouts and the layout adapters names a layout's record type: the
    fare rules and everything above them see the ticketing model only (issue 18)."""
    types = layout_record_types()
    assert {"Event", "Contract", "Environment"} <= types["calypso.layouts.demo"]
    assert {"IntercodeContract", "IntercodeEvent"} <= types["calypso.layouts.intercode"]
    leaks = sorted(
        f"{module}: {name}"
        for module, path in module_files().items()
        if not module.startswith(LAYOUT_READERS)
        for name in record_type_uses(path, types)
    )
    assert leaks == []


def test_the_record_type_check_sees_a_leak(tmp_path: Path) -> None:
    """The check above finds a record type imported by name and one reached through its
    module, so that it cannot pass vacuously."""
    types = layout_record_types()
    source = tmp_path / "leaky.py"
    source.write_text(
        "from calypso.layouts.demo import Event\n"
        "from calypso.layouts import intercode as ic\n"
        "x = ic.IntercodeContract\ny = ic.SFI_EVENTS\n"
    )
    assert sorted(record_type_uses(source, types)) == [
        "calypso.layouts.demo.Event",
        "calypso.layouts.intercode.IntercodeContract",
    ]
