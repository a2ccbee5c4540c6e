"""Smallest domain-stage budget share at which a category holding a few percent survives.

MST (and dp-tvae) estimate undeclared category lists with a thresholded Gaussian histogram in
their "domain" stage; a category whose noisy count stays below the threshold becomes ``other``
in the release. This bench runs exactly that stage (``fit_codecs`` with the plan MST makes for
a given ``domain_fraction``) on the bundled Adult sample with its schema (numeric bounds and the
label's classes declared, the other eight categorical columns undeclared), at ε = 1, δ = 1e-5,
for n = 2,000 / 5,000 / 50,000 rows (drawn without replacement, with replacement for 50,000),
and reports in how many of ``--seeds`` runs each tracked category survives:

- ``relationship = Wife`` (4.8 % of Adult),
- ``race = Asian-Pac-Islander`` (3.1 %),
- ``race = Amer-Indian-Eskimo`` (1.0 %).

Usage::

    .venv/bin/python bench/bench_domain_share.py [--seeds 20] [--fractions 0.02 0.05 0.1 0.2 0.3]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from core.schema import parse_schema
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import fit_codecs
from synth_engine.generators.mst import MSTGenerator, _budget_plan
from synth_engine.privacy.accountant import ZCDPAccountant

ROOT = Path(__file__).resolve().parents[1]
TRACKED = [("relationship", "Wife"), ("race", "Asian-Pac-Islander"), ("race", "Amer-Indian-Eskimo")]


def survival(frame: pd.DataFrame, schema: dict, n_rows: int, fraction: float, seeds: int, epsilon: float) -> list[int]:
    specs = parse_schema(schema)
    params = {**MSTGenerator().get_params(), "domain_fraction": fraction}
    plan = _budget_plan(params, epsilon, 1e-5, specs)
    survived = [0] * len(TRACKED)
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        rows = rng.choice(len(frame), size=n_rows, replace=n_rows > len(frame))
        sample = frame.iloc[rows].reset_index(drop=True)
        codecs = fit_codecs(
            FrameCounts(sample),
            specs,
            rho=plan.domain_rho,
            threshold_delta=plan.threshold_delta,
            max_cells=params["max_cells"],
            accountant=ZCDPAccountant(),
            rng=rng,
        )
        by_name = {codec.name: codec for codec in codecs}
        for position, (column, value) in enumerate(TRACKED):
            survived[position] += value in list(by_name[column].values)
    return survived


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 5000, 50000])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4])
    options = parser.parse_args()
    frame = pd.read_csv(ROOT / "sample_data" / "adult.csv.gz", dtype=str, keep_default_na=False)
    schema = json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())
    for column in schema["columns"]:
        if column["type"] == "integer":
            frame[column["name"]] = frame[column["name"]].astype(int)
    header = "n_rows  domain_share  " + "  ".join(f"{c}={v}" for c, v in TRACKED)
    print(f"epsilon={options.epsilon} delta=1e-5 seeds={options.seeds}\n{header}")
    for n_rows in options.rows:
        for fraction in options.fractions:
            counts = survival(frame, schema, n_rows, fraction, options.seeds, options.epsilon)
            cells = "  ".join(
                f"{count:>2}/{options.seeds}".rjust(len(f"{c}={v}"))
                for (c, v), count in zip(TRACKED, counts, strict=True)
            )
            print(f"{n_rows:>6}  {fraction:>12}  {cells}", flush=True)


if __name__ == "__main__":
    main()
