"""The import graph of rag/: no module imports, directly or through others, a module importing it."""

from __future__ import annotations

import ast
from pathlib import Path

RAG = Path(__file__).resolve().parent.parent / "rag"


def module_name(path: Path) -> str:
    parts = path.relative_to(RAG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each rag module and the rag modules it imports, at the top or inside functions."""
    modules = {module_name(p): p for p in RAG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles: every path from a module back to itself, one per module it starts at."""
    found: list[list[str]] = []

    def walk(path: list[str], seen: set[str]) -> None:
        for nxt in sorted(graph[path[-1]]):
            if nxt == path[0]:
                found.append(path + [nxt])
            elif nxt not in seen and nxt > path[0]:
                seen.add(nxt)
                walk(path + [nxt], seen)

    for start in sorted(graph):
        walk([start], {start})
    return found


def test_the_graph_finds_a_known_import() -> None:
    graph = import_graph()
    assert "rag.cli" in graph["rag.eval.__main__"]
    assert "rag.eval.runner" in graph["rag.cli"]


def test_cycles_are_detected_in_a_graph_that_has_one() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b", "a"]]


def test_rag_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []
