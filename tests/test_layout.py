"""The shape of the code: imports only go down the layers, and no module imports another that imports it back.

Every import is counted, also those inside functions (a deferred import is still a dependency). The layers, from the
bottom: ``sovcloud.config`` and ``sovcloud.keys`` (files to model); ``sovcloud.allocation`` (the allocation rules,
over plain figures), ``sovcloud.render`` and ``sovcloud.apiserver`` (Helm rendering, the API-server check);
``components`` and ``policies`` (what a stack registers, and the pack that judges it); ``sovcloud.engine``
(synthesis, policy evaluation, figures, reports); ``sovcloud.commands`` and ``sovcloud.cli``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("sovcloud", "components", "policies", "stacks")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    files = {(_module_name(p)): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                submodules = {f"{node.module}.{a.name}" for a in node.names} & files.keys()
                # `from pkg import mod` depends on pkg.mod; on pkg itself only when it takes a name defined there
                deps |= submodules if len(submodules) == len(node.names) else {node.module, *submodules}
        graph[mod] = {d for d in deps if d in files and d != mod}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _layer(mod: str) -> int:
    for prefix, layer in (("sovcloud.cli", 5), ("sovcloud.commands", 4), ("stacks", 3), ("sovcloud.engine", 3),
                          ("components", 2), ("policies", 2), ("sovcloud.allocation", 1), ("sovcloud.render", 1),
                          ("sovcloud.apiserver", 1), ("sovcloud.showback", 1), ("sovcloud.prometheus", 1),
                          ("sovcloud.config", 0),
                          ("sovcloud.keys", 0), ("sovcloud", 0)):
        if mod == prefix or mod.startswith(prefix + "."):
            return layer
    raise AssertionError(f"{mod} is in no layer")


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_imports_only_go_down_the_layers() -> None:
    upward = sorted(f"{mod} imports {dep}" for mod, deps in _graph().items() for dep in deps
                    if _layer(dep) > _layer(mod))
    assert upward == []


def test_components_and_policies_know_nothing_of_each_other() -> None:
    graph = _graph()
    crossing = sorted(f"{m} imports {d}" for m, deps in graph.items() for d in deps
                      if m.split(".")[0] != d.split(".")[0] and {m.split(".")[0], d.split(".")[0]}
                      == {"components", "policies"})
    assert crossing == []


def test_commands_import_no_sibling_command_but_the_shared_one() -> None:
    graph = _graph()
    siblings = sorted(f"{m} imports {d}" for m, deps in graph.items() if m.startswith("sovcloud.commands.")
                      for d in deps if d.startswith("sovcloud.commands.") and d != "sovcloud.commands.common")
    assert siblings == []
