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


def _part(module: str) -> str:
    """The part of its app a module belongs to: its sub-package (`arena.board`), or itself
    when it sits at the app's top level (`arena.judgments`)."""
    return ".".join(module.split(".")[:2])


def part_cycles(graph: nx.DiGraph, app: str) -> list[list[str]]:
    """Circles between the parts of `app`, each part with the module imports that tie it to
    the next (`arena.board.snapshots -> arena.voting.fastpath`)."""
    parts = nx.DiGraph()
    for source, target in graph.edges:
        if _app(source) == app == _app(target) and _part(source) != _part(target):
            parts.add_edge(_part(source), _part(target))
            parts.edges[_part(source), _part(target)].setdefault("by", []).append(f"{source} -> {target}")
    return [
        sorted(f"{a} -> {b} ({', '.join(sorted(parts.edges[a, b]['by']))})" for a, b in parts.subgraph(circle).edges)
        for circle in nx.strongly_connected_components(parts)
        if len(circle) > 1
    ]


@pytest.mark.parametrize("app", APPS + (WIRING,))
def test_no_import_cycle_between_the_parts_of_an_app(app):
    # A part is a sub-package or a top-level module: no circle through its modules either,
    # so each part can be read knowing only the parts below it.
    assert part_cycles(import_graph(), app) == []


def test_a_cycle_between_parts_is_caught_though_no_module_cycle_is():
    # given: the board's snapshots read the vote loop's SQL, and matchmaking reads the
    # board's snapshots (the circle arena had, through four different modules)
    graph = nx.DiGraph([
        ("arena.board.snapshots", "arena.voting.fastpath"),
        ("arena.voting.matchmaking", "arena.board.snapshots"),
        ("arena.voting.matchmaking", "arena.models"),
        ("arena.board.snapshots", "arena.models"),
    ])  # fmt: skip
    assert [c for c in nx.strongly_connected_components(graph) if len(c) > 1] == []
    # then: the parts' circle is reported with the imports that make it
    assert part_cycles(graph, "arena") == [[
        "arena.board -> arena.voting (arena.board.snapshots -> arena.voting.fastpath)",
        "arena.voting -> arena.board (arena.voting.matchmaking -> arena.board.snapshots)",
    ]]  # fmt: skip
    assert part_cycles(graph, "annotation") == []


def signals_constructed() -> dict[str, int]:
    """Where `Signal(...)` is called in the apps and the wiring: module -> how many times."""
    found = {}
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Signal":
                found[module] = found.get(module, 0) + 1
    return found


def test_every_signal_is_defined_in_arena_events():
    # One place to read what the project announces and who may hear it.
    assert set(signals_constructed()) == {"arena.events"}


def modules_defining(name: str) -> list[str]:
    """The modules of ours that define a function or class `name` at their top level."""
    return sorted(
        module
        for module, path in MODULES.items()
        if any(
            isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name
            for node in ast.parse(path.read_text(), str(path)).body
        )
    )


def test_battle_for_means_one_thing():
    # A judgment's Battle (the board's row); a voter's LiveBattle is `live_battle_for`.
    assert modules_defining("battle_for") == ["arena.board.snapshots"]
    assert modules_defining("live_battle_for") == ["arena.live.battles"]


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
