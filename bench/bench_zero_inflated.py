"""Zero-inflated, heavy-tailed columns without declared bounds (issue 11.5): Adult's capital gain
and capital loss (92 % and 95 % zeros, then hundreds to 99,999). Prints, per column, size and ε,
the mean over seeds of the share of nonzero values (real training rows against the release), the
1-way TVD on public-looking bins of the real column ({0}, then the deciles of its nonzero values,
then missing) and the released range's upper end.

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/bench_zero_inflated.py [--seeds 5] [--rows 3000 0]

``--rows 0`` is the whole benchmark training split (39,073 rows, ``bench/bench_calibration.py``'s
split of ``sample_data/adult.csv.gz``); a positive number takes that many of its rows. The schema
is ``sample_data/adult.schema.json`` with both columns' ``min``/``max`` removed, so their domains
are estimated privately; every other column stays declared. ``mst``, δ = 1e-5. bench_generators'
TVD1 bins a column at its 20 real quantiles, which on a column that is 92 % zeros does not even
separate zero from the smallest gains; hence the bins here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("capital-gain", "capital-loss")


def training_rows(rows: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    from sklearn.model_selection import train_test_split

    frame = pd.read_csv(ROOT / "sample_data" / "adult.csv.gz", dtype=str, keep_default_na=False)
    for column in ("age", "fnlwgt", "education-num", *COLUMNS, "hours-per-week"):
        frame[column] = pd.to_numeric(frame[column])
    train, _ = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame["income"])
    train = train.reset_index(drop=True)
    if rows:
        train = train.iloc[:rows].reset_index(drop=True)
    schema = json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())
    for entry in schema["columns"]:
        if entry["name"] in COLUMNS:
            entry.pop("min"), entry.pop("max")
    return train, schema


def scores(real: pd.Series, synthetic: pd.Series) -> tuple[float, float, float]:
    """Nonzero share of the release, TVD1 on {0} + real nonzero deciles + missing, its maximum."""
    values = real.to_numpy(dtype=float)
    edges = np.unique(np.quantile(values[values > 0], np.linspace(0, 1, 11))[1:-1])

    def codes(series: pd.Series) -> np.ndarray:
        x = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
        out = np.where(x > 0, 1 + np.searchsorted(edges, x, side="right"), 0)
        return np.where(np.isnan(x), len(edges) + 2, out)

    size = len(edges) + 3
    p = np.bincount(codes(real), minlength=size) / len(real)
    q = np.bincount(codes(synthetic), minlength=size) / len(synthetic)
    y = pd.to_numeric(synthetic, errors="coerce").to_numpy(dtype=float)
    return float(np.mean(y > 0)), 0.5 * float(np.abs(p - q).sum()), float(np.nanmax(y))


def main() -> None:
    from synth_engine.generators import get_generator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rows", type=int, nargs="+", default=[3000, 0])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[1.0, 3.0])
    args = parser.parse_args()
    for rows in args.rows:
        train, schema = training_rows(rows)
        for epsilon in args.epsilons:
            found: dict[str, list[tuple[float, float, float]]] = {column: [] for column in COLUMNS}
            started = time.perf_counter()
            for seed in range(args.seeds):
                model = get_generator("mst").fit(train, schema, epsilon, 1e-5, random_state=seed)
                synthetic = model.sample(len(train))
                for column in COLUMNS:
                    found[column].append(scores(train[column], synthetic[column]))
            seconds = (time.perf_counter() - started) / args.seeds
            for column in COLUMNS:
                share, tvd, top = np.array(found[column]).T
                real = float(np.mean(train[column].to_numpy(dtype=float) > 0))
                print(
                    f"{len(train):>6} rows  eps {epsilon:g}  {column:13s} nonzero real {real:.4f} "
                    f"synthetic {share.mean():.4f} ± {share.std():.4f}  TVD1 {tvd.mean():.4f} ± {tvd.std():.4f}  "
                    f"max median {np.median(top):.0f} (real {train[column].max():.0f})  fit+sample {seconds:.1f} s"
                )


if __name__ == "__main__":
    main()
