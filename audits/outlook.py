"""What a request can expect from its audit, before anything is filed or spent.

``request_outlook`` predicts, from public inputs only (the declared schema, the source's size,
the purpose's policy, ε, δ, the generator and the synthetic size):

- each calibrated fidelity check's expected value and the limit the audit will hold it to
  (:mod:`audits.metrics.prediction`), with a warning when a clean release will probably fail,
  or be noisier than the purpose's threshold;
- whether the membership checks can prove their power at this size, and the smallest size at
  which they can (:mod:`audits.metrics.power`). Below that size the request is refused
  (:func:`audit_power_require`), since its audit could only end inconclusive;
- per protected column, the noise the generator's (label, column) table is predicted to carry
  and the fewest favourable training rows the unprivileged group needs for the audit to judge
  its disparate impact (:func:`bias_outlook`). The bias limits themselves come from the real
  group sizes and rates, known only to the audit, so the predicted verdict does not include
  the bias checks; a group below that size is reported "not decidable", never failed by noise.

The same noise prediction calibrates the audit of the finished job (``fidelity_noise_for``).

``source_rows`` is the exact count only for those who may read it (stewards, approvers,
auditors); a requester's outlook and filing's refusal get the source version's DP row estimate
(``governance.services.budget.version_public_rows``), so nothing here is a function of the
private count for them (issue 11.2).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from audits.metrics.base import CHECK_SPECS
from audits.metrics.bias import Z_LIMIT
from audits.metrics.limits import CALIBRATED_CHECKS, MAX_RELAXATION, fidelity_limit
from audits.metrics.power import DEFAULT_TPR_THRESHOLD, MembershipPower, holdout_rows, membership_power
from audits.metrics.prediction import ASSUMED_CATEGORIES, NoisePrediction, predict_noise
from audits.metrics.suite import DEFAULT_CONTROL_SHARE
from core.errors import ValidationError

logger = logging.getLogger(__name__)
# dp-tvae trains for minutes: fitting it on a surrogate is no preview
PREDICTABLE_GENERATORS = ("mst", "copula")


@dataclass
class Outlook:
    """Predicted fidelity per check, membership power and warnings for one request."""

    n_rows: int
    n_train: int
    n_holdout: int
    fidelity: dict[str, dict[str, Any]]
    membership: MembershipPower
    warnings: list[str] = field(default_factory=list)
    bias: dict[str, dict[str, Any]] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    prediction_error: str = ""
    prediction_error_public: str = ""  # what a requester may read of it (no figure of the private size)
    disclose_rows: bool = True

    @property
    def verdict(self) -> str:
        """``pass``, ``fail`` or ``inconclusive`` as predicted for a clean release; ``unknown`` when
        the generator could not be previewed, so that nothing about fidelity is predicted."""
        if not self.membership.decidable:
            return "inconclusive"
        if any(f["predicted_pass"] is False for f in self.fidelity.values()):
            return "fail"
        return "unknown" if self.prediction_error else "pass"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values. Without ``disclose_rows`` (a requester's view: the number of real rows
        is private) the training and holdout sizes, the members scored and the planted copies are
        null, fidelity figures have 2 decimals and the probability is to the nearest 5 %: exact
        figures that are smooth functions of the row count would give it back."""
        disclose = self.disclose_rows
        probability = self.membership.probability
        return {
            "predicted_verdict": self.verdict,
            "n_rows": self.n_rows,
            "n_train": self.n_train if disclose else None,
            "n_holdout": self.n_holdout if disclose else None,
            "fidelity": self.fidelity if disclose else {check: _coarse(item) for check, item in self.fidelity.items()},
            "membership": {
                "decidable": self.membership.decidable,
                "probability_control_caught": round(probability, 4) if disclose else round(probability * 20) / 20,
                "members_scored": self.membership.n_members if disclose else None,
                "planted_copies": self.membership.n_planted if disclose else None,
                "minimum_rows": self.membership.minimum_rows,
                "explanation": self.membership.explain(disclose_counts=disclose),
            },
            "bias": self.bias if disclose else {column: _coarse_bias(item) for column, item in self.bias.items()},
            "warnings": self.warnings,
            "assumptions": self.assumptions,
            "prediction_error": self.prediction_error if disclose else self.prediction_error_public,
        }


def _coarse(item: dict[str, Any]) -> dict[str, Any]:
    return {key: round(value, 2) if isinstance(value, float) else value for key, value in item.items()}


def _coarse_bias(item: dict[str, Any]) -> dict[str, Any]:
    """A requester's view: the minimum to the nearest 10 rows, no noise figure (both follow the
    private number of training rows a little)."""
    return {"predicted_cell_noise": None, "min_favourable_rows": int(round(item["min_favourable_rows"], -1))}


def request_outlook(
    *,
    schema: dict[str, Any],
    source_rows: int,
    holdout_fraction: float,
    thresholds: dict[str, Any],
    epsilon: float,
    delta: float,
    n_rows: int,
    generator: str,
    generator_params: dict[str, Any] | None = None,
    disclose_rows: bool = True,
) -> Outlook:
    """Predicted audit outcome of a clean release (see the module docstring).

    ``disclose_rows=False`` is the requester's view (see :meth:`Outlook.to_dict`); its warnings
    give figures to 2 decimals and no counts.
    """
    n_holdout = holdout_rows(source_rows, holdout_fraction)
    n_train = source_rows - n_holdout
    power = audit_power(
        source_rows=source_rows, holdout_fraction=holdout_fraction, thresholds=thresholds, n_rows=n_rows
    )
    outlook = Outlook(n_rows, n_train, n_holdout, {}, power, disclose_rows=disclose_rows)
    if not power.decidable:
        sentence = power.explain(disclose_counts=disclose_rows)
        outlook.warnings.append(sentence[:1].upper() + sentence[1:] + ".")
    try:
        noise = fidelity_noise_for(
            schema=schema,
            n_train=n_train,
            n_rows=n_rows,
            epsilon=epsilon,
            delta=delta,
            generator=generator,
            generator_params=generator_params or {},
        )
    except PredictionUnavailableError as error:
        outlook.prediction_error, outlook.prediction_error_public = str(error), error.public
        return outlook
    outlook.assumptions = noise.assumptions
    for check in CALIBRATED_CHECKS:
        _predict_check(outlook, check, thresholds, noise)
    outlook.bias = bias_outlook(schema, noise.cell_noise, thresholds, n_train=n_train, n_rows=n_rows)
    return outlook


def bias_outlook(
    schema: dict[str, Any], cell_noise: dict[str, float], thresholds: dict[str, Any], *, n_train: int, n_rows: int
) -> dict[str, dict[str, Any]]:
    """Per protected column: the predicted noise per cell of its (label, column) table (training
    rows) and the fewest favourable training rows its unprivileged group needs for disparate
    impact to be decidable, at a disparate impact near 1 and a privileged group much larger.

    The audit's log-scale standard deviation (:func:`audits.metrics.bias.rate_limits`) is then
    about ``s^2 = k / a + c sigma^2 / a^2`` for ``a`` favourable rows (``k = 1 + n / m``:
    the release's rows and the training rows both sample; ``c`` unprivileged categories), and
    the column is decidable while ``e^(z s) - 1`` stays within the threshold's cap, that is
    ``s <= s* = ln(1 + cap) / z``: ``a >= (k + sqrt(k^2 + 4 s*^2 c sigma^2)) / (2 s*^2)``.
    """
    threshold = thresholds.get("disparate_impact_change", CHECK_SPECS["disparate_impact_change"].threshold)
    if threshold is None:
        return {}
    cap = MAX_RELAXATION * float(threshold)
    s_star = math.log1p(cap) / Z_LIMIT
    k = 1 + n_train / max(n_rows, 1)
    out = {}
    for column in schema.get("columns", []):
        name = column["name"]
        if column.get("role") != "protected" or name not in cell_noise:
            continue
        categories = column.get("categories") or []
        cells = max(len(categories) - 1, 1) if categories else ASSUMED_CATEGORIES - 1
        sigma = cell_noise[name]
        minimum = (k + math.sqrt(k * k + 4 * s_star**2 * cells * sigma**2)) / (2 * s_star**2)
        out[name] = {"predicted_cell_noise": sigma, "min_favourable_rows": math.ceil(minimum)}
    return out


def _predict_check(outlook: Outlook, check: str, thresholds: dict[str, Any], noise: NoisePrediction) -> None:
    threshold = thresholds.get(check, CHECK_SPECS[check].threshold)
    # before the data is read, the surrogate's own sampling error stands in for the holdout floor
    limit = fidelity_limit(check, threshold, noise.sampling[check], noise.noise[check])
    predicted_pass = None if limit.limit is None else limit.expected <= limit.limit
    outlook.fidelity[check] = {**limit.to_dict(), "predicted_value": limit.expected, "predicted_pass": predicted_pass}
    label = check.replace("_", " ")
    places = 3 if outlook.disclose_rows else 2
    if predicted_pass is False:
        outlook.warnings.append(
            f"{label}: a clean release is expected at {limit.expected:.{places}f}, above the most the purpose's "
            f"threshold {threshold:g} can be relaxed for DP noise ({MAX_RELAXATION:g}x, {limit.limit:.{places}f}): "
            "the audit will probably fail it. Raise ε or the number of source rows, or declare the "
            "columns' categories and bounds."
        )
    elif threshold is not None and limit.expected > float(threshold):
        outlook.warnings.append(
            f"{label}: expected {limit.expected:.{places}f}, above the purpose's threshold {threshold:g}; the audit "
            f"will accept up to {limit.limit:.{places}f} because DP noise at this ε and size predicts it, but the "
            "release will be noisier than the purpose asks."
        )


def audit_power(
    *, source_rows: int, holdout_fraction: float, thresholds: dict[str, Any], n_rows: int
) -> MembershipPower:
    """Membership power of the audit of ``n_rows`` synthetic rows from this source."""
    n_holdout = holdout_rows(source_rows, holdout_fraction)
    threshold = thresholds.get("membership_distance_tpr", CHECK_SPECS["membership_distance_tpr"].threshold)
    return membership_power(
        n_rows,
        source_rows - n_holdout,
        n_holdout,
        share=DEFAULT_CONTROL_SHARE,
        tpr_threshold=float(threshold if threshold is not None else DEFAULT_TPR_THRESHOLD),
    )


def audit_power_require(*, source_rows: int, holdout_fraction: float, thresholds: dict[str, Any], n_rows: int) -> None:
    """Refuse a size at which the audit could only end inconclusive."""
    power = audit_power(
        source_rows=source_rows, holdout_fraction=holdout_fraction, thresholds=thresholds, n_rows=n_rows
    )
    if not power.decidable:
        # only requesters file: the refusal states no count that follows the private number of real rows
        raise ValidationError(
            f"rows: {power.explain(disclose_counts=False)}.",
            extra={"field": "n_rows", "minimum_rows": power.minimum_rows},
        )


class PredictionUnavailableError(Exception):
    """The generator cannot be previewed on a surrogate (named, with the reason).

    ``public`` is what a requester may read: the surrogate has the private training size, so a
    generator's own message can state figures of it (mst's refusal names its DP estimate of the
    surrogate's rows, drawn with a fixed seed: the refusals at two budgets give the size back).
    """

    def __init__(self, message: str, *, public: str | None = None) -> None:
        super().__init__(message)
        self.public = message if public is None else public


def fidelity_noise_for(
    *,
    schema: dict[str, Any],
    n_train: int,
    n_rows: int,
    epsilon: float,
    delta: float,
    generator: str,
    generator_params: dict[str, Any],
) -> NoisePrediction:
    """The generator's predicted noise error at these sizes (cached: the same request's audit
    and form ask the same question)."""
    if generator not in PREDICTABLE_GENERATORS:
        raise PredictionUnavailableError(
            f"no fidelity prediction for {generator!r} (fitting it on a surrogate takes minutes); "
            "the audit calibrates to the holdout's sampling floor only"
        )
    key = json.dumps(
        {
            "schema": _plain(schema),
            "n_train": n_train,
            "n_rows": n_rows,
            "epsilon": float(epsilon),
            "delta": float(delta),
            "generator": generator,
            "params": generator_params,
        },
        sort_keys=True,
        default=str,
    )
    return _cached_noise(key)


@lru_cache(maxsize=64)
def _cached_noise(key: str) -> NoisePrediction:
    question = json.loads(key)
    # the registry imports the generators' numeric stack: only when a prediction is asked for
    from synth_engine.generators import GeneratorError, InsufficientBudgetError, get_generator

    def fit_sample(frame: pd.DataFrame, table: dict[str, Any], rows: int, seed: int) -> pd.DataFrame:
        model = get_generator(question["generator"], **question["params"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(frame, table, epsilon=question["epsilon"], delta=question["delta"], random_state=seed)
        return model.sample(rows)

    try:
        return predict_noise(question["schema"], question["n_train"], question["n_rows"], fit_sample)
    except (GeneratorError, ValueError) as error:
        public = (
            "the generator would refuse a budget this small for this table; raise ε or declare fewer columns"
            if isinstance(error, InsufficientBudgetError)
            else "the generator could not be previewed for these inputs"
        )
        raise PredictionUnavailableError(
            f"the generator could not be previewed on a surrogate: {error}", public=f"no fidelity prediction: {public}"
        ) from error


def _plain(schema: dict[str, Any]) -> dict[str, Any]:
    return {"columns": [dict(sorted(column.items())) for column in schema.get("columns", [])]}
