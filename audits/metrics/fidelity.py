"""Fidelity: how closely the synthetic rows reproduce the real training rows' distribution.

- 1-way total variation distance (TVD) per column and its mean; numeric columns are cut into 20
  quantile bins of the real training data. TVD is in [0, 1]; 0 is identical, 1 disjoint.
- 2-way TVD averaged over all column pairs (the statistics MST itself preserves; McKenna et al.
  2021, Sec. 2).
- Association-matrix difference: Pearson's r for numeric pairs, Cramer's V (Cramer 1946, Sec.
  21.9) for categorical pairs and the correlation ratio eta (Pearson 1903) for mixed pairs; the
  check value is the mean absolute difference over pairs, in [0, 1].
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from audits.metrics.base import CHECK_SPECS, CheckResult, judge
from audits.metrics.encoding import Discretiser, TableSchema, category_values, numeric_values
from audits.metrics.limits import fidelity_limit, sampling_floor


def total_variation(p_codes: np.ndarray, q_codes: np.ndarray, n_levels: int) -> float:
    """TVD ``0.5 * sum |p - q|`` between the empirical distributions of two code vectors.

    Parameters
    ----------
    p_codes, q_codes : ndarray of int, shape (n,) and (m,)
        Codes in ``[0, n_levels)``.
    """
    p = np.bincount(p_codes, minlength=n_levels) / max(len(p_codes), 1)
    q = np.bincount(q_codes, minlength=n_levels) / max(len(q_codes), 1)
    return 0.5 * float(np.abs(p - q).sum())


def fidelity_checks(
    train: pd.DataFrame,
    synthetic: pd.DataFrame,
    schema: TableSchema,
    thresholds: dict[str, float | None] | None = None,
    *,
    holdout: pd.DataFrame | None = None,
    noise: dict[str, float] | None = None,
) -> list[CheckResult]:
    """1-way TVD, 2-way TVD and association difference of ``synthetic`` against ``train``.

    With ``holdout``, each check is judged against its calibrated limit
    (:func:`audits.metrics.limits.fidelity_limit`): the holdout's own distance from ``train`` at
    the synthetic size (:func:`holdout_floor`), combined with ``noise`` (the generator's
    predicted noise error per check, when known), against the purpose's threshold.
    """
    values, details, charts = fidelity_statistics(train, synthetic, schema)
    limits = {}
    if holdout is not None:
        independent = {"association_difference": independence_value(train, holdout, schema, len(synthetic))}
        for name, floor in holdout_floor(train, holdout, schema, len(synthetic)).items():
            threshold = (thresholds or {}).get(name, CHECK_SPECS[name].threshold)
            limits[name] = fidelity_limit(name, threshold, floor, (noise or {}).get(name), independent.get(name))
    results = []
    for name, value in values.items():
        limit = limits.get(name)
        judged = thresholds if limit is None else {**(thresholds or {}), name: limit.limit}
        extra = {} if limit is None else {"calibration": limit.to_dict()}
        undecidable = limit is not None and limit.limit is not None and not limit.decidable
        results.append(
            judge(
                name,
                value,
                thresholds=judged,
                baseline=0.0 if limit is None else limit.expected,
                details={**details[name], **extra},
                chart=charts.get(name),
                skipped_reason=NOT_DECIDABLE if undecidable else None,
            )
        )
    return results


NOT_DECIDABLE = (
    "not decidable: at this size and ε the generator's DP noise is expected to remove as much of the "
    "columns' association as making them independent would, so a clean release cannot be told from one "
    "that keeps no association (raise ε or the number of source rows)"
)


def independence_value(
    train: pd.DataFrame, holdout: pd.DataFrame, schema: TableSchema, n_synthetic: int, repeats: int = 2
) -> float:
    """``association_difference`` of a release that keeps no association: holdout rows (at most
    ``n_synthetic``) with each column permuted on its own, against the training rows (mean of
    ``repeats`` draws). Measured, like the floor, so small-sample bias is included."""
    rng = np.random.default_rng(len(train) * 7919 + n_synthetic + 1)
    columns = list(schema.columns)
    real = association_matrix(train, schema)
    upper = np.triu_indices(len(columns), k=1)
    if not upper[0].size:
        return 0.0
    values = []
    for _ in range(repeats):
        rows = rng.choice(len(holdout), min(n_synthetic, len(holdout)), replace=False)
        sample = holdout.iloc[np.sort(rows)].reset_index(drop=True)
        shuffled = pd.DataFrame({c: sample[c].to_numpy()[rng.permutation(len(sample))] for c in columns})
        values.append(float(np.abs(real - association_matrix(shuffled, schema))[upper].mean()))
    return float(np.mean(values))


def holdout_floor(
    train: pd.DataFrame, holdout: pd.DataFrame, schema: TableSchema, n_synthetic: int, repeats: int = 2
) -> dict[str, float]:
    """The sampling floor at the synthetic size: each statistic of ``n_synthetic`` holdout rows
    against the training rows (mean of ``repeats`` draws without replacement), so small-sample
    effects such as the upward bias of Cramer's V are measured, not modelled. A release larger
    than the holdout gets the whole holdout's value rescaled (:func:`sampling_floor`)."""
    if n_synthetic >= len(holdout):
        values, _, _ = fidelity_statistics(train, holdout, schema)
        return {k: sampling_floor(v, len(train), len(holdout), n_synthetic) for k, v in values.items()}
    rng = np.random.default_rng(len(train) * 7919 + n_synthetic)
    draws = [
        fidelity_statistics(train, holdout.iloc[np.sort(rng.choice(len(holdout), n_synthetic, replace=False))], schema)[
            0
        ]
        for _ in range(repeats)
    ]
    return {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}


def fidelity_statistics(
    train: pd.DataFrame, other: pd.DataFrame, schema: TableSchema
) -> tuple[dict[str, float], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Values, details and chart data of the three fidelity statistics of ``other`` against
    ``train``."""
    discretiser = Discretiser(schema).fit(train, other)
    real, fake = discretiser.transform(train), discretiser.transform(other)
    columns = list(schema.columns)
    sizes = [discretiser.n_levels(c) for c in columns]
    one_way = {c: total_variation(real[:, i], fake[:, i], sizes[i]) for i, c in enumerate(columns)}
    two_way = {}
    for i, j in itertools.combinations(range(len(columns)), 2):
        two_way[(columns[i], columns[j])] = total_variation(
            real[:, i] * sizes[j] + real[:, j], fake[:, i] * sizes[j] + fake[:, j], sizes[i] * sizes[j]
        )
    real_assoc = association_matrix(train, schema)
    fake_assoc = association_matrix(other, schema)
    difference = np.abs(real_assoc - fake_assoc)
    upper = difference[np.triu_indices(len(columns), k=1)]
    marginals = [_marginal(discretiser, real[:, i], fake[:, i], c) for i, c in enumerate(columns)]
    worst_pairs = sorted(two_way.items(), key=lambda kv: -kv[1])[:10]
    values = {
        "tvd_1way": float(np.mean(list(one_way.values()))),
        "tvd_2way": float(np.mean(list(two_way.values()))) if two_way else 0.0,
        "association_difference": float(upper.mean()) if upper.size else 0.0,
    }
    details: dict[str, dict[str, Any]] = {
        "tvd_1way": {"per_column": one_way, "worst_column": max(one_way, key=lambda column: one_way[column])},
        "tvd_2way": {"n_pairs": len(two_way), "worst_pairs": [{"columns": list(k), "tvd": v} for k, v in worst_pairs]},
        "association_difference": {"max": float(upper.max()) if upper.size else 0.0},
    }
    charts: dict[str, dict[str, Any]] = {
        "tvd_1way": {"kind": "marginals", "columns": marginals},
        "association_difference": {
            "kind": "matrix",
            "labels": columns,
            "matrix": difference.round(4).tolist(),
            "real": real_assoc.round(4).tolist(),
            "synthetic": fake_assoc.round(4).tolist(),
        },
    }
    return values, details, charts


def _marginal(discretiser: Discretiser, real: np.ndarray, fake: np.ndarray, column: str) -> dict[str, Any]:
    levels = discretiser.levels_[column] + ["unseen"]
    n = len(levels)
    p = np.bincount(real, minlength=n)[:n] / max(len(real), 1)
    q = np.bincount(fake, minlength=n)[:n] / max(len(fake), 1)
    keep = (p > 0) | (q > 0)
    return {
        "column": column,
        "levels": [lv for lv, k in zip(levels, keep, strict=True) if k],
        "real": p[keep].round(5).tolist(),
        "synthetic": q[keep].round(5).tolist(),
    }


def association_matrix(frame: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """Symmetric ``(n_columns, n_columns)`` matrix of association strengths in [0, 1] (|Pearson r|
    numeric-numeric, Cramer's V categorical-categorical, correlation ratio mixed); ones on the
    diagonal, zeros where a column is constant."""
    columns = list(schema.columns)
    numeric = {c: numeric_values(frame[c]) for c in columns if c in schema.numeric}
    codes = {c: pd.factorize(category_values(frame[c]))[0] for c in columns if c not in numeric}
    matrix = np.eye(len(columns))
    for i, j in itertools.combinations(range(len(columns)), 2):
        a, b = columns[i], columns[j]
        if a in numeric and b in numeric:
            value = _pearson(numeric[a], numeric[b])
        elif a in codes and b in codes:
            value = cramers_v(codes[a], codes[b])
        else:
            cat, num = (codes[a], numeric[b]) if a in codes else (codes[b], numeric[a])
            value = correlation_ratio(cat, num)
        matrix[i, j] = matrix[j, i] = value
    return matrix


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    if len(x) < 2 or x.std() == 0 or y.std() == 0:
        return 0.0
    return float(abs(np.corrcoef(x, y)[0, 1]))


def cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    """Cramer's V of two code vectors: ``sqrt(chi2 / (n * (min(r, c) - 1)))`` in [0, 1]."""
    ra, rb = a.max() + 1, b.max() + 1
    if ra < 2 or rb < 2:
        return 0.0
    table = np.bincount(a * rb + b, minlength=ra * rb).reshape(ra, rb).astype(float)
    n = table.sum()
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / n
    mask = expected > 0
    chi2 = float((((table - expected) ** 2)[mask] / expected[mask]).sum())
    return float(np.sqrt(chi2 / (n * (min(ra, rb) - 1))))


def correlation_ratio(categories: np.ndarray, values: np.ndarray) -> float:
    """Correlation ratio eta = sqrt(between-group / total sum of squares), in [0, 1]."""
    keep = ~np.isnan(values)
    categories, values = categories[keep], values[keep]
    if len(values) < 2:
        return 0.0
    total = float(((values - values.mean()) ** 2).sum())
    if total == 0:
        return 0.0
    counts = np.bincount(categories)
    sums = np.bincount(categories, weights=values)
    present = counts > 0
    between = float((sums[present] ** 2 / counts[present]).sum() - values.sum() ** 2 / len(values))
    return float(np.sqrt(max(between, 0.0) / total))
