"""What a requester or recipient may read of an audit (the rule is in docs/release.md).

Everything a requester or recipient can read is a release: computed from the synthetic rows, or
differentially private and charged to the ledger, or kept with stewards, approvers and auditors.
The audit's checks compare the synthetic rows with the real training and holdout rows and are not
differentially private, so a requester sees, per check, its name, category, direction, the
purpose's threshold and verdict, and a value only for the checks computed from the release's rows
alone (k-anonymity and l-diversity of the release). Rounding a real-data value is no protection:
at a rounding edge one person's row moves it a whole step. Not the limit a check was judged
against when it was calibrated to the real rows (the purpose's threshold stands in). Per-column
details, chart data and the source's class shares stay with stewards, approvers and auditors.
The verdicts are the one function of the real rows a recipient reads: they are the gate's decision.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

from django.contrib.auth.models import User

from audits.models import AuditRun, CheckResult
from governance.models import Role
from governance.permissions import user_has_role

VALUE_DECIMALS = 2
# checks computed from the release's rows alone (audits.metrics.reidentification.k_anonymity_checks):
# their values are statistics of the synthetic rows, which the recipient holds anyway
SYNTHETIC_ONLY_CHECKS = frozenset({"k_anonymity", "l_diversity"})
RECIPIENT_CHECK_FIELDS = ("name", "category", "direction", "threshold", "passed", "blocking", "gating")


def coarse_value(value: float | None) -> float | None:
    """A check value or baseline as a recipient may read it: two decimals, infinities kept."""
    if value is None or not math.isfinite(value):
        return value
    return round(float(value), VALUE_DECIMALS)


def recipient_threshold(check: Any) -> float | None:
    """The limit a recipient reads: the purpose's threshold (policy). A limit calibrated to the data
    (fidelity: the real holdout's own distance from the training rows; bias: the real groups' sizes
    and rates) is a statistic of the real rows, so it stays with stewards, approvers and auditors."""
    calibration = (getattr(check, "details", None) or {}).get("calibration")
    if isinstance(calibration, dict):
        parts = calibration.values() if "purpose_threshold" not in calibration else [calibration]
        declared = [
            part["purpose_threshold"] for part in parts if isinstance(part, dict) and "purpose_threshold" in part
        ]
        if declared:
            return declared[0]
    return getattr(check, "threshold", None)


def recipient_value(check: Any, value: float | None) -> float | None:
    """A check's value or baseline as a recipient reads it: only for a check computed from the
    release's rows alone (:data:`SYNTHETIC_ONLY_CHECKS`); every other value compares the release
    with the real rows, so it stays with stewards, approvers and auditors."""
    return coarse_value(value) if getattr(check, "name", "") in SYNTHETIC_ONLY_CHECKS else None


def recipient_check(check: CheckResult) -> dict[str, Any]:
    """One check result (a ``CheckResult`` row) as a requester or recipient may read it."""
    data = {name: getattr(check, name) for name in RECIPIENT_CHECK_FIELDS}
    data.update(
        threshold=recipient_threshold(check),
        value=recipient_value(check, check.value),
        baseline=recipient_value(check, check.baseline),
        ci_low=None,
        ci_high=None,
        skipped_reason="skipped" if check.skipped_reason else "",
        seconds=None,
        details={},
        chart={},
        verdict=check.verdict,
    )
    return data


def reads_real_diagnostics(user: User) -> bool:
    """Stewards, approvers and auditors read the internal audit report; everyone else the recipient view."""
    return user_has_role(user, Role.STEWARD, Role.APPROVER, Role.AUDITOR)


def recipient_run_data(data: dict[str, Any], run: AuditRun) -> dict[str, Any]:
    """A serialized audit run cut to what a requester may read: verdicts and thresholds, values of the
    checks of the release's rows alone, no details, charts or seeds."""
    checks = {check.name: check for check in run.checks.all()}
    data["checks"] = [{**item, **recipient_check(checks[item["name"]])} for item in data["checks"]]
    data["controls"] = [recipient_control(control) for control in data["controls"]]
    data["seed"] = None
    data["timings"] = {}
    data["thresholds"] = {}
    data["datasheet"] = None  # the internal audit report stays with stewards, approvers and auditors
    return data


# Why a control was missed, as a requester reads it. The audit's own explanation states the members
# the attacks scored (at most the real holdout's size), the attack's TPR on the real members, the share
# of real rows with a synthetic twin or the size at which the control would be caught (from the real
# training and holdout sizes): figures of the real rows, one holdout row more moves them.
RECIPIENT_MISSED_CONTROL = (
    "The privacy checks did not catch the planted copies, so on this data they showed no power and the "
    "audit could not decide. Why, with its figures, is in the internal audit report (they compare the "
    "release with the real rows); the request outlook states the synthetic size that decides, from the "
    "dataset's differentially private row estimate."
)


def recipient_control(control: dict[str, Any]) -> dict[str, Any]:
    """A positive control as a requester may read it: the family, whether it was caught and by which
    checks, and for a missed one :data:`RECIPIENT_MISSED_CONTROL` (not the audit's explanation). Not
    the copies planted: capped by the members scored, they can equal the real holdout's size."""
    keep = ("family", "caught", "caught_by", "share")
    explanation = "" if control.get("caught") else RECIPIENT_MISSED_CONTROL
    return {name: control.get(name) for name in keep} | {"checks": [], "n_planted": None, "explanation": explanation}


def recipient_check_view(check: CheckResult) -> SimpleNamespace:
    """:func:`recipient_check` with attribute access, for templates and text tables."""
    return SimpleNamespace(**recipient_check(check))
