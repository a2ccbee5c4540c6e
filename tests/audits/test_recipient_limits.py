"""What a recipient reads of a calibrated limit and of the bias checks (pure audit, unsaved rows).

A limit calibrated to the data is ``TOLERANCE * hypot(floor, noise)``: the floor is the real
holdout's distance from the training rows, so the exact limit gives that statistic of the real
rows back. The bias checks' values and limits come from the real protected groups' sizes and
rates. A requester reads the purpose's threshold and the verdict, and no bias value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from audits.metrics.suite import run_audit
from audits.models import CheckResult
from audits.recipient import recipient_check

SCHEMA = {
    "columns": [
        {"name": "group", "type": "categorical", "role": "protected", "categories": ["a", "b"], "privileged": "a"},
        {"name": "colour", "type": "categorical", "categories": ["red", "green", "blue", "grey"]},
        {"name": "size", "type": "integer", "min": 0, "max": 100},
        {"name": "label", "type": "categorical", "role": "label", "categories": ["no", "yes"], "favourable": "yes"},
    ]
}


def population(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b"], rows, p=[0.7, 0.3])
    colour = rng.choice(["red", "green", "blue", "grey"], rows, p=[0.5, 0.3, 0.15, 0.05])
    size = np.clip(rng.normal(40, 15, rows) + (colour == "red") * 20, 0, 100).round().astype(int)
    label = np.where(rng.random(rows) < 0.2 + 0.3 * (size > 60) + 0.1 * (group == "a"), "yes", "no")
    return pd.DataFrame({"group": group, "colour": colour, "size": size, "label": label})


def test_a_recipient_reads_the_purposes_threshold_not_a_limit_calibrated_to_the_real_rows() -> None:
    from synth_engine.generators import get_generator

    train, holdout = population(300, 0), population(100, 1)
    synthetic = get_generator("mst").fit(train, SCHEMA, 1.0, 1e-5, random_state=0).sample(300)
    result = run_audit(train, holdout, synthetic, SCHEMA, random_state=0, fidelity_noise={"tvd_1way": 0.05})
    rows = [
        CheckResult(
            name=c.name,
            category=c.category,
            value=c.value,
            threshold=c.threshold,
            direction=c.direction,
            passed=c.passed,
            baseline=c.baseline,
            details=c.details,
        )
        for c in result.checks
    ]
    calibrated = [
        r for r in rows if r.category == "fidelity" and (r.details.get("calibration") or {}).get("purpose_threshold")
    ]
    relaxed = [r for r in calibrated if r.threshold != r.details["calibration"]["purpose_threshold"]]
    assert relaxed, "a 300-row table's floor relaxes at least one fidelity limit"
    for row in calibrated:
        assert recipient_check(row)["threshold"] == row.details["calibration"]["purpose_threshold"]
    bias = [r for r in rows if r.category == "bias" and r.value is not None]
    assert bias, "the bias checks were judged on the protected column"
    for row in bias:
        seen = recipient_check(row)
        assert seen["value"] is None and seen["baseline"] is None
        assert seen["passed"] == row.passed  # the verdict stays


def test_one_row_moves_a_rounded_real_value_so_a_recipient_reads_none() -> None:
    """Rounding a value that compares the release with the real rows does not hide one person: at a
    rounding edge, changing one training row moves it a whole step. The search finds a neighbouring
    training table (one row changed) whose two-decimal tvd_1way differs from the original's, so the
    old coarse view told the two apart; the recipient view is identical (no value) for both, while a
    value of the released rows alone (k-anonymity) is still shown."""
    from audits.metrics.encoding import TableSchema
    from audits.metrics.fidelity import fidelity_statistics

    schema = TableSchema.from_dict(SCHEMA)
    train = population(300, 0)
    flipped = None
    for seed in range(2, 200):  # a release whose value sits within one row's step of a rounding edge
        synthetic = population(300, seed)
        base = fidelity_statistics(train, synthetic, schema)[0]["tvd_1way"]
        for row in range(0, len(train), 3):
            for colour in ("red", "green", "blue", "grey"):
                neighbour = train.copy()
                neighbour.loc[row, "colour"] = colour
                value = fidelity_statistics(neighbour, synthetic, schema)[0]["tvd_1way"]
                if round(value, 2) != round(base, 2):
                    flipped = value
                    break
            if flipped is not None or abs(base * 100 % 1 - 0.5) > 0.2:
                break  # found, or too far from an edge for one row to cross it: the next release
        if flipped is not None:
            break
    assert flipped is not None, "one row moved the rounded value across a step"
    for value in (base, flipped):
        row = CheckResult(name="tvd_1way", category="fidelity", value=value, threshold=0.1, direction="lower")
        assert recipient_check(row)["value"] is None and recipient_check(row)["baseline"] is None
    k = CheckResult(name="k_anonymity", category="reidentification", value=3.0, threshold=2.0, direction="higher")
    assert recipient_check(k)["value"] == 3.0


def test_a_missed_control_reads_the_same_to_a_recipient_whatever_the_real_holdouts_size() -> None:
    """The distinguishing game on the positive control: holdouts of 30 and 31 real rows, the same
    training rows and release (60 synthetic rows, too few to catch the planted copies). The audit's
    explanation states the members scored (30 against 31: the holdout's size) and the attack's TPR on
    them; the recipient reads the same words for both, and the release datasheet the same outcome."""
    from audits.datasheets.records import positive_control_facts
    from audits.metrics.power import scored_members
    from audits.recipient import recipient_control
    from tests.audits.test_audit_power import SCHEMA as CREDIT
    from tests.audits.test_audit_power import credit_like

    train, synthetic = credit_like(4000, 0), credit_like(60, 2)
    seen, internal = [], []
    for rows in (30, 31):
        result = run_audit(train, credit_like(rows, 1), synthetic, CREDIT, random_state=0, privacy_only=True)
        controls = result.to_dict()["controls"]
        missed = [c for c in controls if not c["caught"]]
        assert missed and result.verdict == "inconclusive"
        assert f"among the {scored_members(60, 4000, rows)} training rows" in missed[0]["explanation"]
        internal.append([c["explanation"] for c in controls])
        cut = [recipient_control(c) for c in controls]
        seen.append((cut, positive_control_facts(cut).outcome))
    assert internal[0] != internal[1], "the audit's own explanation tells 30 from 31 holdout rows"
    assert seen[0] == seen[1]
    from audits.recipient import RECIPIENT_MISSED_CONTROL

    assert RECIPIENT_MISSED_CONTROL in seen[0][1] and not any(c["n_planted"] for c in seen[0][0])
