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
from typing import Any

import numpy as np
import pandas as pd

from audits.metrics.base import CheckResult, judge, skipped
from audits.metrics.encoding import TableSchema, category_values
from audits.metrics.utility import UtilityModels, favourable_class

Thresholds = dict[str, float | None] | None
BIAS_CHECKS = ("disparate_impact_change", "statistical_parity_change", "equal_opportunity_change")


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
) -> list[CheckResult]:
    """Disparate-impact, statistical-parity and equal-opportunity changes (see module doc)."""
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
    for column in protected:
        privileged = privileged_value(train, schema, column)
        rates = {name: group_rates(f, column, privileged, label, favourable) for name, f in frames.items()}
        entry = {"privileged": privileged, **rates}
        if isinstance(models, UtilityModels):
            entry["equal_opportunity"] = {
                "trtr": equal_opportunity(holdout, column, privileged, models.holdout_truth, models.trtr_predictions),
                "tstr": equal_opportunity(holdout, column, privileged, models.holdout_truth, models.tstr_predictions),
            }
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
        _change("disparate_impact_change", per_column, "disparate_impact", thresholds, details, chart),
        _change("statistical_parity_change", per_column, "statistical_parity_difference", thresholds, details, chart),
    ]
    if isinstance(models, UtilityModels):
        changes = {
            c: abs(v["equal_opportunity"]["tstr"] - v["equal_opportunity"]["trtr"]) for c, v in per_column.items()
        }
        results.append(
            judge(
                "equal_opportunity_change",
                _worst(changes),
                thresholds=thresholds,
                baseline=0.0,
                details={**details, "changes": changes},
            )
        )
    else:
        results.append(
            skipped("equal_opportunity_change", models if isinstance(models, str) else "no utility models", thresholds)
        )
    return results


def _change(name: str, per_column: dict, key: str, thresholds: Thresholds, details: dict, chart: dict) -> CheckResult:
    changes = {c: abs(v["synthetic"][key] - v["real"][key]) for c, v in per_column.items()}
    return judge(
        name, _worst(changes), thresholds=thresholds, baseline=0.0, details={**details, "changes": changes}, chart=chart
    )


def _worst(changes: dict[str, float]) -> float:
    finite = [v for v in changes.values() if math.isfinite(v)]
    return max(finite) if finite else math.nan
