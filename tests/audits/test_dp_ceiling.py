"""Membership results beside what DP allows: TPR ≤ e^ε·FPR + δ at 1 % and 0.1 % FPR.

A deliberately leaky "DP" generator (it claims ε = 1 and releases its training rows) must fail
the ceiling check as "DP claim contradicted", naming the attack; mst at ε = 1 must pass it.
Pure: no database, fixed seeds.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audits.metrics.context import AuditData
from audits.metrics.encoding import TableSchema
from audits.metrics.membership import Candidates, dp_ceiling_check, membership_checks
from synth_engine.generators import get_generator
from tests.synth_engine.leaky import CopyingGenerator

ROOT = Path(__file__).resolve().parents[2]
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CLAIM = (1.0, 1e-5)


@pytest.fixture(scope="module")
def adult():
    frame = pd.read_csv(ROOT / "tests" / "fixtures" / "adult_2000.csv", dtype=str, keep_default_na=False)
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column])
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    schema = json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())
    train, holdout = frame.iloc[:1000], frame.iloc[1000:]
    data = AuditData.prepare(train, holdout, TableSchema.from_dict(schema))
    return train, schema, data, Candidates.draw(data, 1000, 0)


def ceiling(generator, adult, claim=CLAIM):
    train, schema, data, candidates = adult
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synthetic = generator.fit(train, schema, *claim, random_state=0).sample(len(train))
    results = membership_checks(data, data.synthetic(synthetic), candidates, privacy_claim=claim)
    return next(r for r in results if r.name == "membership_dp_ceiling")


def test_a_leaky_dp_generator_fails_the_ceiling_as_dp_claim_contradicted(adult) -> None:
    check = ceiling(CopyingGenerator(), adult)
    assert check.passed is False and check.blocking
    assert check.value > 0
    assert check.details["verdict"].startswith("DP claim contradicted by ")
    assert "distance at 0.1% FPR" in check.details["contradicted_by"]
    row = check.details["attacks"]["distance"]["0p1pct"]
    assert row["tpr_low"] > row["ceiling"] and row["ceiling"] == pytest.approx(math.e * row["fpr_high"] + 1e-5)


def test_mst_at_epsilon_one_stays_under_the_ceiling(adult) -> None:
    check = ceiling(get_generator("mst"), adult)
    assert check.passed is True, check.details["contradicted_by"]
    assert check.details["verdict"] == "consistent with the DP claim"
    for levels in check.details["attacks"].values():
        for row in levels.values():
            assert row["tpr"] <= row["ceiling"]


def test_no_claim_skips_the_ceiling() -> None:
    check = dp_ceiling_check(np.r_[np.ones(10), np.zeros(10)], {"distance": np.arange(20.0)}, None)
    assert check.passed is None and "no differential-privacy claim" in check.skipped_reason


def test_ceiling_is_hand_computable_and_grows_with_epsilon() -> None:
    truth = np.r_[np.ones(1000, dtype=int), np.zeros(1000, dtype=int)]
    rng = np.random.default_rng(0)
    same = {"attack": rng.normal(size=2000)}
    assert dp_ceiling_check(truth, same, (1.0, 1e-5)).passed is True
    separated = {"attack": np.r_[np.full(1000, 5.0), rng.normal(size=1000)]}
    strict = dp_ceiling_check(truth, separated, (1.0, 1e-5))
    assert strict.passed is False
    loose = dp_ceiling_check(truth, separated, (8.0, 1e-5))  # e^8 · FPR ≥ 1 at any FPR above 0.03 %
    assert loose.details["attacks"]["attack"]["1pct"]["ceiling"] == 1.0
    assert loose.details["attacks"]["attack"]["1pct"]["margin"] <= 0
