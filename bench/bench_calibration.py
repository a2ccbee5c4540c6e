"""Calibrate the audit's privacy thresholds: leak scenarios on adult and caravan over 20 seeds.

Usage::

    .venv/bin/python bench/bench_calibration.py                       # 20 seeds, full splits
    .venv/bin/python bench/bench_calibration.py --seeds 5 --train-rows 2000 --dataset adult
    .venv/bin/python bench/bench_calibration.py --quality              # also full audits of clean
    .venv/bin/python bench/bench_calibration.py --sizes 500 1000 2400 5000 10000
        # controls caught and clean verdicts by synthetic size (bench/bench_audit_sizes.py)

For every seed the default generator (``mst``, epsilon = 1, delta = 1e-5, ``random_state=seed``)
is fitted on the fixed split's training rows (``train_test_split(test_size=0.2, random_state=0,
stratify=label)``, optionally a ``--train-rows`` slice) and samples as many rows; from that clean
table :mod:`audits.metrics.calibration` builds the scenarios (clean, 1 % and 5 % verbatim training
rows, one copied QI-unique training row). Printed: per dataset and scenario the number of runs
blocked (a blocking check failed), flagged (a privacy check failed) and inconclusive (clean run
whose positive controls were not all caught), then the spread of each privacy statistic over the
clean runs, which is what the default thresholds were set against. With ``--quality`` the clean
tables also get the fidelity, utility and bias checks and the overall verdict is counted.

Targets: 5 % blocked 20/20, 1 % flagged >= 17/20, unique row blocked 20/20, clean flagged <= 1/20.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DATASETS = Path(os.environ.get("SYNTHGATE_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CARAVAN_QIS = ["MOSTYPE", "MAANTHUI", "MGEMOMV", "MHKOOP", "MAUT1"]
CARAVAN_SENSITIVE = ["MINKGEM", "PPERSAUT", "PBRAND"]
CARAVAN_PROTECTED = ["MGEMLEEF"]


def adult_schema() -> dict[str, Any]:
    return json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())


def caravan_schema(columns: list[str]) -> dict[str, Any]:
    """All 86 columns categorical codes; socio-demographic QIs (customer subtype, houses,
    household size, home ownership, car ownership), income/policy columns sensitive, average
    age band protected, ``Purchase`` the label (classes declared public)."""
    out = []
    for name in columns:
        role = (
            "label"
            if name == "Purchase"
            else "quasi_identifier"
            if name in CARAVAN_QIS
            else "sensitive"
            if name in CARAVAN_SENSITIVE
            else "protected"
            if name in CARAVAN_PROTECTED
            else "other"
        )
        column = {"name": name, "type": "categorical", "role": role}
        if name == "Purchase":
            column |= {"categories": ["No", "Yes"], "favourable": "Yes"}
        if role == "protected":  # the codebook's six age bands (20-30 ... 70-80 years), issue 11.7
            column |= {"categories": ["1", "2", "3", "4", "5", "6"]}
        out.append(column)
    return {"columns": out}


def load(dataset: str, frame: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The benchmark split of ``dataset`` (from ``frame`` if given) and its schema."""
    from sklearn.model_selection import train_test_split

    if frame is None:
        frame = pd.read_csv(DATASETS / dataset / f"{dataset}.csv", dtype=str, keep_default_na=False)
    label = "income" if dataset == "adult" else "Purchase"
    for column in ADULT_NUMERIC if dataset == "adult" else []:
        frame[column] = pd.to_numeric(frame[column])
    train, holdout = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame[label])
    schema = adult_schema() if dataset == "adult" else caravan_schema(list(frame.columns))
    return train.reset_index(drop=True), holdout.reset_index(drop=True), schema


def clean_synthetic(train: pd.DataFrame, schema: dict[str, Any], seed: int) -> pd.DataFrame:
    from synth_engine.generators import get_generator

    model = get_generator("mst").fit(train, schema, epsilon=1.0, delta=1e-5, random_state=seed)
    return model.sample(len(train))


def main() -> None:
    if "--sizes" in sys.argv:  # issue 15's table: delegated, same options
        import bench_audit_sizes

        bench_audit_sizes.main()
        return
    from audits.metrics.calibration import SCENARIOS, count_outcomes, run_scenarios
    from audits.metrics.suite import run_audit

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=["adult", "caravan", "both"], default="both")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--train-rows", type=int, default=None)
    parser.add_argument("--holdout-rows", type=int, default=None)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="write every outcome here")
    args = parser.parse_args()
    datasets = ["adult", "caravan"] if args.dataset == "both" else [args.dataset]
    outcomes, verdicts = [], {}
    for dataset in datasets:
        train, holdout, schema = load(dataset)
        train = train.iloc[: args.train_rows] if args.train_rows else train
        holdout = holdout.iloc[: args.holdout_rows] if args.holdout_rows else holdout
        for seed in range(args.seeds):
            start = time.perf_counter()
            synthetic = clean_synthetic(train, schema, seed)
            runs = run_scenarios(dataset, train, holdout, synthetic, schema, seed)
            outcomes += runs
            if args.quality:
                verdict = run_audit(train, holdout, synthetic, schema, random_state=seed)
                verdicts.setdefault(dataset, []).append((verdict.verdict, verdict.failed_checks))
            print(
                f"{dataset} seed {seed:2d} ({time.perf_counter() - start:5.1f} s): "
                + ", ".join(
                    f"{o.scenario}={'B' if o.blocked else 'F' if o.privacy_flagged else o.verdict[0]}" for o in runs
                ),
                flush=True,
            )
    print_counts(count_outcomes(outcomes), SCENARIOS)
    print_spread(outcomes)
    for dataset, rows in verdicts.items():
        failing = pd.Series([n for _, names in rows for n in names]).value_counts().to_dict()
        print(
            f"\n{dataset}: full audit of clean tables: "
            f"{sum(v == 'pass' for v, _ in rows)}/{len(rows)} pass; failing checks {failing}"
        )
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in outcomes], default=str, indent=1))


def print_counts(counts: dict, scenarios: tuple[str, ...]) -> None:
    print(f"\n{'dataset':8s} {'scenario':12s} {'runs':>5s} {'blocked':>8s} {'flagged':>8s} {'inconclusive':>13s}")
    for (dataset, scenario), c in sorted(counts.items(), key=lambda kv: (kv[0][0], scenarios.index(kv[0][1]))):
        print(f"{dataset:8s} {scenario:12s} {c['runs']:5d} {c['blocked']:8d} {c['flagged']:8d} {c['inconclusive']:13d}")


def print_spread(outcomes: list) -> None:
    """Median and maximum over clean runs of each privacy statistic (value, ci_low)."""
    for dataset in sorted({o.dataset for o in outcomes}):
        clean = [o for o in outcomes if o.dataset == dataset and o.scenario == "clean"]
        print(f"\n{dataset}: clean runs, statistic: value median/max | ci_low median/max")
        for name in clean[0].statistics:
            values = np.array([o.statistics[name][0] for o in clean], dtype=float)
            lows = np.array(
                [np.nan if o.statistics[name][1] is None else o.statistics[name][1] for o in clean], dtype=float
            )
            print(
                f"  {name:40s} {np.nanmedian(values):8.4f} {np.nanmax(values):8.4f} | "
                f"{np.nanmedian(lows) if not np.isnan(lows).all() else float('nan'):8.4f} "
                f"{np.nanmax(lows) if not np.isnan(lows).all() else float('nan'):8.4f}"
            )


if __name__ == "__main__":
    main()
