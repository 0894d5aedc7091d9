"""Run a recipe as a script with parameters set, as papermill's `-p` does for notebooks.

The recipe's code runs unchanged, with one assignment per parameter added after its cell tagged
`parameters`; this works under `torchrun` as well as plain python. The assignments are inserted
into the parsed code, so every line of a traceback keeps the recipe's own line number.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path
from types import CodeType

from pairzoo.errors import PairzooError
from pairzoo.profiles import check_profile
from pairzoo.script_figures import PARAMETERS_CELL, running

NEXT_CELL = re.compile(r"^# %%", re.MULTILINE)


def parse_value(text: str) -> object:
    """A Python literal (`3`, `False`, `[1, 2]`) as itself; anything else as the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _checked(name: str, value: object, default: object) -> object:
    """`value` if it has the default's type (an int for a float parameter too), else an error."""
    fits = type(value) is type(default) or (type(default) is float and type(value) is int)
    if default is not None and not fits:
        kind = type(default).__name__
        article = "an" if kind[0] in "aeiou" else "a"
        raise PairzooError(
            f"parameter {name} must be {article} {kind} like its default {default!r}, not {value!r}"
        )
    if name == "profile":
        check_profile(value)
    return value


def _defaults(tree: ast.Module, start: int, end: int) -> dict[str, tuple[object, int]]:
    """The parameters cell's assignments: name → (default value, line of its last statement)."""
    found = {}
    for node in tree.body:
        if start <= node.lineno <= end and isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    try:
                        found[target.id] = (ast.literal_eval(node.value), node.end_lineno)
                    except ValueError:
                        found[target.id] = (None, node.end_lineno)
    return found


def with_parameters(source: str, parameters: Mapping[str, object], name: str) -> CodeType:
    """The recipe `source` compiled with `parameters` assigned at the end of its parameters cell.

    Unknown names and values of another type than the default's are refused before anything runs.
    """
    cell = PARAMETERS_CELL.search(source)
    if cell is None:
        raise PairzooError(f"{name} has no cell tagged parameters")
    following = NEXT_CELL.search(source, cell.end())
    first = source.count("\n", 0, cell.start()) + 1
    last = source.count("\n", 0, following.start()) if following else source.count("\n") + 1
    tree = ast.parse(source, name)
    defaults = _defaults(tree, first, last)
    unknown = sorted(set(parameters) - set(defaults))
    if unknown:
        raise PairzooError(f"{name} has no parameters {unknown}: known are {sorted(defaults)}")
    values = {key: _checked(key, value, defaults[key][0]) for key, value in parameters.items()}
    line = max((end for _, end in defaults.values()), default=first)
    position = next((i for i, node in enumerate(tree.body) if node.lineno > line), len(tree.body))
    for key, value in reversed(values.items()):
        assignment = ast.parse(f"{key} = {value!r}").body[0]
        tree.body.insert(position, ast.increment_lineno(assignment, line - 1))
    return compile(tree, name, "exec")


def run_recipe(path: Path, parameters: Mapping[str, object]) -> dict[str, object]:
    """Execute the recipe at `path` as `__main__`, with `parameters` in place of its defaults.

    Returns the recipe's global names as the run left them.
    """
    path = Path(path)
    if not path.is_file():
        raise PairzooError(f"no recipe at {path}")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PairzooError(f"{path} is not UTF-8 text: {exc}") from None
    code = with_parameters(source, parameters, str(path))
    namespace: dict[str, object] = {"__name__": "__main__", "__file__": str(path)}
    with running(path):
        exec(code, namespace)
    return namespace
