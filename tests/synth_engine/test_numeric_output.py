"""Drawn numbers become the column's dtype by whole arrays exactly as pandas' conversions give them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synth_engine.generators.domain import numeric_output


def _draws(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = np.floor(rng.uniform(-1.5e9, 2e9, 2_000))
    values[rng.random(2_000) < 0.2] = np.nan
    return values


def test_datetimes_are_pandas_epoch_seconds():
    values = _draws(0)
    # each value by itself (pandas' float-array conversion can raise a stale FloatingPointError)
    stamps = [pd.NaT if np.isnan(value) else pd.Timestamp(int(value), unit="s") for value in values]
    expected = pd.Series(stamps, name="when", dtype="datetime64[ns]")
    pd.testing.assert_series_equal(numeric_output(values, "datetime", "datetime64[ns]", "when"), expected)


def test_nullable_integers_are_rounded_half_to_even_as_pandas_rounds():
    values = _draws(1) / 4  # quarters: ties in both directions
    expected = pd.Series(values, name="n").round().astype("Int64")
    pd.testing.assert_series_equal(numeric_output(values, "integer", "Int64", "n"), expected)


def test_fractional_seconds_take_pandas_own_conversion():
    values = np.array([0.5, 1.25, np.nan])
    expected = pd.Series(pd.to_datetime(["1970-01-01T00:00:00.5", "1970-01-01T00:00:01.25", None]), name="t")
    pd.testing.assert_series_equal(numeric_output(values, "datetime", "datetime64[ns]", "t"), expected)
