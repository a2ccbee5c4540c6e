"""Pure tests of the non-private Gaussian copula generator and of the generator registry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_engine.generators import (
    GENERATORS,
    GaussianCopulaGenerator,
    GeneratorError,
    get_generator,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adult_sample.csv"
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def read_adult() -> pd.DataFrame:
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column])
    return frame


def adult_schema(frame: pd.DataFrame) -> dict:
    return {
        "columns": [
            {"name": name, "type": "integer"}
            if name in NUMERIC
            else {"name": name, "type": "categorical", "role": "label", "categories": ["<=50K", ">50K"]}
            if name == "income"
            else {"name": name, "type": "categorical", "role": "other"}
            for name in frame.columns
        ]
    }


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv().encode()


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return read_adult()


@pytest.fixture(scope="module")
def fitted(adult: pd.DataFrame) -> GaussianCopulaGenerator:
    return GaussianCopulaGenerator().fit(adult, adult_schema(adult), random_state=0)


def test_sample_has_the_source_columns_order_and_dtypes(fitted, adult) -> None:
    synthetic = fitted.sample(800)
    assert synthetic.shape == (800, adult.shape[1])
    assert list(synthetic.columns) == list(adult.columns)
    assert synthetic.dtypes.equals(adult.dtypes)


def test_marginals_and_point_masses_follow_the_data(fitted, adult) -> None:
    synthetic = fitted.sample(20_000)
    for column in ("capital-gain", "capital-loss"):
        assert (synthetic[column] == 0).mean() == pytest.approx((adult[column] == 0).mean(), abs=0.02)
    assert synthetic["age"].between(adult["age"].min(), adult["age"].max()).all()
    assert synthetic["sex"].value_counts(normalize=True)["Male"] == pytest.approx(
        (adult["sex"] == "Male").mean(), abs=0.03
    )


def test_the_copula_keeps_strong_dependences(fitted, adult) -> None:
    synthetic = fitted.sample(20_000)
    by_class = synthetic.groupby("income")["education-num"].mean()
    assert by_class[">50K"] - by_class["<=50K"] > 1.0  # one copula per label class
    real = adult["age"].corr(adult["hours-per-week"], method="spearman")
    fake = synthetic["age"].corr(synthetic["hours-per-week"], method="spearman")
    assert fake == pytest.approx(real, abs=0.1)


def test_same_seed_gives_byte_identical_output(adult) -> None:
    schema = adult_schema(adult)
    first = GaussianCopulaGenerator().fit(adult, schema, random_state=3).sample(500)
    second = GaussianCopulaGenerator().fit(adult, schema, random_state=3).sample(500)
    assert csv_bytes(first) == csv_bytes(second)


def test_conditioning_on_the_label_meets_the_requested_shares(fitted) -> None:
    synthetic = fitted.sample(3_001, conditions={"income": {">50K": 0.5, "<=50K": 0.5}})
    assert (synthetic["income"] == ">50K").mean() == pytest.approx(0.5, abs=1 / 3_001)
    rich = fitted.sample(1_000, conditions={"income": ">50K"})
    assert (rich["income"] == ">50K").all()
    assert rich["age"].mean() > fitted.sample(1_000)["age"].mean()


@pytest.mark.parametrize("conditions", [{"sex": "Male"}, {"income": "rich"}, {"income": {">50K": 0.2}}])
def test_conditions_other_than_label_shares_are_refused(fitted, conditions) -> None:
    with pytest.raises(GeneratorError):
        fitted.sample(10, conditions=conditions)


def test_it_reports_no_privacy(fitted) -> None:
    spent = fitted.privacy_spent()
    assert spent.epsilon == math.inf and not spent.is_private
    assert spent.accountant == "none (non-private)"
    assert not GaussianCopulaGenerator.is_private


def test_a_loaded_model_samples_identically(fitted, tmp_path: Path) -> None:
    fitted.save(tmp_path)
    loaded = GaussianCopulaGenerator.load(tmp_path)
    assert csv_bytes(loaded.sample(600)) == csv_bytes(fitted.sample(600))


def test_missing_values_come_back_missing() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"x": np.where(rng.random(2_000) < 0.2, np.nan, rng.normal(size=2_000)), "c": rng.choice(["a", "b", ""], 2_000)}
    )
    schema = {"columns": [{"name": "x", "type": "float"}, {"name": "c", "type": "categorical"}]}
    synthetic = GaussianCopulaGenerator().fit(frame, schema, random_state=0).sample(5_000)
    assert synthetic["x"].isna().mean() == pytest.approx(0.2, abs=0.03)
    assert synthetic["c"].isna().mean() == pytest.approx(1 / 3, abs=0.03)


def test_high_cardinality_is_only_a_warning_without_dp(adult) -> None:
    frame = adult.assign(workclass=[f"id-{i}" for i in range(len(adult))])
    messages = GaussianCopulaGenerator().check(frame, adult_schema(adult))
    assert any("distinct values" in message for message in messages)


def test_bad_row_counts_and_unfitted_use_are_refused(fitted) -> None:
    with pytest.raises(GeneratorError):
        fitted.sample(0)
    with pytest.raises(GeneratorError):
        GaussianCopulaGenerator().sample(5)


# ---------------------------------------------------------------------- registry


def test_registry_builds_generators_by_name() -> None:
    assert {"mst", "copula"} <= set(GENERATORS)
    assert get_generator("copula", n_quantiles=101).n_quantiles == 101
    assert get_generator("mst", max_bins=16).get_params()["max_bins"] == 16


def test_registry_refuses_unknown_generators_listing_the_valid_ones() -> None:
    with pytest.raises(GeneratorError, match="copula"):
        get_generator("gan")


def test_registry_refuses_unknown_parameters_listing_the_valid_ones() -> None:
    with pytest.raises(GeneratorError, match="n_quantiles"):
        get_generator("copula", quantiles=3)
