"""Why a positive control was not caught, in words a requester or steward can act on.

An uncaught control makes a run inconclusive, and an inconclusive run cannot be released or
risk-accepted, so the record must say what stood in the way and what to change: more synthetic
rows (the membership checks' power depends on the release's size, see
:mod:`audits.metrics.power`), declared quasi-identifiers (without them the linkability,
singling-out and unique-row checks do not run), or a table whose real rows repeat so often that
a verbatim copy looks like any other row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from audits.metrics.base import CHECK_SPECS, MEMBERSHIP, CheckResult
from audits.metrics.context import AuditData, SyntheticRows
from audits.metrics.membership import Candidates
from audits.metrics.power import DEFAULT_TPR_THRESHOLD, membership_power

if TYPE_CHECKING:
    from audits.metrics.suite import ControlResult

# Above this share of real non-members with an identical synthetic row, copies are common
# coincidences rather than leaks on this table.
COMMON_ROWS_SHARE = 0.02


def explain_missed_control(
    data: AuditData,
    planted: SyntheticRows,
    candidates: Candidates,
    control: ControlResult,
    thresholds: dict[str, float | None] | None,
) -> str:
    """Plain-words reason a control was missed and what to change."""
    if control.family == MEMBERSHIP:
        return _membership(data, planted, candidates, control, thresholds)
    return _reidentification(data, planted, control)


def _membership(
    data: AuditData,
    planted: SyntheticRows,
    candidates: Candidates,
    control: ControlResult,
    thresholds: dict[str, float | None] | None,
) -> str:
    threshold = (thresholds or {}).get("membership_distance_tpr", CHECK_SPECS["membership_distance_tpr"].threshold)
    threshold = DEFAULT_TPR_THRESHOLD if threshold is None else float(threshold)
    n_synthetic = len(planted.frame)
    power = membership_power(
        n_synthetic, len(data.train), len(data.holdout), share=control.share, tpr_threshold=threshold
    )
    tpr = _value(control.checks, "membership_distance_tpr")
    observed = (
        f"The membership control planted {control.n_planted:,} verbatim training rows among the "
        f"{len(candidates.members):,} training rows the attacks score; the distance attack's TPR at 1 % FPR "
        f"was {tpr:.3f}, which is not above the threshold {threshold:g} with 95 % confidence. "
    )
    if not power.decidable:
        return observed + "Cause: the release is too small. " + _sentence(power.explain())
    common = _non_members_with_copies(data, planted, candidates)
    if common > COMMON_ROWS_SHARE:
        return observed + (
            f"Cause: {common:.0%} of the real rows the generator never saw have an identical row among the "
            "synthetic rows, so on this table a verbatim copy looks like any other row (few columns, or "
            "columns with few distinct values). Membership cannot be measured by distance here: declare "
            "the columns' types and roles so that numeric columns are compared as numbers, or ask a "
            "steward to review the schema."
        )
    return observed + (
        "Cause: the attacks did not rank the copies first (unusual: report it). Re-run the audit with "
        "another seed; if it recurs, the release cannot be shown safe by these checks."
    )


def _reidentification(data: AuditData, planted: SyntheticRows, control: ControlResult) -> str:
    copies = next((c for c in control.checks if c.name == "exact_copies"), None)
    text = (
        f"The re-identification control planted {control.n_planted:,} verbatim training rows "
        f"({control.n_planted / max(len(planted.frame), 1):.1%} of the release) and no check caught them. "
    )
    if copies is not None and copies.baseline:
        text += (
            f"Cause: {copies.baseline:.1%} of the synthetic rows are identical to a real row anyway (the "
            "holdout's rate), so planted copies do not stand out; the table's rows repeat too often to "
            "test for copying. "
        )
    if not data.schema.with_role("quasi_identifier"):
        text += (
            "The schema declares no quasi-identifiers, so the linkability, singling-out and unique-row checks "
            "did not run: declare the columns an attacker could know (age, postcode, ...) as quasi-identifiers."
        )
    return text.strip()


def _non_members_with_copies(data: AuditData, planted: SyntheticRows, candidates: Candidates) -> float:
    """Share of scored non-members whose full row appears among the synthetic rows."""
    keys = data.holdout_keys[candidates.non_members]
    return float(np.isin(keys, planted.keys).mean()) if len(keys) else 0.0


def _value(checks: list[CheckResult], name: str) -> float:
    check = next((c for c in checks if c.name == name), None)
    return float("nan") if check is None or check.value is None else float(check.value)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."
