"""Calibrated fidelity limits (issue 11 item 10): sampling floor, predicted noise, purpose threshold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audits.metrics.encoding import TableSchema
from audits.metrics.fidelity import fidelity_checks
from audits.metrics.limits import MAX_RELAXATION, TOLERANCE, fidelity_limit, sampling_floor
from audits.metrics.prediction import predict_noise, surrogate_frame

SCHEMA = {
    "columns": [
        {"name": "colour", "type": "categorical", "categories": ["red", "green", "blue", "grey"]},
        {"name": "size", "type": "integer", "min": 0, "max": 100},
        {"name": "label", "type": "categorical", "role": "label", "categories": ["no", "yes"]},
    ]
}


def population(n_rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue", "grey"], n_rows, p=[0.5, 0.3, 0.15, 0.05])
    size = np.clip(rng.normal(40, 15, n_rows) + (colour == "red") * 20, 0, 100).round().astype(int)
    label = np.where(rng.random(n_rows) < 0.2 + 0.3 * (size > 60), "yes", "no")
    return pd.DataFrame({"colour": colour, "size": size, "label": label})


def test_limit_is_the_threshold_when_noise_and_sampling_are_small() -> None:
    limit = fidelity_limit("tvd_1way", 0.10, floor=0.01, noise=0.02)
    assert limit.limit == 0.10
    assert limit.expected == pytest.approx(np.hypot(0.01, 0.02))


def test_limit_grows_with_the_expected_error_up_to_the_cap() -> None:
    assert fidelity_limit("tvd_1way", 0.10, floor=0.03, noise=0.08).limit == pytest.approx(
        TOLERANCE * np.hypot(0.03, 0.08)
    )
    assert fidelity_limit("tvd_1way", 0.10, floor=0.1, noise=0.9).limit == pytest.approx(MAX_RELAXATION * 0.10)


def test_sampling_floor_shrinks_with_the_synthetic_size() -> None:
    small = sampling_floor(0.05, n_train=8000, n_holdout=2000, n_synthetic=500)
    large = sampling_floor(0.05, n_train=8000, n_holdout=2000, n_synthetic=8000)
    assert small > 0.05 > large


def test_a_clean_small_release_passes_and_a_broken_one_fails() -> None:
    train, holdout = population(3000, 0), population(750, 1)
    table = TableSchema.from_dict(SCHEMA)
    tight = {"tvd_1way": 0.03, "tvd_2way": 0.06}  # stricter than a 300-row sample can be
    clean = fidelity_checks(train, population(300, 2), table, tight, holdout=holdout)
    assert all(c.passed for c in clean), [(c.name, c.value, c.threshold) for c in clean]
    uncalibrated = fidelity_checks(train, population(300, 2), table, tight)
    assert not all(c.passed for c in uncalibrated)  # the fixed thresholds fail the same release
    broken = population(300, 2).assign(colour="grey", size=100)
    judged = {c.name: c for c in fidelity_checks(train, broken, table, tight, holdout=holdout)}
    assert not judged["tvd_1way"].passed and not judged["tvd_2way"].passed
    assert judged["tvd_1way"].details["calibration"]["sampling_floor"] > 0


def test_surrogate_follows_the_declared_domain() -> None:
    frame, assumptions = surrogate_frame(SCHEMA, 500, np.random.default_rng(0))
    assert set(frame["colour"]) <= {"red", "green", "blue", "grey"}
    assert frame["size"].between(0, 100).all()
    assert assumptions == []
    _, guessed = surrogate_frame({"columns": [{"name": "x", "type": "categorical"}]}, 10, np.random.default_rng(0))
    assert "no declared categories" in guessed[0]


def test_predicted_noise_grows_as_epsilon_shrinks() -> None:
    """A DP sanity check of the prediction, with the real MST generator on a surrogate."""
    from synth_engine.generators import get_generator

    def at(epsilon: float):
        def fit_sample(frame: pd.DataFrame, schema: dict, rows: int, seed: int) -> pd.DataFrame:
            model = get_generator("mst").fit(frame, schema, epsilon=epsilon, delta=1e-6, random_state=seed)
            return model.sample(rows)

        return fit_sample

    low = predict_noise(SCHEMA, 1500, 500, at(0.3), repeats=1)
    high = predict_noise(SCHEMA, 1500, 500, at(10.0), repeats=1)
    assert low.noise["tvd_1way"] > high.noise["tvd_1way"]
    assert low.generator["tvd_2way"] > high.generator["tvd_2way"]
    assert low.sampling["tvd_1way"] == pytest.approx(high.sampling["tvd_1way"], rel=0.5)


def test_the_surrogate_has_dependence_for_a_generator_to_lose() -> None:
    # A DP generator shrinks what its noise hides toward independence. On independent surrogate
    # columns that cost nothing, so the association error of such a release was predicted as
    # sampling error only (0.01 where a clean ε = 1 release of 353 rows lost 0.24).
    from audits.metrics.fidelity import association_matrix

    frame, _ = surrogate_frame(SCHEMA, 4000, np.random.default_rng(0))
    associations = association_matrix(frame, TableSchema.from_dict(SCHEMA))
    assert associations[0, 1] > 0.4 and associations[1, 2] > 0.4  # neighbours in schema order

    def independent_columns(frame: pd.DataFrame, schema: dict, rows: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pd.DataFrame({c: rng.permutation(frame[c].to_numpy())[:rows] for c in frame.columns})

    def perfect(frame: pd.DataFrame, schema: dict, rows: int, seed: int) -> pd.DataFrame:
        return surrogate_frame(schema, rows, np.random.default_rng(seed))[0]

    lost = predict_noise(SCHEMA, 2000, 1000, independent_columns, repeats=1)
    kept = predict_noise(SCHEMA, 2000, 1000, perfect, repeats=1)
    assert lost.noise["association_difference"] > 0.2
    assert kept.noise["association_difference"] < 0.05


GRID_SCHEMA = {
    "columns": [
        {"name": "answer", "type": "float", "min": 17.5, "max": 42.0, "step": 0.5},
        {
            "name": "traded",
            "type": "datetime",
            "min": "2024-01-01",
            "max": "2024-03-31",
            "resolution": "day",
            "calendar": "weekdays",
        },
        {"name": "stamp", "type": "datetime", "min": "2024-01-01", "max": "2024-01-02", "resolution": "hour"},
        {"name": "label", "type": "categorical", "role": "label", "categories": ["no", "yes"]},
    ]
}


def test_the_surrogate_keeps_a_declared_grid_and_calendar_which_the_generator_would_refuse_it_without() -> None:
    """A declared step, resolution or weekdays calendar is part of the public domain: a stand-in
    table off it was refused by the generator, so a request on such a table got no prediction."""
    from synth_engine.generators import get_generator

    frame, _ = surrogate_frame(GRID_SCHEMA, 600, np.random.default_rng(0))
    answers = frame["answer"].to_numpy()
    assert np.allclose(answers / 0.5, np.rint(answers / 0.5)) and answers.min() >= 17.5 and answers.max() <= 42.0
    assert len(np.unique(answers)) > 20
    traded = pd.DatetimeIndex(frame["traded"])
    assert (traded.dayofweek < 5).all() and (traded == traded.normalize()).all()
    assert traded.min() >= pd.Timestamp("2024-01-01") and traded.max() <= pd.Timestamp("2024-03-31")
    stamp = pd.DatetimeIndex(frame["stamp"])
    assert (stamp == stamp.floor("h")).all()
    model = get_generator("mst").fit(frame, GRID_SCHEMA, 1.0, 1e-5, random_state=0)  # not refused
    assert len(model.sample(50)) == 50


def test_the_prediction_fits_mst_with_the_requests_label_edge_weight() -> None:
    """The audit predicts MST's noise by fitting it on a surrogate with the request's parameters,
    so a per-edge σ (``label_edge_weight``) is in the prediction: with it the surrogate's release
    differs from the unweighted fit's, and the default's is the stated weight's to the last digit."""
    from audits.outlook import fidelity_noise_for
    from synth_engine.generators.mst import LABEL_EDGE_WEIGHT

    schema = {
        "columns": [
            *({"name": f"c{i}", "type": "categorical", "categories": ["a", "b", "c"]} for i in range(8)),
            {"name": "label", "type": "categorical", "role": "label", "categories": ["no", "yes"]},
        ]
    }

    def predicted(**params):
        return fidelity_noise_for(
            schema=schema, n_train=3000, n_rows=1000, epsilon=3.0, delta=1e-5, generator="mst", generator_params=params
        )

    default = predicted(label_features=4)
    assert predicted(label_features=4, label_edge_weight=LABEL_EDGE_WEIGHT).generator == default.generator
    assert predicted(label_features=4, label_edge_weight=1.0).generator != default.generator
