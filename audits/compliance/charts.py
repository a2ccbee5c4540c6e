"""The compliance report's charts, drawn from the report's own facts (``compliance_report_build``).

ε spent over the period per dataset (from the ledger's running balances), requests by state,
and releases per month with those that went out despite failed checks. The report is read by
stewards and auditors only, so the charts show the same figures as its tables, nothing more.
Each chart is an SVG drawn with the datasheet's chart pieces and embedded as a ``data:`` URI in
an ``<img>`` (no inline script or style: the dashboard's CSP holds, and the PDF shows the same).
Every text is ``font_size`` pixels in a drawing ``PAGE_WIDTH`` wide (9 in the PDF's column); the
dashboard draws them at 11 and never shows them narrower than drawn (a phone scrolls them sideways),
so no label reads smaller than 11 px there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from audits.datasheets.charts import (
    HOLDOUT_COLOUR,
    LABEL_CHARS,
    PAGE_WIDTH,
    REAL_COLOUR,
    SYNTHETIC_COLOUR,
    axes_grid,
    bar,
    legend,
    nice_ceiling,
    svg_document,
    svg_number,
    text_label,
    tick_text,
)
from audits.datasheets.context import svg_data_uri

EXCEPTION_COLOUR = "#D55E00"
CHAR_WIDTH = 0.62  # a DejaVu Sans character's mean advance, in font sizes (for laying out labels)
TURN_DEGREES = 40
TURN_SINE = 0.643  # sin(40°): how far a turned label reaches below the axis, per unit of its length
# Okabe-Ito colours for one line per dataset; more datasets than colours show the largest spenders.
LINE_COLOURS = (REAL_COLOUR, SYNTHETIC_COLOUR, HOLDOUT_COLOUR, EXCEPTION_COLOUR, "#CC79A7", "#56B4E9", "#000000")


def compliance_chart_images(report: dict[str, Any], *, font_size: int = 9) -> list[dict[str, str]]:
    """The report's charts as ``{"title", "alt", "uri"}`` for an ``<img>``, their texts ``font_size``
    pixels high in a ``PAGE_WIDTH``-wide drawing; a chart with nothing to show is left out."""
    charts = [
        _epsilon_chart(report, font_size),
        _requests_chart(report, font_size),
        _releases_chart(report, font_size),
    ]
    return [{**chart, "uri": svg_data_uri(chart.pop("svg"))} for chart in charts if chart is not None]


def epsilon_spent_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    days: int,
    first_day: date,
    title: str,
    font_size: int = 9,
) -> str:
    """Step lines of running ε spent, one per dataset, over ``days`` days from ``first_day``.

    Each series is (dataset, [(day offset, ε spent after it)]), the first point at offset 0.
    """
    left, top, plot_width, plot_height = 56.0, 48.0, PAGE_WIDTH - 80.0, 180.0
    peak = nice_ceiling(max((value for _, points in series for _, value in points), default=0.0))
    base = top + plot_height
    parts = [
        axes_grid(
            left,
            top,
            plot_width,
            plot_height,
            None,
            "ε spent (running)",
            y_max=peak,
            font_size=font_size,
            y_format=tick_text,
        )
    ]
    for fraction in (0.0, 0.5, 1.0):  # the right edge is the end of the period's last day: labelled with that day
        day = first_day + timedelta(days=min(round(fraction * days), days - 1))
        anchor = {0.0: "start", 1.0: "end"}.get(fraction, "middle")
        parts.append(
            text_label(
                left + fraction * plot_width, base + 5 + font_size, day.isoformat(), anchor=anchor, font_size=font_size
            )
        )
    entries = []
    for (name, points), colour in zip(series, LINE_COLOURS, strict=False):
        steps: list[tuple[float, float]] = []
        for offset, value in [*points, (float(days), points[-1][1])]:
            x = left + min(offset / days, 1.0) * plot_width
            y = base - value / peak * plot_height
            if steps:
                steps.append((x, steps[-1][1]))
            steps.append((x, y))
        coordinates = " ".join(f"{svg_number(x)},{svg_number(y)}" for x, y in steps)
        parts.append(f'<polyline class="spent" fill="none" stroke="{colour}" stroke-width="2" points="{coordinates}"/>')
        entries.append((name, colour, "line"))
    parts.append(legend(left + 10, top - 16, entries, font_size=font_size))
    return svg_document(PAGE_WIDTH, base + 21 + font_size, title, parts)


def stacked_bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[int]]],
    *,
    title: str,
    y_title: str,
    font_size: int = 9,
) -> str:
    """Counts per label as bars, stacked when several series are given as (name, colour, counts);
    labels too wide for their bar's slot are turned 40 degrees."""
    left, top, plot_width, plot_height = 56.0, 48.0, PAGE_WIDTH - 80.0, 160.0
    totals = [sum(counts[k] for _, _, counts in series) for k in range(len(labels))]
    peak = nice_ceiling(max(max(totals, default=0), 1))
    base = top + plot_height
    slot = plot_width / max(len(labels), 1)
    parts = [
        axes_grid(
            left, top, plot_width, plot_height, None, y_title, y_max=peak, font_size=font_size, y_format=tick_text
        )
    ]
    longest = min(max((len(label) for label in labels), default=0), LABEL_CHARS)
    turned = longest * font_size * CHAR_WIDTH > slot * 0.95  # side by side they would touch
    bottom = 21 + font_size + (longest * font_size * CHAR_WIDTH * TURN_SINE if turned else 0)
    for k, label in enumerate(labels):
        x, stacked = left + k * slot + slot * 0.15, 0.0
        for name, colour, counts in series:
            height = counts[k] / peak * plot_height
            parts.append(bar(name.replace(" ", "-"), x, base - stacked, slot * 0.7, height, colour))
            stacked += height
        centre = left + (k + 0.5) * slot
        if turned:
            parts.append(
                text_label(centre + 3, base + 10, label, anchor="end", font_size=font_size, rotate=-TURN_DEGREES)
            )
        else:
            parts.append(text_label(centre, base + 5 + font_size, label, anchor="middle", font_size=font_size))
    if len(series) > 1:
        entries = [(name, colour, "box") for name, colour, _ in series]
        parts.append(legend(left + 10, top - 16, entries, font_size=font_size))
    return svg_document(PAGE_WIDTH, base + bottom, title, parts)


def _epsilon_chart(report: dict[str, Any], font_size: int) -> dict[str, str] | None:
    first, last = (date.fromisoformat(report["report"]["period"][key]) for key in ("from", "to"))
    days = (last - first).days + 1
    start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    series = []
    for budget in report["budgets"]:
        opening = _amount(budget["opening"]["epsilon_spent"])
        points = [(0.0, opening)] if opening is not None else []
        for entry in budget["entries"]:
            spent = _amount(entry["running"]["epsilon_spent"])
            if spent is not None:
                offset = (datetime.fromisoformat(entry["at"]).timestamp() - start) / 86400
                points.append((offset, spent))
        if points and any(value > 0 for _, value in points):
            series.append((budget["dataset"], points))
    if not series:
        return None
    series.sort(key=lambda item: -item[1][-1][1])
    shown = series[: len(LINE_COLOURS)]
    more = f" (the {len(shown)} largest of {len(series)})" if len(series) > len(shown) else ""
    title = f"ε spent per dataset over the period{more}"
    alt = "; ".join(
        f"{name}: ε spent {tick_text(points[0][1])} at the start, {tick_text(points[-1][1])} at the end"
        for name, points in shown
    )
    return {
        "title": title,
        "alt": f"{title}. {alt}.",
        "svg": epsilon_spent_chart(shown, days=days, first_day=first, title=title, font_size=font_size),
    }


def _requests_chart(report: dict[str, Any], font_size: int) -> dict[str, str] | None:
    counts = {state: n for state, n in report["requests"]["by_state"].items() if n}
    if not counts:
        return None
    title = "Requests filed in the period, by state"
    return {
        "title": title,
        "alt": f"{title}: " + ", ".join(f"{state} {n}" for state, n in counts.items()) + ".",
        "svg": stacked_bar_chart(
            list(counts),
            [("requests", REAL_COLOUR, list(counts.values()))],
            title=title,
            y_title="requests",
            font_size=font_size,
        ),
    }


def _releases_chart(report: dict[str, Any], font_size: int) -> dict[str, str] | None:
    first, last = (date.fromisoformat(report["report"]["period"][key]) for key in ("from", "to"))
    months = _months(first, last)
    clean, exceptions = dict.fromkeys(months, 0), dict.fromkeys(months, 0)
    for release in report["releases"]:
        month = release["released_at"][:7]
        if month in clean:
            (exceptions if release["despite_failed_checks"] else clean)[month] += 1
    if not any(clean.values()) and not any(exceptions.values()):
        return None
    title = "Releases made per month, and those despite failed checks"
    alt = ", ".join(f"{month}: {clean[month]} clean, {exceptions[month]} despite failed checks" for month in months)
    return {
        "title": title,
        "alt": f"{title}. {alt}.",
        "svg": stacked_bar_chart(
            months,
            [
                ("all checks passed", REAL_COLOUR, list(clean.values())),
                ("despite failed checks", EXCEPTION_COLOUR, list(exceptions.values())),
            ],
            title=title,
            y_title="releases",
            font_size=font_size,
        ),
    }


def _months(first: date, last: date) -> list[str]:
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _amount(text: str) -> float | None:
    """A ledger amount's text as a number; None for an infinite ε (a non-private release)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return float(value) if value.is_finite() else None
