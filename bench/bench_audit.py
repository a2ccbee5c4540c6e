"""Benchmark the full audit: time per check and peak memory.

Usage::

    .venv/bin/python bench/bench_audit.py                  # adult: 39,073 train, 39,073 mst rows
    .venv/bin/python bench/bench_audit.py --dataset caravan
    .venv/bin/python bench/bench_audit.py --scale 1000000  # privacy checks on 1M synthetic rows
    .venv/bin/python bench/bench_audit.py --jobs 1 2       # the same audit with 1, then 2 threads

The synthetic table is the default generator (``mst``, epsilon = 1, delta = 1e-5, seed 0) fitted on
the fixed split's training rows (``train_test_split(test_size=0.2, random_state=0,
stratify=label)``), sampling as many rows as it trained on; its fit is not timed. The audit runs
every check and both positive controls (5 % planted training rows). Peak RSS is the process's
``ru_maxrss`` (interpreter, pandas, the data and the generator included). The machine has two
cores shared with other jobs: repeat a run before trusting a difference of a few seconds.

``--jobs`` sets the nearest-neighbour threads (``SYNTHGATE_AUDIT_THREADS``; 0 = every core the
process may use, the default); several values run the audit once per value and print each
total, so the speed-up of the neighbour searches can be read off (results are identical).

``--scale N`` builds N synthetic rows by resampling the clean table with jitter (as
bench/bench_generators.py does for its scale run) and runs the privacy checks and the controls
against a 39,073-row training table, to show that nearest-neighbour work stays in bounded memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def jittered(frame: pd.DataFrame, n_rows: int, numeric: list[str], seed: int = 0) -> pd.DataFrame:
    """``n_rows`` rows resampled from ``frame``; numeric columns jittered by +-2 % of their
    range, categorical cells swapped with another row's value with probability 5 %."""
    rng = np.random.default_rng(seed)
    rows = frame.iloc[rng.integers(0, len(frame), n_rows)].reset_index(drop=True)
    for column in numeric:
        values = rows[column].to_numpy(dtype=float, na_value=np.nan)
        spread = 0.02 * (np.nanmax(values) - np.nanmin(values))
        rows[column] = pd.Series(np.round(values + rng.uniform(-spread, spread, n_rows))).astype(frame[column].dtype)
    for column in rows.columns.difference(numeric):
        swap = rng.random(n_rows) < 0.05
        rows.loc[swap, column] = rows[column].to_numpy()[rng.integers(0, n_rows, swap.sum())]
    return rows


def main() -> None:
    from bench_calibration import ADULT_NUMERIC, clean_synthetic, load

    from audits.metrics import run_audit
    from audits.metrics.encoding import available_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["adult", "caravan"], default="adult")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=None)
    parser.add_argument("--jobs", type=int, nargs="+", default=[0], help="neighbour-search threads (0 = all cores)")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    train, holdout, schema = load(args.dataset)
    start = time.perf_counter()
    synthetic = clean_synthetic(train, schema, args.seed)
    fit_seconds = time.perf_counter() - start
    privacy_only = False
    if args.scale:
        numeric = ADULT_NUMERIC if args.dataset == "adult" else []
        synthetic = jittered(synthetic, args.scale, numeric, args.seed)
        privacy_only = True
    rss_before = peak_rss_mb()
    totals = {}
    for jobs in args.jobs:
        start = time.perf_counter()
        result = run_audit(
            train, holdout, synthetic, schema, random_state=args.seed, privacy_only=privacy_only, n_jobs=jobs
        )
        totals[jobs or available_cores()] = time.perf_counter() - start
    total = list(totals.values())[-1]
    print(
        f"dataset {args.dataset}: train {len(train):,}, holdout {len(holdout):,}, synthetic "
        f"{len(synthetic):,} (mst fit+sample {fit_seconds:.1f} s, not timed)"
    )
    print(f"\n{'step':24s} {'seconds':>8s}")
    for step, seconds in result.timings.items():
        print(f"{step:24s} {seconds:8.2f}")
    print(f"{'total':24s} {total:8.2f}")
    for jobs, seconds in totals.items():
        print(f"total with {jobs} neighbour-search thread(s): {seconds:8.2f} s")
    print(f"\npeak RSS before audit {rss_before:,.0f} MB, after {peak_rss_mb():,.0f} MB")
    print(f"verdict {result.verdict} (blocked={result.blocked}); failed {result.failed_checks}")
    for control in result.controls:
        print(f"control {control.family}: {control.n_planted} planted, caught={control.caught} by {control.caught_by}")
    print(f"\n{'check':30s} {'value':>10s} {'ci_low':>8s} {'ci_high':>8s} {'thresh':>8s} passed")
    for check in result.checks:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        print(
            f"{check.name:30s} {fmt(check.value):>10s} {fmt(check.ci_low):>8s} "
            f"{fmt(check.ci_high):>8s} {fmt(check.threshold):>8s} {check.passed}"
        )


if __name__ == "__main__":
    main()
