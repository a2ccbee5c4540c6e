"""Pure tests of the MST generator: contract, accounting, DP sanity, conditioning, I/O, bad input.

No database. Fits use the committed 3,000-row Adult fixture (``tests/fixtures/adult_sample.csv``,
sampled from ``shared/datasets/adult/adult.csv`` with ``random_state=0``); seeds are fixed.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_engine.generators import (
    GeneratorError,
    InsufficientBudgetError,
    MSTGenerator,
    SchemaMismatchError,
    get_generator,
)
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import parse_schema, schema_dtypes
from synth_engine.generators.mst import (
    LABEL_FRACTION,
    MIN_GRID_CELLS,
    MIN_SIGNAL_TO_NOISE,
    _budget_plan,
    _main_sigma,
    grid_cells,
)
from synth_engine.privacy.row_count import PaidRowEstimate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adult_sample.csv"
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
BOUNDS = {
    "age": (17, 90),
    "fnlwgt": (10_000, 1_500_000),
    "education-num": (1, 16),
    "capital-gain": (0, 99_999),
    "capital-loss": (0, 4_356),
    "hours-per-week": (1, 99),
}
DELTA = 1e-5


def read_adult() -> pd.DataFrame:
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column])
    return frame


def adult_schema(frame: pd.DataFrame) -> dict:
    columns = []
    for name in frame.columns:
        if name in NUMERIC:
            columns.append({"name": name, "type": "integer", "min": BOUNDS[name][0], "max": BOUNDS[name][1]})
        else:
            columns.append({"name": name, "type": "categorical", "role": "label" if name == "income" else "other"})
            if name == "income":  # a label's domain is declared (issue 11.7)
                columns[-1]["categories"] = ["<=50K", ">50K"]
    return {"columns": columns}


def one_way_tvd(real: pd.DataFrame, synthetic: pd.DataFrame) -> float:
    """Mean total-variation distance of the columns (numerics in 10 quantile bins)."""
    distances = []
    for column in real.columns:
        if column in NUMERIC:
            edges = np.unique(np.quantile(real[column], np.linspace(0, 1, 11)))[1:-1]
            a = pd.Series(np.searchsorted(edges, real[column], side="right"))
            b = pd.Series(np.searchsorted(edges, synthetic[column], side="right"))
        else:
            a, b = real[column], synthetic[column]
        p, q = a.value_counts(normalize=True), b.value_counts(normalize=True)
        distances.append(0.5 * p.sub(q, fill_value=0).abs().sum())
    return float(np.mean(distances))


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv().encode()


@pytest.fixture(scope="module")
def fitted(adult: pd.DataFrame, schema: dict) -> MSTGenerator:
    return MSTGenerator().fit(adult, schema, 3.0, DELTA, random_state=0)


# ---------------------------------------------------------------------- interface contract


def test_sample_has_the_source_columns_order_and_dtypes(fitted: MSTGenerator, adult: pd.DataFrame) -> None:
    synthetic = fitted.sample(500)
    assert synthetic.shape == (500, adult.shape[1])
    assert list(synthetic.columns) == list(adult.columns)
    assert synthetic.dtypes.astype(str).to_dict() == schema_dtypes(adult_schema(adult))


def test_samples_respect_declared_public_bounds(fitted: MSTGenerator) -> None:
    synthetic = fitted.sample(20_000)
    for column, (low, high) in BOUNDS.items():
        assert synthetic[column].between(low, high).all(), column


def test_point_masses_are_sampled_exactly(fitted: MSTGenerator, adult: pd.DataFrame) -> None:
    synthetic = fitted.sample(20_000)
    real_zero = (adult["capital-gain"] == 0).mean()
    assert (synthetic["capital-gain"] == 0).mean() == pytest.approx(real_zero, abs=0.05)
    assert (synthetic["hours-per-week"] == 40).mean() > 0.3


def test_same_data_parameters_and_seed_give_byte_identical_output(adult: pd.DataFrame, schema: dict) -> None:
    first = MSTGenerator().fit(adult, schema, 1.0, DELTA, random_state=11).sample(1_000)
    second = MSTGenerator().fit(adult, schema, 1.0, DELTA, random_state=11).sample(1_000)
    third = MSTGenerator().fit(adult, schema, 1.0, DELTA, random_state=12).sample(1_000)
    assert csv_bytes(first) == csv_bytes(second)
    assert csv_bytes(first) != csv_bytes(third)


def test_unseeded_fits_draw_fresh_noise(adult: pd.DataFrame, schema: dict) -> None:
    first = MSTGenerator().fit(adult, schema, 1.0, DELTA).sample(300)
    second = MSTGenerator().fit(adult, schema, 1.0, DELTA).sample(300)
    assert csv_bytes(first) != csv_bytes(second)


@pytest.mark.parametrize(
    "conditions", [{"income": {">50K": 0.5, "<=50K": 0.5}}, {"income": {">50K": 0.8, "<=50K": 0.2}}]
)
def test_conditioning_on_the_label_meets_the_requested_shares(fitted: MSTGenerator, conditions: dict) -> None:
    synthetic = fitted.sample(4_001, conditions=conditions)
    shares = synthetic["income"].value_counts(normalize=True)
    for value, share in conditions["income"].items():
        assert shares[value] == pytest.approx(share, abs=1 / 4_001)


def test_conditioning_on_a_single_value_of_another_column(fitted: MSTGenerator) -> None:
    synthetic = fitted.sample(2_000, conditions={"sex": "Female"})
    assert (synthetic["sex"] == "Female").all()
    assert synthetic["relationship"].isin(["Husband"]).mean() < 0.05  # dependence is kept


def test_rebalancing_raises_the_minority_share_of_high_earners(fitted: MSTGenerator) -> None:
    plain = fitted.sample(5_000)
    balanced = fitted.sample(5_000, conditions={"income": {">50K": 0.5, "<=50K": 0.5}})
    assert (plain["income"] == ">50K").mean() < 0.35
    assert (balanced["income"] == ">50K").mean() == pytest.approx(0.5, abs=1e-3)
    rich_married = (balanced.loc[balanced["income"] == ">50K", "marital-status"] == "Married-civ-spouse").mean()
    assert rich_married > 0.6  # the conditional structure is sampled, not copied


def test_shares_naming_one_class_give_the_rest_to_the_others(fitted: MSTGenerator) -> None:
    balanced = fitted.sample(5_000, conditions={"income": {">50K": 0.5}})
    assert (balanced["income"] == ">50K").mean() == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize(
    "conditions",
    [
        {"income": "millionaire"},
        {"age": 30},
        {"nope": "x"},
        {"income": {">50K": 0.7, "<=50K": 0.7}},
        {"income": ">50K", "sex": "Male"},
    ],
)
def test_impossible_conditions_are_refused(fitted: MSTGenerator, conditions: dict) -> None:
    with pytest.raises(GeneratorError):
        fitted.sample(10, conditions=conditions)


@pytest.mark.parametrize("n_rows", [0, -5, 2.5, True])
def test_non_positive_or_non_integer_row_counts_are_refused(fitted: MSTGenerator, n_rows: object) -> None:
    with pytest.raises(GeneratorError, match="n_rows"):
        fitted.sample(n_rows)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- accounting


@pytest.mark.parametrize("epsilon", [0.5, 1.0, 3.0, 8.0])
@pytest.mark.parametrize("delta", [1e-5, 1e-7])
def test_spent_privacy_never_exceeds_the_target(
    adult: pd.DataFrame, schema: dict, epsilon: float, delta: float
) -> None:
    model = MSTGenerator().fit(adult, schema, epsilon, delta, random_state=0)
    spent = model.privacy_spent()
    assert spent.epsilon <= epsilon
    assert spent.epsilon == pytest.approx(epsilon, rel=1e-6)
    assert spent.delta == delta
    planned = model.plan_privacy(epsilon, delta, len(adult))
    assert spent.epsilon <= planned.epsilon and spent.delta <= planned.delta


def test_direct_label_tables_are_an_accounted_option(adult: pd.DataFrame, schema: dict) -> None:
    model = MSTGenerator().fit(adult, schema, 2.0, DELTA, random_state=0)  # label_fraction 0.3 by default
    stages = model.privacy_spent().details["stages"]
    assert stages["label_pairs"]["measurements"] == 14
    assert model.privacy_spent().epsilon <= 2.0
    assert model.sample(100, conditions={"income": ">50K"})["income"].eq(">50K").all()


def test_the_default_split_gives_the_stated_share_to_the_label_tables_and_sums_to_the_budget(
    fitted: MSTGenerator, adult: pd.DataFrame, schema: dict
) -> None:
    # issue 11.8: the label's tables get LABEL_FRACTION of the 2-way budget, and the stages
    # (rows, domain, one-ways, selection, edge tables, label tables) add up to ρ exactly
    details = fitted.privacy_spent().details
    rho = {name: stage["rho"] for name, stage in details["stages"].items()}
    assert LABEL_FRACTION == 0.3
    assert rho["label_pairs"] == pytest.approx(LABEL_FRACTION * (rho["label_pairs"] + rho["two_way"]))
    assert sum(rho.values()) == pytest.approx(details["rho"], rel=1e-12)
    assert fitted.privacy_spent().epsilon <= details["target_epsilon"]
    epsilon = details["target_epsilon"]
    plain = MSTGenerator(label_fraction=0.0).fit(adult, schema, epsilon, DELTA, random_state=0)
    stages = plain.privacy_spent().details["stages"]
    assert "label_pairs" not in stages
    assert stages["two_way"]["rho"] == pytest.approx(rho["label_pairs"] + rho["two_way"])
    # the share moves no refusal: usefulness is judged on the 2-way budget as a whole
    specs = parse_schema(schema)
    with_share = _budget_plan(MSTGenerator().get_params(), 1.0, DELTA, specs)
    without = _budget_plan(MSTGenerator(label_fraction=0.0).get_params(), 1.0, DELTA, specs)
    assert _main_sigma(with_share) == pytest.approx(_main_sigma(without)) == pytest.approx(without.two_way_sigma)
    assert with_share.two_way_sigma > without.two_way_sigma


def test_a_small_table_gets_a_grid_as_fine_as_its_noise_allows(adult: pd.DataFrame, schema: dict) -> None:
    # Cells finer than the 1-way noise hold only noise: 600 rows at ε = 1 get about n̂ / σ₁ cells
    assert grid_cells(128, 39_000.0, 50.0) == 128 and grid_cells(128, 350.0, 43.0) == MIN_GRID_CELLS
    assert grid_cells(128, 2_000.0, 50.0) == 40 and grid_cells(6, 10.0, 50.0) == 6
    small = MSTGenerator().fit(adult.iloc[:600], schema, 1.0, DELTA, random_state=0)
    sigma = small.privacy_spent().details["stages"]["one_way"]["sigma"][0]
    age = small.codecs_[small.columns_.index("age")]
    assert MIN_GRID_CELLS <= age.n_codes - int(age.has_missing) <= max(MIN_GRID_CELLS, 700 / sigma) + 3
    large = MSTGenerator().fit(adult, schema, 8.0, DELTA, random_state=0)
    assert large.codecs_[large.columns_.index("age")].n_codes > 60  # every age its own cell


def test_privacy_details_let_anyone_recompute_the_spend(fitted: MSTGenerator) -> None:
    from synth_engine.privacy import cdp_epsilon

    details = fitted.privacy_spent().details
    stages = details["stages"]
    assert set(stages) == {"rows", "domain", "one_way", "selection", "two_way", "label_pairs"}
    assert stages["one_way"]["measurements"] == 15
    assert stages["two_way"]["measurements"] == 13  # tree over the 14 non-label columns
    assert stages["label_pairs"]["measurements"] == 14  # (income, column) for every other column
    recomputed = sum(stage["rho"] for stage in stages.values())
    assert recomputed == pytest.approx(details["rho"])
    assert cdp_epsilon(details["rho"], details["conversion_delta"]) == pytest.approx(fitted.privacy_spent().epsilon)
    assert fitted.privacy_spent().accountant.startswith("zCDP")


def test_noise_grows_as_epsilon_shrinks(adult: pd.DataFrame, schema: dict) -> None:
    sigmas = []
    for epsilon in (8.0, 2.0, 0.5):
        stages = MSTGenerator().fit(adult, schema, epsilon, DELTA, random_state=0).privacy_spent().details["stages"]
        sigmas.append((stages["one_way"]["sigma"][0], stages["two_way"]["sigma"][0]))
    assert sigmas[0][0] < sigmas[1][0] < sigmas[2][0]
    assert sigmas[0][1] < sigmas[1][1] < sigmas[2][1]


def test_quality_improves_with_epsilon(adult: pd.DataFrame, schema: dict) -> None:
    def mean_tvd(epsilon: float) -> float:
        return float(
            np.mean(
                [
                    one_way_tvd(
                        adult, MSTGenerator().fit(adult, schema, epsilon, DELTA, random_state=seed).sample(len(adult))
                    )
                    for seed in range(3)
                ]
            )
        )

    assert mean_tvd(10.0) < mean_tvd(0.3)


def test_plan_privacy_is_the_target_and_needs_no_data() -> None:
    planned = MSTGenerator().plan_privacy(2.0, 1e-6, 10_000)
    assert (planned.epsilon, planned.delta) == (2.0, 1e-6)


# ---------------------------------------------------------------------- save / load


def test_a_loaded_model_samples_identically(fitted: MSTGenerator, tmp_path: Path) -> None:
    fitted.save(tmp_path / "model")
    loaded = MSTGenerator.load(tmp_path / "model")
    assert csv_bytes(loaded.sample(700)) == csv_bytes(fitted.sample(700))
    conditions = {"income": {">50K": 0.5, "<=50K": 0.5}}
    assert csv_bytes(loaded.sample(300, conditions)) == csv_bytes(fitted.sample(300, conditions))
    assert loaded.privacy_spent() == fitted.privacy_spent()
    assert {p.name for p in (tmp_path / "model").iterdir()} == {"model.json", "arrays.npz"}


def test_loading_something_else_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text('{"generator": "copula", "format_version": 1}')
    with pytest.raises(GeneratorError):
        MSTGenerator.load(tmp_path)


# ---------------------------------------------------------------------- bad input


def test_a_one_class_label_and_an_all_missing_column_are_modelled_not_refused_under_dp(
    adult: pd.DataFrame, schema: dict
) -> None:
    # A refusal that one added row can flip ("single class", "entirely missing") is a release.
    frame = adult.assign(income="<=50K", workclass="")
    assert MSTGenerator().check(frame, schema) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = MSTGenerator().fit(frame, schema, 2.0, DELTA, random_state=0)
    synthetic = model.sample(2_000)
    assert synthetic["workclass"].isna().mean() > 0.9
    assert (synthetic["income"] == "<=50K").mean() > 0.9


def test_infinite_values_are_refused(adult: pd.DataFrame, schema: dict) -> None:
    frame = adult.astype({"fnlwgt": float})
    frame.loc[3, "fnlwgt"] = -math.inf
    with pytest.raises(GeneratorError, match="inf"):
        MSTGenerator().fit(frame, schema, 1.0, DELTA, random_state=0)


def test_an_undeclared_id_like_categorical_releases_no_value_under_dp(adult: pd.DataFrame, schema: dict) -> None:
    frame = adult.assign(workclass=[f"person-{i}" for i in range(len(adult))])
    assert MSTGenerator().check(frame, schema) == []
    model = MSTGenerator().fit(frame, schema, 1.0, DELTA, random_state=0)
    assert set(model.sample(2_000)["workclass"].dropna()) <= {"other"}


def test_a_single_valued_column_gives_no_warning_and_no_other_value(adult: pd.DataFrame, schema: dict) -> None:
    frame = adult.assign(race="White")
    assert MSTGenerator().check(frame, schema) == []
    model = MSTGenerator().fit(frame, schema, 2.0, DELTA, random_state=0)
    assert set(model.sample(1_000)["race"].dropna()) <= {"White", "other"}


@pytest.mark.parametrize(("epsilon", "delta"), [(0.0, DELTA), (-1.0, DELTA), (math.inf, DELTA), (1.0, 0.0), (1.0, 1.0)])
def test_invalid_privacy_targets_are_refused(adult: pd.DataFrame, schema: dict, epsilon: float, delta: float) -> None:
    with pytest.raises(GeneratorError):
        MSTGenerator().fit(adult, schema, epsilon, delta, random_state=0)


def test_a_budget_too_small_to_be_useful_names_the_minimum(adult: pd.DataFrame, schema: dict) -> None:
    with pytest.raises(InsufficientBudgetError, match=r"use epsilon >= (\S+)") as caught:
        MSTGenerator().fit(adult, schema, 0.01, DELTA, random_state=0)
    assert "DP estimate" in caught.value.args[0]
    minimum = float(caught.value.args[0].split("use epsilon >= ")[1].split()[0])
    MSTGenerator().fit(adult, schema, minimum * 4, DELTA, random_state=0)
    generator = MSTGenerator()
    generator.check(adult, schema)
    # The plan cannot judge the data's size: n is not public, only its DP estimate in fit.
    assert generator.plan_privacy(0.01, DELTA, len(adult)).epsilon == 0.01


class UnreadSource(FrameCounts):
    """Counts of a frame that record every question asked of them."""

    def __init__(self, frame: pd.DataFrame) -> None:
        super().__init__(frame)
        self.asked: list[str] = []

    def row_count(self) -> int:
        self.asked.append("row_count")
        return super().row_count()

    def category_counts(self, spec):
        self.asked.append("category_counts")
        return super().category_counts(spec)

    def fine_counts(self, codecs):
        self.asked.append("fine_counts")
        return super().fine_counts(codecs)


PAID = PaidRowEstimate(rows=2400.0, source="a version's DP row estimate", epsilon=0.02, charged="the ledger")


def test_on_a_paid_row_estimate_a_too_small_budget_is_refused_before_anything_is_read(
    adult: pd.DataFrame, schema: dict
) -> None:
    source = UnreadSource(adult)
    refusal = MSTGenerator().budget_refusal(schema, 0.05, DELTA, PAID)
    assert refusal is not None and refusal.rows == PAID.rows and refusal.epsilon == 0.05

    with pytest.raises(InsufficientBudgetError, match="Nothing touched the data") as caught:
        MSTGenerator().fit_counts(source, schema, 0.05, DELTA, random_state=0, row_estimate=PAID)

    assert source.asked == []
    assert refusal.message() in caught.value.args[0]
    shown = float(caught.value.args[0].split("use epsilon >= ")[1].split()[0])
    assert shown >= refusal.minimum_epsilon  # rounded up, so the figure shown passes
    assert MSTGenerator().budget_refusal(schema, shown, DELTA, PAID) is None
    assert MSTGenerator().budget_refusal(schema, refusal.minimum_epsilon * 0.999, DELTA, PAID) is not None
    # with its own estimate the fit reads the count first, spends its rows stage, then refuses
    with pytest.raises(InsufficientBudgetError, match="Only the row estimate"):
        MSTGenerator().fit_counts(source, schema, 0.05, DELTA, random_state=0)
    assert source.asked == ["row_count"]


def test_on_a_paid_row_estimate_the_fit_spends_nothing_on_n_and_records_which_estimate(
    adult: pd.DataFrame, schema: dict, tmp_path: Path
) -> None:
    own = MSTGenerator().fit(adult, schema, 1.0, DELTA, random_state=0)
    paid = MSTGenerator().fit(adult, schema, 1.0, DELTA, random_state=0, row_estimate=PAID)
    own_stages, paid_stages = own.privacy_spent().details["stages"], paid.privacy_spent().details["stages"]

    assert "rows" in own_stages and "rows" not in paid_stages
    assert paid.privacy_spent().epsilon <= 1.0
    # the rows stage's 1 % goes to the measurements: same total ρ, smaller noise
    assert sum(stage["rho"] for stage in paid_stages.values()) == pytest.approx(
        sum(stage["rho"] for stage in own_stages.values()), rel=1e-9
    )
    assert paid_stages["two_way"]["sigma"][0] < own_stages["two_way"]["sigma"][0]
    record = {"source": PAID.source, "epsilon": 0.02, "charged": "the ledger", "stage": None}
    assert paid.privacy_spent().details["row_estimate"] == record
    assert own.privacy_spent().details["row_estimate"]["stage"] == "rows"
    planner = MSTGenerator()
    planner.check(adult, schema)
    assert planner.plan_privacy(1.0, DELTA, row_estimate=PAID).details["row_estimate"] == record
    with pytest.raises(InsufficientBudgetError):
        planner.plan_privacy(0.05, DELTA, row_estimate=PAID)
    paid.save(tmp_path / "model")
    assert MSTGenerator.load(tmp_path / "model").privacy_spent().details["row_estimate"] == record


def test_the_refusal_never_flips_on_one_row() -> None:
    # At the size where the marginal noise is exactly 5 % of the rows, the refusal is decided on
    # n̂ = n + noise: with one row more or less both outcomes stay possible, with nearly equal odds.
    rng = np.random.default_rng(0)
    schema = {
        "columns": [
            {"name": "a", "type": "categorical", "categories": ["x", "y"]},
            {"name": "b", "type": "categorical", "categories": ["x", "y"]},
            {"name": "c", "type": "categorical", "categories": ["x", "y"]},
        ]
    }
    epsilon = 0.5
    plan = _budget_plan(MSTGenerator().get_params(), epsilon, DELTA, parse_schema(schema))
    boundary = round(_main_sigma(plan) * MIN_SIGNAL_TO_NOISE)
    refused = {}
    for n_rows in (boundary - 1, boundary + 1):
        frame = pd.DataFrame({name: rng.choice(["x", "y"], n_rows) for name in "abc"})
        outcomes = []
        for seed in range(24):
            try:
                MSTGenerator(estimation_iterations=5).fit(frame, schema, epsilon, DELTA, random_state=seed)
                outcomes.append(False)
            except InsufficientBudgetError:
                outcomes.append(True)
        refused[n_rows] = np.mean(outcomes)
    assert all(0.15 < share < 0.85 for share in refused.values()), refused


def test_a_frame_that_does_not_match_its_schema_is_refused(adult: pd.DataFrame, schema: dict) -> None:
    with pytest.raises(SchemaMismatchError):
        MSTGenerator().fit(adult.drop(columns="age"), schema, 1.0, DELTA, random_state=0)


def test_unknown_parameters_are_refused_by_the_registry() -> None:
    with pytest.raises(GeneratorError, match="max_bins"):
        get_generator("mst", max_binz=3)


@pytest.mark.parametrize(
    "params",
    [
        {"max_bins": 1},
        {"one_way_fraction": 1.5},
        {"one_way_fraction": 0.6, "selection_fraction": 0.5},
        {"structure": "forest"},
        {"min_bin_sigmas": -1},
    ],
)
def test_out_of_range_parameters_are_refused(adult: pd.DataFrame, schema: dict, params: dict) -> None:
    with pytest.raises(GeneratorError, match="invalid MST parameters"):
        MSTGenerator(**params).fit(adult, schema, 1.0, DELTA, random_state=0)


def test_sampling_before_fit_is_refused() -> None:
    with pytest.raises(GeneratorError, match="fit"):
        MSTGenerator().sample(10)


# ---------------------------------------------------------------------- other column types


def test_boolean_datetime_float_and_missing_values_round_trip() -> None:
    rng = np.random.default_rng(0)
    n = 3_000
    start = pd.Timestamp("2020-01-01")
    frame = pd.DataFrame(
        {
            "flag": rng.random(n) < 0.3,
            "when": start + pd.to_timedelta(rng.integers(0, 365 * 86_400, n), unit="s"),
            "score": np.where(rng.random(n) < 0.1, np.nan, rng.normal(50, 10, n).clip(0, 100)),
            "kind": rng.choice(["a", "b", "c", ""], n, p=[0.5, 0.3, 0.1, 0.1]),
        }
    )
    schema = {
        "columns": [
            {"name": "flag", "type": "boolean"},
            {"name": "when", "type": "datetime", "min": "2020-01-01", "max": "2021-01-01"},
            {"name": "score", "type": "float", "min": 0, "max": 100},
            {"name": "kind", "type": "categorical"},
        ]
    }
    model = MSTGenerator().fit(frame, schema, 5.0, DELTA, random_state=0)
    synthetic = model.sample(5_000)
    assert synthetic.dtypes.astype(str).to_dict() == schema_dtypes(schema)
    assert synthetic.dtypes.astype(str).to_dict() == {
        "flag": "boolean",
        "when": "datetime64[ns]",
        "score": "float64",
        "kind": "object",
    }
    assert synthetic["score"].isna().mean() == pytest.approx(0.1, abs=0.04)
    assert synthetic["kind"].isna().mean() == pytest.approx(0.1, abs=0.04)
    assert synthetic["flag"].mean() == pytest.approx(0.3, abs=0.05)
    when = synthetic["when"]
    assert when.isna().mean() < 0.02  # the missing code exists (nullable dtype) but is ~empty
    assert when.dropna().between(start, pd.Timestamp("2021-01-01")).all()
    assert model.sample(100, conditions={"flag": True})["flag"].all()


def test_undeclared_numeric_bounds_are_estimated_privately_and_charged() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"x": rng.integers(100, 200, 4_000), "y": rng.normal(0, 1, 4_000)})
    schema = {"columns": [{"name": "x", "type": "integer"}, {"name": "y", "type": "float"}]}
    model = MSTGenerator().fit(frame, schema, 2.0, DELTA, random_state=0)
    stages = model.privacy_spent().details["stages"]
    assert stages["domain"]["measurements"] == 2
    synthetic = model.sample(4_000)
    assert synthetic["x"].between(64, 255).all()
    assert abs(synthetic["y"].mean()) < 0.3
