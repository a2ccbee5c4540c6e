"""Datasheet charts as self-contained SVG strings, drawn from plain lists and dicts.

Every function is deterministic (same input, same bytes), fetches nothing, defines no ``id``
attributes (several charts share one HTML page), and escapes all text it is given, so labels
taken from uploaded data cannot inject markup. Widths fit the text column of an A4 page
(about 170 mm, 640 px at 96 dpi). Colours follow the Okabe-Ito palette, which stays readable
for colour-blind readers and in greyscale print.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TypeGuard

REAL_COLOUR = "#0072B2"
SYNTHETIC_COLOUR = "#E69F00"
HOLDOUT_COLOUR = "#009E73"
AXIS_COLOUR = "#444444"
GRID_COLOUR = "#DDDDDD"
PAGE_WIDTH = 640
# Tick and axis labels are written whole up to this many characters (longer ones end in "…").
LABEL_CHARS = 22
# Audit checks whose stored chart data is an ROC curve.
ROC_CHECKS = ("membership_domias_auc", "membership_distance_auc")
# Light to dark red; an absolute association difference of 0 is white.
HEAT_STOPS = ((255, 255, 255), (252, 187, 161), (251, 106, 74), (203, 24, 29), (103, 0, 13))

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# ---------------------------------------------------------------------------------------------
# Public charts
# ---------------------------------------------------------------------------------------------


def check_chart_svg(name: str, chart: Mapping) -> str | None:
    """The SVG for an audit check's stored chart data, or None when the check draws none.

    One mapping for every consumer (datasheets, dashboard): marginals from ``tvd_1way``, the
    heatmap from ``association_difference``, ROC curves from the membership AUC checks, the
    DCR histogram from ``distance_to_closest_record``.
    """
    if name == "tvd_1way" and chart.get("columns"):
        return marginals_chart(
            [
                {
                    "name": m["column"],
                    "kind": "categorical",
                    "categories": [str(level) for level in m["levels"]],
                    "real": m["real"],
                    "synthetic": m["synthetic"],
                }
                for m in chart["columns"]
            ]
        )
    if name == "association_difference" and chart.get("labels"):
        return association_heatmap(chart["labels"], chart["matrix"])
    if name in ROC_CHECKS and chart.get("fpr"):
        return roc_chart(list(zip(chart["fpr"], chart["tpr"], strict=True)), label="membership attack")
    if name == "distance_to_closest_record" and chart.get("edges"):
        return distance_histogram(*_expand_histogram(chart))
    return None


def _expand_histogram(chart: Mapping) -> tuple[list[float], list[float]]:
    """Bin counts back to values at bin centres (the stored chart's resolution)."""
    edges = chart["edges"]
    centres = [(low + high) / 2 for low, high in zip(edges[:-1], edges[1:], strict=True)]

    def expand(counts: Sequence[float]) -> list[float]:
        return [centre for centre, n in zip(centres, counts, strict=True) for _ in range(int(n))]

    return expand(chart["synthetic_to_train"]), expand(chart["holdout_to_train"])


def marginals_chart(
    columns: Sequence[Mapping],
    *,
    panels_per_row: int = 3,
    max_categories: int = 12,
    width: int = PAGE_WIDTH,
    title: str = "Marginal distributions: real vs synthetic",
) -> str:
    """Small multiples comparing each column's real and synthetic marginal distribution.

    Parameters
    ----------
    columns
        One mapping per column. Categorical: ``{"name", "kind": "categorical", "categories":
        [label, ...], "real": [count, ...], "synthetic": [count, ...]}``; side-by-side bars.
        Numeric: ``{"name", "kind": "numeric", "bin_edges": [e0, ..., ek], "real": [k counts],
        "synthetic": [k counts]}``; real bars with the synthetic histogram drawn over them as a
        step line. Counts or shares both work: each side
        is normalised to shares. Beyond ``max_categories`` the rarest real categories are
        pooled into one "other" bar.
    """
    if not columns:
        raise ValueError("Give at least one column to draw.")
    panel_width = (width - 20) / panels_per_row
    panel_height = 215.0
    n_rows = math.ceil(len(columns) / panels_per_row)
    height = 40 + n_rows * panel_height
    kinds = {column.get("kind") for column in columns}
    synthetic_swatch = "box" if kinds == {"categorical"} else "box+line" if "categorical" in kinds else "line"
    parts = [_legend(12, 30, [("real", REAL_COLOUR, "box"), ("synthetic", SYNTHETIC_COLOUR, synthetic_swatch)])]
    for index, column in enumerate(columns):
        x = 10 + (index % panels_per_row) * panel_width
        y = 40 + (index // panels_per_row) * panel_height
        parts.append(_marginal_panel(column, x, y, panel_width, panel_height, max_categories))
    return _svg(width, height, title, parts)


def association_heatmap(
    labels: Sequence[str],
    matrix: Sequence[Sequence[float | None]],
    *,
    vmax: float | None = None,
    width: int = PAGE_WIDTH,
    title: str = "Association difference |real - synthetic|",
) -> str:
    """A square heatmap of pairwise association differences, with labels and a colour scale.

    Parameters
    ----------
    labels
        The ``n`` column names, in matrix order.
    matrix
        ``n x n`` values (typically absolute differences of Cramér's V or correlation, in
        [0, 1]); ``None`` or NaN cells are drawn grey as "not computed".
    vmax
        The value drawn darkest; defaults to the largest cell (at least 0.05), so small
        differences stay visible. The scale's range is printed beside it.
    """
    n = len(labels)
    if n == 0 or len(matrix) != n or any(len(row) != n for row in matrix):
        raise ValueError(f"matrix must be {n} x {n} to match the labels.")
    values = [v for row in matrix for v in row if _is_number(v)]
    top = vmax if vmax is not None else _nice_ceiling(max([0.05, *values]))
    longest = min(LABEL_CHARS, max(len(str(label)) for label in labels))
    label_space, top_space, legend_space = 12 + 5.6 * longest, 16 + 4.2 * longest, 70.0
    cell = min(32.0, (width - label_space - legend_space - 10) / n)
    height = top_space + n * cell + 20
    parts = []
    for i, row in enumerate(matrix):
        y = top_space + i * cell
        parts.append(_label(label_space - 6, y + cell / 2 + 3.5, labels[i], anchor="end", max_chars=LABEL_CHARS))
        for j, value in enumerate(row):
            parts.append(_heat_cell(label_space + j * cell, y, cell, value, top, show_value=n <= 14))
    for j, name in enumerate(labels):
        x = label_space + j * cell + cell / 2 + 3
        parts.append(
            f'<text x="{_n(x)}" y="{_n(top_space - 6)}" transform="rotate(-45 {_n(x)} '
            f'{_n(top_space - 6)})" font-size="9">{_escape(_shorten(name, LABEL_CHARS))}</text>'
        )
    parts.append(_colour_scale(label_space + n * cell + 24, top_space, min(n * cell, 200.0), top))
    return _svg(width, height, title, parts)


def roc_chart(
    points: Sequence[Sequence[float]],
    *,
    auc: float | None = None,
    label: str = "attack",
    width: int = 380,
    title: str = "ROC curve",
) -> str:
    """An ROC curve over (false-positive rate, true-positive rate) points, with the chance diagonal.

    Points are sorted by rate and the curve is anchored at (0, 0) and (1, 1).
    """
    cleaned = sorted((_clip01(x), _clip01(y)) for x, y in points)
    if not cleaned:
        raise ValueError("Give at least one (fpr, tpr) point.")
    curve = [(0.0, 0.0), *cleaned, (1.0, 1.0)]
    left, top, size = 50.0, 40.0, width - 80.0
    height = top + size + 45

    def at(x: float, y: float) -> str:
        return f"{_n(left + x * size)},{_n(top + (1 - y) * size)}"

    parts = [_axes_grid(left, top, size, size, "false-positive rate", "true-positive rate")]
    parts.append(
        f'<line class="diagonal" x1="{_n(left)}" y1="{_n(top + size)}" x2="{_n(left + size)}" '
        f'y2="{_n(top)}" stroke="#888888" stroke-dasharray="4 3" stroke-width="1"/>'
    )
    parts.append(
        f'<polyline class="roc" fill="none" stroke="{REAL_COLOUR}" stroke-width="2" '
        f'points="{" ".join(at(x, y) for x, y in curve)}"/>'
    )
    name = label if auc is None else f"{label} (AUC {auc:.3f})"
    parts.append(_legend(left + 10, top - 14, [(name, REAL_COLOUR, "line"), ("random guess", "#888888", "dash")]))
    return _svg(width, height, title, parts)


def distance_histogram(
    synthetic_to_train: Sequence[float],
    holdout_to_train: Sequence[float],
    *,
    bins: int = 30,
    width: int = PAGE_WIDTH,
    title: str = "Distance to closest training record (DCR)",
) -> str:
    """Overlaid histograms of synthetic→train and holdout→train distances to the closest record.

    Synthetic rows much closer to training rows than real holdout rows are (mass shifted left)
    suggest copying. Both series are shares of their own size over shared bins (holdout as
    bars, synthetic as a step line); the range stops near the 99th percentile of all distances
    and larger values join the last bin. Dashed lines mark each median.
    """
    if not synthetic_to_train or not holdout_to_train:
        raise ValueError("Give at least one distance in each series.")
    every = sorted(float(v) for v in [*synthetic_to_train, *holdout_to_train])
    upper = _nice_ceiling(every[min(len(every) - 1, int(0.99 * len(every)))] or every[-1])
    left, top, plot_width, plot_height = 50.0, 40.0, width - 70.0, 180.0
    holdout, synthetic = _histogram(holdout_to_train, bins, upper), _histogram(synthetic_to_train, bins, upper)
    peak = _nice_ceiling(max([*holdout, *synthetic]))
    slot = plot_width / bins
    base = top + plot_height
    parts = [
        _axes_grid(
            left,
            top,
            plot_width,
            plot_height,
            "distance to closest training row",
            "share of rows",
            x_max=upper,
            y_max=peak,
            y_format=_percent,
        )
    ]
    parts += [
        _bar("holdout", left + k * slot, base, slot, share / peak * plot_height, HOLDOUT_COLOUR, 0.45)
        for k, share in enumerate(holdout)
    ]
    parts.append(
        _step_line(left, base, slot, [share / peak * plot_height for share in synthetic], SYNTHETIC_COLOUR, "synthetic")
    )
    for values, colour, css in (
        (holdout_to_train, HOLDOUT_COLOUR, "holdout"),
        (synthetic_to_train, SYNTHETIC_COLOUR, "synthetic"),
    ):
        x = left + min(_median(values), upper) / upper * plot_width
        parts.append(
            f'<line class="median {css}" x1="{_n(x)}" y1="{_n(top)}" x2="{_n(x)}" y2="{_n(base)}" '
            f'stroke="{colour}" stroke-width="1.2" stroke-dasharray="5 3"/>'
        )
    parts.append(
        _legend(
            left + 10,
            top - 14,
            [
                (
                    f"holdout→train (n={len(holdout_to_train)}, median {_g(_median(holdout_to_train))})",
                    HOLDOUT_COLOUR,
                    "box",
                ),
                (
                    f"synthetic→train (n={len(synthetic_to_train)}, median {_g(_median(synthetic_to_train))})",
                    SYNTHETIC_COLOUR,
                    "line",
                ),
            ],
        )
    )
    return _svg(width, base + 45, title, parts)


# ---------------------------------------------------------------------------------------------
# Panels and pieces
# ---------------------------------------------------------------------------------------------


def _marginal_panel(column: Mapping, x: float, y: float, width: float, height: float, max_categories: int) -> str:
    kind = column.get("kind")
    labels, real, synthetic = _panel_data(column, max_categories)
    # Room under the plot for category names up to LABEL_CHARS long, written at 60° in 8 px type.
    left, top, plot_width, plot_height = x + 36, y + 22, width - 48, height - 124
    peak = _nice_ceiling(max([*real, *synthetic]))
    heights_real = [share / peak * plot_height for share in real]
    heights_synthetic = [share / peak * plot_height for share in synthetic]
    slot, base = plot_width / len(real), top + plot_height
    parts = [
        f'<g class="panel {kind}">',
        f'<text x="{_n(x + 4)}" y="{_n(y + 12)}" font-size="10" font-weight="bold">'
        f"{_escape(_shorten(str(column.get('name', '')), 34))}</text>",
        _axes_grid(left, top, plot_width, plot_height, None, None, y_max=peak, ticks=2, font_size=8, y_format=_percent),
    ]
    if kind == "categorical":
        for k, (h_real, h_synthetic) in enumerate(zip(heights_real, heights_synthetic, strict=True)):
            parts.append(_bar("real", left + (k + 0.1) * slot, base, slot * 0.4, h_real, REAL_COLOUR))
            parts.append(_bar("synthetic", left + (k + 0.5) * slot, base, slot * 0.4, h_synthetic, SYNTHETIC_COLOUR))
        for k, name in enumerate(labels):
            cx, cy = left + (k + 0.5) * slot + 3, base + 8
            parts.append(
                f'<text x="{_n(cx)}" y="{_n(cy)}" transform="rotate(-60 {_n(cx)} {_n(cy)})" font-size="8" '
                f'text-anchor="end">{_escape(_shorten(name, LABEL_CHARS))}</text>'
            )
    else:
        parts += [_bar("real", left + k * slot, base, slot, h, REAL_COLOUR, 0.45) for k, h in enumerate(heights_real)]
        parts.append(_step_line(left, base, slot, heights_synthetic, SYNTHETIC_COLOUR, "synthetic"))
        for k, anchor in ((0, "start"), (len(labels) // 2, "middle"), (len(labels) - 1, "end")):
            parts.append(
                f'<text x="{_n(left + k * slot)}" y="{_n(base + 11)}" font-size="8" '
                f'text-anchor="{anchor}">{_escape(labels[k])}</text>'
            )
    parts.append("</g>")
    return "".join(parts)


def _panel_data(column: Mapping, max_categories: int) -> tuple[list[str], list[float], list[float]]:
    """Category labels (or bin-edge labels) and real and synthetic shares for one panel."""
    kind, name = column.get("kind"), column.get("name")
    if kind == "categorical":
        return _pool_categories(column["categories"], column["real"], column["synthetic"], max_categories)
    if kind != "numeric":
        raise ValueError(f"Column {name!r}: kind must be 'categorical' or 'numeric', not {kind!r}.")
    edges, real, synthetic = list(column["bin_edges"]), column["real"], column["synthetic"]
    if not real or len(edges) != len(real) + 1 or len(real) != len(synthetic):
        raise ValueError(f"Column {name!r}: give k real and k synthetic counts and k + 1 bin edges.")
    return [_tick(edge) for edge in edges], _shares(real), _shares(synthetic)


def _bar(css: str, x: float, base: float, width: float, height: float, colour: str, opacity: float = 1.0) -> str:
    fill_opacity = "" if opacity == 1.0 else f' fill-opacity="{opacity}"'
    return (
        f'<rect class="bar {css}" x="{_n(x)}" y="{_n(base - height)}" width="{_n(width)}" '
        f'height="{_n(height)}" fill="{colour}"{fill_opacity}/>'
    )


def _pool_categories(
    labels: Sequence, real: Sequence[float], synthetic: Sequence[float], max_categories: int
) -> tuple[list[str], list[float], list[float]]:
    if not (len(labels) == len(real) == len(synthetic)) or not labels:
        raise ValueError("Give one real and one synthetic count per category (and at least one category).")
    real_shares, synthetic_shares = _shares(real), _shares(synthetic)
    if len(labels) <= max_categories:
        return [str(label) for label in labels], real_shares, synthetic_shares
    # Keep the commonest real categories in their given order; pool the rest.
    ranked = sorted(range(len(labels)), key=lambda k: (-real_shares[k], k))
    kept = sorted(ranked[: max_categories - 1])
    pooled = [k for k in range(len(labels)) if k not in set(kept)]
    return (
        [str(labels[k]) for k in kept] + [f"other ({len(pooled)})"],
        [real_shares[k] for k in kept] + [sum(real_shares[k] for k in pooled)],
        [synthetic_shares[k] for k in kept] + [sum(synthetic_shares[k] for k in pooled)],
    )


def _heat_cell(x: float, y: float, size: float, value: float | None, top: float, *, show_value: bool) -> str:
    if not _is_number(value):
        return (
            f'<rect class="cell missing" x="{_n(x)}" y="{_n(y)}" width="{_n(size)}" height="{_n(size)}" '
            f'fill="#D9D9D9" stroke="#FFFFFF" stroke-width="0.5"/>'
        )
    fraction = min(max(float(value) / top, 0.0), 1.0) if top > 0 else 0.0
    cell = (
        f'<rect class="cell" x="{_n(x)}" y="{_n(y)}" width="{_n(size)}" height="{_n(size)}" '
        f'fill="{_heat_colour(fraction)}" stroke="#FFFFFF" stroke-width="0.5"/>'
    )
    if not show_value:
        return cell
    ink = "#FFFFFF" if fraction > 0.6 else "#222222"
    return cell + (
        f'<text x="{_n(x + size / 2)}" y="{_n(y + size / 2 + 3)}" font-size="8" '
        f'text-anchor="middle" fill="{ink}">{float(value):.2f}</text>'
    )


def _colour_scale(x: float, y: float, height: float, top: float, steps: int = 20) -> str:
    step = height / steps
    parts = ['<g class="scale">']
    for k in range(steps):
        fraction = 1 - (k + 0.5) / steps
        parts.append(
            f'<rect x="{_n(x)}" y="{_n(y + k * step)}" width="12" height="{_n(step + 0.3)}" '
            f'fill="{_heat_colour(fraction)}"/>'
        )
    parts.append(
        f'<rect x="{_n(x)}" y="{_n(y)}" width="12" height="{_n(height)}" fill="none" '
        f'stroke="{AXIS_COLOUR}" stroke-width="0.5"/>'
    )
    for fraction in (0.0, 0.5, 1.0):
        ty = y + (1 - fraction) * height + 3
        parts.append(f'<text x="{_n(x + 16)}" y="{_n(ty)}" font-size="8">{_escape(_g(fraction * top))}</text>')
    parts.append("</g>")
    return "".join(parts)


def _axes_grid(
    left: float,
    top: float,
    width: float,
    height: float,
    x_title: str | None,
    y_title: str | None,
    *,
    x_max: float = 1.0,
    y_max: float = 1.0,
    ticks: int = 5,
    font_size: int = 8,
    y_format: Callable[[float], str] | None = None,
) -> str:
    y_format = y_format or _g
    parts = ['<g class="axes">']
    for k in range(ticks + 1):
        fraction = k / ticks
        gy = top + height - fraction * height
        parts.append(
            f'<line x1="{_n(left)}" y1="{_n(gy)}" x2="{_n(left + width)}" y2="{_n(gy)}" '
            f'stroke="{GRID_COLOUR}" stroke-width="0.5"/>'
        )
        parts.append(
            f'<text x="{_n(left - 3)}" y="{_n(gy + 3)}" font-size="{font_size}" '
            f'text-anchor="end">{_escape(y_format(fraction * y_max))}</text>'
        )
        if x_title is not None:
            gx = left + fraction * width
            parts.append(
                f'<text x="{_n(gx)}" y="{_n(top + height + 12)}" font-size="{font_size}" '
                f'text-anchor="middle">{_escape(_g(fraction * x_max))}</text>'
            )
    parts.append(
        f'<polyline fill="none" stroke="{AXIS_COLOUR}" stroke-width="1" '
        f'points="{_n(left)},{_n(top)} {_n(left)},{_n(top + height)} {_n(left + width)},{_n(top + height)}"/>'
    )
    if x_title:
        parts.append(
            f'<text x="{_n(left + width / 2)}" y="{_n(top + height + 28)}" font-size="{max(9, font_size)}" '
            f'text-anchor="middle">{_escape(x_title)}</text>'
        )
    if y_title:
        parts.append(
            f'<text x="{_n(left - 36)}" y="{_n(top + height / 2)}" font-size="{max(9, font_size)}" '
            f'text-anchor="middle" '
            f'transform="rotate(-90 {_n(left - 36)} {_n(top + height / 2)})">{_escape(y_title)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _legend(x: float, y: float, entries: Sequence[tuple[str, str, str]], *, font_size: int = 9) -> str:
    """Entries are (text, colour, swatch) with swatch "box", "line", "dash" or "box+line"."""
    parts = ['<g class="legend">']
    for name, colour, swatch in entries:
        if swatch == "box":
            parts.append(f'<rect x="{_n(x)}" y="{_n(y - 8)}" width="10" height="10" fill="{colour}"/>')
        else:
            dash = ' stroke-dasharray="3 2"' if swatch == "dash" else ""
            parts.append(
                f'<line x1="{_n(x)}" y1="{_n(y - 3)}" x2="{_n(x + 10)}" y2="{_n(y - 3)}" '
                f'stroke="{colour}" stroke-width="2"{dash}/>'
            )
        parts.append(f'<text x="{_n(x + 14)}" y="{_n(y + 1)}" font-size="{font_size}">{_escape(name)}</text>')
        x += 24 + 5.6 * font_size / 9 * len(name)
    parts.append("</g>")
    return "".join(parts)


def _step_line(left: float, base: float, slot: float, heights: Sequence[float], colour: str, css: str) -> str:
    """A histogram outline: up and across each bin, back to the baseline at the end."""
    points = [(left, base)]
    for k, h in enumerate(heights):
        points += [(left + k * slot, base - h), (left + (k + 1) * slot, base - h)]
    points.append((left + len(heights) * slot, base))
    return (
        f'<polyline class="step {css}" fill="none" stroke="{colour}" stroke-width="1.6" '
        f'stroke-linejoin="miter" points="{" ".join(f"{_n(px)},{_n(py)}" for px, py in points)}"/>'
    )


def _label(
    x: float, y: float, text: str, *, anchor: str, max_chars: int, font_size: int = 9, rotate: float | None = None
) -> str:
    turn = f' transform="rotate({_n(rotate)} {_n(x)} {_n(y)})"' if rotate is not None else ""
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{font_size}" text-anchor="{anchor}"{turn}>'
        f"{_escape(_shorten(text, max_chars))}</text>"
    )


def _svg(width: float, height: float, title: str, parts: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" font-family="DejaVu Sans, sans-serif" font-size="9" '
        f'fill="#222222" role="img" aria-label="{_escape(title)}"><title>{_escape(title)}</title>'
        f'<text x="{_n(10)}" y="{_n(14)}" font-size="11" font-weight="bold">{_escape(title)}</text>'
        f"{''.join(parts)}</svg>"
    )


def text_label(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str,
    max_chars: int = LABEL_CHARS,
    font_size: int = 9,
    rotate: float | None = None,
) -> str:
    """A label (9 pixels unless ``font_size`` says), escaped, shortened to ``max_chars`` and turned
    ``rotate`` degrees about its anchor."""
    return _label(x, y, text, anchor=anchor, max_chars=max_chars, font_size=font_size, rotate=rotate)


# ---------------------------------------------------------------------------------------------
# Numbers and text
# ---------------------------------------------------------------------------------------------


def _escape(text: object) -> str:
    """Text safe inside an element or a double-quoted attribute; invalid XML characters become U+FFFD."""
    cleaned = _XML_INVALID.sub("\ufffd", str(text))
    return (
        cleaned.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _shorten(text: object, max_chars: int) -> str:
    text = str(text)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _n(value: float) -> str:
    """Coordinates to 0.1 px, so output bytes do not depend on float noise."""
    rounded = round(float(value), 1)
    return str(int(rounded)) if rounded == int(rounded) else f"{rounded:.1f}"


def _tick(value: float) -> str:
    """An axis value as people write it: 800k, 1.4M, 0.25, 37 (never 8e+05)."""
    number = float(value)
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= 10 * size or (abs(number) >= size and number % (size / 10) == 0):
            return f"{number / size:.3g}{suffix}"
    return _g(number)


def _g(value: float) -> str:
    return f"{float(value):.3g}"


def _percent(share: float) -> str:
    percent = 100 * float(share)
    return f"{percent:.0f}%" if abs(percent - round(percent)) < 1e-9 else f"{percent:.1f}%"


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 (times a power of ten) not below ``value``."""
    if not value > 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for mantissa in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if mantissa * power >= value * (1 - 1e-9):
            return round(mantissa * power, 12)
    return 10 * power


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _clip01(value: float) -> float:
    return min(max(float(value), 0.0), 1.0)


def _shares(counts: Sequence[float]) -> list[float]:
    values = [max(float(c), 0.0) if _is_number(c) else 0.0 for c in counts]
    total = sum(values)
    return [v / total if total > 0 else 0.0 for v in values]


def _histogram(values: Sequence[float], bins: int, upper: float) -> list[float]:
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, max(0, int(float(value) / upper * bins)))] += 1
    return [c / len(values) for c in counts]


def _median(values: Sequence[float]) -> float:
    ordered = sorted(float(v) for v in values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _heat_colour(fraction: float) -> str:
    position = fraction * (len(HEAT_STOPS) - 1)
    k = min(int(position), len(HEAT_STOPS) - 2)
    t = position - k
    rgb = [round(a + (b - a) * t) for a, b in zip(HEAT_STOPS[k], HEAT_STOPS[k + 1], strict=True)]
    return "#{:02X}{:02X}{:02X}".format(*rgb)


# The pieces other chart modules (the compliance report's charts) draw with.
axes_grid = _axes_grid
bar = _bar
legend = _legend
svg_document = _svg
svg_number = _n
tick_text = _tick
nice_ceiling = _nice_ceiling
