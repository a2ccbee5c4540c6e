"""Can the audit decide at the sizes users ask for? (issue 15) Controls caught and verdicts of
clean releases by synthetic size, on a credit-default table.

Usage::

    .venv/bin/python bench/bench_audit_sizes.py                       # 20 seeds, sizes 500..10,000
    .venv/bin/python bench/bench_audit_sizes.py --seeds 5 --sizes 500 2400

The table is ISLP's ``Default`` (10,000 credit-card customers, 3.33 % default; columns default,
student, balance, income), registered as a new user would: the schema inferred from the CSV, no
roles declared. It is read from ``$SYNTHGATE_SHARED_DATASETS/default/Default.csv`` or
``var/bench-data/Default.csv``; when neither exists the ``ISLP==0.6.0`` wheel is fetched with
``pip download --no-deps`` and the file taken from it. Split: ``train_test_split(test_size=0.2,
random_state=0, stratify=default)`` -> 8,000 training / 2,000 holdout rows.

For every seed, ``mst`` at ε = 1, δ = 1e-5 is fitted on the training rows and samples each
size; each clean table gets the full audit (fidelity limits calibrated with the predicted noise,
both positive controls), and a copy with 1 % of its rows replaced by training rows gets the
privacy checks. Printed per size: share of runs in which each control was caught, share of
clean runs passed / failed / inconclusive (and the checks that failed), share of 1 % copies
blocked, and the minimum size the power calculation states before the job.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SYNTHGATE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
CACHE = ROOT / "var" / "bench-data"


def credit_default_csv() -> Path:
    """Path of ISLP's Default.csv (see the module docstring for where it comes from)."""
    for path in (SHARED / "default" / "Default.csv", CACHE / "Default.csv"):
        if path.exists():
            return path
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "ISLP==0.6.0", "--no-deps", "-q", "-d", folder], check=True
        )
        wheel = next(Path(folder).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            (CACHE / "Default.csv").write_bytes(archive.read("ISLP/data/Default.csv"))
    return CACHE / "Default.csv"


def load_credit() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from sklearn.model_selection import train_test_split

    from governance.ingest import infer_schema

    path = credit_default_csv()
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    schema = infer_schema(rows[0], rows[1:], missing_values=[""])
    frame = pd.read_csv(path)
    train, holdout = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame["default"])
    return train.reset_index(drop=True), holdout.reset_index(drop=True), schema


def main() -> None:
    from audits.metrics.context import AuditData, replace_rows
    from audits.metrics.encoding import TableSchema
    from audits.metrics.power import membership_power
    from audits.metrics.prediction import predict_noise
    from audits.metrics.suite import audit_rows
    from synth_engine.generators import get_generator

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2400, 5000, 10000])
    parser.add_argument("--epsilon", type=float, default=1.0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    train, holdout, schema = load_credit()
    data = AuditData.prepare(train, holdout, TableSchema.from_dict(schema))

    def fit_sample(frame: pd.DataFrame, table: dict, rows: int, seed: int) -> pd.DataFrame:
        model = get_generator("mst").fit(frame, table, epsilon=args.epsilon, delta=1e-5, random_state=seed)
        return model.sample(rows)

    noise = {size: predict_noise(schema, len(train), size, fit_sample).noise for size in args.sizes}
    tally: dict[int, Counter] = {size: Counter() for size in args.sizes}
    failing: dict[int, Counter] = {size: Counter() for size in args.sizes}
    for seed in range(args.seeds):
        start = time.perf_counter()
        model = get_generator("mst").fit(train, schema, epsilon=args.epsilon, delta=1e-5, random_state=seed)
        for size in args.sizes:
            clean = data.synthetic(model.sample(size))
            result = audit_rows(data, clean, None, seed, fidelity_noise=noise[size])
            counts = tally[size]
            counts[result.verdict] += 1
            for control in result.controls:
                counts[f"caught:{control.family}"] += control.caught
            failing[size].update(result.failed_checks)
            rng = np.random.default_rng(seed)
            count = max(1, round(0.01 * size))
            positions = np.sort(rng.choice(size, count, replace=False))
            leaky = replace_rows(data, clean, positions, rng.choice(len(train), count, replace=False))
            copies = audit_rows(data, leaky, None, seed, privacy_only=True, with_controls=False)
            counts["copies_1pct_blocked"] += copies.blocked
        print(f"seed {seed:2d} done in {time.perf_counter() - start:5.1f} s", flush=True)
    runs = args.seeds
    print(f"\ncredit-default (ISLP Default), {len(train):,} train / {len(holdout):,} holdout, mst ε={args.epsilon:g}")
    columns = ("size", "min size", "reid caught", "memb caught", "pass", "fail", "inconcl", "1% blocked")
    print(" ".join(f"{c:>11s}" for c in columns), " failing checks")
    for size in args.sizes:
        c = tally[size]
        power = membership_power(size, len(train), len(holdout), share=0.05)

        def share(key: str, counts: Counter = c) -> str:
            return f"{counts[key] / runs:.0%}"

        print(
            f"{size:11d} {power.minimum_rows or 0:11d} {share('caught:reidentification'):>11s} "
            f"{share('caught:membership'):>11s} {share('pass'):>11s} {share('fail'):>11s} "
            f"{share('inconclusive'):>11s} {share('copies_1pct_blocked'):>11s}  {dict(failing[size])}"
        )
    print("\npredicted noise error per size:", {s: {k: round(v, 4) for k, v in n.items()} for s, n in noise.items()})


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
