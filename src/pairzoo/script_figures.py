"""A recipe run as a script keeps its figures: at exit each is saved as PNG in the output folder.

In a kernel (the book, papermill) the figures are the cells' outputs and nothing is saved.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pairzoo.atomic import atomic_path

FIGURES = "figures"
# A recipe is a py:percent file with one cell tagged `parameters`.
PARAMETERS_CELL = re.compile(r"^# %%.*tags=\[[^\]]*\"parameters\"", re.MULTILINE)
_registered: set[Path] = set()
_running: list[Path] = []  # the recipe `pairzoo run` executes, which is not `__main__`'s file


@contextmanager
def running(path: Path) -> Iterator[None]:
    """Within the block, this process runs the recipe at `path` as a script (`pairzoo run`)."""
    _running.append(Path(path))
    try:
        yield
    finally:
        _running.pop()


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel, whose figures are displayed as outputs."""
    if "ipykernel" not in sys.modules:
        return False
    get_ipython = getattr(sys.modules.get("IPython"), "get_ipython", None)  # loaded by the kernel
    shell = get_ipython() if get_ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def recipe_script() -> Path | None:
    """The recipe this process runs as a script; None in a kernel or for any other program."""
    if in_kernel():
        return None
    if _running:
        return _running[-1]
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main is None or not main.endswith(".py") or not Path(main).is_file():
        return None
    return Path(main) if PARAMETERS_CELL.search(Path(main).read_text(encoding="utf-8")) else None


def save_at_exit(folder: Path) -> None:
    """If a recipe runs as a script (rank 0), save its open figures under `folder` when it exits."""
    script = recipe_script()
    folder = Path(folder).resolve()
    if script is None or os.environ.get("RANK", "0") != "0" or folder in _registered:
        return
    import matplotlib.pyplot  # noqa: F401  # its exit handler (closing figures) must run after ours

    _registered.add(folder)
    atexit.register(save_figures, folder / FIGURES / script.stem)


def save_figures(target: Path) -> list[Path]:
    """Save every open figure as `target`/<label or number>.png, atomically; drop older PNGs."""
    import matplotlib.pyplot as plt

    saved: list[Path] = []
    for number in plt.get_fignums():
        figure = plt.figure(number)
        name = re.sub(r"[^\w.-]+", "-", figure.get_label()).strip(".-") or str(number)
        path = target / f"{name}.png"
        if path in saved:  # two figures with one label
            path = target / f"{name}-{number}.png"
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png")
        saved.append(path)
    if saved:
        for old in set(target.glob("*.png")) - set(saved):
            old.unlink()
        print(f"{len(saved)} figure{'s' * (len(saved) != 1)} saved in {target}")
    return saved
