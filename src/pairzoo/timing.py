"""Wall-clock seconds per activity (train, export, parity, stats, manifest) in this process."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

SECONDS: defaultdict[str, float] = defaultdict(float)


@contextmanager
def timed(activity: str) -> Iterator[None]:
    """Add the block's wall-clock time to `activity`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        SECONDS[activity] += time.perf_counter() - start
