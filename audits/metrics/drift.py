"""Drift between two versions of a table (two releases, or a release and its source).

Per column: population stability index (PSI, Siddiqi 2006, ch. 8: ``sum (b - a) ln(b / a)`` over
10 quantile bins of version ``a`` for numeric columns, categories otherwise; 0.1-0.2 is a moderate,
above 0.2 a major shift), a two-sample test (Kolmogorov-Smirnov for numeric columns, Pearson's
chi-squared on the 2 x k table for categorical ones) with its p-value, and the Jensen-Shannon
distance (base 2, in [0, 1]; Lin 1991). Association drift is the largest absolute difference
between the two association matrices (:func:`audits.metrics.fidelity.association_matrix`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp

from audits.metrics.base import CheckResult, judge
from audits.metrics.encoding import (
    Discretiser,
    TableSchema,
    bin_codes,
    numeric_values,
    quantile_edges,
)
from audits.metrics.fidelity import association_matrix

PSI_FLOOR = 1e-4  # empty cells would make PSI infinite


def population_stability_index(a: np.ndarray, b: np.ndarray) -> float:
    """PSI between two histograms of the same cells (counts or shares), ``a`` the reference."""
    p = np.maximum(a / max(a.sum(), 1), PSI_FLOOR)
    q = np.maximum(b / max(b.sum(), 1), PSI_FLOOR)
    return float(((q - p) * np.log(q / p)).sum())


def column_drift(
    a: pd.DataFrame, b: pd.DataFrame, column: str, numeric: bool, discretiser: Discretiser
) -> dict[str, float | str]:
    """PSI, test statistic and p-value, and JS distance of one column."""
    if numeric:
        x, y = numeric_values(a[column]), numeric_values(b[column])
        edges = quantile_edges(x, 10)
        size = len(edges) + 3
        p = np.bincount(bin_codes(x, edges), minlength=size)
        q = np.bincount(bin_codes(y, edges), minlength=size)
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        test = ks_2samp(x, y) if len(x) and len(y) else None
        statistic, p_value, name = (test.statistic, test.pvalue, "ks") if test else (np.nan, np.nan, "ks")
    else:
        size = discretiser.n_levels(column)
        p = np.bincount(discretiser.column_codes(a, column), minlength=size)
        q = np.bincount(discretiser.column_codes(b, column), minlength=size)
        table = np.vstack([p, q])
        table = table[:, table.sum(0) > 0]
        if table.shape[1] > 1:
            statistic, p_value, _, _ = chi2_contingency(table)
        else:
            statistic, p_value = 0.0, 1.0
        name = "chi2"
    js = float(jensenshannon(p / max(p.sum(), 1), q / max(q.sum(), 1), base=2)) if p.sum() and q.sum() else 1.0
    return {
        "psi": population_stability_index(p, q),
        "test": name,
        "statistic": float(statistic),
        "p_value": float(p_value),
        "js_distance": 0.0 if np.isnan(js) else js,
    }


def drift_checks(
    a: pd.DataFrame, b: pd.DataFrame, schema: dict | TableSchema, thresholds: dict[str, float | None] | None = None
) -> list[CheckResult]:
    """Drift from version ``a`` to version ``b``: largest PSI, largest JS distance and largest
    association change, each with per-column details (defaults 0.2, 0.1, 0.1)."""
    schema = schema if isinstance(schema, TableSchema) else TableSchema.from_dict(schema)
    schema.check_frame(a, "version a")
    schema.check_frame(b, "version b")
    discretiser = Discretiser(schema).fit(a, b)
    per_column = {c: column_drift(a, b, c, c in schema.numeric, discretiser) for c in schema.columns}
    difference = np.abs(association_matrix(a, schema) - association_matrix(b, schema))
    columns = list(schema.columns)
    psi = {c: float(v["psi"]) for c, v in per_column.items()}
    js = {c: float(v["js_distance"]) for c, v in per_column.items()}
    details = {"per_column": per_column}
    bars = {"kind": "bars", "labels": columns}
    return [
        judge(
            "drift_psi",
            max(psi.values()),
            thresholds=thresholds,
            baseline=0.0,
            details={**details, "worst_column": max(psi, key=lambda c: psi[c])},
            chart={**bars, "values": list(psi.values())},
        ),
        judge(
            "drift_js",
            max(js.values()),
            thresholds=thresholds,
            baseline=0.0,
            details={"worst_column": max(js, key=lambda c: js[c]), "js": js},
            chart={**bars, "values": list(js.values())},
        ),
        judge(
            "drift_association",
            float(difference.max()),
            thresholds=thresholds,
            baseline=0.0,
            chart={"kind": "matrix", "labels": columns, "matrix": difference.round(4).tolist()},
        ),
    ]
