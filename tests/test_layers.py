"""The package layering (ARCHITECTURE.md): packages in the order data flows, each importing only from those before it.

Walks every module of flaxgpt/ with ``ast`` (nothing is imported): an import of a later layer, an import cycle
between modules, or an import inside a function is a failure. The one exception is an optional heavy dependency
imported where it is used (torch, tensorflow_datasets, ...), marked by a comment on that line or the line above.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "flaxgpt"

# Layer order: a module may import from its own layer and those before it, never after.
LAYERS = ("config", "ingest", "data", "model", "train", "runs", "infer", "cai", "eval", "launch", "serve", "cli")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) < 2:
        raise AssertionError(f"{module}: flaxgpt/__init__.py must stay empty of imports")
    if parts[1] not in LAYERS:
        raise AssertionError(f"{module}: flaxgpt.{parts[1]} is in no layer; add it to LAYERS (and ARCHITECTURE.md)")
    return LAYERS.index(parts[1])


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The flaxgpt modules an import statement loads."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
            base = ".".join(pkg[: len(pkg) - node.level + 1] + ([base] if base else []))
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    found = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("flaxgpt"):
            found.append(name)
    return found


def _imports() -> tuple[dict[str, set[str]], list[str]]:
    """(module -> flaxgpt modules it imports, problems with imports inside functions)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    problems = []
    for module, path in MODULES.items():
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        nested: set[int] = set()
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                nested.update(id(n) for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = _targets(node, module)
            graph[module].update(t for t in targets if t != module)
            if id(node) in nested:
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                if targets:
                    problems.append(f"{where}: imports {targets[0]} inside a function")
                elif "#" not in lines[node.lineno - 1] and "#" not in lines[node.lineno - 2]:
                    problems.append(f"{where}: an import inside a function needs a comment saying why "
                                    "(an optional heavy dependency)")
    return graph, problems


def test_no_module_imports_a_later_layer():
    graph, _ = _imports()
    upward = [f"{m} ({LAYERS[_layer(m)]}) imports {t} ({LAYERS[_layer(t)]})"
              for m, targets in graph.items() for t in sorted(targets) if _layer(t) > _layer(m)]
    assert not upward, "\n".join(upward)


def test_imports_inside_functions_are_only_commented_optional_dependencies():
    _, problems = _imports()
    assert not problems, "\n".join(problems)


def test_there_are_no_import_cycles():
    graph, _ = _imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
