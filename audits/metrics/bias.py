"""Bias: does the synthetic data keep the real data's group disparities, and does a model trained
on it treat groups as one trained on real data does?

With AIF360 (Bellamy et al. 2018): for each protected column (privileged group = the declared
``privileged`` value, else the majority value of the training rows) and the label (favourable
= the declared ``favourable`` value, else the minority class):

- disparate impact ``P(y=1 | unprivileged) / P(y=1 | privileged)`` and statistical parity
  difference ``P(y=1 | unprivileged) - P(y=1 | privileged)`` (Feldman et al. 2015, Sec. 2) of the
  real training rows, the synthetic rows and an optional released (e.g. rebalanced) frame;
- the equal-opportunity difference ``TPR(unprivileged) - TPR(privileged)`` (Hardt et al. 2016,
  Sec. 3) of the TSTR model and of the TRTR model on the holdout.

The checks take the largest absolute change over protected columns (lower is better).
"""

from __future__ import annotations

import functools
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audits.metrics.base import CHECK_SPECS, CheckResult, judge, skipped
from audits.metrics.encoding import TableSchema, category_values
from audits.metrics.limits import MAX_RELAXATION
from audits.metrics.utility import UtilityModels, favourable_class, half_split_predictions

Thresholds = dict[str, float | None] | None
BIAS_CHECKS = ("disparate_impact_change", "statistical_parity_change", "equal_opportunity_change")
# standard deviations of a clean change allowed per protected column (two-sided 99 %)
Z_LIMIT = 2.576


@functools.cache
def _aif360() -> Any:
    """Import AIF360's metrics quietly (it logs about optional extras it does not need here), once.

    Only the root logger's level and the warning filters are changed around the import, never
    ``sys.stderr``: audits also run in background threads, and swapping the process-wide stderr
    from one thread left another thread's (or pytest's) stream in place after it was closed.
    """
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from aif360.datasets import BinaryLabelDataset
            from aif360.metrics import BinaryLabelDatasetMetric, ClassificationMetric
    finally:
        logger.setLevel(level)
    return BinaryLabelDataset, BinaryLabelDatasetMetric, ClassificationMetric


def privileged_value(train: pd.DataFrame, schema: TableSchema, column: str) -> str:
    declared = schema.extras[column].get("privileged")
    if declared is not None:
        return str(declared)
    counts = pd.Series(category_values(train[column])).value_counts()
    return str(counts.sort_index().idxmax())


def _dataset(protected: np.ndarray, labels: np.ndarray) -> Any:
    binary_label_dataset, _, _ = _aif360()
    frame = pd.DataFrame({"protected": protected.astype(float), "label": labels.astype(float)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return binary_label_dataset(
            df=frame,
            label_names=["label"],
            protected_attribute_names=["protected"],
            favorable_label=1.0,
            unfavorable_label=0.0,
        )


GROUPS = {"unprivileged_groups": [{"protected": 0.0}], "privileged_groups": [{"protected": 1.0}]}


def group_rates(frame: pd.DataFrame, column: str, privileged: str, label: str, favourable: str) -> dict[str, float]:
    """Disparate impact and statistical parity difference of one frame (AIF360)."""
    _, dataset_metric, _ = _aif360()
    protected = category_values(frame[column]) == privileged
    labels = category_values(frame[label]) == favourable
    if protected.all() or not protected.any():
        return {"disparate_impact": math.nan, "statistical_parity_difference": math.nan}
    metric = dataset_metric(_dataset(protected, labels), **GROUPS)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "disparate_impact": float(metric.disparate_impact()),
            "statistical_parity_difference": float(metric.statistical_parity_difference()),
        }


def equal_opportunity(
    holdout: pd.DataFrame, column: str, privileged: str, truth: np.ndarray, predictions: np.ndarray
) -> float:
    """Equal-opportunity difference of ``predictions`` on the holdout (AIF360)."""
    _, _, classification_metric = _aif360()
    protected = category_values(holdout[column]) == privileged
    real, predicted = _dataset(protected, truth), _dataset(protected, predictions)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(classification_metric(real, predicted, **GROUPS).equal_opportunity_difference())


def bias_checks(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    models: UtilityModels | str | None = None,
    *,
    released: pd.DataFrame | None = None,
    thresholds: Thresholds = None,
    cell_noise: dict[str, float] | None = None,
    random_state: int = 0,
) -> list[CheckResult]:
    """Disparate-impact, statistical-parity and equal-opportunity changes (see module doc), each
    judged per protected column against its calibrated limit (:func:`rate_limits`,
    :func:`equal_opportunity_limit`). ``cell_noise`` is the generator's predicted noise per cell
    of the (label, protected column) table, in training rows
    (:func:`audits.metrics.prediction.predict_noise`); without it sampling alone calibrates."""
    protected = schema.with_role("protected")
    target = favourable_class(train, schema)
    reason = (
        "the schema declares no protected column"
        if not protected
        else "the schema declares no label column"
        if target is None
        else None
    )
    if reason or target is None:  # the reason is always set when there is no label
        return [skipped(name, reason or "the schema declares no label column", thresholds) for name in BIAS_CHECKS]
    label, favourable = target
    frames = {"real": train, "synthetic": synthetic, **({"released": released} if released is not None else {})}
    per_column: dict[str, Any] = {}
    limits: dict[str, dict[str, BiasLimit]] = {name: {} for name in BIAS_CHECKS}
    halves = half_split_predictions(train, holdout, schema, random_state) if isinstance(models, UtilityModels) else []
    for column in protected:
        privileged = privileged_value(train, schema, column)
        rates = {name: group_rates(f, column, privileged, label, favourable) for name, f in frames.items()}
        entry = {"privileged": privileged, **rates}
        real = GroupCounts.of(train, column, privileged, label, favourable)
        fake = GroupCounts.of(synthetic, column, privileged, label, favourable)
        unprivileged_cells = max(_n_categories(train, schema, column) - 1, 1)
        noise = (cell_noise or {}).get(column)
        entry["groups"] = {"real": real.to_dict(), "synthetic": fake.to_dict()}
        for name, limit in rate_limits(
            real, fake, noise, unprivileged_cells, thresholds, rates["real"], rates["synthetic"]
        ).items():
            limits[name][column] = limit
        if isinstance(models, UtilityModels):
            opportunity = {
                "trtr": equal_opportunity(holdout, column, privileged, models.holdout_truth, models.trtr_predictions),
                "tstr": equal_opportunity(holdout, column, privileged, models.holdout_truth, models.tstr_predictions),
            }
            entry["equal_opportunity"] = opportunity
            change = abs(opportunity["tstr"] - opportunity["trtr"])
            limits["equal_opportunity_change"][column] = equal_opportunity_limit(
                holdout,
                column,
                privileged,
                models,
                change,
                thresholds,
                halves=halves,
                n_train=len(train),
                n_synthetic=len(synthetic),
            )
        per_column[column] = entry
    chart = {
        "kind": "grouped_bars",
        "columns": protected,
        "series": list(frames),
        "disparate_impact": [[per_column[c][s]["disparate_impact"] for s in frames] for c in protected],
        "statistical_parity_difference": [
            [per_column[c][s]["statistical_parity_difference"] for s in frames] for c in protected
        ],
    }
    details = {"label": label, "favourable": favourable, "per_column": per_column}
    results = [
        _judge_columns("disparate_impact_change", limits["disparate_impact_change"], thresholds, details, chart),
        _judge_columns("statistical_parity_change", limits["statistical_parity_change"], thresholds, details, chart),
    ]
    if isinstance(models, UtilityModels):
        results.append(
            _judge_columns("equal_opportunity_change", limits["equal_opportunity_change"], thresholds, details, {})
        )
    else:
        results.append(
            skipped("equal_opportunity_change", models if isinstance(models, str) else "no utility models", thresholds)
        )
    return results


# ---------------------------------------------------------------------- calibrated limits


@dataclass(frozen=True)
class GroupCounts:
    """Rows and favourable rows of the unprivileged (every value but the privileged one) and the
    privileged group of one protected column in one frame."""

    n_unprivileged: int
    favourable_unprivileged: int
    n_privileged: int
    favourable_privileged: int

    @classmethod
    def of(cls, frame: pd.DataFrame, column: str, privileged: str, label: str, favourable: str) -> GroupCounts:
        group = category_values(frame[column]) == privileged
        good = category_values(frame[label]) == favourable
        return cls(int((~group).sum()), int((good & ~group).sum()), int(group.sum()), int((good & group).sum()))

    def to_dict(self) -> dict[str, int]:
        return {
            "n_unprivileged": self.n_unprivileged,
            "favourable_unprivileged": self.favourable_unprivileged,
            "n_privileged": self.n_privileged,
            "favourable_privileged": self.favourable_privileged,
        }


@dataclass(frozen=True)
class BiasLimit:
    """One protected column's change and the limit it is held to, with what the limit is made of.

    ``sd`` is the predicted standard deviation of the change for a clean release (sampling and,
    when predicted, the generator's noise); ``limit`` is the larger of the purpose's threshold and
    :data:`Z_LIMIT` standard deviations. ``undecidable`` says why the column cannot be judged
    (an empty group, or a limit above :data:`audits.metrics.limits.MAX_RELAXATION` times the
    threshold: at these group sizes sampling and noise alone move the statistic further than
    a bias the purpose cares about); such a column still fails beyond ``limit``."""

    check: str
    change: float
    threshold: float | None
    sd_sampling: float
    sd_noise: float | None
    limit: float | None
    undecidable: str = ""

    @property
    def decides(self) -> bool:
        """Judged: decidable, or so far beyond even the wide limit of a small group that sampling
        and noise cannot explain it (labels flipped for a group of 100 rows)."""
        if not math.isfinite(self.change):
            return False
        return not self.undecidable or (self.limit is not None and self.change > self.limit)

    @property
    def sd(self) -> float:
        return math.hypot(self.sd_sampling, self.sd_noise or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "purpose_threshold": self.threshold,
            "sampling_sd": self.sd_sampling,
            "predicted_noise_sd": self.sd_noise,
            "calibrated_limit": self.limit,
            "z": Z_LIMIT,
            "max_relaxation": MAX_RELAXATION,
            "decidable": not self.undecidable,
            **({"not_decidable": self.undecidable} if self.undecidable else {}),
        }


def _cap(check: str, threshold: float) -> float:
    return min(MAX_RELAXATION * threshold, CHECK_SPECS[check].value_range[1])


def _smoothed(successes: int, trials: int) -> float:
    """``(x + 1/2) / (n + 1)``: a rate that is never exactly 0 or 1, for variances of small counts."""
    return (successes + 0.5) / (trials + 1)


def rate_variances(
    real: GroupCounts, synthetic: GroupCounts, cell_noise: float | None, unprivileged_cells: int
) -> dict[str, tuple[float, float, float]]:
    """Per group (``"unprivileged"``, ``"privileged"``): the smoothed favourable rate of the
    training rows, and the variance of the release's rate minus the training rows' rate that
    sampling and the generator's noise explain.

    Sampling: a clean release, or a fresh real sample, is a sample of ``m_g`` rows of the group
    and the training rows one of ``n_g``: ``p (1 - p) (1/m_g + 1/n_g)``. Noise: each cell of the
    (label, protected) table carries noise of standard deviation ``sigma`` rows at the training
    size, the group's favourable and other counts sum ``c_g`` cells each, so the rate moves by
    ``c_g sigma^2 ((1 - p)^2 + p^2) / n_g^2`` (delta method on ``a / (a + b)``).
    """
    out = {}
    for group, n, good, m, cells in (
        (
            "unprivileged",
            real.n_unprivileged,
            real.favourable_unprivileged,
            synthetic.n_unprivileged,
            unprivileged_cells,
        ),
        ("privileged", real.n_privileged, real.favourable_privileged, synthetic.n_privileged, 1),
    ):
        p = _smoothed(good, n)
        sampling = p * (1 - p) * (1 / max(m, 1) + 1 / max(n, 1))
        noise = cells * (cell_noise or 0.0) ** 2 * ((1 - p) ** 2 + p**2) / max(n, 1) ** 2
        out[group] = (p, sampling, noise)
    return out


def rate_limits(
    real: GroupCounts,
    synthetic: GroupCounts,
    cell_noise: float | None,
    unprivileged_cells: int,
    thresholds: Thresholds,
    real_rates: dict[str, float],
    synthetic_rates: dict[str, float],
) -> dict[str, BiasLimit]:
    """Calibrated limits of the disparate-impact and statistical-parity changes of one column.

    Statistical parity difference ``p_U - p_P``: standard deviation ``sqrt(V_U + V_P)``.
    Disparate impact ``p_U / p_P`` is judged on the log scale (Katz et al. 1978's interval for a
    ratio of proportions: a ratio of rare rates is skewed, a symmetric interval would be too
    narrow above): ``s = sqrt(V_U / p_U^2 + V_P / p_P^2)``, and a change upward is allowed up to
    ``DI (e^(z s) - 1)``, downward ``DI (1 - e^(-z s))``.
    """
    empty = [
        group for group, rows in (("unprivileged", real.n_unprivileged), ("privileged", real.n_privileged)) if rows == 0
    ] + [
        f"{group} (synthetic)"
        for group, rows in (("unprivileged", synthetic.n_unprivileged), ("privileged", synthetic.n_privileged))
        if rows == 0
    ]
    variances = rate_variances(real, synthetic, cell_noise, unprivileged_cells)
    (p_u, sampling_u, noise_u), (p_p, sampling_p, noise_p) = variances["unprivileged"], variances["privileged"]
    with_noise = cell_noise is not None
    out = {}
    # statistical parity
    name = "statistical_parity_change"
    change = abs(synthetic_rates["statistical_parity_difference"] - real_rates["statistical_parity_difference"])
    out[name] = _limit(
        name,
        change,
        thresholds,
        math.sqrt(sampling_u + sampling_p),
        math.sqrt(noise_u + noise_p) if with_noise else None,
        empty,
    )
    # disparate impact, on the log scale
    name = "disparate_impact_change"
    real_di, fake_di = real_rates["disparate_impact"], synthetic_rates["disparate_impact"]
    change = abs(fake_di - real_di)
    log_sampling = math.sqrt(sampling_u / p_u**2 + sampling_p / p_p**2)
    log_noise = math.sqrt(noise_u / p_u**2 + noise_p / p_p**2) if with_noise else None
    scale = p_u / p_p
    upward = math.isfinite(fake_di) and math.isfinite(real_di) and fake_di >= real_di
    log_sd = math.hypot(log_sampling, log_noise or 0.0)
    allowed_up = scale * math.expm1(Z_LIMIT * log_sd)
    allowed = allowed_up if upward else scale * -math.expm1(-Z_LIMIT * log_sd)
    # standard deviations on the DI scale, for the record (delta method)
    out[name] = _limit(
        name,
        change,
        thresholds,
        scale * log_sampling,
        scale * log_noise if log_noise is not None else None,
        empty,
        allowed=allowed,
        widest=allowed_up,
    )
    return out


def equal_opportunity_limit(
    holdout: pd.DataFrame,
    column: str,
    privileged: str,
    models: UtilityModels,
    change: float,
    thresholds: Thresholds,
    *,
    halves: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    n_train: int = 0,
    n_synthetic: int = 0,
) -> BiasLimit:
    """Calibrated limit of the equal-opportunity change of one column.

    A model trained on a clean release (or on a fresh real sample of its size ``m``) is another
    draw of a model of this population, measured on the same holdout. Its equal-opportunity
    difference moves from the TRTR model's by two kinds of sampling, and the larger estimate of
    the two is taken:

    - measured (``halves``, :func:`audits.metrics.utility.half_split_predictions`): two models
      trained on disjoint halves of the ``n`` training rows differ by ``D`` with variance about
      ``4 c / n`` when one trained on ``k`` rows varies by ``c / k``; a model of ``m`` rows
      against one of ``n`` then differs with variance ``mean(D^2) n (1/m + 1/n) / 4``;
    - analytic: each true-positive rate is measured on the holdout's ``k_g`` favourable rows of
      group ``g``, so two draws differ with variance up to ``sum_g 2 t_g (1 - t_g) / k_g``
      (``t_g`` the TRTR model's smoothed rate).

    The generator's noise is not modelled here: it moves the model through the group rates,
    which the two checks above judge with it.
    """
    group = category_values(holdout[column]) == privileged
    truth = models.holdout_truth.astype(bool)
    variance, empty = 0.0, []
    for name, members in (("unprivileged", ~group), ("privileged", group)):
        positives = truth & members
        k = int(positives.sum())
        if k == 0:
            empty.append(f"{name} (no favourable holdout rows)")
            continue
        t = _smoothed(int(models.trtr_predictions[positives].astype(bool).sum()), k)
        variance += 2 * t * (1 - t) / k
    differences = [
        equal_opportunity(holdout, column, privileged, models.holdout_truth, a)
        - equal_opportunity(holdout, column, privileged, models.holdout_truth, b)
        for a, b in halves
    ]
    differences = [d for d in differences if math.isfinite(d)]
    if differences and n_train and n_synthetic:
        measured = float(np.mean(np.square(differences))) * n_train * (1 / n_synthetic + 1 / n_train) / 4
        variance = max(variance, measured)
    return _limit("equal_opportunity_change", change, thresholds, math.sqrt(variance), None, empty)


def _limit(
    check: str,
    change: float,
    thresholds: Thresholds,
    sd_sampling: float,
    sd_noise: float | None,
    empty: list[str],
    *,
    allowed: float | None = None,
    widest: float | None = None,
) -> BiasLimit:
    threshold = (thresholds or {}).get(check, CHECK_SPECS[check].threshold)
    sd = math.hypot(sd_sampling, sd_noise or 0.0)
    allowed = Z_LIMIT * sd if allowed is None else allowed
    widest = allowed if widest is None else widest
    if empty:
        return BiasLimit(check, change, threshold, sd_sampling, sd_noise, None, f"empty group: {', '.join(empty)}")
    if threshold is None:
        return BiasLimit(check, change, None, sd_sampling, sd_noise, None)
    limit = max(float(threshold), allowed)
    cap = _cap(check, float(threshold))
    if max(float(threshold), widest) > cap:
        return BiasLimit(
            check,
            change,
            float(threshold),
            sd_sampling,
            sd_noise,
            limit,
            f"at these group sizes sampling{' and DP noise' if sd_noise else ''} alone move the statistic up to "
            f"{widest:.3f} (z = {Z_LIMIT:g}), above the most the threshold {threshold:g} may be relaxed "
            f"({MAX_RELAXATION:g}x, {cap:.3f})",
        )
    return BiasLimit(check, change, float(threshold), sd_sampling, sd_noise, limit)


def _judge_columns(
    name: str, limits: dict[str, BiasLimit], thresholds: Thresholds, details: dict, chart: dict
) -> CheckResult:
    """The column whose change is largest against its limit decides; undecidable columns are
    reported (and fail the check only beyond even their wide limit), and when none decides the
    check says so instead of passing or failing."""
    calibration = {column: limit.to_dict() for column, limit in limits.items()}
    changes = {column: limit.change for column, limit in limits.items()}
    extra = {**details, "changes": changes, "calibration": calibration}
    judged = {c: v for c, v in limits.items() if v.decides}
    if not judged:
        reasons = "; ".join(f"{c}: {v.undecidable or 'undefined on these data'}" for c, v in limits.items())
        return judge(
            name, None, thresholds=thresholds, details=extra, chart=chart, skipped_reason=f"not decidable ({reasons})"
        )
    if any(v.limit is None for v in judged.values()):  # the purpose does not judge this check
        worst = max(judged, key=lambda c: judged[c].change)
        return judge(name, judged[worst].change, thresholds=thresholds, baseline=0.0, details=extra, chart=chart)
    worst = max(judged, key=lambda c: _ratio(judged[c]))
    limit = judged[worst]
    return judge(
        name,
        limit.change,
        thresholds={**(thresholds or {}), name: limit.limit},
        baseline=limit.sd * math.sqrt(2 / math.pi),
        details={**extra, "judged_column": worst},
        chart=chart,
    )


def _ratio(limit: BiasLimit) -> float:
    """How far a change is along its limit (a zero limit: any change is infinitely far)."""
    if not limit.limit:
        return math.inf if limit.change > 0 else 0.0
    return limit.change / limit.limit


def _n_categories(train: pd.DataFrame, schema: TableSchema, column: str) -> int:
    declared = schema.extras[column].get("categories")
    return len(declared) if declared else int(pd.Series(category_values(train[column])).nunique())
