"""The ε-spent chart's date labels name days of the report's period (pure, no database)."""

from __future__ import annotations

from datetime import date

from audits.compliance.charts import epsilon_spent_chart


def test_the_right_edge_is_labelled_with_the_periods_last_day_not_the_day_after() -> None:
    svg = epsilon_spent_chart(
        [("adult", [(0.0, 0.5), (3.2, 1.5)])], days=5, first_day=date(2026, 12, 1), title="ε spent"
    )
    assert "2026-12-01" in svg and "2026-12-05" in svg
    assert "2026-12-06" not in svg  # the period is 1-5 December; its end is the end of the 5th
