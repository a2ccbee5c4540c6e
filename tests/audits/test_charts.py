"""Datasheet charts: valid, deterministic SVG with the expected marks, and escaped labels."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from audits.datasheets import charts

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(\"x\")</script> & 'quote' \x00\x1b end"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def with_class(root: ET.Element, tag: str, css: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if css in e.get("class", "").split()]


def all_text(root: ET.Element) -> str:
    return " ".join("".join(e.itertext()) for e in root.iter(f"{SVG}text"))


def categorical(name: str = "workclass", categories: list | None = None) -> dict:
    categories = categories or ["Private", "Self-emp", "Gov"]
    return {
        "name": name,
        "kind": "categorical",
        "categories": categories,
        "real": [60, 30, 10][: len(categories)] + [1] * (len(categories) - 3),
        "synthetic": [55, 35, 10][: len(categories)] + [1] * (len(categories) - 3),
    }


def numeric(name: str = "age") -> dict:
    return {
        "name": name,
        "kind": "numeric",
        "bin_edges": [17, 30, 45, 60, 90],
        "real": [10, 40, 35, 15],
        "synthetic": [12, 38, 33, 17],
    }


def test_marginals_chart_draws_one_bar_per_category_and_side_and_a_step_line_per_numeric_column():
    root = parse(charts.marginals_chart([categorical(), numeric(), categorical("sex", ["Male", "Female", "Other"])]))

    assert len(with_class(root, "g", "panel")) == 3
    assert len(with_class(root, "rect", "real")) == 3 + 4 + 3
    assert len(with_class(root, "rect", "synthetic")) == 3 + 3
    assert len(with_class(root, "polyline", "step")) == 1


def test_marginals_chart_normalises_counts_to_shares_so_bar_heights_match_between_scales():
    as_counts = charts.marginals_chart([categorical()])
    as_shares = charts.marginals_chart([{**categorical(), "real": [0.6, 0.3, 0.1], "synthetic": [0.55, 0.35, 0.1]}])

    assert as_counts == as_shares


def test_marginals_chart_pools_rare_categories_beyond_the_limit_into_other():
    many = {
        "name": "country",
        "kind": "categorical",
        "categories": [f"c{k}" for k in range(40)],
        "real": [40 - k for k in range(40)],
        "synthetic": [40 - k for k in range(40)],
    }

    root = parse(charts.marginals_chart([many], max_categories=12))

    assert len(with_class(root, "rect", "real")) == 12
    assert "other (29)" in all_text(root)


def test_marginals_chart_rejects_mismatched_bins_with_a_message_naming_the_column():
    with pytest.raises(ValueError, match="'age'"):
        charts.marginals_chart([{**numeric(), "bin_edges": [0, 1]}])
    with pytest.raises(ValueError, match="kind"):
        charts.marginals_chart([{**numeric(), "kind": "ordinal"}])


def test_association_heatmap_draws_n_squared_cells_with_labels_and_a_colour_scale():
    labels = ["age", "sex", "income", "race"]
    matrix = [[0.0, 0.1, 0.2, 0.05], [0.1, 0.0, 0.3, None], [0.2, 0.3, 0.0, 0.01], [0.05, math.nan, 0.01, 0.0]]

    root = parse(charts.association_heatmap(labels, matrix))

    cells = with_class(root, "rect", "cell")
    assert len(cells) == 16
    assert len(with_class(root, "rect", "missing")) == 2
    assert len(with_class(root, "g", "scale")) == 1
    assert all(label in all_text(root) for label in labels)


def test_association_heatmap_colours_larger_differences_darker():
    root = parse(charts.association_heatmap(["a", "b"], [[0.0, 0.5], [0.5, 0.0]], vmax=0.5))

    fills = [cell.get("fill") for cell in with_class(root, "rect", "cell")]
    assert fills[0] == "#FFFFFF" and fills[1] == "#67000D"


def test_association_heatmap_rejects_a_matrix_that_does_not_match_its_labels():
    with pytest.raises(ValueError, match="2 x 2"):
        charts.association_heatmap(["a", "b"], [[0.0, 0.1]])


def test_roc_chart_draws_the_curve_anchored_at_the_corners_and_the_chance_diagonal():
    root = parse(charts.roc_chart([(0.5, 0.6), (0.1, 0.2)], auc=0.55, label="membership attack"))

    [curve] = with_class(root, "polyline", "roc")
    assert len(curve.get("points").split()) == 4
    assert len(with_class(root, "line", "diagonal")) == 1
    assert "membership attack (AUC 0.550)" in all_text(root)


def test_distance_histogram_overlays_holdout_bars_a_synthetic_step_line_and_both_medians():
    synthetic = [0.1 * k for k in range(100)]
    holdout = [0.12 * k for k in range(80)]

    root = parse(charts.distance_histogram(synthetic, holdout, bins=20))

    assert len(with_class(root, "rect", "holdout")) == 20
    assert len(with_class(root, "polyline", "step")) == 1
    assert len(with_class(root, "line", "median")) == 2
    assert "n=100" in all_text(root) and "n=80" in all_text(root)


def test_distance_histogram_needs_both_series():
    with pytest.raises(ValueError, match="each series"):
        charts.distance_histogram([], [1.0])


@pytest.mark.parametrize(
    "draw",
    [
        lambda label: charts.marginals_chart([categorical(label, [label, "b", "c"]), numeric(label)]),
        lambda label: charts.association_heatmap([label, "b"], [[0.0, 0.1], [0.1, 0.0]], title=label),
        lambda label: charts.roc_chart([(0.2, 0.4)], label=label, title=label),
        lambda label: charts.distance_histogram([1.0], [2.0], title=label),
    ],
)
def test_hostile_labels_are_escaped_and_stay_text(draw):
    svg = draw(HOSTILE)

    root = parse(svg)
    assert "<script" not in svg
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    assert "&lt;script&gt;" in svg
    assert "\x00" not in svg and "\x1b" not in svg


def test_charts_are_deterministic_and_define_no_ids():
    first = charts.distance_histogram([0.3, 0.1, 0.2], [0.4, 0.5]) + charts.marginals_chart([numeric()])
    second = charts.distance_histogram([0.3, 0.1, 0.2], [0.4, 0.5]) + charts.marginals_chart([numeric()])

    assert first == second
    assert ' id="' not in first


def test_charts_fit_the_text_width_of_an_a4_page():
    drawn = [
        charts.marginals_chart([numeric()] * 9),
        charts.association_heatmap(["a"] * 30, [[0.1] * 30] * 30),
        charts.roc_chart([(0.1, 0.2)]),
        charts.distance_histogram([1.0], [2.0]),
    ]

    for svg in drawn:
        assert float(parse(svg).get("width")) <= 640


def test_tick_labels_are_whole_readable_and_written_as_people_write_numbers():
    names = ["Married-civ-spouse", "Married-spouse-absent", "Never-married"]
    wide = {
        "name": "fnlwgt",
        "kind": "numeric",
        "bin_edges": [0, 700_000, 1_400_000],
        "real": [9, 1],
        "synthetic": [8, 2],
    }
    root = parse(charts.marginals_chart([categorical("marital-status", names), wide]))
    heat = parse(charts.association_heatmap(["education-num", "native-country"], [[0, 0.1], [0.1, 0]]))

    text = all_text(root)
    assert all(name in text for name in names)  # not cut to "Married-civ…"
    assert "1.4M" in text and "700k" in text and "e+0" not in text
    assert min(float(e.get("font-size")) for e in root.iter(f"{SVG}text")) >= 8
    assert "native-country" in all_text(heat) and "…" not in all_text(heat)
