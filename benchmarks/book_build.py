"""Time a clean ci build of the book; report each recipe's time and its share outside training.

Run `make benchmark`. It removes _build/ and artifacts/ci/, runs `make book`, then reads each
recipe's execution time from the book's jupyter-cache and its time per activity from
artifacts/ci/timings/, and prints a Markdown table.
"""

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]
PLUMBING = ("export", "parity", "stats", "manifest")


def main() -> int:
    shutil.rmtree(ROOT / "_build", ignore_errors=True)
    shutil.rmtree(ROOT / "artifacts" / "ci", ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(["make", "-C", str(ROOT), "book"], check=True, stdout=subprocess.DEVNULL)
    total = time.perf_counter() - start
    executed = {
        Path(record.uri).stem: record.data["execution_seconds"]
        for record in get_cache(ROOT / "_build" / ".jupyter_cache").list_cache_records()
    }
    print(f"clean `make book` (venv present): {total:.1f} s\n")
    print(
        "| recipe | executed s | train s | export s | parity s | stats s | manifest s "
        "| outside training |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for timing in sorted((ROOT / "artifacts" / "ci" / "timings").glob("*.json")):
        seconds = json.loads(timing.read_text())
        wall = executed[timing.stem]
        plumbing = sum(seconds.get(k, 0.0) for k in PLUMBING)
        cells = " | ".join(f"{seconds.get(k, 0.0):.2f}" for k in ("train", *PLUMBING))
        print(f"| {timing.stem} | {wall:.1f} | {cells} | {plumbing / wall:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
