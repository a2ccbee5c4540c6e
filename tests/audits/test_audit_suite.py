"""The audit end to end on real rows: attacks succeed on leaky releases and fail on good ones,
the positive controls decide between pass and inconclusive, and runs are deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audits.metrics import FAIL, INCONCLUSIVE, PASS, drift_checks, run_audit
from audits.metrics.attacks import Targets, attack_checks
from audits.metrics.context import AuditData
from audits.metrics.encoding import TableSchema
from audits.metrics.membership import Candidates, membership_checks

ROOT = Path(__file__).resolve().parents[2]
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


@pytest.fixture(scope="module")
def adult() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict]:
    """The 2,000-row adult fixture cut into training rows, holdout rows, and fresh real rows
    from the same population that play a perfect generator's output (it never saw the
    training rows)."""
    frame = pd.read_csv(ROOT / "tests" / "fixtures" / "adult_2000.csv", dtype=str, keep_default_na=False)
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column])
    frame = frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    schema = json.loads((ROOT / "sample_data" / "adult.schema.json").read_text())
    return frame.iloc[:700], frame.iloc[700:1300], frame.iloc[1300:], schema


def _checks(results: list) -> dict:
    return {r.name: r for r in results}


def test_attacks_succeed_on_a_verbatim_release(adult) -> None:
    train, holdout, _, schema = adult
    data = AuditData.prepare(train, holdout, TableSchema.from_dict(schema))
    leaky = data.synthetic(train.sample(frac=1.0, random_state=1))
    targets = Targets.draw(data, 600, 0)
    attacks = _checks(attack_checks(data, leaky, targets, random_state=0))
    assert attacks["linkability_risk"].ci_low > 0.5
    assert attacks["inference_risk"].ci_low > 0.3
    assert attacks["singling_out_risk"].value > 0.1
    membership = _checks(membership_checks(data, leaky, Candidates.draw(data, 600, 0)))
    assert membership["membership_distance_auc"].ci_low > 0.9
    assert membership["membership_domias_auc"].ci_low > 0.9
    assert membership["membership_distance_tpr"].value > 0.9
    assert not any(r.passed for r in [*attacks.values(), *membership.values()] if r.name != "singling_out_risk")


def test_attacks_fail_on_rows_the_generator_never_saw(adult) -> None:
    train, holdout, fresh, schema = adult
    data = AuditData.prepare(train, holdout, TableSchema.from_dict(schema))
    good = data.synthetic(fresh)
    attacks = _checks(attack_checks(data, good, Targets.draw(data, 600, 0), random_state=0))
    membership = _checks(membership_checks(data, good, Candidates.draw(data, 600, 0)))
    for result in [*attacks.values(), *membership.values()]:
        assert result.passed, (result.name, result.value, result.ci_low)
    assert membership["membership_distance_auc"].ci_low < 0.5 < membership["membership_distance_auc"].ci_high
    assert attacks["linkability_risk"].ci_low == 0


def test_a_good_release_passes_with_its_controls_caught(adult) -> None:
    train, holdout, fresh, schema = adult
    result = run_audit(train, holdout, fresh, schema, random_state=0)
    assert result.verdict == PASS, result.failed_checks
    assert [c.caught for c in result.controls] == [True, True]
    assert result.controls[0].n_planted == round(0.05 * len(fresh))
    assert set(result.timings) >= {"fidelity", "utility", "bias", "attacks", "membership", "controls"}
    json.dumps(result.to_dict())  # storable as plain JSON


def test_a_verbatim_release_is_blocked(adult) -> None:
    train, holdout, _, schema = adult
    result = run_audit(train, holdout, train, schema, random_state=0)
    assert result.verdict == FAIL and result.blocked
    assert {"exact_copies", "unique_row_reproduction"} <= set(result.failed_checks)


def test_a_control_that_is_not_caught_makes_the_run_inconclusive(adult) -> None:
    train, holdout, fresh, schema = adult
    blind = {
        name: 1e9
        for name in (
            "exact_copies",
            "unique_row_reproduction",
            "singling_out_risk",
            "linkability_risk",
            "inference_risk",
            "membership_domias_auc",
            "membership_domias_tpr",
            "membership_distance_auc",
            "membership_distance_tpr",
            "membership_outlier_auc",
        )
    }
    result = run_audit(train, holdout, fresh, schema, thresholds=blind, random_state=0)
    assert result.verdict == INCONCLUSIVE
    assert not any(c.caught for c in result.controls)


def test_identical_inputs_give_identical_numbers(adult) -> None:
    train, holdout, fresh, schema = adult
    runs = [run_audit(train, holdout, fresh, schema, random_state=7).to_dict() for _ in range(2)]
    for run in runs:
        run.pop("timings")
        for check in run["checks"] + [c for control in run["controls"] for c in control["checks"]]:
            check.pop("seconds")
    assert runs[0] == runs[1]
    other = run_audit(train, holdout, fresh, schema, random_state=8)
    assert other.check("membership_distance_auc").value != runs[0]["checks"][-2]["value"]


def test_checks_without_a_label_or_protected_column_are_skipped_with_a_reason(adult) -> None:
    train, holdout, fresh, schema = adult
    plain = {
        "columns": [dict(c, role="other") if c["role"] in ("label", "protected") else c for c in schema["columns"]]
    }
    result = run_audit(train, holdout, fresh, plain, random_state=0)
    utility = result.check("tstr_auc_ratio")
    assert utility.passed is None and "label" in utility.skipped_reason
    assert "protected" in result.check("disparate_impact_change").skipped_reason


def test_bias_reports_a_released_frame_next_to_real_and_synthetic(adult) -> None:
    train, holdout, fresh, schema = adult
    rebalanced = fresh.copy()
    rebalanced.loc[rebalanced["sex"] == "Female", "income"] = ">50K"
    result = run_audit(
        train, holdout, fresh, schema, random_state=0, released=rebalanced, privacy_only=False, with_controls=False
    )
    sex = result.check("disparate_impact_change").details["per_column"]["sex"]
    assert sex["privileged"] == "Male"
    assert sex["released"]["disparate_impact"] > 1 > sex["real"]["disparate_impact"]
    assert result.check("disparate_impact_change").chart["series"] == ["real", "synthetic", "released"]


def test_drift_between_two_releases_flags_a_shifted_column(adult) -> None:
    train, _, fresh, schema = adult
    shifted = fresh.copy()
    shifted["age"] = shifted["age"] + 15
    stable = {r.name: r for r in drift_checks(train, fresh, schema)}
    moved = {r.name: r for r in drift_checks(train, shifted, schema)}
    assert stable["drift_psi"].passed
    assert stable["drift_js"].value < moved["drift_js"].value
    assert not moved["drift_psi"].passed
    assert moved["drift_psi"].details["worst_column"] == "age"
    assert np.isclose(moved["drift_psi"].details["per_column"]["age"]["p_value"], 0, atol=1e-10)
