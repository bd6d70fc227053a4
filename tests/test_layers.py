"""Layers import only downward: every import of the project's packages (at module level, inside
functions, under TYPE_CHECKING alike) is read from the source, and the graph has no circle."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("contract", "judge", "mock_server", "conformance", "load", "proxy", "sandbox_mcp")
TOP = ("proxy", "sandbox_mcp")  # the top layer: they use the sandbox and the suites


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Project modules `path` imports (`from . import x` resolved to `pkg.x` when x is a module)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {m for m in found if m.split(".")[0] in PACKAGES}


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        targets = {t for t in _imports(path) if t in modules and t != mod}
        # `from . import x` names the enclosing package too; it is already being imported
        graph[mod] = {t for t in targets if not mod.startswith(t + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_contract_imports_nothing_of_the_project_and_the_suites_not_the_mock_server() -> None:
    graph = _graph()
    for mod, targets in graph.items():
        top = mod.split(".")[0]
        others = {t.split(".")[0] for t in targets} - {top}
        if top == "contract":
            assert not others, f"{mod} imports {sorted(targets)}"
        if top == "judge":  # one judge for the sandbox, both suites and the proxy: it sits below them
            assert others <= {"contract"}, f"{mod} imports {sorted(targets)}"
        if top in ("conformance", "load"):
            assert "mock_server" not in others, f"{mod} reads the spec through the mock server"
        if top != "proxy":  # the top layer: it uses the sandbox and the conformance suite
            assert "proxy" not in others, f"{mod} imports the proxy"
        if top not in TOP:  # `mock-server mcp` is imported by name (mock_server/commands.py)
            assert "sandbox_mcp" not in others, f"{mod} imports the MCP server"


def test_the_checker_sees_a_planted_circle(tmp_path: Path) -> None:
    graph = _graph()
    graph["mock_server.store"] = {*graph["mock_server.store"], "mock_server.sandbox"}
    cycle = _cycle(graph)
    assert cycle is not None and "mock_server.store" in cycle


def test_only_the_judge_and_the_contract_import_jsonschema() -> None:
    """JSON Schema is judged one way: every other module asks `judge.schema`."""
    importers = sorted(
        _module_name(p)
        for pkg in (*PACKAGES, "bench")
        for p in (ROOT / pkg).rglob("*.py")
        if any(m == "jsonschema" or m.startswith("jsonschema.") for m in _all_imports(p))
    )
    assert all(m.split(".")[0] in ("judge", "contract") for m in importers), importers
    assert "judge.schema" in importers  # the test sees an import where there is one


def _all_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
    return found
