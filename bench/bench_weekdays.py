"""Trading days in, trading days out (issue 11.6): the share of released dates on a weekend and
the day-of-week TVD, for a day-resolution datetime column with and without the declared
``"calendar": "weekdays"``.

    PYTHONPATH=. nice -n 10 .venv/bin/python bench/bench_weekdays.py [--seeds 5] [--rows 2500]

The table: ``--rows`` trades on business days of 2022–2023 drawn uniformly (every real day is
Monday to Friday), a log-normal price and a side; the date's bounds are declared (the two calendar
years) or private. ``mst``, δ = 1e-5, ε = 1 and 3; mean ± sd over seeds.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def table(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2022-01-03", "2023-12-29")
    return pd.DataFrame(
        {
            "day": rng.choice(days, rows),
            "price": np.round(rng.lognormal(4, 0.3, rows), 2),
            "side": rng.choice(["buy", "sell"], rows),
        }
    )


def schema(calendar: bool, declared: bool) -> dict:
    day = {"name": "day", "type": "datetime", "resolution": "day"}
    if declared:
        day |= {"min": "2022-01-01", "max": "2023-12-31"}
    if calendar:
        day["calendar"] = "weekdays"
    columns = [
        day,
        {"name": "price", "type": "float", "min": 0, "max": 1000},
        {"name": "side", "type": "categorical", "categories": ["buy", "sell"]},
    ]
    return {"columns": columns}


def main() -> None:
    from synth_engine.generators import get_generator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=2500)
    args = parser.parse_args()
    frame = table(args.rows)
    real = np.bincount(frame["day"].dt.dayofweek, minlength=7) / len(frame)
    for declared in (True, False):
        for calendar in (False, True):
            for epsilon in (1.0, 3.0):
                weekend, tvd = [], []
                for seed in range(args.seeds):
                    model = get_generator("mst").fit(
                        frame, schema(calendar, declared), epsilon, 1e-5, random_state=seed
                    )
                    day = model.sample(len(frame))["day"].dropna()
                    weekend.append(float((day.dt.dayofweek >= 5).mean()))
                    tvd.append(0.5 * float(np.abs(np.bincount(day.dt.dayofweek, minlength=7) / len(day) - real).sum()))
                print(
                    f"bounds {'declared' if declared else 'private '}  {'weekdays' if calendar else 'all days'}  "
                    f"eps {epsilon:g}  weekend share {np.mean(weekend):.4f} ± {np.std(weekend):.4f} (real 0)  "
                    f"day-of-week TVD {np.mean(tvd):.4f} ± {np.std(tvd):.4f}"
                )


if __name__ == "__main__":
    main()
