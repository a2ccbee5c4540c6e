"""MST's ``label_edge_weight`` (issue 11.9): the label-dependent edge tables measured with more of
the ``two_way`` stage's ρ, the same total.

Pure tests, no database. The accounting is recomputed from the ledger's own measurements (σ and
count of each), the weighted edges are checked against the selective TAN's, the estimator is
shown to weight each edge by its own σ, and the option off (or on an unfocused fit) releases the
same bytes as before.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from synth_engine.generators import GeneratorError, MSTGenerator
from synth_engine.generators.domain import parse_schema
from synth_engine.generators.marginals import estimate_model, focus_label_dependence, label_edges
from synth_engine.generators.mst import LABEL_EDGE_WEIGHT, _budget_plan
from synth_engine.generators.parameters import ParameterError, check_parameters
from tests.synth_engine.test_mst import DELTA, csv_bytes

WEIGHT = 8.0


@pytest.fixture(scope="module")
def weighted(adult: pd.DataFrame, schema: dict) -> MSTGenerator:
    return MSTGenerator(label_features=4, label_edge_weight=WEIGHT).fit(adult, schema, 3.0, DELTA, random_state=0)


@pytest.fixture(scope="module")
def even(adult: pd.DataFrame, schema: dict) -> MSTGenerator:
    return MSTGenerator(label_features=4, label_edge_weight=1.0).fit(adult, schema, 3.0, DELTA, random_state=0)


def test_the_weighted_fit_spends_the_same_rho_recomputed_from_its_ledger(
    weighted: MSTGenerator, even: MSTGenerator, schema: dict
) -> None:
    plan = _budget_plan(weighted.get_params(), 3.0, DELTA, parse_schema(schema))
    for model in (weighted, even):
        measurements = model.accountant_.to_dict()["measurements"]  # what the ledger stores
        recomputed = 0.0
        for m in measurements:
            if m["mechanism"] == "exponential":
                recomputed += m["count"] * m["scale"] ** 2 / 8.0
            else:
                recomputed += m["count"] / (2.0 * m["scale"] ** 2)
        assert recomputed == pytest.approx(plan.rho, rel=1e-9)
        assert model.privacy_spent().epsilon <= 3.0
    two_way = [m for m in weighted.accountant_.to_dict()["measurements"] if m["stage"] == "two_way"]
    assert sum(m["count"] / (2.0 * m["scale"] ** 2) for m in two_way) == pytest.approx(plan.two_way_rho, rel=1e-12)
    # the edges into the 3 picked columns below the first pick, at √8 smaller σ than the other 10
    assert sorted(m["count"] for m in two_way) == [3, 10]
    high = next(m["scale"] for m in two_way if m["count"] == 3)
    low = next(m["scale"] for m in two_way if m["count"] == 10)
    assert low / high == pytest.approx(math.sqrt(WEIGHT))
    # every stage but two_way is the unweighted fit's, and two_way costs what it cost there
    stages, even_stages = weighted.privacy_spent().details["stages"], even.privacy_spent().details["stages"]
    assert {k: v["rho"] for k, v in stages.items()} == pytest.approx({k: v["rho"] for k, v in even_stages.items()})
    assert stages["two_way"]["sigma"] == [high, low] or stages["two_way"]["sigma"] == [low, high]
    assert even_stages["two_way"]["sigma"] == [plan.two_way_sigma]
    assert high < plan.two_way_sigma < low


def test_the_weighted_edges_are_those_the_selective_tan_keeps_label_dependent(weighted: MSTGenerator) -> None:
    details = weighted.privacy_spent().details
    sigmas = details["edge_sigmas"]
    assert len(sigmas) == len(weighted.edges_) == len(details["tree_edges"])
    focus = [weighted.columns_.index(c) for c in details["label_columns"]]
    chosen = set(label_edges(weighted.edges_, focus))
    assert len(chosen) == 3
    assert {k for k, sigma in enumerate(sigmas) if sigma == min(sigmas)} == chosen
    # each of them leads into a picked column; the first pick has no label-dependent parent edge
    for k in chosen:
        assert set(weighted.edges_[k]) & set(focus)
    # label_edges names the edges focus_label_dependence keeps per label class: only they differ by class
    rng = np.random.default_rng(0)
    sizes = {c: 3 for c in range(len(weighted.columns_))}
    label_tables = [rng.uniform(1, 5, (2, sizes[c])) for c in range(len(weighted.columns_))]
    for c in range(len(label_tables)):
        label_tables[c] *= 100.0 / label_tables[c].sum(axis=1, keepdims=True)
    pairs = [
        np.stack([np.outer(label_tables[a][y], label_tables[b][y]) / 100.0 for y in range(2)])
        for a, b in weighted.edges_
    ]
    _, focused = focus_label_dependence(label_tables, pairs, weighted.edges_, focus, 50)
    label_free = {
        k
        for k, table in enumerate(focused)
        if np.allclose(table[0] / table[0].sum(axis=1, keepdims=True), table[1] / table[1].sum(axis=1, keepdims=True))
        or np.allclose(table[0] / table[0].sum(axis=0), table[1] / table[1].sum(axis=0))
    }
    assert chosen.isdisjoint(label_free) and len(label_free) == len(weighted.edges_) - len(chosen)


def test_an_unfocused_fit_releases_the_same_bytes_at_any_weight(adult: pd.DataFrame, schema: dict) -> None:
    # every edge is label-dependent in the unfocused fit: the weight has nothing to move
    plain = MSTGenerator(label_features=0, label_edge_weight=1.0).fit(adult, schema, 3.0, DELTA, random_state=1)
    weighted = MSTGenerator(label_features=0, label_edge_weight=WEIGHT).fit(adult, schema, 3.0, DELTA, random_state=1)
    default = MSTGenerator(label_features=0).fit(adult, schema, 3.0, DELTA, random_state=1)
    assert csv_bytes(weighted.sample(400)) == csv_bytes(plain.sample(400)) == csv_bytes(default.sample(400))
    assert weighted.accountant_.to_dict() == plain.accountant_.to_dict()


def test_the_default_weights_a_focused_fits_label_dependent_edges(adult: pd.DataFrame, schema: dict) -> None:
    model = MSTGenerator(label_features=4).fit(adult, schema, 3.0, DELTA, random_state=0)
    assert model.label_edge_weight == LABEL_EDGE_WEIGHT == 16.0
    two_way = model.privacy_spent().details["stages"]["two_way"]
    assert two_way["measurements"] == 13
    assert max(two_way["sigma"]) / min(two_way["sigma"]) == pytest.approx(4.0)  # √16


def test_the_weighted_fit_releases_other_rows(weighted: MSTGenerator, even: MSTGenerator) -> None:
    assert csv_bytes(weighted.sample(400)) != csv_bytes(even.sample(400))


def test_the_estimate_weights_each_edge_table_by_its_own_sigma() -> None:
    """Columns 1-2 and 1-3 both measure column 1's (label, column) margin: one exactly (small σ),
    the other with a wrong margin (large σ). The estimate follows the precise one only when each
    edge carries its own σ."""
    truth = np.array([[30.0, 10.0], [10.0, 50.0]])  # (label, column 1)
    bins = [np.arange(2)] * 4
    noisy_fine = [np.array([40.0, 60.0]), truth.sum(axis=0), np.array([50.0, 50.0]), np.array([50.0, 50.0])]
    precise = np.stack([np.outer(truth[y], [0.5, 0.5]) for y in range(2)])  # (label, 1, 2)
    wrong = np.stack([np.outer(truth[::-1, ::-1][y], [0.5, 0.5]) for y in range(2)])  # (label, 1, 3), swapped
    edges = [(1, 2), (1, 3)]
    by_edge = estimate_model(noisy_fine, 1e6, bins, 0, edges, [precise, wrong], [0.01, 100.0], 200)
    one_sigma = estimate_model(noisy_fine, 1e6, bins, 0, edges, [precise, wrong], 10.0, 200)
    assert np.allclose(by_edge[2][1], truth, atol=0.5)
    assert not np.allclose(one_sigma[2][1], truth, atol=5.0)
    # one σ given for every edge or listed per edge: the same estimate
    listed = estimate_model(noisy_fine, 1e6, bins, 0, edges, [precise, wrong], [10.0, 10.0], 200)
    for got, expected in zip(listed, one_sigma, strict=True):
        for a, b in zip(got, expected, strict=True):
            assert np.array_equal(a, b)


def test_a_saved_weighted_model_keeps_its_sigmas(weighted: MSTGenerator, tmp_path) -> None:
    weighted.save(tmp_path)
    loaded = MSTGenerator.load(tmp_path)
    assert loaded.label_edge_weight == WEIGHT
    assert loaded.privacy_spent().details == weighted.privacy_spent().details
    assert csv_bytes(loaded.sample(300)) == csv_bytes(weighted.sample(300))


def test_a_model_saved_before_the_option_loads_with_one_sigma(even: MSTGenerator, tmp_path) -> None:
    even.save(tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    del meta["edge_sigmas"], meta["params"]["label_edge_weight"]
    (tmp_path / "model.json").write_text(json.dumps(meta))
    loaded = MSTGenerator.load(tmp_path)
    assert loaded.label_edge_weight == 1.0
    assert loaded.privacy_spent().details == even.privacy_spent().details


@pytest.mark.parametrize("weight", [0.5, 0.0, -1.0, math.nan, math.inf, 1001.0, True, "8"])
def test_out_of_range_edge_weights_are_refused(adult: pd.DataFrame, schema: dict, weight) -> None:
    with pytest.raises(GeneratorError, match="label_edge_weight"):
        MSTGenerator(label_features=4, label_edge_weight=weight).fit(adult, schema, 1.0, DELTA, random_state=0)
    with pytest.raises(ParameterError, match="label_edge_weight"):
        check_parameters("mst", {"label_edge_weight": weight})


def test_the_edge_weight_is_a_parameter_a_request_may_set() -> None:
    check_parameters("mst", {"label_edge_weight": 8.0})
    check_parameters("mst", {"label_edge_weight": 1})
