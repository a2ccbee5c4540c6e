"""Result types, check specifications and small statistics shared by every audit check.

Pure numeric code: no Django. Every check has a :class:`CheckSpec` in :data:`CHECK_SPECS` that
states its direction, its range, its default threshold, which statistic the threshold is compared
with (the point value or one end of its confidence interval), whether a failure blocks a release,
and whether it enters the verdict at all (``gating``; DCR, k-anonymity and the like are reported
for information only). A check returns a :class:`CheckResult`, which the Django side stores as a
``CheckResult`` row (``to_dict`` gives plain JSON-able values, chart data included).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from scipy.stats import norm

HIGHER_IS_BETTER = "higher_is_better"
LOWER_IS_BETTER = "lower_is_better"

FIDELITY = "fidelity"
UTILITY = "utility"
REIDENTIFICATION = "reidentification"
MEMBERSHIP = "membership"
BIAS = "bias"
DRIFT = "drift"


class AuditInputError(ValueError):
    """The frames or the schema cannot be audited as given (say what to change)."""


@dataclass(frozen=True)
class CheckSpec:
    """What a check measures and how it is judged.

    ``compare`` names the statistic held against the threshold: ``"value"``, ``"ci_low"`` (fail
    only when we are 97.5 % confident a lower-is-better risk exceeds the threshold) or
    ``"ci_high"`` (fail only when we are confident a higher-is-better score is below it).
    """

    name: str
    category: str
    direction: str
    value_range: tuple[float, float]
    threshold: float | None
    description: str
    compare: str = "value"
    blocking: bool = False
    gating: bool = True


@dataclass
class CheckResult:
    """One check's outcome, ready to be stored and drawn.

    ``passed`` is ``None`` when the check was skipped (``skipped_reason`` says why) or when it is
    informational with no threshold. ``chart`` holds plain lists/dicts (series of points or a
    matrix with labels) that a template can draw as SVG.
    """

    name: str
    category: str
    value: float | None
    threshold: float | None
    direction: str
    passed: bool | None
    baseline: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    blocking: bool = False
    gating: bool = True
    value_range: tuple[float, float] = (0.0, 1.0)
    details: dict[str, Any] = field(default_factory=dict)
    chart: dict[str, Any] = field(default_factory=dict)
    skipped_reason: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        """A gating check that ran and did not pass."""
        return self.gating and self.passed is False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["value_range"] = [to_plain(v) for v in self.value_range]
        return to_plain(data)


# Internal label of a missing value (a NUL byte cannot collide with real data); results show it
# as MISSING_DISPLAY, since JSON stores such as PostgreSQL's jsonb refuse NUL characters.
MISSING = "\x00missing"
MISSING_DISPLAY = "(missing)"


def to_plain(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars to Python, NaN/inf to ``None``, the missing label shown."""
    if isinstance(value, dict):
        return {to_plain(str(k)): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, str):
        return value.replace(MISSING, MISSING_DISPLAY)
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _spec(
    name: str,
    category: str,
    direction: str,
    value_range: tuple[float, float],
    threshold: float | None,
    description: str,
    **kwargs: Any,
) -> CheckSpec:
    return CheckSpec(name, category, direction, value_range, threshold, description, **kwargs)


INF = math.inf
# Default thresholds: see bench/bench_calibration.py and tests/audits/test_calibration.py for the
# runs (clean MST at epsilon = 1 and planted verbatim copies, adult and caravan) behind them.
CHECK_SPECS: dict[str, CheckSpec] = {
    s.name: s
    for s in [
        _spec(
            "tvd_1way",
            FIDELITY,
            LOWER_IS_BETTER,
            (0, 1),
            0.10,
            "mean 1-way total variation distance (numeric columns in 20 quantile bins)",
        ),
        _spec(
            "tvd_2way", FIDELITY, LOWER_IS_BETTER, (0, 1), 0.20, "mean 2-way total variation distance over column pairs"
        ),
        _spec(
            "association_difference",
            FIDELITY,
            LOWER_IS_BETTER,
            (0, 1),
            0.10,
            "mean absolute difference of the association matrices (Pearson, Cramer's V, correlation ratio)",
        ),
        _spec(
            "tstr_auc_ratio",
            UTILITY,
            HIGHER_IS_BETTER,
            (0, INF),
            0.80,
            "ROC AUC of a model trained on synthetic rows over one trained on real rows, both scored on the "
            "holdout; fails only when the bootstrap 95 % interval lies below the threshold (a small or "
            "imbalanced holdout measures AUC loosely)",
            compare="ci_high",
        ),
        _spec(
            "exact_copies",
            REIDENTIFICATION,
            LOWER_IS_BETTER,
            (0, 1),
            0.005,
            "training records (found once in the real rows) reproduced verbatim, per synthetic row, "
            "in excess of the rate at which holdout records are (judged less its chance margin; also "
            "fails when a stratified exact test finds copies at 0.1 % and the excess may exceed the threshold)",
            blocking=True,
            compare="ci_low",
        ),
        _spec(
            "unique_row_reproduction",
            REIDENTIFICATION,
            LOWER_IS_BETTER,
            (0, INF),
            0,
            "synthetic rows reproducing in full a training row unique on its quasi-identifiers",
            blocking=True,
        ),
        _spec(
            "k_anonymity",
            REIDENTIFICATION,
            HIGHER_IS_BETTER,
            (1, INF),
            None,
            "smallest equivalence class of the release on the quasi-identifiers",
            gating=False,
        ),
        _spec(
            "l_diversity",
            REIDENTIFICATION,
            HIGHER_IS_BETTER,
            (1, INF),
            None,
            "fewest distinct sensitive values in a quasi-identifier class of the release",
            gating=False,
        ),
        _spec(
            "singling_out_risk",
            REIDENTIFICATION,
            LOWER_IS_BETTER,
            (0, 1),
            0.05,
            "Anonymeter singling-out risk (train vs holdout targets)",
            compare="ci_low",
            blocking=True,
        ),
        _spec(
            "linkability_risk",
            REIDENTIFICATION,
            LOWER_IS_BETTER,
            (0, 1),
            0.02,
            "Anonymeter linkability risk (train vs holdout targets)",
            compare="ci_low",
            blocking=True,
        ),
        _spec(
            "inference_risk",
            REIDENTIFICATION,
            LOWER_IS_BETTER,
            (0, 1),
            0.10,
            "Anonymeter inference risk, worst secret column (train vs holdout targets); skewed "
            "secrets (capital-loss is 0 for 95 % of people) divide by a small 1 - control rate, "
            "hence the wider margin",
            compare="ci_low",
            blocking=True,
        ),
        _spec(
            "distance_to_closest_record",
            REIDENTIFICATION,
            HIGHER_IS_BETTER,
            (0, INF),
            None,
            "median DCR of synthetic rows over the holdout's median DCR (information only)",
            gating=False,
        ),
        _spec(
            "membership_domias_auc",
            MEMBERSHIP,
            LOWER_IS_BETTER,
            (0, 1),
            0.55,
            "ROC AUC of the DOMIAS density-ratio attack (0.5 = random guess)",
            compare="ci_low",
            blocking=True,
        ),
        _spec(
            "membership_domias_tpr",
            MEMBERSHIP,
            LOWER_IS_BETTER,
            (0, 1),
            0.02,
            "TPR at 1 % FPR of the DOMIAS attack (0.01 = random guess)",
            compare="ci_low",
            blocking=True,
        ),
        _spec(
            "membership_distance_auc",
            MEMBERSHIP,
            LOWER_IS_BETTER,
            (0, 1),
            0.55,
            "ROC AUC of the distance-to-closest-synthetic-record attack",
            compare="ci_low",
            blocking=True,
        ),
        _spec(
            "membership_distance_tpr",
            MEMBERSHIP,
            LOWER_IS_BETTER,
            (0, 1),
            0.02,
            "TPR at 1 % FPR of the distance attack (0.01 = random guess)",
            compare="ci_low",
            blocking=True,
        ),
        _spec(
            "membership_outlier_auc",
            MEMBERSHIP,
            LOWER_IS_BETTER,
            (0, 1),
            0.60,
            "best attack AUC on the outlying 10 % (lowest reference density)",
            compare="ci_low",
            blocking=True,
        ),
        _spec(
            "membership_dp_ceiling",
            MEMBERSHIP,
            LOWER_IS_BETTER,
            (-1, 1),
            0.0,
            "largest margin of a membership attack's TPR (lower confidence limit) above the DP ceiling "
            "e^ε·FPR + δ at 1 % and 0.1 % FPR; above 0 the DP claim is contradicted (not a policy threshold)",
            blocking=True,
        ),
        _spec(
            "disparate_impact_change",
            BIAS,
            LOWER_IS_BETTER,
            (0, INF),
            0.25,
            "largest |DI(synthetic) - DI(real)| over protected columns",
        ),
        _spec(
            "statistical_parity_change",
            BIAS,
            LOWER_IS_BETTER,
            (0, 2),
            0.10,
            "largest |SPD(synthetic) - SPD(real)| over protected columns",
        ),
        _spec(
            "equal_opportunity_change",
            BIAS,
            LOWER_IS_BETTER,
            (0, 2),
            0.20,
            "largest |EOD(TSTR model) - EOD(TRTR model)| on the holdout over protected columns",
        ),
        _spec("drift_psi", DRIFT, LOWER_IS_BETTER, (0, INF), 0.20, "largest population stability index over columns"),
        _spec(
            "drift_js", DRIFT, LOWER_IS_BETTER, (0, 1), 0.10, "largest Jensen-Shannon distance (base 2) over columns"
        ),
        _spec(
            "drift_association",
            DRIFT,
            LOWER_IS_BETTER,
            (0, 1),
            0.10,
            "largest absolute difference of the association matrices",
        ),
    ]
}


def default_thresholds() -> dict[str, float | None]:
    """Check name to default threshold (a copy: callers may change it)."""
    return {name: spec.threshold for name, spec in CHECK_SPECS.items()}


def judge(
    name: str,
    value: float | None,
    *,
    thresholds: dict[str, float | None] | None = None,
    baseline: float | None = None,
    ci: tuple[float, float] | None = None,
    details: dict[str, Any] | None = None,
    chart: dict[str, Any] | None = None,
    skipped_reason: str | None = None,
) -> CheckResult:
    """Build the :class:`CheckResult` of check ``name``, comparing the statistic its spec names
    with the threshold (``thresholds[name]`` overrides the default)."""
    spec = CHECK_SPECS[name]
    threshold = (thresholds or {}).get(name, spec.threshold)
    ci_low, ci_high = ci if ci is not None else (None, None)
    statistic = {"value": value, "ci_low": ci_low, "ci_high": ci_high}[spec.compare]
    if statistic is None and spec.compare != "value":
        statistic = value
    if skipped_reason is None and statistic is not None and not math.isfinite(statistic):
        skipped_reason = "the statistic is undefined on these data (e.g. an empty group)"
    passed = None
    if skipped_reason is None and threshold is not None and statistic is not None:
        lower_is_better = spec.direction == LOWER_IS_BETTER
        passed = bool(statistic <= threshold if lower_is_better else statistic >= threshold)
    return CheckResult(
        name=name,
        category=spec.category,
        value=_maybe_float(value),
        threshold=threshold,
        direction=spec.direction,
        passed=passed,
        baseline=_maybe_float(baseline),
        ci_low=_maybe_float(ci_low),
        ci_high=_maybe_float(ci_high),
        blocking=spec.blocking,
        gating=spec.gating,
        value_range=spec.value_range,
        details={"compare": spec.compare, "description": spec.description, **(details or {})},
        chart=chart or {},
        skipped_reason=skipped_reason,
    )


def skipped(name: str, reason: str, thresholds: dict[str, float | None] | None = None) -> CheckResult:
    """A result for a check that could not run (no label column, no protected column, ...)."""
    return judge(name, None, thresholds=thresholds, skipped_reason=reason)


def _maybe_float(value: float | None) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------- statistics


def wilson_interval(n_success: int, n_total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (Wilson 1927).

    Parameters
    ----------
    n_success, n_total : int
        Successes and trials; ``n_total = 0`` gives ``(0, 1)``.
    confidence : float
        Two-sided confidence level.

    Returns
    -------
    (low, high) : tuple of float
    """
    if n_total <= 0:
        return 0.0, 1.0
    z = float(norm.ppf(0.5 + confidence / 2))
    p = n_success / n_total
    denominator = 1 + z * z / n_total
    centre = (p + z * z / (2 * n_total)) / denominator
    half = z * math.sqrt(p * (1 - p) / n_total + z * z / (4 * n_total * n_total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class AttackRates:
    """Success counts of an attack on training targets, control targets and a random guesser,
    turned into Anonymeter's privacy risk (Giomi et al. 2023, Sec. 4, Eq. 1-2)."""

    n_main: int
    n_main_success: int
    n_control: int
    n_control_success: int
    n_baseline: int
    n_baseline_success: int
    confidence: float = 0.95

    def rate(self, n_success: int, n_total: int) -> tuple[float, float]:
        """Wilson point estimate and symmetric error at ``confidence`` (Anonymeter's
        ``success_rate``)."""
        z = float(norm.ppf(0.5 + self.confidence / 2))
        if n_total <= 0:
            return 0.5, 0.5
        denominator = n_total + z * z
        value = (n_success + 0.5 * z * z) / denominator
        variance = n_success * (n_total - n_success) / n_total
        return value, (z / denominator) * math.sqrt(variance + 0.25 * z * z)

    def risk(self) -> tuple[float, float, float]:
        """Risk ``(main - control) / (1 - control)`` clipped to [0, 1], with a 95 % interval from
        propagating both rates' errors (Anonymeter's ``residual_success``)."""
        main, main_error = self.rate(self.n_main_success, self.n_main)
        control, control_error = self.rate(self.n_control_success, self.n_control)
        if control >= 1:
            return 0.0, 0.0, 1.0
        residual = (main - control) / (1 - control)
        error = math.hypot(main_error / (1 - control), control_error * (main - 1) / (1 - control) ** 2)
        clip = lambda x: min(max(x, 0.0), 1.0)  # noqa: E731
        return clip(residual), clip(residual - error), clip(residual + error)

    def as_details(self) -> dict[str, Any]:
        return {
            "main_rate": self.n_main_success / max(self.n_main, 1),
            "control_rate": self.n_control_success / max(self.n_control, 1),
            "baseline_rate": self.n_baseline_success / max(self.n_baseline, 1),
            "n_main": self.n_main,
            "n_control": self.n_control,
            "n_baseline": self.n_baseline,
            "confidence": self.confidence,
            "main_ci": list(wilson_interval(self.n_main_success, self.n_main, self.confidence)),
            "control_ci": list(wilson_interval(self.n_control_success, self.n_control, self.confidence)),
            "baseline_ci": list(wilson_interval(self.n_baseline_success, self.n_baseline, self.confidence)),
        }
