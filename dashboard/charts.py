"""Each audit check's chart as an embeddable SVG data URI, drawn by the datasheet's chart
functions from the chart data the check stored (the same mapping the datasheet uses)."""

from __future__ import annotations

from typing import Any

from audits.datasheets import check_chart_svg, svg_data_uri
from audits.datasheets.charts import axes_grid, bar, nice_ceiling, svg_document, text_label
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


# Column profiles: one small histogram per column, drawn inline (an <svg> in the page, no data URI),
# with the datasheet's chart pieces at a size that stays readable when a phone scales it down.
PROFILE_WIDTH = 360
PROFILE_FONT = 11
PROFILE_LABEL_CHARS = 16


def profile_histogram_svg(column: dict[str, Any], *, rows: int, colour: str) -> str | None:
    """A column profile's histogram (``audits.metrics.profiles``) as an inline SVG: bars are shares
    of the ``rows`` profiled, the y axis in percent; None when the column has no value to draw."""
    histogram = column["histogram"]
    labels, counts = list(histogram["labels"]), list(histogram["counts"])
    if histogram.get("other"):
        labels.append(f"other ({histogram['other_values']})")
        counts.append(histogram["other"])
    if not counts or rows <= 0:
        return None
    shares = [count / rows for count in counts]
    peak = nice_ceiling(max(shares))
    numeric = histogram["kind"] == "numeric"
    longest = max(len(label) for label in labels)
    upright = numeric or (longest * len(labels) * 7 < PROFILE_WIDTH - 60)
    bottom = 34 if upright else 24 + 6.5 * min(longest, PROFILE_LABEL_CHARS)
    left, top, plot_width, plot_height = 50.0, 28.0, PROFILE_WIDTH - 62.0, 110.0
    base = top + plot_height
    slot = plot_width / len(shares)
    parts = [
        axes_grid(
            left,
            top,
            plot_width,
            plot_height,
            None,
            None,
            y_max=peak,
            ticks=2,
            font_size=PROFILE_FONT,
            y_format=_percent,
        )
    ]
    gap = 0.0 if numeric else slot * 0.15
    for k, share in enumerate(shares):
        parts.append(bar("profile", left + k * slot + gap, base, slot - 2 * gap, share / peak * plot_height, colour))
    if numeric:
        edges = histogram["edges"]
        for k, anchor in ((0, "start"), (len(edges) // 2, "middle"), (len(edges) - 1, "end")):
            x = left + k * slot
            parts.append(text_label(x, base + 16, edges[k], anchor=anchor, font_size=PROFILE_FONT))
    else:
        for k, label in enumerate(labels):
            x = left + (k + 0.5) * slot
            if upright:
                parts.append(text_label(x, base + 16, label, anchor="middle", font_size=PROFILE_FONT))
            else:
                parts.append(
                    text_label(
                        x + 4,
                        base + 10,
                        label,
                        anchor="end",
                        font_size=PROFILE_FONT,
                        max_chars=PROFILE_LABEL_CHARS,
                        rotate=-50,
                    )
                )
    return svg_document(PROFILE_WIDTH, base + bottom, f"Histogram of {column['name']}", parts)


def _percent(share: float) -> str:
    percent = 100 * share
    return f"{percent:.0f}%" if abs(percent - round(percent)) < 1e-9 else f"{percent:.1f}%"
