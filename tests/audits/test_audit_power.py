"""The membership family proves its power at the sizes users ask for (issue 15), and the
nearest-neighbour search it rests on tells copies from near neighbours."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audits.metrics import run_audit
from audits.metrics.encoding import nearest_neighbours, neighbour_jobs
from audits.metrics.power import membership_power, planted_rows, scored_members

SCHEMA = {
    "columns": [
        {"name": "default", "type": "categorical"},
        {"name": "student", "type": "categorical"},
        {"name": "balance", "type": "float"},
        {"name": "income", "type": "float"},
    ]
}


def credit_like(n_rows: int, seed: int) -> pd.DataFrame:
    """Two continuous columns and two categorical ones, 3 % positive (like a credit-default table)."""
    rng = np.random.default_rng(seed)
    balance = rng.gamma(2.0, 400.0, n_rows)
    return pd.DataFrame(
        {
            "default": np.where(rng.random(n_rows) < 0.03, "Yes", "No"),
            "student": np.where(rng.random(n_rows) < 0.3, "Yes", "No"),
            "balance": balance,
            "income": rng.normal(33000, 13000, n_rows) + balance,
        }
    )


def test_a_copy_is_at_distance_zero_and_a_near_neighbour_is_not() -> None:
    reference = np.array([[0.500, 0.2], [0.502, 0.2], [0.9, 0.9]], dtype=np.float32)
    queries = np.array([[0.501, 0.2], [0.9, 0.9]], dtype=np.float32)
    distance, index = nearest_neighbours(queries, reference)
    assert distance[0, 0] == pytest.approx(0.001, abs=1e-4) and distance[0, 0] > 0
    assert (distance[1, 0], index[1, 0]) == (0.0, 2)


def test_results_do_not_depend_on_the_number_of_threads() -> None:
    rng = np.random.default_rng(3)
    reference = rng.random((2000, 9)).astype(np.float32)
    queries = rng.random((1500, 9)).astype(np.float32)
    one = nearest_neighbours(queries, reference, n_neighbours=2, n_jobs=1)
    with neighbour_jobs(3) as jobs:
        several = nearest_neighbours(queries, reference, n_neighbours=2)
    assert jobs == 3
    assert (one[1] == several[1]).all() and (one[0] == several[0]).all()


def test_scored_members_never_outnumber_the_synthetic_rows() -> None:
    assert scored_members(500, 8000, 2000) == 500
    assert scored_members(10_000, 8000, 2000) == 2000
    members = scored_members(500, 8000, 2000)
    assert planted_rows(500, 0.05, members) / members >= 0.05


def test_power_is_high_at_requested_sizes_and_the_minimum_is_stated() -> None:
    for size in (500, 1000, 2400, 5000, 10_000):
        power = membership_power(size, 8000, 2000, share=0.05)
        assert power.decidable, size
    small = membership_power(20, 8000, 2000, share=0.05)
    assert not small.decidable
    assert 20 < small.minimum_rows <= 200
    assert f"at least {small.minimum_rows:,} synthetic rows" in small.explain()
    assert membership_power(small.minimum_rows, 8000, 2000, share=0.05).decidable


def test_membership_control_is_caught_for_a_small_release_of_a_continuous_table() -> None:
    """The case of issue 15: 500 synthetic rows from 4,000 training rows, two continuous
    columns, no roles. Before exact distances, ~40 % of non-members "had a copy" and the
    planted control was lost in them."""
    train, holdout = credit_like(4000, 0), credit_like(1000, 1)
    synthetic = credit_like(500, 2)  # a clean release: fresh rows of the same population
    result = run_audit(train, holdout, synthetic, SCHEMA, random_state=0, privacy_only=True)
    membership = next(c for c in result.controls if c.family == "membership")
    assert membership.caught, membership.explanation
    assert result.verdict == "pass"
    assert not result.privacy_flagged


def test_a_missed_control_says_why_in_plain_words() -> None:
    train, holdout = credit_like(4000, 0), credit_like(1000, 1)
    synthetic = credit_like(30, 2)  # below the smallest decisive size
    result = run_audit(train, holdout, synthetic, SCHEMA, random_state=0, privacy_only=True)
    membership = next(c for c in result.controls if c.family == "membership")
    if membership.caught:  # a lucky draw can still catch it; the explanation is then empty
        assert membership.explanation == ""
    else:
        assert "too small" in membership.explanation
        assert "synthetic rows" in membership.explanation
        assert result.verdict == "inconclusive"
        assert result.to_dict()["controls"][1]["explanation"] == membership.explanation
