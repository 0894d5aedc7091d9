"""`pairzoo evaluate` of the example codec at three points over a whole test set, timed.

    python benchmarks/evaluate_codec.py [SET] [--workers 2]

Runs the command as a user types it (a fresh process, results into a temporary folder) and
prints its closing line, the wall time, and the rows and pairs per task.
"""

import argparse
import collections
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", nargs="?", default=str(ROOT / "artifacts" / "ci"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "pairzoo.cli", "evaluate"]
        command += ["pairzoo.bench.example_codec:TopKDelta", args.set, "-p", "keep=0.02,0.1,0.5"]
        command += ["-o", folder, "--workers", str(args.workers)]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        rows = json.loads((Path(folder) / "results.json").read_text())["rows"]
    print(done.stdout.splitlines()[-1] if done.stdout else done.stderr)
    print(f"wall time {seconds:.1f} s with --workers {args.workers} (exit {done.returncode})")
    tasks = collections.Counter(row["task"] for row in rows)
    print("rows per task:", dict(sorted(tasks.items())))


if __name__ == "__main__":
    main()
