"""Private numeric bounds on real columns: how often the tail is clipped, how often noise widens
the range far beyond the data (issue 11.5). Prints one line per column, and one for a column of
zeros (how often noise alone gives it a nonzero range).

    PYTHONPATH=. .venv/bin/python bench/bench_private_bounds.py [--rows 3000] [--draws 20000]

The noise is mst's domain stage at ε = 1, δ = 1e-5 (10 % of ρ, split over six undeclared numeric
columns). Only the magnitude histogram is measured here: no fit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from synth_engine.generators.domain import bounds_from_magnitudes, magnitude_index
from synth_engine.privacy.zcdp import cdp_rho, gaussian_sigma

ADULT = Path(__file__).resolve().parents[1] / "sample_data" / "adult.csv.gz"
COLUMNS = ("age", "hours-per-week", "capital-gain", "capital-loss")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--draws", type=int, default=20000)
    args = parser.parse_args()
    frame = pd.read_csv(ADULT)
    sigma = gaussian_sigma(0.1 * cdp_rho(1.0, 1e-5) * 0.99 / 6)
    print(f"sigma = {sigma:.1f} rows, {args.rows} rows, {args.draws} draws")
    rng = np.random.default_rng(5)
    columns = {column: frame[column].sample(args.rows, random_state=1).to_numpy(float) for column in COLUMNS}
    columns["zeros"] = np.zeros(args.rows)  # a column of zeros: how often noise alone widens it
    for column, values in columns.items():
        index, length = magnitude_index(values, integer=True)
        histogram = np.bincount(index, minlength=length)
        bounds = np.array([bounds_from_magnitudes(histogram, sigma, integer=True, rng=rng) for _ in range(args.draws)])
        top = values.max()
        widened = np.mean((bounds[:, 0] < values.min()) | (bounds[:, 1] > top)) if column == "zeros" else None
        print(
            f"{column:15s} real max {top:>8.0f}  upper below it {np.mean(bounds[:, 1] < top):7.2%}  "
            f"beyond 1000x or below 0 {np.mean((bounds[:, 1] > 1000 * top) | (bounds[:, 0] < 0)):7.2%}  "
            f"median upper {np.median(bounds[:, 1]):.0f}"
            + (f"  widened beyond 0 {widened:.2%}" if widened is not None else "")
        )


if __name__ == "__main__":
    main()
