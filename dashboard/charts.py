"""Each audit check's chart as an embeddable SVG data URI, drawn by the datasheet's chart
functions from the chart data the check stored (the same mapping the datasheet uses)."""

from __future__ import annotations

import base64
from typing import Any

from audits.datasheets import association_heatmap, distance_histogram, marginals_chart, roc_chart
from audits.models import CheckResult

ROC_CHECKS = ("membership_domias_auc", "membership_distance_auc")


def check_chart(check: CheckResult) -> str | None:
    """The check's chart as ``data:image/svg+xml;base64,...``, or None when it has none."""
    svg = _svg(check.name, check.chart or {})
    if not svg:
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _svg(name: str, chart: dict[str, Any]) -> str | None:
    if name == "tvd_1way" and chart.get("columns"):
        return marginals_chart([
            {"name": m["column"], "kind": "categorical", "categories": [str(level) for level in m["levels"]],
             "real": m["real"], "synthetic": m["synthetic"]} for m in chart["columns"]])
    if name == "association_difference" and chart.get("labels"):
        return association_heatmap(chart["labels"], chart["matrix"])
    if name in ROC_CHECKS and chart.get("fpr"):
        return roc_chart(list(zip(chart["fpr"], chart["tpr"], strict=True)), label="membership attack")
    if name == "distance_to_closest_record" and chart.get("edges"):
        return distance_histogram(*_expand_histogram(chart))
    return None


def _expand_histogram(chart: dict[str, Any]) -> tuple[list[float], list[float]]:
    """Bin counts back to values at bin centres (the chart's resolution)."""
    edges = chart["edges"]
    centres = [(low + high) / 2 for low, high in zip(edges[:-1], edges[1:], strict=True)]

    def expand(counts: list[float]) -> list[float]:
        return [centre for centre, n in zip(centres, counts, strict=True) for _ in range(int(n))]

    return expand(chart["synthetic_to_train"]), expand(chart["holdout_to_train"])


def bias_rows(checks: list[CheckResult]) -> list[dict[str, Any]]:
    """Per protected column: disparate impact and parity difference on real, synthetic and (when
    rebalanced) released rows, from the bias checks' details."""
    source = next((c for c in checks if c.category == "bias" and (c.details or {}).get("per_column")), None)
    if source is None:
        return []
    rows = []
    for column, entry in source.details["per_column"].items():
        series = [name for name in ("real", "synthetic", "released") if isinstance(entry.get(name), dict)]
        rows.append({
            "column": column, "privileged": entry.get("privileged"),
            "series": [{"name": "rebalanced" if name == "released" else name,
                        "disparate_impact": entry[name].get("disparate_impact"),
                        "parity_difference": entry[name].get("statistical_parity_difference")}
                       for name in series],
        })
    return rows
