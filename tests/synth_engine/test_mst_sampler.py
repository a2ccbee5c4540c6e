"""MST's ancestral draw: controlled rounding of every parent group at once, and each group's
rows arranged by a counting sort of random keys (``sample_conditional``)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import pytest

from synth_engine.generators import GeneratorError, MSTGenerator
from synth_engine.generators.checks import round_rows
from synth_engine.generators.mst import (
    MIN_ROWS_PER_THREADED_SAMPLE,
    SAMPLE_THREADS_ENV,
    ParentGroups,
    sample_conditional,
    sample_threads,
)
from tests.synth_engine.test_mst import adult_schema, read_adult


def _table(rng: np.random.Generator, n_parents: int, n_children: int) -> np.ndarray:
    table = rng.random((n_parents, n_children)) ** 3
    table[:, ::7] = 0.0  # impossible children
    return table / table.sum(axis=1, keepdims=True)


def test_round_rows_gives_each_cell_its_floor_or_ceiling_and_the_totals() -> None:
    rng = np.random.default_rng(0)
    weights = _table(rng, 40, 30)
    totals = rng.integers(0, 5_000, 40)
    totals[3] = 0
    counts = round_rows(weights, totals, rng)
    expected = weights * totals[:, None]
    assert counts.dtype == np.int64
    assert (counts.sum(axis=1) == totals).all()
    assert ((counts == np.floor(expected)) | (counts == np.ceil(expected))).all()
    assert (counts[weights == 0] == 0).all()


def test_round_rows_is_unbiased() -> None:
    """The expected count is n·p exactly (systematic rounding); drawing the leftover rows by
    successive sampling, as ``round_counts`` does, over-weights the large fractions."""
    rng = np.random.default_rng(1)
    weights = np.array([[0.05, 0.10, 0.15, 0.70], [0.31, 0.29, 0.22, 0.18]])
    totals = np.array([3, 5])
    draws = np.stack([round_rows(weights, totals, rng) for _ in range(20_000)])
    error = np.abs(draws.mean(axis=0) - weights * totals[:, None])
    assert error.max() < 0.02, error


def test_a_row_without_weight_is_rounded_as_uniform() -> None:
    counts = round_rows(np.zeros((1, 4)), np.array([8]), np.random.default_rng(2))
    assert counts.tolist() == [[2, 2, 2, 2]]


@pytest.mark.parametrize(("n_rows", "n_parents", "n_children"), [(100_000, 58, 128), (20_000, 3, 7), (501, 9, 40)])
def test_every_parent_group_gets_its_controlled_rounded_counts(n_rows: int, n_parents: int, n_children: int) -> None:
    """Many children per group: most rows are placed by their bucket, the rest (buckets that
    straddle two codes) by sorting; both must land on the exact counts."""
    rng = np.random.default_rng(3)
    table = _table(rng, n_parents, n_children)
    parents = rng.integers(0, n_parents, n_rows)
    children = sample_conditional(parents, table, rng)
    got = np.bincount(parents * n_children + children, minlength=n_parents * n_children).reshape(table.shape)
    expected = table * np.bincount(parents, minlength=n_parents)[:, None]
    assert ((got == np.floor(expected)) | (got == np.ceil(expected))).all()
    assert (got[table == 0] == 0).all()


def test_siblings_are_independent_given_their_parent_and_of_the_row_order() -> None:
    """Two children of one parent drawn in turn must not follow each other (or the rows'
    order): laying the counts out over the rows in a fixed order would make them equal."""
    rng = np.random.default_rng(4)
    n_rows = 200_000
    parents = np.repeat(np.arange(2), n_rows // 2)
    table = np.array([[0.5, 0.5], [0.2, 0.8]])
    first = sample_conditional(parents, table, rng)
    second = sample_conditional(parents, table, rng)
    for parent, p in ((0, 0.5), (1, 0.8)):
        rows = parents == parent
        both = np.mean((first[rows] == 1) & (second[rows] == 1))
        assert abs(both - p * p) < 0.01, (parent, both)
        half = rows & (np.arange(n_rows) % 2 == 0)
        assert abs(first[half].mean() - p) < 0.01


def test_a_fixed_seed_draws_the_same_children() -> None:
    table = _table(np.random.default_rng(5), 20, 50)
    parents = np.random.default_rng(6).integers(0, 20, 30_000)
    a = sample_conditional(parents, table, np.random.default_rng(7))
    b = sample_conditional(parents, table, np.random.default_rng(7))
    assert np.array_equal(a, b)


def test_a_certain_child_and_no_rows() -> None:
    rng = np.random.default_rng(8)
    certain = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert sample_conditional(np.array([0, 1, 1]), certain, rng).tolist() == [1, 0, 0]
    assert sample_conditional(np.zeros(0, dtype=np.intp), np.full((2, 3), 1 / 3), rng).size == 0


def test_the_output_of_a_seed_does_not_depend_on_the_sampling_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each column has its own stream, so drawing the tree's columns on threads (in whatever
    order they finish) gives the bytes of one thread, chunk after chunk."""
    frame = read_adult()
    model = MSTGenerator().fit(frame, adult_schema(frame), 1.0, 1e-5, random_state=3)
    state = model.sample_rng_.bit_generator.state
    outputs = {}
    for threads in ("1", "2", "3"):
        monkeypatch.setenv(SAMPLE_THREADS_ENV, threads)
        model.sample_rng_.bit_generator.state = state
        outputs[threads] = [model.sample(MIN_ROWS_PER_THREADED_SAMPLE) for _ in range(2)]
    for threads in ("2", "3"):
        assert all(a.equals(b) for a, b in zip(outputs["1"], outputs[threads], strict=True))
    assert not outputs["1"][0].equals(outputs["1"][1])


def test_a_bad_thread_count_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SAMPLE_THREADS_ENV, "two")
    with pytest.raises(GeneratorError, match=SAMPLE_THREADS_ENV):
        sample_threads(MIN_ROWS_PER_THREADED_SAMPLE)
    assert sample_threads(10) == 1


def _ranked_by_sorting(parents: np.ndarray, table: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The definition ``sample_conditional`` computes by counting: each group's rows sorted by
    their random keys take the group's rounded counts in code order."""
    keys = rng.bit_generator.random_raw(len(parents))
    counts = round_rows(table, np.bincount(parents, minlength=len(table)), rng)
    children = np.empty(len(parents), dtype=np.intp)
    children[np.lexsort((keys, parents))] = np.repeat(np.tile(np.arange(table.shape[1]), len(table)), counts.ravel())
    return children


@pytest.mark.parametrize(("n_rows", "n_parents", "n_children"), [(100_000, 58, 128), (30_000, 7, 3), (999, 40, 9)])
def test_the_counting_sort_gives_the_rows_of_sorting_every_group_by_its_keys(
    n_rows: int, n_parents: int, n_children: int
) -> None:
    """Whatever the buckets and whether siblings share their parent's shifted groups."""
    rng = np.random.default_rng(9)
    table = _table(rng, n_parents, n_children)
    parents = rng.integers(0, n_parents, n_rows)
    shared = ParentGroups(parents)
    for seed in (10, 11):  # two siblings of one parent, the second reusing the first's shifted groups
        expected = _ranked_by_sorting(parents, table, np.random.default_rng(seed))
        assert np.array_equal(sample_conditional(parents, table, np.random.default_rng(seed)), expected)
        assert np.array_equal(sample_conditional(shared, table, np.random.default_rng(seed)), expected)


def test_sample_for_output_gives_sample_s_values_with_text_as_categories() -> None:
    frame = read_adult()
    model = MSTGenerator().fit(frame, adult_schema(frame), 1.0, 1e-5, random_state=4)
    state = model.sample_rng_.bit_generator.state
    plain = model.sample(3_000)
    model.sample_rng_.bit_generator.state = state
    drawn = model.sample_for_output(3_000)
    texts = [name for name in plain.columns if plain[name].dtype == object]
    assert texts and all(isinstance(drawn[name].dtype, pd.CategoricalDtype) for name in texts)
    for name in plain.columns:
        values = drawn[name].astype(object).where(drawn[name].notna(), None) if name in texts else drawn[name]
        expected = plain[name].where(plain[name].notna(), None) if name in texts else plain[name]
        pd.testing.assert_series_equal(values, expected, check_dtype=name not in texts)


@pytest.mark.parametrize("conditions", [None, {"income": {">50K": 0.5, "<=50K": 0.5}}, {"sex": "Female"}])
def test_draws_seeded_in_order_give_the_rows_of_sampling_in_order_whatever_order_they_run_in(conditions) -> None:
    """``seeded_output`` takes from the model's sampling stream when called: the draws it returns,
    run backwards and at once on threads, give the frames of ``sample_for_output`` called in order."""
    frame = read_adult()
    model = MSTGenerator().fit(frame, adult_schema(frame), 1.0, 1e-5, random_state=4)
    state = model.sample_rng_.bit_generator.state
    expected = [model.sample_for_output(rows, conditions) for rows in (2_500, 1_000, 2_500, 7)]
    after = model.sample_rng_.bit_generator.state
    model.sample_rng_.bit_generator.state = state
    draws = [model.seeded_output(rows, conditions) for rows in (2_500, 1_000, 2_500, 7)]
    assert model.sample_rng_.bit_generator.state == after  # all of it taken when the draws were made
    with ThreadPoolExecutor(2) as pool:
        drawn = [future.result() for future in [pool.submit(draw) for draw in reversed(draws)]][::-1]
    assert model.sample_rng_.bit_generator.state == after  # nothing taken by running them
    for got, want in zip(drawn, expected, strict=True):
        pd.testing.assert_frame_equal(got, want)
    assert not expected[0].equals(expected[2])  # the two draws of 2,500 rows are not the same rows
