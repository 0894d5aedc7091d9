"""Run a recipe as a script with parameters set, as papermill's `-p` does for notebooks.

The recipe's code runs unchanged, with one assignment per parameter added after its cell tagged
`parameters`; this works under `torchrun` as well as plain python.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

from pairzoo.errors import PairzooError

PARAMETERS_CELL = re.compile(r"^# %%.*tags=\[[^\]]*\"parameters\"", re.MULTILINE)
NEXT_CELL = re.compile(r"^# %%", re.MULTILINE)


def parse_value(text: str) -> object:
    """A Python literal (`3`, `False`, `[1, 2]`) as itself; anything else as the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def with_parameters(source: str, parameters: Mapping[str, object], name: str) -> str:
    """The recipe `source` with `parameters` assigned at the end of its parameters cell."""
    cell = PARAMETERS_CELL.search(source)
    if cell is None:
        raise PairzooError(f"{name} has no cell tagged parameters")
    following = NEXT_CELL.search(source, cell.end())
    end = following.start() if following else len(source)
    known = {
        target.id
        for node in ast.parse(source[cell.start() : end]).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise PairzooError(f"{name} has no parameters {unknown}: known are {sorted(known)}")
    lines = "".join(f"{key} = {value!r}\n" for key, value in parameters.items())
    return f"{source[:end]}{lines}\n{source[end:]}"


def run_recipe(path: Path, parameters: Mapping[str, object]) -> None:
    """Execute the recipe at `path` as `__main__`, with `parameters` in place of its defaults."""
    path = Path(path)
    if not path.is_file():
        raise PairzooError(f"no recipe at {path}")
    code = with_parameters(path.read_text(encoding="utf-8"), parameters, path.name)
    exec(compile(code, str(path), "exec"), {"__name__": "__main__", "__file__": str(path)})
