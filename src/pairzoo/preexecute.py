"""Execute the book's recipes into the jupyter-cache its build reads, in order, in parallel.

The build (`jupyter-book build`) executes notebooks one after another in alphabetical order.
Running them here first, as `make book` does, lets independent recipes share both cores and puts
the recipes that read everyone's output (`RUN_LAST`) after the others. The build then finds every
notebook in the cache, under the same key it computes itself (the code cells only).
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jupytext
import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

RUN_LAST = ("update_coding", "evaluate_codec", "catalog")


def recipes(root: Path) -> list[Path]:
    """The notebooks of the table of contents, in book order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text("utf-8"))
    files = [c["file"] for part in toc.get("parts", []) for c in part.get("chapters", [])]
    return [root / f"{f}.py" for f in files if f.startswith("notebooks/")]


def phases(paths: list[Path]) -> list[list[Path]]:
    """Independent recipes first (one phase), then each of `RUN_LAST` alone, in that order."""
    first = [p for p in paths if p.stem not in RUN_LAST]
    last = [[p] for name in RUN_LAST for p in paths if p.stem == name]
    return [first, *last] if first else last


def _read(path: Path) -> nbformat.NotebookNode:
    return jupytext.reads(path.read_text("utf-8"), fmt="py:percent")


def _execute(path: Path, timeout: int, threads: int) -> tuple[str, float, str | None]:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    notebook = _read(path)
    result = single_nb_execution(
        notebook, cwd=str(path.parent), allow_errors=False, timeout=timeout, meta_override=True
    )
    return nbformat.writes(notebook), result.time, result.exc_string if result.err else None


def run(root: Path, jobs: int) -> int:
    """Execute every uncached recipe; return the number that failed."""
    config = yaml.safe_load((root / "_config.yml").read_text("utf-8"))["execute"]
    cache = get_cache(str(root / config["cache"]))
    threads = max(1, (os.cpu_count() or 1) // jobs)
    timeout = int(config["timeout"])
    failed = 0
    for phase in phases(recipes(root)):
        todo = []
        for path in phase:
            try:
                cache.match_cache_notebook(_read(path))
                print(f"{path.stem}: cached", flush=True)
            except KeyError:
                todo.append(path.resolve())
        with ProcessPoolExecutor(max_workers=max(1, min(jobs, len(todo)))) as pool:
            runs = [(p, pool.submit(_execute, p, timeout, threads)) for p in todo]
            for path, future in runs:
                text, seconds, error = future.result()
                if error:
                    failed += 1
                    print(f"{path.stem}: FAILED after {seconds:.1f} s\n{error}", flush=True)
                    continue
                bundle = CacheBundleIn(
                    nbformat.reads(text, as_version=4),
                    str(path),
                    data={"execution_seconds": seconds},
                )
                cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
                print(f"{path.stem}: executed in {seconds:.1f} s", flush=True)
    return failed


def main(argv: list[str] | None = None) -> int:
    """Command line: `python -m pairzoo.preexecute [--jobs N] [ROOT]`."""
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("root", nargs="?", default=".", help="the book's folder")
    args.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parsed = args.parse_args(argv)
    return 1 if run(Path(parsed.root).resolve(), parsed.jobs) else 0


if __name__ == "__main__":
    sys.exit(main())
