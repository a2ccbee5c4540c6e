"""MST's tree selection scored on a content-defined sample of the rows (``selection_rows``).

Above ``SELECTION_SAMPLE_FACTOR × selection_rows`` estimated rows the scored 2-way tables are
counted on the rows whose hash of their fine codes falls below a bound (``RowSample``), and the
measured tables on every row. The engines' equality with these counts is tested with each engine
(``test_engine_*``); here: the hash itself, which rows are kept, what the fit counts where, and
the sampled score's sensitivity.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from synth_engine.generators import MSTGenerator, mst
from synth_engine.generators.counts import HASH_PRIME, FrameCounts, RowSample, hash_weights, row_hash
from synth_engine.generators.mst import SELECTION_SAMPLE_FACTOR, SampledPairs, select_tree, selection_sample


def correlated(n_rows: int, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal(n_rows)
    frame = pd.DataFrame(
        {
            "label": np.where(latent + rng.standard_normal(n_rows) > 0, "yes", "no"),
            "a": np.clip((latent * 20 + 50 + rng.normal(0, 5, n_rows)).round(), 0, 100).astype(int),
            "b": np.clip((latent * 20 + 50 + rng.normal(0, 25, n_rows)).round(), 0, 100).astype(int),
            "c": np.where(latent + rng.normal(0, 0.5, n_rows) > 0.3, "x", "y"),
            "d": rng.integers(0, 5, n_rows).astype(str),
        }
    )
    schema = {
        "columns": [
            {"name": "label", "type": "categorical", "role": "label", "categories": ["no", "yes"]},
            {"name": "a", "type": "integer", "min": 0, "max": 100},
            {"name": "b", "type": "integer", "min": 0, "max": 100},
            {"name": "c", "type": "categorical", "categories": ["x", "y"]},
            {"name": "d", "type": "categorical", "categories": [str(k) for k in range(5)]},
        ]
    }
    return frame, schema


def fitted(source, schema: dict, **params) -> MSTGenerator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MSTGenerator(**params).fit_counts(source, schema, 2.0, 1e-5, random_state=7)


def test_the_row_hash_is_the_stated_integer_arithmetic_and_keeps_duplicates_together() -> None:
    codes = [np.array([0, 3, 0, 65_535]), np.array([7, 0, 7, 2**20]), np.array([1, 1, 1, 0])]
    weights = hash_weights(3)
    assert weights == [48_271, 48_271**2 % HASH_PRIME, 48_271**3 % HASH_PRIME]
    expected = []
    for row in range(4):  # Python's unbounded integers: the same values without any 64-bit care
        h = sum(((int(code[row]) + 1) * w) % HASH_PRIME for code, w in zip(codes, weights, strict=True)) % HASH_PRIME
        expected.append(h * h % HASH_PRIME)
    assert row_hash(codes).tolist() == expected
    assert expected[0] == expected[2] != expected[1]  # rows with the same codes: the same hash
    sample = RowSample(keep=expected[0] + 1)
    assert sample.mask(codes).tolist() == [h <= expected[0] for h in expected]


def test_a_sample_keeps_about_its_rate_of_the_rows_and_the_same_rows_whatever_their_order() -> None:
    frame, _ = correlated(40_000)
    memory = FrameCounts(frame)
    model = fitted(memory, correlated(10)[1])
    codes = [memory.codes(codec) for codec in model.codecs_]
    sample = RowSample.of_rate(0.1)
    kept = sample.mask(codes)
    assert 0.08 < kept.mean() < 0.12
    order = np.random.default_rng(1).permutation(len(frame))
    shuffled = FrameCounts(frame.iloc[order].reset_index(drop=True))
    again = sample.mask([shuffled.codes(codec) for codec in model.codecs_])
    assert np.array_equal(again, kept[order])
    # and about as many of each 2-way cell as of the whole (no pattern of the codes is favoured)
    groups = [(1, 3), (0, 4)]
    whole = memory.binned_counts(model.codecs_, model.bins_, groups)
    part = memory.binned_counts(model.codecs_, model.bins_, groups, sample=sample)
    for all_rows, some in zip(whole, part, strict=True):
        big = all_rows >= 2000
        assert np.all(np.abs(some[big] / all_rows[big] - sample.rate) < 0.03)


def test_the_sample_depends_on_the_row_estimate_and_the_parameter_only() -> None:
    assert selection_sample(SELECTION_SAMPLE_FACTOR * 1000.0, 1000) is None  # at the threshold: every row
    assert selection_sample(1e9, 0) is None  # 0: never sampled
    sample = selection_sample(10_000_000.0, 1_000_000)
    assert sample is not None and sample.keep == int(0.1 * HASH_PRIME)


def test_the_fit_scores_the_sample_and_measures_every_row(tmp_path) -> None:
    frame, schema = correlated(30_000)
    asked: list[tuple[list[tuple[int, ...]], RowSample | None]] = []

    class Recording(FrameCounts):
        def binned_counts(self, codecs, bins, groups, sample=None):
            asked.append((list(groups), sample))
            return super().binned_counts(codecs, bins, groups, sample)

    model = fitted(Recording(frame), schema, selection_rows=2000)
    (scored, sample), (measured, everything) = asked
    assert sample is not None and 0.05 < sample.rate < 0.08 and everything is None
    # the record states the sample, and a saved model keeps it
    assert model.privacy_spent().details["selection_sample"] == {"keep": sample.keep, "rate": sample.rate}
    model.save(tmp_path / "model")
    assert MSTGenerator.load(tmp_path / "model").privacy_spent().details["selection_sample"]["keep"] == sample.keep
    assert scored == list(itertools.combinations(range(1, 5), 2))  # the attributes' pairs, no label
    assert measured[: len(model.edges_)] == [(0, a, b) for a, b in model.edges_]
    assert measured[len(model.edges_) :] == [(0, c) for c in range(1, 5)]
    # below the threshold, one pass over every row as before
    asked.clear()
    every = fitted(Recording(frame), schema, selection_rows=10_000)
    assert len(asked) == 1 and asked[0][1] is None and len(asked[0][0]) == 6 + 4
    assert every.privacy_spent().details["selection_sample"] is None
    # the strong pairs (a, b) and (a, c) are found on the sample as on every row (d is noise)
    full = fitted(FrameCounts(frame), schema)
    assert {(1, 2), (1, 3)} <= set(model.edges_) & set(full.edges_)


def test_the_sampled_score_moves_by_at_most_two_when_a_row_is_added(monkeypatch) -> None:
    frame, schema = correlated(3000)
    model = fitted(FrameCounts(frame), schema)
    sample = RowSample.of_rate(1.0)  # every row kept: the added row is certainly in the sample
    one_way = [np.asarray(table, dtype=np.float64) for table in model.one_way_]
    columns = [1, 2, 3, 4]
    found: list[tuple[np.ndarray, float]] = []

    def mechanism(values, epsilon, rng, sensitivity=1.0):
        found.append((np.asarray(values), sensitivity))
        return 0

    monkeypatch.setattr(mst, "exponential_mechanism", mechanism)

    def scores(rows: pd.DataFrame) -> np.ndarray:
        found.clear()
        pairs = SampledPairs(FrameCounts(rows), model.codecs_, model.bins_, columns, sample)
        select_tree(pairs, one_way, 3000.0, 1.0, np.random.default_rng(0), columns)
        values, sensitivity = found[0]  # the first pick scores every pair
        assert sensitivity == 2.0
        return values

    before = scores(frame)
    for row in range(5):
        after = scores(pd.concat([frame, frame.iloc[[row * 97]]], ignore_index=True))
        assert 0 < np.max(np.abs(after - before)) <= 2.0 + 1e-9


@pytest.mark.parametrize("rate", [0.0, 1.5])
def test_a_rate_outside_zero_to_one_is_refused(rate) -> None:
    with pytest.raises(ValueError, match="sampling rate"):
        RowSample.of_rate(rate)
