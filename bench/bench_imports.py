"""What importing the generators costs a CLI call or a worker: wall time and peak RSS.

Usage::

    .venv/bin/python bench/bench_imports.py                  # this tree
    .venv/bin/python bench/bench_imports.py --tree /work/main # another checkout (before/after)

Each case runs ``--repeat`` times in a fresh interpreter (``python -c``) with ``PYTHONPATH`` set to
the tree, under the SQLite settings; the table prints the median wall time, the peak RSS
(``ru_maxrss`` of the child) and whether PyTorch ended up imported. On a loaded 2-core machine
compare the two trees in the same run of this script.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP = (
    "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.local'); "
    "import django; django.setup(); "
)
CASES = {
    "registry + mst (request validation, CLI)": (
        "from synth_engine.generators import get_generator; get_generator('mst')"
    ),
    "worker: tasks + services + mst": (
        SETUP + "import synth_engine.tasks, audits.tasks, synth_engine.services; "
        "from synth_engine.generators import get_generator; get_generator('mst')"
    ),
    "registry + dp-tvae (reference)": ("from synth_engine.generators import get_generator; get_generator('dp-tvae')"),
}
REPORT = "; import sys; print('torch' in sys.modules)"


def run_case(tree: Path, code: str) -> tuple[float, float, bool]:
    """Wall seconds, peak RSS in MB and whether torch was imported, for one fresh interpreter."""
    env = {**os.environ, "PYTHONPATH": str(tree), "DATABASE_URL": ""}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    command = [sys.executable, "-c", code + REPORT]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: run the light cases first.
    return wall, max(peak, before) / 1024.0, done.stdout.strip().endswith("True")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"tree {args.tree}, {args.repeat} runs per case, load {os.getloadavg()[0]:.1f}")
    print(f"{'case':<44} {'median_s':>9} {'peak_mb':>8} {'torch':>6}")
    for name, code in CASES.items():
        runs = [run_case(args.tree, code) for _ in range(args.repeat)]
        wall = statistics.median(run[0] for run in runs)
        print(f"{name:<44} {wall:>9.2f} {max(run[1] for run in runs):>8.0f} {str(runs[-1][2]):>6}")


if __name__ == "__main__":
    main()
