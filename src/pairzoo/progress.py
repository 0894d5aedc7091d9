"""Progress of long loops: a text bar where stderr is a terminal, in rank 0's process; else none.

Only tqdm's plain text bar is used: in a Jupyter kernel (the book) `tqdm.auto` would make
widgets, whose warnings fail a build run with `-W`, and a kernel's stderr is no terminal.
"""

from __future__ import annotations

import sys
from typing import TextIO

from tqdm import tqdm

from pairzoo import distributed


def interactive(stream: TextIO | None = None) -> bool:
    """Whether progress shows on `stream` (stderr): it is a terminal, and this is rank 0."""
    return distributed.rank() == 0 and (stream or sys.stderr).isatty()


def bar(total: int, description: str, unit: str, stream: TextIO | None = None) -> tqdm:
    """A bar counting to `total` on `stream` (stderr); it writes nothing where not `interactive`."""
    stream = stream or sys.stderr
    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        file=stream,
        disable=not interactive(stream),
        dynamic_ncols=True,
    )
