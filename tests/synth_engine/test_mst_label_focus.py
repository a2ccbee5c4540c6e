"""MST's label-focused option (issue 11.9): k columns picked by DP for the label's tables.

Pure tests, no database. The pick reads exact (label, column) counts, so it is tested the way
DP claims are: its score's sensitivity over random neighbouring tables, a distinguishing game on
two neighbouring tables whose exact winner flips (any noiseless pick fails it), and the
accountant's stages summing to the fit's ρ with the pick charged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from synth_engine.generators import GeneratorError, InsufficientBudgetError, MSTGenerator
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import CategoricalCodec, parse_schema
from synth_engine.generators.mst import (
    LABEL_NOISE_SHARE,
    MIN_LABEL_FEATURES,
    BinnedTables,
    _budget_plan,
    auto_label_features,
    label_scores,
    pick_label_columns,
)
from synth_engine.generators.parameters import ParameterError, check_parameters
from synth_engine.privacy.row_count import PaidRowEstimate
from tests.synth_engine.test_mst import DELTA, csv_bytes


def tables_of(frame: pd.DataFrame) -> BinnedTables:
    """The exact (label, column) tables of a frame whose first column is the label; every
    column's categories are the sorted values of the frame (a test's public domain)."""
    codecs = [
        CategoricalCodec(name=c, values=sorted(frame[c].unique()), has_other=False, has_missing=False, dtype="object")
        for c in frame.columns
    ]
    bins = [np.arange(codec.n_codes) for codec in codecs]
    return BinnedTables(FrameCounts(frame), codecs, bins, 0, list(range(1, frame.shape[1])), stars=True)


def test_the_label_score_moves_by_at_most_two_when_a_row_is_added() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        n, k_label, k_column = int(rng.integers(1, 40)), int(rng.integers(2, 4)), int(rng.integers(1, 5))
        frame = pd.DataFrame(
            {
                "y": rng.choice([f"y{i}" for i in range(k_label)], n),
                "a": rng.choice([f"a{i}" for i in range(k_column)], n),
            }
        )
        row = pd.DataFrame({"y": [rng.choice(sorted(frame["y"].unique()))], "a": [rng.choice(sorted(frame["a"]))]})
        shares = rng.dirichlet(np.ones(frame["y"].nunique()))  # any public label shares
        before = label_scores(tables_of(frame), shares, [1])[0]
        after = label_scores(tables_of(pd.concat([frame, row], ignore_index=True)), shares, [1])[0]
        assert abs(after - before) <= 2.0 + 1e-9


def neighbours() -> tuple[BinnedTables, BinnedTables]:
    """Columns ``a`` and ``b`` tie on D (the same table); the row added in D' lowers a's score
    and raises b's, so a noiseless pick gives the same column on D every time and the other
    on D' (or one column on both, if it breaks the tie the other way)."""
    column = ["x"] * 60 + ["z"] * 40 + ["x"] * 40 + ["z"] * 60  # 60 % x among yes, 40 % among no
    d = pd.DataFrame({"y": ["yes"] * 100 + ["no"] * 100, "a": column, "b": column})
    d_prime = pd.concat([d, pd.DataFrame({"y": ["yes"], "a": ["z"], "b": ["x"]})], ignore_index=True)
    return tables_of(d), tables_of(d_prime)


EPSILON, TRIALS = 2.0, 3000
SHARES = np.array([0.5, 0.5])  # the released label shares, the same on both sides


def private_pick(tables: BinnedTables, rng: np.random.Generator) -> int:
    return pick_label_columns(tables, SHARES, 1, EPSILON, rng, columns=[1, 2])[0]


def noiseless_pick(tables: BinnedTables, rng: np.random.Generator) -> int:
    return [1, 2][int(np.argmax(label_scores(tables, SHARES, [1, 2])))]


def game(pick) -> tuple[bool, dict[str, np.ndarray]]:
    """Whether ``pick`` keeps every outcome possible on both neighbours (above 15 % of 3,000
    trials) and moves no outcome's probability by more than e^ε (sd of a share < 0.01)."""
    picked = {}
    for name, tables in zip(("d", "d_prime"), neighbours(), strict=True):
        rng = np.random.default_rng(1)
        draws = np.array([pick(tables, rng) for _ in range(TRIALS)])
        picked[name] = np.array([np.mean(draws == c) for c in (1, 2)])
    bound = math.exp(EPSILON)
    passes = all(
        min(d, d_prime) > 0.15 and d <= bound * d_prime + 0.03 and d_prime <= bound * d + 0.03
        for d, d_prime in zip(picked["d"], picked["d_prime"], strict=True)
    )
    return passes, picked


def test_the_pick_of_label_columns_wins_a_dp_distinguishing_game() -> None:
    d, d_prime = neighbours()
    exact_d, exact_prime = label_scores(d, SHARES, [1, 2]), label_scores(d_prime, SHARES, [1, 2])
    assert exact_d[0] == exact_d[1] and exact_prime[1] > exact_prime[0]  # the exact winner flips
    passes, picked = game(private_pick)
    assert passes, picked
    assert picked["d_prime"][1] > picked["d"][1] + 0.1  # and the better column is favoured


def test_a_noiseless_pick_loses_the_same_game() -> None:
    passes, picked = game(noiseless_pick)
    assert not passes, picked


def test_the_focused_split_is_stated_charged_and_sums_to_the_budget(adult: pd.DataFrame, schema: dict) -> None:
    model = MSTGenerator(label_features=3).fit(adult, schema, 3.0, DELTA, random_state=0)
    spent = model.privacy_spent()
    details = spent.details
    stages = details["stages"]
    rho = {name: stage["rho"] for name, stage in stages.items()}
    assert set(stages) == {"rows", "domain", "one_way", "selection", "label_selection", "two_way", "label_pairs"}
    assert sum(rho.values()) == pytest.approx(details["rho"], rel=1e-12)
    assert spent.epsilon <= 3.0
    # 5 % of what the rows and domain stages leave goes to the 3 picks, 30 % of the 2-way budget
    # to the 3 picked columns' label tables, the rest to the 13 edges of the tree
    rest = details["rho"] - rho["rows"] - rho["domain"]
    assert rho["label_selection"] == pytest.approx(0.05 * rest)
    assert stages["label_selection"]["measurements"] == 3 and stages["label_pairs"]["measurements"] == 3
    assert rho["label_pairs"] == pytest.approx(0.3 * (rho["label_pairs"] + rho["two_way"]))
    assert stages["two_way"]["measurements"] == 13
    picked = details["label_columns"]
    assert len(set(picked)) == 3 and "income" not in picked
    assert model.label_columns_ == sorted(model.columns_.index(c) for c in picked)
    # the plan (public inputs only) gives the same per-pick ε and σ as the fit used
    plan = _budget_plan(model.get_params(), 3.0, DELTA, parse_schema(schema))
    assert plan.label_features == 3
    assert stages["label_selection"]["epsilon0"][0] == pytest.approx(plan.label_selection_epsilon)
    assert stages["label_pairs"]["sigma"][0] == pytest.approx(plan.label_sigma)
    unfocused = _budget_plan(MSTGenerator().get_params(), 3.0, DELTA, parse_schema(schema))
    assert plan.label_sigma < unfocused.label_sigma / 1.9  # 14 → 3 tables: σ shrinks by √(14/3)·√0.95


def test_the_most_label_related_columns_are_picked_on_adult(adult: pd.DataFrame, schema: dict) -> None:
    picks = [
        MSTGenerator(label_features=3).fit(adult, schema, 3.0, DELTA, random_state=seed).privacy_spent().details
        for seed in range(3)
    ]
    related = {"relationship", "marital-status", "education", "education-num", "occupation", "age", "sex"}
    for details in picks:
        assert set(details["label_columns"]) <= related, details["label_columns"]


def test_picking_every_column_is_the_unfocused_fit(adult: pd.DataFrame, schema: dict) -> None:
    # 14 columns besides the label: nothing to pick, no stage spent on it, the same release
    every = MSTGenerator(label_features=14).fit(adult, schema, 3.0, DELTA, random_state=0)
    default = MSTGenerator().fit(adult, schema, 3.0, DELTA, random_state=0)
    assert "label_selection" not in every.privacy_spent().details["stages"]
    assert csv_bytes(every.sample(500)) == csv_bytes(default.sample(500))
    assert len(default.privacy_spent().details["label_columns"]) == 14


def test_a_saved_focused_model_keeps_its_record(adult: pd.DataFrame, schema: dict, tmp_path) -> None:
    model = MSTGenerator(label_features=2).fit(adult, schema, 3.0, DELTA, random_state=0)
    model.save(tmp_path)
    loaded = MSTGenerator.load(tmp_path)
    assert loaded.privacy_spent().details == model.privacy_spent().details
    assert csv_bytes(loaded.sample(300)) == csv_bytes(model.sample(300))


@pytest.mark.parametrize(
    "params",
    [
        {"label_features": -1},
        {"label_features": 1.5},
        {"label_features": True},
        {"label_features": 3, "label_fraction": 0.0},
        {"label_selection_fraction": 0.0},
        {"label_features": 3, "one_way_fraction": 0.5, "selection_fraction": 0.3, "label_selection_fraction": 0.2},
    ],
)
def test_out_of_range_focus_parameters_are_refused(adult: pd.DataFrame, schema: dict, params: dict) -> None:
    with pytest.raises(GeneratorError, match="invalid MST parameters"):
        MSTGenerator(**params).fit(adult, schema, 1.0, DELTA, random_state=0)


def test_columns_outside_the_focus_depend_on_the_label_only_through_the_tree(adult: pd.DataFrame, schema: dict) -> None:
    from synth_engine.generators.marginals import conditional

    model = MSTGenerator(label_features=3).fit(adult, schema, 3.0, DELTA, random_state=0)
    label, focus = model.label_, set(model.label_columns_)
    for column, table in enumerate(model.label_tables_):
        # the model's tables are consistent: every 1-way and the label's margin are kept
        assert table.sum(axis=0) == pytest.approx(model.one_way_[column], rel=1e-4, abs=1e-3)
        assert table.sum(axis=1) == pytest.approx(model.one_way_[label], rel=1e-4)

    def label_free(table: np.ndarray) -> bool:
        """P(child | label, parent) is P(child | parent) wherever (label, parent) has mass."""
        pooled = conditional(table.sum(axis=0), np.ones(table.shape[2]))
        mass = table.sum(axis=2)
        by_label = table / np.where(mass > 0, mass, 1.0)[:, :, None]
        return bool(np.allclose(by_label[mass > 1e-9], np.broadcast_to(pooled, table.shape)[mass > 1e-9], atol=1e-9))

    outside = set(range(len(model.columns_))) - focus - {label}
    assert len(outside) == 11
    for column in outside:
        tables = [t for (a, b), t in zip(model.edges_, model.pairs_, strict=True) if b == column]
        tables += [t.transpose(0, 2, 1) for (a, b), t in zip(model.edges_, model.pairs_, strict=True) if a == column]
        assert any(label_free(t) for t in tables), model.columns_[column]
    for column in focus:  # the picked columns keep a direct, measured dependence on the label
        table = model.label_tables_[column]
        assert not np.allclose(table / table.sum(axis=1, keepdims=True), table.sum(axis=0) / table.sum(), atol=1e-3)


# ---------------------------------------------------------------------- label_features="auto"

WIDE_COLUMNS, WIDE_ROWS, WIDE_EPSILON = 30, 2000, 1.0
WIDE_PAID = PaidRowEstimate(rows=2000.0, source="a version's DP row estimate", epsilon=0.02, charged="the ledger")


def wide_table(n_rows: int = WIDE_ROWS, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """30 four-valued columns (declared) and a declared label that depends on the first three."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({f"c{i}": rng.choice(list("abcd"), n_rows) for i in range(WIDE_COLUMNS)})
    signal = (frame[["c0", "c1", "c2"]] == "a").sum(axis=1)
    frame["y"] = np.where(rng.random(n_rows) < 0.1 + 0.25 * signal, "yes", "no")
    columns = [{"name": f"c{i}", "type": "categorical", "categories": list("abcd")} for i in range(WIDE_COLUMNS)]
    columns.append({"name": "y", "type": "categorical", "role": "label", "categories": ["no", "yes"]})
    return frame, {"columns": columns}


def test_auto_keeps_each_label_tables_noise_within_the_stated_share_of_a_typical_cell() -> None:
    _, schema = wide_table()
    specs = parse_schema(schema)
    params = MSTGenerator(label_features="auto").get_params()
    k = auto_label_features(params, WIDE_EPSILON, DELTA, specs, WIDE_PAID.rows, rows_stage=False)
    # a typical (label, column) table: 2 label codes × 5 codes (4 categories and the missing code)
    allowed = LABEL_NOISE_SHARE * WIDE_PAID.rows / (2 * 5)

    def sigma(features: int) -> float:
        return _budget_plan(
            {**params, "label_features": features}, WIDE_EPSILON, DELTA, specs, rows_stage=False
        ).label_sigma

    assert MIN_LABEL_FEATURES <= k < WIDE_COLUMNS
    assert sigma(k) <= allowed < sigma(k + 1)  # the most tables within the share
    assert sigma(0) > allowed  # measuring all 30 would not be
    # the plan resolves "auto" to that k from the row estimate, and to every table without one
    assert _budget_plan(params, WIDE_EPSILON, DELTA, specs, rows_stage=False, n_hat=WIDE_PAID.rows).label_features == k
    assert _budget_plan(params, WIDE_EPSILON, DELTA, specs, rows_stage=False).label_features == WIDE_COLUMNS


def test_auto_chooses_the_same_focus_on_neighbouring_tables_before_reading_them() -> None:
    # 1,981 and 1,982 rows: the rule fed the exact row count would focus on 8 and 9 columns
    frame, schema = wide_table(1981)
    neighbour = pd.concat([frame, frame.iloc[[0]].assign(y="yes", c5="d")], ignore_index=True)
    params = MSTGenerator(label_features="auto").get_params()
    specs = parse_schema(schema)
    exact = [
        auto_label_features(params, WIDE_EPSILON, DELTA, specs, len(t), rows_stage=False) for t in (frame, neighbour)
    ]
    assert exact[0] != exact[1]
    k = auto_label_features(params, WIDE_EPSILON, DELTA, specs, WIDE_PAID.rows, rows_stage=False)
    planner = MSTGenerator(label_features="auto")
    planner.check(frame, schema)
    assert planner.plan_privacy(WIDE_EPSILON, DELTA, row_estimate=WIDE_PAID).details["label_features"] == k
    chosen = []
    for table in (frame, neighbour):
        model = MSTGenerator(label_features="auto").fit(
            table, schema, WIDE_EPSILON, DELTA, random_state=0, row_estimate=WIDE_PAID
        )
        stages = model.privacy_spent().details["stages"]
        chosen.append(
            (
                len(model.label_columns_),
                stages["label_selection"]["measurements"],
                stages["label_pairs"]["measurements"],
                stages["label_pairs"]["sigma"],
                stages["two_way"]["sigma"],
            )
        )
        assert "y" not in model.privacy_spent().details["label_columns"]
        assert model.privacy_spent().epsilon <= WIDE_EPSILON
    assert chosen[0] == chosen[1]
    assert chosen[0][0] == k


def test_auto_measures_every_label_table_where_the_noise_is_small(adult: pd.DataFrame, schema: dict) -> None:
    # 3,000 Adult rows, 14 columns besides the label: every table is within the share at ε = 1
    auto = MSTGenerator(label_features="auto").fit(adult, schema, 1.0, DELTA, random_state=0)
    default = MSTGenerator().fit(adult, schema, 1.0, DELTA, random_state=0)
    assert "label_selection" not in auto.privacy_spent().details["stages"]
    assert csv_bytes(auto.sample(500)) == csv_bytes(default.sample(500))


def test_auto_is_refused_exactly_where_its_fit_refuses() -> None:
    frame, schema = wide_table()
    generator = MSTGenerator(label_features="auto")
    refusal = generator.budget_refusal(schema, 0.05, DELTA, WIDE_PAID)
    assert refusal is not None
    minimum = refusal.minimum_epsilon
    assert generator.budget_refusal(schema, minimum, DELTA, WIDE_PAID) is None
    assert generator.budget_refusal(schema, minimum * 0.999, DELTA, WIDE_PAID) is not None
    with pytest.raises(InsufficientBudgetError, match="Nothing touched the data"):
        generator.fit(frame, schema, minimum * 0.999, DELTA, random_state=0, row_estimate=WIDE_PAID)
    model = MSTGenerator(label_features="auto").fit(
        frame, schema, minimum, DELTA, random_state=0, row_estimate=WIDE_PAID
    )
    assert model.privacy_spent().epsilon <= minimum


def test_auto_is_a_parameter_a_request_may_set_and_a_saved_model_keeps(tmp_path) -> None:
    check_parameters("mst", {"label_features": "auto"})
    with pytest.raises(ParameterError, match="or 'auto'"):
        check_parameters("mst", {"label_features": "most"})
    frame, schema = wide_table()
    model = MSTGenerator(label_features="auto").fit(
        frame, schema, WIDE_EPSILON, DELTA, random_state=0, row_estimate=WIDE_PAID
    )
    model.save(tmp_path)
    loaded = MSTGenerator.load(tmp_path)
    assert loaded.get_params()["label_features"] == "auto"
    assert loaded.privacy_spent().details == model.privacy_spent().details
    assert csv_bytes(loaded.sample(300)) == csv_bytes(model.sample(300))
