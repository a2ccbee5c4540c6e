"""The default thresholds meet the calibration targets at small size (2,000 training rows):
5 % verbatim training rows blocked every time, 1 % flagged in at least 17 of 20 seeds, one copied
QI-unique training row blocked, clean ``mst`` output at epsilon = 1 flagged in at most 1 of 20.

To stay fast the 20 clean tables come from a few ``mst`` fits (several samples each); the full
version, with one fit per seed on the whole split, is bench/bench_calibration.py.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from audits.metrics.calibration import count_outcomes, run_scenarios

ROOT = Path(__file__).resolve().parents[2]
ADULT_NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CARAVAN_QIS = ["MOSTYPE", "MAANTHUI", "MGEMOMV", "MHKOOP", "MAUT1"]
CARAVAN_SENSITIVE = ["MINKGEM", "PPERSAUT", "PBRAND"]
N_SEEDS = 20


def _split(frame: pd.DataFrame, label: str, n_train: int, n_holdout: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    train, holdout = train_test_split(frame, test_size=0.2, random_state=0, stratify=frame[label])
    return (train.iloc[:n_train].reset_index(drop=True), holdout.iloc[:n_holdout].reset_index(drop=True))


def adult() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    frame = pd.read_csv(ROOT / "sample_data" / "adult.csv.gz", dtype=str, keep_default_na=False)
    for column in ADULT_NUMERIC:
        frame[column] = pd.to_numeric(frame[column])
    schema = json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())
    return (*_split(frame, "income", 2000, 1000), schema)


def caravan() -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    frame = pd.read_csv(ROOT / "tests" / "fixtures" / "caravan.csv.gz", dtype=str, keep_default_na=False)
    columns = []
    for name in frame.columns:
        role = (
            "label"
            if name == "Purchase"
            else "quasi_identifier"
            if name in CARAVAN_QIS
            else "sensitive"
            if name in CARAVAN_SENSITIVE
            else "protected"
            if name == "MGEMLEEF"
            else "other"
        )
        column = {"name": name, "type": "categorical", "role": role}
        if name == "Purchase":
            column |= {"categories": ["No", "Yes"], "favourable": "Yes"}
        if role == "protected":  # the codebook's six age bands (20-30 ... 70-80 years), issue 11.7
            column |= {"categories": ["1", "2", "3", "4", "5", "6"]}
        columns.append(column)
    return (*_split(frame, "Purchase", 2000, 1165), {"columns": columns})


def clean_tables(train: pd.DataFrame, schema: dict, n_fits: int) -> list[pd.DataFrame]:
    from synth_engine.generators import get_generator

    tables = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # constant columns in small slices
        for fit in range(n_fits):
            model = get_generator("mst").fit(train, schema, epsilon=1.0, delta=1e-5, random_state=fit)
            tables += [model.sample(len(train)) for _ in range(N_SEEDS // n_fits)]
    return tables


@pytest.mark.slow
@pytest.mark.parametrize(("name", "load", "n_fits"), [("adult", adult, 4), ("caravan", caravan, 2)])
def test_default_thresholds_meet_the_calibration_targets(name, load, n_fits) -> None:
    train, holdout, schema = load()
    outcomes = []
    for seed, synthetic in enumerate(clean_tables(train, schema, n_fits)):
        outcomes += run_scenarios(name, train, holdout, synthetic, schema, seed)
    counts = count_outcomes(outcomes)
    print({scenario: c for (_, scenario), c in counts.items()})  # shown with pytest -s
    clean_failures = [o.failed_checks for o in outcomes if o.scenario == "clean" and o.failed_checks]
    assert counts[(name, "copies_5pct")]["blocked"] == N_SEEDS, counts
    assert counts[(name, "copies_1pct")]["flagged"] >= 17
    assert counts[(name, "unique_row")]["blocked"] == N_SEEDS
    assert counts[(name, "clean")]["flagged"] <= 1, clean_failures
    assert counts[(name, "clean")]["inconclusive"] <= 1
