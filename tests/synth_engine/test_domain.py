"""Schema-driven encoding: public grids, codes, bins, and what may be read from the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from synth_engine.generators.base import GeneratorError, SchemaMismatchError
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import (
    OTHER_VALUE,
    CategoricalCodec,
    NumericCodec,
    codec_from_dict,
    fit_codecs,
    numeric_grid,
    numeric_output,
    ordered_bins,
    parse_schema,
    private_bounds,
    unordered_bins,
    validate_frame,
)
from synth_engine.privacy import ZCDPAccountant


@pytest.mark.parametrize(
    ("lower", "upper", "integer"),
    [
        (0, 99_999, True),
        (17, 90, True),
        (12_285, 1_490_400, True),
        (0.0, 1.0, False),
        (-10, 500, True),
        (-5.0, 5.0, False),
    ],
)
def test_grid_covers_the_bounds_in_value_order_with_exact_points(lower, upper, integer) -> None:
    low, high = numeric_grid(lower, upper, integer=integer, max_cells=128)
    assert low[0] == lower and high[-1] == upper
    assert np.all(np.diff(low) >= 0) and np.all(high >= low)
    assert len(low) <= 130
    points = set(low[low == high])
    assert {lower, upper} <= points
    if lower < 0 < upper:
        assert 0 in points
    if integer:
        assert np.all(low[1:] == high[:-1] + 1)  # contiguous integer cells, no gaps or overlaps


def test_integer_codec_round_trips_point_masses_and_stays_in_its_cells() -> None:
    codec = NumericCodec(
        "gain", "integer", *numeric_grid(0, 99_999, integer=True, max_cells=128), has_missing=False, dtype="int64"
    )
    values = pd.Series([0, 1, 99_999, 99_998, 5_000, 7_298] * 50)
    codes = codec.encode(values)
    decoded = codec.decode(codes, np.random.default_rng(0))
    assert decoded.dtype == np.int64
    assert np.all(decoded[values == 0] == 0)
    assert np.all(decoded[values == 99_999] == 99_999)
    assert np.all((decoded >= codec.low[codes]) & (decoded <= codec.high[codes]))


def test_float_codec_keeps_missing_values_missing() -> None:
    codec = NumericCodec(
        "x", "float", *numeric_grid(-5.0, 5.0, integer=False, max_cells=16), has_missing=True, dtype="float64"
    )
    values = pd.Series([-5.0, 0.0, 5.0, 0.3, np.nan])
    decoded = codec.decode(codec.encode(values), np.random.default_rng(0))
    assert decoded.isna().tolist() == [False, False, False, False, True]
    assert decoded[:3].tolist() == [-5.0, 0.0, 5.0]


def test_values_outside_declared_bounds_are_clipped_into_them() -> None:
    codec = NumericCodec(
        "age", "integer", *numeric_grid(17, 90, integer=True, max_cells=128), has_missing=False, dtype="int64"
    )
    decoded = codec.decode(codec.encode(pd.Series([3, 200])), np.random.default_rng(0))
    assert decoded.tolist() == [17, 90]


def test_categorical_codec_maps_unseen_values_to_other_and_missing_to_nan() -> None:
    codec = CategoricalCodec("c", ["a", "b"], has_other=True, has_missing=True, dtype="object")
    codes = codec.encode(pd.Series(["a", "zzz", "", None, "b"]))
    assert codes.tolist() == [0, 2, 3, 3, 1]
    decoded = codec.decode(codes, np.random.default_rng(0))
    assert decoded[:2].tolist() == ["a", OTHER_VALUE]
    assert decoded[2:4].isna().all()
    assert codec_from_dict(codec.to_dict()) == codec


def test_private_bounds_bracket_the_data_within_a_factor_of_two() -> None:
    values = np.repeat([17.0, 40.0, 90.0], 300)
    lower, upper = private_bounds(values, sigma=5.0, integer=True, rng=np.random.default_rng(0))
    assert 8 < lower <= 17 and 90 <= upper < 256


def test_a_category_seen_once_is_not_released_when_categories_are_not_declared() -> None:
    frame = pd.DataFrame({"c": ["common"] * 2000 + ["rare"] * 1500 + ["unique-person"]})
    specs = parse_schema({"columns": [{"name": "c", "type": "categorical"}]})
    accountant = ZCDPAccountant()
    codecs = fit_codecs(
        FrameCounts(frame),
        specs,
        rho=0.05,
        threshold_delta=1e-6,
        max_cells=128,
        accountant=accountant,
        rng=np.random.default_rng(0),
    )
    assert codecs[0].values == ["common", "rare"]
    assert codecs[0].has_other
    assert accountant.approximate_delta == pytest.approx(1e-6)
    assert accountant.rho == pytest.approx(0.05)


def test_declared_categories_and_bounds_cost_nothing() -> None:
    frame = pd.DataFrame({"c": ["x", "y"] * 10, "n": range(20)})
    schema = {
        "columns": [
            {"name": "c", "type": "categorical", "categories": ["x", "y", "z"]},
            {"name": "n", "type": "integer", "min": 0, "max": 19},
        ]
    }
    accountant = ZCDPAccountant()
    codecs = fit_codecs(
        FrameCounts(frame),
        parse_schema(schema),
        rho=0.0,
        threshold_delta=0.0,
        max_cells=64,
        accountant=accountant,
        rng=np.random.default_rng(0),
    )
    assert accountant.measurements == []
    assert codecs[0].values == ["x", "y", "z"] and not codecs[0].has_other
    assert codecs[1].low[0] == 0 and codecs[1].high[-1] == 19


def test_ordered_bins_are_contiguous_and_isolate_point_masses() -> None:
    counts = np.array([9_000.0] + [10.0] * 100 + [500.0] * 4)
    bins = ordered_bins(counts, max_bins=8, min_count=50)
    assert np.all(np.diff(bins) >= 0)
    assert bins[0] != bins[1]  # the heavy zero cell keeps a bin to itself
    assert bins.max() + 1 <= 8 + 1


def test_unordered_bins_pool_rare_codes_and_keep_the_label_whole() -> None:
    counts = np.array([1000.0, 800.0, 3.0, 2.0, 1.0])
    pooled = unordered_bins(counts, max_bins=32, min_count=50)
    assert pooled[2] == pooled[3] == pooled[4] == pooled[0]  # tiny pool joins the largest bin
    assert pooled[1] != pooled[0]
    assert unordered_bins(counts, max_bins=32, min_count=50, keep_all=True).tolist() == [0, 1, 2, 3, 4]


def test_validation_reports_single_valued_columns_as_warnings_when_not_private() -> None:
    frame = pd.DataFrame({"a": ["x"] * 10, "b": list("xyxyxyxyxy")})
    specs = parse_schema({"columns": [{"name": "a", "type": "categorical"}, {"name": "b", "type": "categorical"}]})
    messages = validate_frame(frame, specs, private=False)
    assert len(messages) == 1 and "'a'" in messages[0]


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"a": ["x"] * 10, "label": ["y"] * 10}),  # constant column, one-class label
        pd.DataFrame({"a": [None] * 10, "label": list("yn") * 5}),  # all-missing column
        pd.DataFrame({"a": [str(i) for i in range(10)], "label": list("yn") * 5}),  # ID-like column
    ],
)
def test_validation_under_dp_makes_no_verdict_that_one_row_could_flip(frame) -> None:
    schema = {
        "columns": [
            {"name": "a", "type": "categorical"},
            {"name": "label", "type": "categorical", "role": "label", "categories": ["n", "y"]},
        ]
    }
    assert validate_frame(frame, parse_schema(schema), private=True) == []


@pytest.mark.parametrize(
    ("frame", "columns", "error", "match"),
    [
        (pd.DataFrame({"a": [1, 2]}), [{"name": "b", "type": "integer"}], SchemaMismatchError, "disagree"),
        (
            pd.DataFrame({"a": [1, 2]}),
            [{"name": "a", "type": "integer", "role": "identifier"}],
            SchemaMismatchError,
            "identifier",
        ),
        (pd.DataFrame({"a": [1.5, 2.0]}), [{"name": "a", "type": "integer"}], SchemaMismatchError, "fractions"),
        (pd.DataFrame({"a": ["x", "y"]}), [{"name": "a", "type": "float"}], SchemaMismatchError, "not numeric"),
        (
            pd.DataFrame({"a": ["x", "q"]}),
            [{"name": "a", "type": "categorical", "categories": ["x", "y"]}],
            SchemaMismatchError,
            "outside its declared",
        ),
        (pd.DataFrame({"a": [1.0, np.inf]}), [{"name": "a", "type": "float"}], GeneratorError, "inf"),
        (
            pd.DataFrame({"a": [1.0, None]}),
            [{"name": "a", "type": "float", "nullable": False}],
            SchemaMismatchError,
            "nullable: false",
        ),
    ],
)
def test_validation_refuses_bad_input_with_a_clear_message(frame, columns, error, match) -> None:
    with pytest.raises(error, match=match):
        validate_frame(frame, parse_schema({"columns": columns}), private=True)


def test_validation_without_dp_refuses_an_all_missing_column() -> None:
    frame = pd.DataFrame({"a": [None, None]})
    with pytest.raises(GeneratorError, match="entirely missing"):
        validate_frame(frame, parse_schema({"columns": [{"name": "a", "type": "categorical"}]}), private=False)


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"columns": []},
        {"columns": [{"name": "a", "type": "text"}]},
        {"columns": [{"name": "a", "type": "integer", "min": 5, "max": 1}]},
        {"columns": [{"name": "a", "type": "integer", "role": "boss"}]},
    ],
)
def test_malformed_schemas_are_refused(schema: dict) -> None:
    with pytest.raises(SchemaMismatchError):
        parse_schema(schema)


def test_target_shares_spread_the_remainder_over_unnamed_values_by_the_estimate():
    from synth_engine.generators.domain import CategoricalCodec, target_shares

    codec = CategoricalCodec(name="label", values=["a", "b", "c"], has_other=False, has_missing=False, dtype="object")

    shares = target_shares(codec, {"a": 0.5}, np.array([0.2, 0.6, 0.2]))

    assert shares.tolist() == pytest.approx([0.5, 0.375, 0.125])
    with pytest.raises(GeneratorError, match="at most 1"):
        target_shares(codec, {"a": 0.8, "b": 0.8})
    with pytest.raises(GeneratorError, match="name every value"):
        target_shares(codec, {"a": 0.2, "b": 0.2, "c": 0.2})


def test_private_bounds_keep_a_thin_tail_and_never_admit_a_far_noise_bucket() -> None:
    # 3,000 ages in [17, 90]: 3 % above 63 (the [64, 128) bucket holds 90 rows, 3σ). Before
    # issue 11.5 the tail was clipped in most fits, and in ~0.4 % of fits a bucket far from every
    # value passed on noise alone (upper bounds of 2^20 and more, or negative lower bounds).
    from synth_engine.generators.domain import bounds_from_magnitudes, magnitude_index

    values = np.concatenate([np.full(1000, 20.0), np.full(1910, 40.0), np.full(90, 70.0)])
    index, length = magnitude_index(values, integer=True)
    histogram = np.bincount(index, minlength=length)
    rng = np.random.default_rng(0)
    bounds = np.array([bounds_from_magnitudes(histogram, 30.0, integer=True, rng=rng) for _ in range(5000)])
    assert (bounds[:, 0] >= 0).all() and (bounds[:, 1] < 1024).all()
    assert (bounds[:, 1] >= 70).mean() > 0.8


def _magnitude_histogram(values: np.ndarray) -> np.ndarray:
    from synth_engine.generators.domain import magnitude_index

    index, length = magnitude_index(values, integer=True)
    return np.bincount(index, minlength=length)


def _draw_bounds(histogram: np.ndarray, sigma: float, draws: int) -> np.ndarray:
    from synth_engine.generators.domain import bounds_from_magnitudes

    rng = np.random.default_rng(0)
    return np.array([bounds_from_magnitudes(histogram, sigma, integer=True, rng=rng) for _ in range(draws)])


def test_a_zero_inflated_column_keeps_its_zeros_and_its_nonzero_tail() -> None:
    # Adult's capital gain on 3,000 rows: 91 % zeros, then 60 / 120 / 50 rows in [2^11, 2^14) and
    # nothing between 1 and 100; σ = 36 is mst's domain noise at ε = 1 with eight undeclared
    # domains. No single bucket clears the anchor, so the old rule released [0, 0] in every fit
    # (a column of zeros); a window of adjacent buckets finds the tail.
    values = np.concatenate([np.zeros(2730), np.full(60, 3000.0), np.full(120, 6000.0), np.full(50, 12000.0)])
    bounds = _draw_bounds(_magnitude_histogram(values), 36.0, 2000)
    assert (bounds[:, 1] >= 8191).mean() > 0.5
    assert (bounds[:, 0] == 0).mean() > 0.99 and (bounds[:, 1] < 2**21).all()


def test_a_cluster_one_empty_bucket_beyond_the_range_is_kept() -> None:
    # Capital gains top-coded at 99,999 (194 rows) beyond an almost empty [32768, 65536) (6 rows):
    # growing one bucket at a time stopped at 32,767 in 57 % of fits.
    values = np.concatenate(
        [np.zeros(35_000), np.full(1200, 6000.0), np.full(600, 12000.0), np.full(100, 20000.0)]
        + [np.full(6, 40000.0), np.full(194, 99999.0)]
    )
    bounds = _draw_bounds(_magnitude_histogram(values), 36.0, 2000)
    assert (bounds[:, 1] >= 99_999).mean() > 0.9 and (bounds[:, 1] < 2**19).all()


def test_a_column_of_zeros_gains_a_noise_only_range_rarely_and_never_far_beyond_the_reach() -> None:
    from synth_engine.generators.domain import NONZERO_FALSE_POSITIVE, NONZERO_REACH

    bounds = _draw_bounds(_magnitude_histogram(np.zeros(3000)), 30.0, 10_000)
    widened = (bounds[:, 0] < 0) | (bounds[:, 1] > 0)
    assert 0 < widened.mean() <= 1.5 * NONZERO_FALSE_POSITIVE
    assert (np.abs(bounds) < 8 * NONZERO_REACH).all()  # the reach, then growing at 5 % per step


def test_weekday_numbers_are_consecutive_across_weekends_and_before_1970() -> None:
    from synth_engine.generators.domain import is_weekend, weekday_index, weekday_seconds

    days = pd.date_range("1969-12-20", "1970-01-20")
    seconds = (days - pd.Timestamp("1970-01-01")).total_seconds().to_numpy()
    weekdays = seconds[~is_weekend(seconds)]
    numbers = weekday_index(weekdays)
    assert (np.diff(numbers) == 1).all() and weekday_index(np.array([0.0]))[0] == 0  # 1970-01-01, a Thursday
    np.testing.assert_array_equal(weekday_seconds(numbers), weekdays)
    assert list(is_weekend(seconds[:3])) == [True, True, False]  # Saturday 20, Sunday 21, Monday 22
    assert weekday_index(seconds[:3]).tolist() == [numbers[0]] * 3  # a weekend day counts as the Monday after


def test_a_weekdays_codec_starts_and_ends_its_cells_on_weekdays_and_round_trips() -> None:
    specs = parse_schema(
        {
            "columns": [
                {
                    "name": "day",
                    "type": "datetime",
                    "resolution": "day",
                    "calendar": "weekdays",
                    "min": "2024-01-06",
                    "max": "2024-03-31",
                }
            ]
        }  # a Saturday to a Sunday
    )
    frame = pd.DataFrame({"day": pd.bdate_range("2024-01-08", "2024-03-29")})
    [codec] = fit_codecs(
        FrameCounts(frame),
        specs,
        rho=1.0,
        threshold_delta=0.0,
        max_cells=16,
        accountant=ZCDPAccountant(),
        rng=np.random.default_rng(0),
    )
    assert pd.Timestamp(codec.low[0], unit="s") == pd.Timestamp("2024-01-08")  # the Monday after
    assert pd.Timestamp(codec.high[-1], unit="s").normalize() == pd.Timestamp("2024-03-29")  # the Friday before
    assert not is_weekend_any(codec.low) and not is_weekend_any(codec.high)
    again = codec_from_dict(codec.to_dict())
    assert again.calendar == "weekdays"
    decoded = again.decode(np.arange(codec.n_codes).repeat(50), np.random.default_rng(1)).dropna()
    assert (decoded.dt.dayofweek < 5).all() and decoded.between("2024-01-08", "2024-03-29").all()
    assert (again.encode(frame["day"]) >= 0).all()


def is_weekend_any(seconds: np.ndarray) -> bool:
    from synth_engine.generators.domain import is_weekend

    return bool(is_weekend(seconds).any())


def test_a_small_column_spread_over_several_magnitudes_is_anchored_on_its_window_not_on_noise() -> None:
    # breast_cancer's "mean area" at mst's domain noise for thirty undeclared columns at ε = 1
    # is σ ≈ 87; at σ = 60 here no single bucket clears the anchor either. The fallback was the
    # fullest single noisy bucket, often a noise-only one (upper bounds to 10^24); the best window
    # of adjacent buckets finds the data more often (deterministic draws: rng seed 0).
    from sklearn.datasets import load_breast_cancer

    from synth_engine.generators.domain import bounds_from_magnitudes, magnitude_index

    values = load_breast_cancer(as_frame=True).frame["mean area"].to_numpy()
    index, length = magnitude_index(values, integer=False)
    histogram = np.bincount(index, minlength=length)
    rng = np.random.default_rng(0)
    bounds = np.array([bounds_from_magnitudes(histogram, 60.0, integer=False, rng=rng) for _ in range(2000)])
    wild = ((bounds[:, 1] > 1000 * values.max()) | (bounds[:, 1] < np.median(values))).mean()
    # before: 4.6 % wild, the middle 80 % covered in 38.7 % (at σ = 87: 36.9 % and 14.8 %)
    assert wild < 0.025, wild
    covered = (bounds[:, 0] <= np.quantile(values, 0.1)) & (bounds[:, 1] >= np.quantile(values, 0.9))
    assert covered.mean() > 0.42


@pytest.mark.parametrize(
    ("kind", "dtype", "lower", "upper", "unit"),
    [
        ("integer", "Int64", -10, 99_999, 1.0),
        ("integer", "int64", 17, 90, 1.0),
        ("datetime", "datetime64[ns]", 946_684_800, 1_767_139_200, 1.0),
        ("datetime", "datetime64[ns]", 946_684_800, 1_767_139_200, 86_400.0),
    ],
)
def test_whole_number_cells_decode_to_the_values_of_the_float_formula(kind, dtype, lower, upper, unit) -> None:
    """Integers and stamps are computed in integers (and text as a Categorical by code): the
    values ``numeric_output`` gives for ``low + ⌊u · steps⌋ · unit`` from the same stream."""
    low, high = numeric_grid(lower, upper, integer=True, max_cells=64)
    if unit != 1.0:
        low, high = np.unique(np.floor(low / unit) * unit), None
        high = np.append(low[1:] - unit, np.floor(upper / unit) * unit)
    missing = dtype != "int64"
    codec = NumericCodec("x", kind, low, high, has_missing=missing, dtype=dtype, unit=unit)
    codes = np.random.default_rng(1).integers(0, codec.n_codes, 5_000)
    steps = np.maximum(np.floor((codec.high - codec.low + 1.0) / unit), 1.0)
    u = np.random.default_rng(2).random(len(codes))
    cells = np.minimum(codes, len(low) - 1)
    values = np.where(codes == len(low), np.nan, low[cells] + np.floor(u * steps[cells]) * unit)
    expected = numeric_output(values, kind, dtype, "x")
    pd.testing.assert_series_equal(codec.decode(codes, np.random.default_rng(2)), expected)
    assert codec.decode(codes, np.random.default_rng(2)).isna().sum() == (np.sum(codes == len(low)) if missing else 0)


def test_a_categorical_decodes_by_code_to_the_values_it_decodes_as_objects() -> None:
    codec = CategoricalCodec("c", ["a", "b", ""], has_other=True, has_missing=True, dtype="object")
    codes = np.random.default_rng(3).integers(0, codec.n_codes, 2_000)
    objects = codec.decode(codes, np.random.default_rng(0))
    drawn = codec.decode(codes, np.random.default_rng(0), categories=True)
    assert list(drawn.cat.categories) == ["a", "b", "", OTHER_VALUE]
    pd.testing.assert_series_equal(drawn.astype(object).where(drawn.notna(), np.nan), objects)
    numbers = CategoricalCodec("n", [1, 2], has_other=False, has_missing=False, dtype="object")
    assert numbers.decode(np.array([0, 1]), np.random.default_rng(0), categories=True).dtype == object
