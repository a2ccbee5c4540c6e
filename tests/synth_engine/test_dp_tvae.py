"""Pure tests of the dp-tvae generator: interface contract, accounting, DP sanity, I/O, bad input.

No database. Training runs use the 2,000-row Adult fixture with a few epochs; seeds are fixed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from opacus.accountants import RDPAccountant

from synth_engine.generators.base import GeneratorError, InsufficientBudgetError
from synth_engine.generators.domain import schema_dtypes
from synth_engine.generators.dp_tvae import DPTVAEGenerator, _reserved, estimate_rows
from synth_engine.privacy.accountant import ZCDPAccountant
from synth_engine.privacy.rdp import RDP_ORDERS, calibrate_noise_multiplier, composed_epsilon, sgd_rdp

NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
FAST = {"epochs": 3, "batch_size": 256}
DELTA = 1e-5


def read_adult(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    for column in NUMERIC:
        frame[column] = pd.to_numeric(frame[column])
    return frame


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    return read_adult(Path(__file__).resolve().parent.parent / "fixtures" / "adult_2000.csv")


@pytest.fixture(scope="module")
def schema() -> dict:
    path = Path(__file__).resolve().parent.parent.parent / "sample_data" / "adult.schema.json"
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def fitted(adult: pd.DataFrame, schema: dict) -> DPTVAEGenerator:
    return DPTVAEGenerator(**FAST).fit(adult, schema, 3.0, DELTA, random_state=7)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


# ---------------------------------------------------------------------- interface contract


def test_sample_has_the_source_columns_in_order_with_the_schema_dtypes(fitted, adult, schema):
    synthetic = fitted.sample(500)
    assert synthetic.shape == (500, adult.shape[1])
    assert list(synthetic.columns) == list(adult.columns)
    assert synthetic.dtypes.astype(str).to_dict() == schema_dtypes(schema)


def test_numeric_samples_stay_within_the_declared_bounds(fitted, schema):
    synthetic = fitted.sample(2000)
    for column in schema["columns"]:
        if "min" in column:
            values = synthetic[column["name"]]
            assert values.min() >= column["min"] and values.max() <= column["max"]


def test_same_data_params_and_seed_give_byte_identical_samples(adult, schema):
    first = DPTVAEGenerator(**FAST).fit(adult, schema, 3.0, DELTA, random_state=11)
    second = DPTVAEGenerator(**FAST).fit(adult, schema, 3.0, DELTA, random_state=11)
    assert csv_bytes(first.sample(1000)) == csv_bytes(second.sample(1000))


def test_conditional_sampling_hits_the_requested_shares(fitted):
    synthetic = fitted.sample(1001, conditions={"income": {">50K": 0.5, "<=50K": 0.5}})
    shares = synthetic["income"].value_counts(normalize=True)
    assert shares[">50K"] == pytest.approx(0.5, abs=0.002)
    assert shares["<=50K"] == pytest.approx(0.5, abs=0.002)


def test_conditioning_on_a_single_value_gives_only_that_value(fitted):
    synthetic = fitted.sample(300, conditions={"income": ">50K"})
    assert (synthetic["income"] == ">50K").all()


def test_unconditional_label_shares_follow_the_private_histogram(fitted, adult):
    synthetic = fitted.sample(4000)
    real = adult["income"].value_counts(normalize=True)
    assert synthetic["income"].value_counts(normalize=True)[">50K"] == pytest.approx(real[">50K"], abs=0.05)


def test_conditions_on_a_non_label_column_are_refused(fitted):
    with pytest.raises(GeneratorError, match="label"):
        fitted.sample(10, conditions={"sex": "Female"})


def test_conditions_with_an_unknown_value_or_bad_shares_are_refused(fitted):
    with pytest.raises(GeneratorError):
        fitted.sample(10, conditions={"income": "rich"})
    with pytest.raises(GeneratorError, match="sum to at most 1"):
        fitted.sample(10, conditions={"income": {">50K": 0.7, "<=50K": 0.7}})


def test_shares_naming_only_some_classes_give_the_rest_to_the_others(fitted):
    sample = fitted.sample(1000, conditions={"income": {">50K": 0.5}})
    assert (sample["income"] == ">50K").mean() == pytest.approx(0.5, abs=0.01)


def test_progress_callback_reports_each_epoch_and_stays_out_of_the_parameters(adult, schema):
    generator = DPTVAEGenerator(**FAST)
    seen: list[float] = []
    generator.progress_callback = seen.append
    generator.fit(adult, schema, 3.0, DELTA)  # random_state=None: seeded from secrets
    assert seen == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert "progress_callback" not in generator.get_params()


# ---------------------------------------------------------------------- privacy accounting


@pytest.mark.parametrize(("epsilon", "delta"), [(3.0, 1e-5), (1.0, 1e-6), (8.0, 1e-5)])
def test_plan_stays_within_the_target(epsilon, delta):
    planned = DPTVAEGenerator(**FAST).plan_privacy(epsilon, delta, 2000)
    assert planned.epsilon <= epsilon
    assert planned.epsilon == pytest.approx(epsilon, rel=1e-6)
    assert planned.delta == delta


def test_privacy_spent_is_within_the_target_and_the_plan(fitted):
    spent, planned = fitted.privacy_spent(), DPTVAEGenerator(**FAST).plan_privacy(3.0, DELTA, 2000)
    assert spent.epsilon <= planned.epsilon <= 3.0
    assert spent.delta == DELTA
    for key in ("noise_multiplier", "sample_rate", "steps", "max_grad_norm", "accountant", "composition"):
        assert key in spent.details
    assert spent.details["noise_multiplier"] == planned.details["noise_multiplier"]
    assert spent.details["steps"] == FAST["epochs"] * math.ceil(2000 / FAST["batch_size"])
    json.dumps(spent.to_dict())  # the ledger stores it as JSON


def test_privacy_spent_is_recomputable_from_its_details(fitted):
    spent = fitted.privacy_spent()
    details = spent.details
    recomputed, _ = composed_epsilon(details["sgd_history"], details["zcdp_rho"], details["conversion_delta"])
    assert recomputed == spent.epsilon
    sgd_only = RDPAccountant()
    sgd_only.history = [tuple(entry) for entry in details["sgd_history"]]
    assert sgd_only.get_epsilon(DELTA) < spent.epsilon  # the other stages only add


def _independent_rdp(q: float, sigma: float, steps: int, alpha: int) -> float:
    """RDP of the Poisson-subsampled Gaussian at an integer order, by the binomial expansion of
    Mironov, Talwar & Zhang (2019), Sec. 3.3, in log space with exact binomial coefficients."""
    terms = [
        math.log(math.comb(alpha, k)) + (alpha - k) * math.log1p(-q) + k * math.log(q) + (k * k - k) / (2 * sigma**2)
        for k in range(alpha + 1)
    ]
    top = max(terms)
    return steps * (top + math.log(sum(math.exp(t - top) for t in terms))) / (alpha - 1)


@pytest.mark.parametrize(("q", "sigma", "steps"), [(0.01, 1.1, 6000), (0.05, 2.0, 600), (0.25, 4.0, 40)])
def test_sgd_rdp_matches_an_independent_computation(q, sigma, steps):
    curve = sgd_rdp(sigma, q, steps)
    for alpha in (2, 8, 32):
        expected = _independent_rdp(q, sigma, steps, alpha)
        assert curve[RDP_ORDERS.index(float(alpha))] == pytest.approx(expected, rel=1e-9)


def test_composed_epsilon_matches_a_hand_conversion():
    q, sigma, steps, rho, delta = 0.05, 2.0, 600, 0.01, 1e-5
    best = math.inf
    for alpha in range(2, 65):  # Balle et al. (2020), Thm. 21
        rdp = _independent_rdp(q, sigma, steps, alpha) + rho * alpha
        best = min(best, rdp - (math.log(delta) + math.log(alpha)) / (alpha - 1) + math.log((alpha - 1) / alpha))
    epsilon, _ = composed_epsilon([(sigma, q, steps)], rho, delta)
    assert epsilon == pytest.approx(best, rel=1e-9)


def test_opacus_rdp_accountant_matches_a_published_value():
    # TF Privacy, tutorials/README.md: "compute_dp_sgd_privacy.py --N=60000 --batch_size=256
    # --noise_multiplier=1.1 --epochs=60 --delta=1e-5" gives eps = 3.01 with the classic RDP
    # conversion eps = min_a rdp(a) + log(1/delta)/(a - 1); Balle et al. (2020) is tighter.
    q, sigma, steps = 256 / 60000, 1.1, math.ceil(60 * 60000 / 256)
    classic = min(
        float(r) + math.log(1 / 1e-5) / (a - 1) for r, a in zip(sgd_rdp(sigma, q, steps), RDP_ORDERS, strict=True)
    )
    assert classic == pytest.approx(3.01, abs=0.01)
    assert composed_epsilon([(sigma, q, steps)], 0.0, 1e-5)[0] < classic


@pytest.mark.parametrize("target", [0.5, 1.0, 3.0, 10.0])
def test_calibrated_noise_meets_the_target_tightly(target):
    sigma = calibrate_noise_multiplier(target, 1e-5, 0.05, 600, 0.001)
    assert composed_epsilon([(sigma, 0.05, 600)], 0.001, 1e-5)[0] <= target
    assert composed_epsilon([(sigma * 0.999, 0.05, 600)], 0.001, 1e-5)[0] > target


def test_noise_multiplier_grows_as_epsilon_shrinks():
    generator = DPTVAEGenerator(**FAST)
    noise = [generator.plan_privacy(eps, DELTA, 2000).details["noise_multiplier"] for eps in (8.0, 3.0, 1.0, 0.5)]
    assert noise == sorted(noise) and len(set(noise)) == 4


# ---------------------------------------------------------------------- save / load


def test_save_load_round_trip_samples_identically(adult, schema, tmp_path):
    model = DPTVAEGenerator(**FAST).fit(adult, schema, 3.0, DELTA, random_state=5)
    model.save(tmp_path)
    loaded = DPTVAEGenerator.load(tmp_path)
    assert csv_bytes(loaded.sample(700)) == csv_bytes(model.sample(700))
    assert loaded.privacy_spent() == model.privacy_spent()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.json", "weights.pt"]


def test_load_refuses_another_generators_directory(fitted, tmp_path):
    fitted.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["generator"] = "mst"
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(GeneratorError):
        DPTVAEGenerator.load(tmp_path)


# ---------------------------------------------------------------------- bad input


def assert_refused_before_training(frame, schema, match, error=GeneratorError):
    generator = DPTVAEGenerator(**FAST)
    with pytest.raises(error, match=match):
        generator.check(frame, schema)
    with pytest.raises(error, match=match):
        generator.fit(frame, schema, 3.0, DELTA, random_state=0)
    assert not hasattr(generator, "network_")


@pytest.mark.parametrize(
    "change",
    [
        {"income": "<=50K"},  # a one-class label
        {"workclass": ""},  # an all-missing column
        {"race": "White"},  # a constant column
    ],
)
def test_check_makes_no_verdict_that_one_row_could_flip(adult, schema, change):
    assert DPTVAEGenerator().check(adult.assign(**change), schema) == []


def test_refuses_infinite_values(adult, schema):
    frame = adult.assign(**{"hours-per-week": adult["hours-per-week"].astype(float)})
    frame.loc[3, "hours-per-week"] = np.inf
    schema = {"columns": [dict(c, type="float") if c["name"] == "hours-per-week" else c for c in schema["columns"]]}
    assert_refused_before_training(frame, schema, "inf")


def test_an_undeclared_high_cardinality_categorical_is_left_to_the_dp_threshold(adult, schema):
    frame = adult.assign(workclass=[f"id-{i}" for i in range(len(adult))])
    assert DPTVAEGenerator().check(frame, schema) == []


@pytest.mark.parametrize("epsilon", [0.0, -1.0, math.inf, math.nan])
def test_refuses_a_non_positive_or_non_finite_epsilon(adult, schema, epsilon):
    with pytest.raises(GeneratorError, match="epsilon"):
        DPTVAEGenerator(**FAST).fit(adult, schema, epsilon, DELTA)
    with pytest.raises(GeneratorError, match="epsilon"):
        DPTVAEGenerator(**FAST).plan_privacy(epsilon, DELTA, 2000)


def test_refuses_an_epsilon_too_small_to_be_useful_and_names_the_minimum(adult, schema):
    generator = DPTVAEGenerator(**FAST)
    with pytest.raises(InsufficientBudgetError, match=r"use epsilon >= ") as caught:
        generator.fit(adult, schema, 0.01, DELTA, random_state=0)
    assert not hasattr(generator, "network_")
    message = str(caught.value)
    minimum = float(message.split("use epsilon >= ")[1].split(" ")[0])
    # Judged on the DP row estimate it names, never on the exact 2,000 rows.
    estimate = int(message.split("too small for about ")[1].split(" ")[0])
    assert "(a DP estimate)" in message
    generator.plan_privacy(minimum * 1.05, DELTA, estimate)  # the stated minimum is accepted
    with pytest.raises(InsufficientBudgetError):
        generator.plan_privacy(minimum * 0.95, DELTA, estimate)


def test_a_job_plans_without_the_row_count_and_the_fit_never_exceeds_that_plan(fitted):
    planned = DPTVAEGenerator(**FAST).plan_privacy(3.0, DELTA)
    assert planned.epsilon == 3.0
    assert fitted.privacy_spent().epsilon <= planned.epsilon
    assert fitted.privacy_spent().details["zcdp_stages"]["rows"]["measurements"] == 1


def test_the_sampling_rate_never_flips_on_one_row():
    # With the exact count, q = 1/⌈n / 256⌉ is 1/2 at 512 rows and 1/3 at 513, every time.
    params = DPTVAEGenerator(**FAST).get_params()
    rates: dict[int, set[float]] = {}
    for n_rows in (512, 513):
        rates[n_rows] = set()
        for seed in range(30):
            n_hat = estimate_rows(params, 3.0, DELTA, n_rows, ZCDPAccountant(), np.random.default_rng(seed))
            rates[n_rows].add(_reserved(params, 3.0, DELTA, n_hat).sample_rate)
    assert rates[512] == rates[513] == {1 / 2, 1 / 3}


def test_unknown_hyperparameters_raise_type_error():
    with pytest.raises(TypeError):
        DPTVAEGenerator(epoch=3)


@pytest.mark.parametrize(
    "params", [{"epochs": 0}, {"batch_size": -1}, {"learning_rate": 0}, {"hidden_dims": ()}, {"domain_fraction": 0.99}]
)
def test_invalid_hyperparameter_values_are_refused(params):
    with pytest.raises(GeneratorError):
        DPTVAEGenerator(**params).plan_privacy(3.0, DELTA, 2000)


@pytest.mark.parametrize("n_rows", [0, -5, 2.5])
def test_refuses_non_positive_row_counts(fitted, n_rows):
    with pytest.raises(GeneratorError, match="n_rows"):
        fitted.sample(n_rows)
    with pytest.raises(GeneratorError, match="n_rows"):
        DPTVAEGenerator(**FAST).plan_privacy(3.0, DELTA, n_rows)


def test_sample_before_fit_is_refused():
    with pytest.raises(GeneratorError, match="fit"):
        DPTVAEGenerator().sample(5)


# ---------------------------------------------------------------------- slow


@pytest.mark.slow
def test_conditioning_on_the_label_shifts_the_features(adult, schema):
    # 240 steps at the default learning rate barely move the decoder off the label (the gap was
    # 0.05 years of education, and flipped when the schema's bounds changed); 1e-2 learns it.
    model = DPTVAEGenerator(epochs=30, batch_size=256, learning_rate=1e-2).fit(
        adult, schema, 8.0, DELTA, random_state=1
    )
    rich = model.sample(2000, conditions={"income": ">50K"})
    poor = model.sample(2000, conditions={"income": "<=50K"})
    assert rich["education-num"].mean() > poor["education-num"].mean()
    assert (rich["relationship"] == "Husband").mean() > (poor["relationship"] == "Husband").mean() + 0.1


def test_a_paid_row_estimate_decides_the_refusal_before_any_row_is_read(adult, schema):
    """With the job's paid estimate the fit spends nothing on n and refuses exactly what
    ``budget_refusal`` (filing) refuses, before reading a row: over a grid of ε around the minimum
    filing names, the fit refuses where filing does and trains where filing accepts."""
    from synth_engine.privacy.row_count import PaidRowEstimate

    estimate = PaidRowEstimate(
        rows=1580.0, source="version 1 estimate (ledger entry 1)", epsilon=0.02, charged="ledger"
    )
    generator = DPTVAEGenerator(**FAST)
    refusal = generator.budget_refusal(schema, 0.01, DELTA, estimate)
    assert refusal is not None and refusal.rows == 1580.0 and "about 1580 rows" in refusal.message()
    minimum = refusal.minimum_epsilon
    assert generator.budget_refusal(schema, minimum, DELTA, estimate) is None  # the named minimum passes

    class Untouchable(pd.DataFrame):  # any read of a cell would be a read of the data
        pass

    for epsilon in (minimum * 0.5, minimum * 0.9):
        assert generator.budget_refusal(schema, epsilon, DELTA, estimate) is not None
        with pytest.raises(InsufficientBudgetError):
            DPTVAEGenerator(**FAST).plan_privacy(epsilon, DELTA, row_estimate=estimate)
        with pytest.raises(InsufficientBudgetError):
            DPTVAEGenerator(**FAST).fit(adult, schema, epsilon, DELTA, random_state=0, row_estimate=estimate)
    fitted = DPTVAEGenerator(**{**FAST, "epochs": 1}).fit(
        adult, schema, minimum, DELTA, random_state=0, row_estimate=estimate
    )
    spent = fitted.privacy_spent()
    assert "rows" not in spent.details["zcdp_stages"]  # nothing spent on n
    assert spent.details["row_estimate"] == {
        "source": estimate.source,
        "epsilon": 0.02,
        "charged": "ledger",
        "stage": None,
    }
    assert spent.epsilon <= minimum
    planned = DPTVAEGenerator(**FAST).plan_privacy(minimum, DELTA, row_estimate=estimate)
    assert planned.details["row_estimate"]["stage"] is None
