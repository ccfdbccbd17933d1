"""The import graph of src/relic follows the layers of relic/__init__.py, README and DESIGN: every import
(at module level or inside a function) points down the stack or stays on its floor, and no two modules import
each other, directly or through others."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "relic"

# relic/__init__.py: camera, config, errors, fileio the floor; data, memory, models, world above it; runtime;
# training, eval, serve; the CLI on top. precision, video and options are floor utilities like fileio.
FLOORS = {
    "camera": 0, "config": 0, "errors": 0, "fileio": 0, "precision": 0, "video": 0, "options": 0,
    "data": 1, "memory": 1, "models": 1, "world": 1,
    "runtime": 2,
    "training": 3, "eval": 3, "serve": 3,
    "commands": 4, "cli": 4, "__init__": 4,
}


def _module(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module -> the relic modules it imports anywhere in its code."""
    files = {_module(p): p for p in SRC.rglob("*.py")}
    graph = {}
    for mod, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            deps.update(n for n in names if n in files and n != mod)
        graph[mod] = deps
    return graph


def _floor(mod: str) -> int:
    top = mod.split(".")[1] if "." in mod else "__init__"
    assert top in FLOORS, f"{mod}: which floor is relic.{top} on? (add it to FLOORS)"
    return FLOORS[top]


def test_every_import_points_down_or_stays_on_its_floor():
    up = sorted(f"{m} -> {d}" for m, deps in _imports().items() for d in deps if _floor(d) > _floor(m))
    assert not up, "imports running up the stack:\n" + "\n".join(up)


def test_no_import_circles():
    graph = _imports()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):                                  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(" <-> ".join(sorted(comp)))

    for v in graph:
        if v not in index:
            visit(v)
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_check_sees_function_level_imports():
    # module-level (dit -> weights) and function-level (teacher's evaluation -> probe) imports are both edges:
    # a circle closed by an import inside a function is still a circle
    graph = _imports()
    assert "relic.models.weights" in graph["relic.models.dit"]
    assert "relic.training.probe" in graph["relic.training.teacher"]
