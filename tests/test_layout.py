"""The package's wings: no module imports one on a higher floor, and no import loop."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "pairzoo"
# from the ground up; the package's other top-level modules (infrastructure) are floor 0, and
# its door (`pairzoo/__init__`) and the CLI the roof
FLOORS = ("data", "models", "train", "export", "keras", "record", "coding", "bench", "steps",
          "views", "archive")  # fmt: skip


def _imports() -> dict[str, set[str]]:
    """Per module (dotted), the pairzoo modules and packages it imports anywhere in its code."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pairzoo"):
                found |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("pairzoo")}
        graph[name] = found
    return {m: {_module(d, graph) for d in deps} - {m, "pairzoo"} for m, deps in graph.items()}


def _module(dotted: str, graph: dict) -> str:
    """The module `dotted` names (dropping an imported attribute's name)."""
    return dotted if dotted in graph else dotted.rsplit(".", 1)[0]


def _floor(module: str) -> int:
    parts = module.split(".")
    if module in ("pairzoo", "pairzoo.cli"):  # the package's door (`pairzoo.open`) and the CLI
        return len(FLOORS) + 1
    return FLOORS.index(parts[1]) + 1 if len(parts) > 2 and parts[1] in FLOORS else 0


def test_no_module_imports_one_on_a_higher_floor():
    graph = _imports()
    upward = sorted((m, d) for m, deps in graph.items() for d in deps if _floor(d) > _floor(m))
    assert upward == []
    assert {_floor(m) for m in graph} == set(range(len(FLOORS) + 2))  # every floor is lived in


def test_no_import_loop():
    graph = _imports()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for dep in graph.get(todo.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        return seen

    assert [m for m in graph if m in reach(m)] == []
