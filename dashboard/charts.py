"""Each audit check's chart as an embeddable SVG data URI, drawn by the datasheet's chart
functions from the chart data the check stored (the same mapping the datasheet uses)."""

from __future__ import annotations

from typing import Any

from audits.datasheets import check_chart_svg, svg_data_uri
from audits.models import CheckResult


def check_chart(check: CheckResult) -> str | None:
    """The check's chart as ``data:image/svg+xml;base64,...``, or None when it has none."""
    svg = check_chart_svg(check.name, check.chart or {})
    return svg_data_uri(svg) if svg else None


def bias_rows(checks: list[CheckResult]) -> list[dict[str, Any]]:
    """Per protected column: disparate impact and parity difference on real, synthetic and (when
    rebalanced) released rows, from the bias checks' details."""
    source = next((c for c in checks if c.category == "bias" and (c.details or {}).get("per_column")), None)
    if source is None:
        return []
    rows = []
    for column, entry in source.details["per_column"].items():
        series = [name for name in ("real", "synthetic", "released") if isinstance(entry.get(name), dict)]
        rows.append(
            {
                "column": column,
                "privileged": entry.get("privileged"),
                "series": [
                    {
                        "name": "rebalanced" if name == "released" else name,
                        "disparate_impact": entry[name].get("disparate_impact"),
                        "parity_difference": entry[name].get("statistical_parity_difference"),
                    }
                    for name in series
                ],
            }
        )
    return rows
