"""Benchmark of the dp-tvae generator on UCI Adult (prints figures; not a timed test).

For ε in {1, 3} at δ = 1e-5: fit seconds, sampling rows/s, peak RSS, TSTR ROC AUC
(HistGradientBoostingClassifier, default parameters, trained on synthetic rows and scored on the
real holdout), mean 1-way and 2-way total variation distance to the real training rows (numeric
columns in 20 quantile bins of the real training data) and the ε the accountant reports.

Usage: ``.venv/bin/python bench/bench_dp_tvae.py [--epsilons 1 3] [--seed 0] [--epochs N]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OrdinalEncoder

from synth_engine.generators.dp_tvae import DPTVAEGenerator

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets" / "adult" / "adult.csv"
SCHEMA = ROOT / "sample_data" / "adult.schema.json"
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
LABEL, POSITIVE = "income", ">50K"


def load_adult() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The benchmark split: 39,073 training rows and 9,769 holdout rows, stratified on income."""
    frame = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column])
    train, holdout = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame[LABEL])
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def tstr_auc(train: pd.DataFrame, holdout: pd.DataFrame) -> float:
    """ROC AUC on ``holdout`` of a default HistGradientBoostingClassifier fitted on ``train``."""
    features = [column for column in train.columns if column != LABEL]
    categorical = [column for column in features if column not in NUMERIC]
    encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    encoder.fit(pd.concat([train[categorical], holdout[categorical]]).astype(str))

    def matrix(frame: pd.DataFrame) -> np.ndarray:
        codes = encoder.transform(frame[categorical].astype(str))
        return np.column_stack([frame[NUMERIC].to_numpy(dtype=float), codes])

    target = (train[LABEL] == POSITIVE).to_numpy()
    model = HistGradientBoostingClassifier().fit(matrix(train), target)
    return float(roc_auc_score(holdout[LABEL] == POSITIVE, model.predict_proba(matrix(holdout))[:, 1]))


def binned(real: pd.DataFrame, other: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numeric columns in 20 quantile bins of ``real``; categoricals as strings (missing kept)."""
    out_real, out_other = pd.DataFrame(index=real.index), pd.DataFrame(index=other.index)
    for column in real.columns:
        if column in NUMERIC:
            edges = np.unique(np.quantile(real[column], np.linspace(0, 1, 21))[1:-1])
            out_real[column] = np.searchsorted(edges, real[column], side="right")
            out_other[column] = np.searchsorted(edges, other[column].fillna(-np.inf), side="right")
        else:
            out_real[column] = real[column].astype(str)
            out_other[column] = other[column].fillna("<missing>").astype(str)
    return out_real, out_other


def tvd(real: pd.DataFrame, other: pd.DataFrame, columns: list[str]) -> float:
    """Total variation distance between the joint distributions of ``columns``."""
    p = real.groupby(columns).size() / len(real)
    q = other.groupby(columns).size() / len(other)
    both = p.index.union(q.index)
    return 0.5 * float(np.abs(p.reindex(both, fill_value=0) - q.reindex(both, fill_value=0)).sum())


def mean_tvds(real: pd.DataFrame, synthetic: pd.DataFrame) -> tuple[float, float]:
    real_bins, synthetic_bins = binned(real, synthetic)
    columns = list(real.columns)
    one_way = np.mean([tvd(real_bins, synthetic_bins, [c]) for c in columns])
    two_way = np.mean([tvd(real_bins, synthetic_bins, list(pair)) for pair in itertools.combinations(columns, 2)])
    return float(one_way), float(two_way)


def run(
    epsilon: float,
    delta: float,
    seed: int,
    params: dict[str, Any],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: dict[str, Any],
) -> dict[str, Any]:
    generator = DPTVAEGenerator(**params)
    planned = generator.plan_privacy(epsilon, delta, len(train))
    start, cpu_start = time.perf_counter(), time.process_time()
    generator.fit(train, schema, epsilon, delta, random_state=seed)
    fit_seconds, fit_cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    start = time.perf_counter()
    synthetic = generator.sample(len(train))
    rows_per_second = len(train) / (time.perf_counter() - start)
    one_way, two_way = mean_tvds(train, synthetic)
    spent = generator.privacy_spent()
    return {
        "epsilon": epsilon,
        "fit_s": fit_seconds,
        "fit_cpu_s": fit_cpu_seconds,
        "sample_rows_per_s": rows_per_second,
        "tstr_auc": tstr_auc(synthetic, holdout),
        "tvd_1way": one_way,
        "tvd_2way": two_way,
        "epsilon_spent": spent.epsilon,
        "epsilon_planned": planned.epsilon,
        "noise_multiplier": spent.details["noise_multiplier"],
        "steps": spent.details["steps"],
        "sample_rate": spent.details["sample_rate"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--params", type=json.loads, default={}, help="hyperparameters as JSON, e.g. '{\"epochs\": 30}'"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    train, holdout = load_adult()
    schema = json.loads(SCHEMA.read_text())
    print(f"adult: {len(train)} train / {len(holdout)} holdout; TRTR AUC {tstr_auc(train, holdout):.3f}")
    for epsilon in args.epsilons:
        result = run(epsilon, args.delta, args.seed, args.params, train, holdout, schema)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"eps={epsilon:g}: fit {result['fit_s']:.1f} s (CPU {result['fit_cpu_s']:.1f} s) | sample "
            f"{result['sample_rows_per_s']:,.0f} rows/s | peak RSS {peak_mb:,.0f} MB | "
            f"TSTR AUC {result['tstr_auc']:.3f} | TVD 1-way {result['tvd_1way']:.3f} "
            f"2-way {result['tvd_2way']:.3f} | eps spent {result['epsilon_spent']:.4f} "
            f"(plan {result['epsilon_planned']:.4f}) | sigma {result['noise_multiplier']:.3f}, "
            f"q {result['sample_rate']:.4f}, steps {result['steps']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
