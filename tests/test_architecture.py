"""The layout holds: no import cycle inside an app, no app imports one above it, and the
rating math knows no Django.

Every import counts, at module level or inside a function: an import inside a function
still ties the two modules together, it only hides the tie from the reader.
"""

import ast
import functools
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Dependencies point one way: each app may import those before it, never those after.
APPS = ("arena", "annotation", "training", "routing")
# `config` only wires settings, urls and the Celery app: no app imports it.
WIRING = "config"
FRAMEWORKS = {"django", "rest_framework", "celery"}

def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    found = {}
    for top in (*APPS, WIRING):
        for path in (ROOT / top).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str) -> str | None:
    """The module of ours that `name` loads: itself, or the nearest package above it
    (`from arena.voting.actions import Vote` names a function, not a module)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _type_checking_only(tree: ast.AST) -> set[ast.AST]:
    """The import nodes under `if TYPE_CHECKING:`: names for annotations, never loaded."""
    return {
        node
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }


@functools.cache
def imports_of(module: str) -> set[str]:
    """Every module of ours that `module` imports when it runs, anywhere in its code (not
    the names imported for annotations only, under `if TYPE_CHECKING:`)."""
    path = MODULES[module]
    targets = set()
    tree = ast.parse(path.read_text(), str(path))
    annotations_only = _type_checking_only(tree)
    for node in ast.walk(tree):
        if node in annotations_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, path.name == "__init__.py")
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        targets.update(known for name in names if (known := _known(name)) and known != module)
    return targets


def external_imports_of(path: Path) -> set[str]:
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            tops.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            tops.add(node.module.split(".")[0])
    return tops


@functools.cache
def import_graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(MODULES)
    for module in MODULES:
        graph.add_edges_from((module, target) for target in imports_of(module))
    return graph


def _app(module: str) -> str:
    return module.split(".")[0]


@pytest.mark.parametrize("app", APPS + (WIRING,))
def test_no_import_cycle_inside_an_app(app):
    graph = import_graph()
    inside = nx.DiGraph(graph.subgraph(m for m in graph if _app(m) == app))
    cycles = [sorted(c) for c in nx.strongly_connected_components(inside) if len(c) > 1]
    assert cycles == [], f"modules of {app} that import each other in a circle: {cycles}"


def test_no_app_imports_one_above_it_or_the_wiring():
    rank = {app: i for i, app in enumerate(APPS)}
    upward = [
        (source, target)
        for source, target in import_graph().edges
        if _app(source) in rank
        and (_app(target) == WIRING or rank.get(_app(target), -1) > rank[_app(source)])
    ]
    assert upward == []


def test_rating_math_imports_no_django():
    ratings = [m for m in MODULES if m == "arena.ratings" or m.startswith("arena.ratings.")]
    leaks = {
        module: sorted(
            {top for top in external_imports_of(MODULES[module]) if top in FRAMEWORKS}
            | {target for target in imports_of(module) if target not in ratings}
        )
        for module in ratings
    }
    assert {module: found for module, found in leaks.items() if found} == {}


def test_the_graph_sees_function_level_imports():
    # given: routing's tasks import their actions inside functions, and a training run queues
    # output generation through an import inside a function
    # then: both edges are in the graph, so a cycle through them would be caught
    assert "routing.actions" in imports_of("routing.tasks")
    assert "arena.tasks" in imports_of("training.actions")


def test_imports_for_annotations_only_close_no_cycle(tmp_path, monkeypatch):
    # given: a module that imports another only under `if TYPE_CHECKING:`
    source = tmp_path / "pkg"
    source.mkdir()
    (source / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.other import X\nimport pkg.plain\n")
    monkeypatch.setitem(MODULES, "pkg.typed", source / "typed.py")
    monkeypatch.setitem(MODULES, "pkg.other", source / "other.py")
    monkeypatch.setitem(MODULES, "pkg.plain", source / "plain.py")
    imports_of.cache_clear()
    try:
        # then: the run-time import counts, the annotation-only one does not
        assert imports_of("pkg.typed") == {"pkg.plain"}
    finally:
        imports_of.cache_clear()
