"""Generator quality over several seeds, with the holdout floor beside each figure (issue 11).

Usage::

    SYNTHGATE_SHARED_DATASETS=/path/to/datasets .venv/bin/python bench/bench_quality.py
    .venv/bin/python bench/bench_quality.py --seeds 5 --only adult

Runs ``mst`` on Adult at ε = 1 and 3 and on Caravan at ε = 3 (plain, and rebalanced to 50 %
positives), each over ``--seeds`` seeds in fresh processes (peak RSS is the fit's own), and prints
per configuration the mean, standard deviation and minimum over seeds of TSTR ROC AUC, minority
recall, 1-way and 2-way TVD, fit time and peak memory. The *holdout floor* is what the real
holdout scores against the training rows on the same measure (TVD of the holdout; TRTR AUC and
recall): the best a release can be expected to reach. Splits, metrics and schemas are those of
``bench/bench_generators.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_generators import ADULT_NUMERIC, LABELS, evaluate, load, run_in_child, tstr, tvd_scores  # noqa: E402

CONFIGS = [
    ("adult", 1.0, None),
    ("adult", 3.0, None),
    ("caravan", 3.0, {"Purchase": {"Yes": 0.5, "No": 0.5}}),
]
MEASURES = ("tstr_auc", "recall_pos", "tvd_1", "tvd_2", "fit_s", "peak_mb")


def floor(dataset: str) -> dict[str, float]:
    """The real holdout's own scores against the training rows."""
    train, holdout, _ = load(dataset)
    label, positive = LABELS[dataset]
    numeric = ADULT_NUMERIC if dataset == "adult" else []
    auc, recall = tstr(train, holdout, label, positive, numeric)
    one, two = tvd_scores(train, holdout, numeric)
    return {"tstr_auc": auc, "recall_pos": recall, "tvd_1": one, "tvd_2": two}


def runs(dataset: str, epsilon: float, rebalance: dict | None, seeds: int) -> dict[str, list[dict[str, Any]]]:
    train, holdout, _ = load(dataset)
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for seed in range(seeds):
        job = {
            "dataset": dataset,
            "generator": "mst",
            "epsilon": epsilon,
            "seed": seed,
            "declare_categories": False,
            "params": {},
            "speed_rows": 10_000,
            "rebalance": rebalance,
        }
        for row in evaluate(job, run_in_child(job), train, holdout):
            by_variant.setdefault(row["generator"], []).append(row)
    return by_variant


def summary(rows: list[dict[str, Any]]) -> str:
    cells = []
    for measure in MEASURES:
        values = [row[measure] for row in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        cells.append(f"{measure} {statistics.mean(values):.4g} ± {spread:.2g} (min {min(values):.4g})")
    return "; ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--only", choices=["adult", "caravan"], default=None)
    args = parser.parse_args()
    floors: dict[str, dict[str, float]] = {}
    for dataset, epsilon, rebalance in CONFIGS:
        if args.only and dataset != args.only:
            continue
        if dataset not in floors:
            floors[dataset] = floor(dataset)
            print(f"{dataset} holdout floor: " + ", ".join(f"{k} {v:.4f}" for k, v in floors[dataset].items()))
        for variant, rows in runs(dataset, epsilon, rebalance, args.seeds).items():
            print(f"{dataset} ε={epsilon:g} {variant} over {len(rows)} seeds: {summary(rows)}", flush=True)


if __name__ == "__main__":
    main()
