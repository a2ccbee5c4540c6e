"""The stratified exact test of verbatim copies (audits/metrics/copytest.py): its strata do not
depend on which rows are training, it rejects at its level when nothing is copied, it finds
copies that the one-stratum comparison misses, and ``exact_copies`` fails on copies the chance
margin hides (pure: no database)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audits.metrics import copytest, reidentification
from audits.metrics.context import AuditData
from audits.metrics.copytest import record_strata, stratified_test
from audits.metrics.encoding import TableSchema, row_keys
from audits.metrics.reidentification import exact_copies_check

COLUMNS = [f"q{i}" for i in range(9)]
SCHEMA = {
    "columns": [{"name": c, "type": "categorical"} for c in COLUMNS[:-1]]
    + [{"name": "y", "type": "categorical", "role": "label", "categories": ["0", "1"]}]
}


def survey(rng: np.random.Generator, weights: np.ndarray, rows: int) -> pd.DataFrame:
    """A coarse survey: eight skewed answers of six codes, the first two dependent, and a label."""
    frame = pd.DataFrame({c: rng.choice(6, rows, p=weights[i]) for i, c in enumerate(COLUMNS[:-1])})
    frame["q1"] = np.where(rng.random(rows) < 0.6, frame["q0"], frame["q1"])
    frame = frame.astype(str)
    frame["y"] = np.where(rng.random(rows) < 0.3, "1", "0")
    return frame


def _records(train: pd.DataFrame, holdout: pd.DataFrame, release: pd.DataFrame, columns: list[str]):
    pooled = pd.concat([train, holdout], ignore_index=True)
    keys = row_keys(pooled, columns)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    records = np.flatnonzero(counts[inverse] == 1)
    reproduced = np.isin(keys[records], row_keys(release, columns))
    return pooled, keys, records, records < len(train), reproduced


def _table(seed: int = 0) -> tuple[np.random.Generator, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.full(6, 0.5), size=8)
    return rng, survey(rng, weights, 4000), survey(rng, weights, 1000), survey(rng, weights, 4000)


@pytest.mark.parametrize("structure_rows", [copytest.TREE_ROWS, 700])
def test_the_strata_are_the_same_whichever_rows_are_training(
    structure_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also when the tree's structure is chosen on a subset of the rows (large tables)."""
    monkeypatch.setattr(copytest, "TREE_ROWS", structure_rows)
    rng, train, holdout, _ = _table()
    columns = list(train.columns)
    pooled, keys, records, _, _ = _records(train, holdout, train, columns)
    strata = dict(zip(keys[records], record_strata(pooled, columns, keys, records, "y"), strict=True))
    shuffled = pooled.iloc[rng.permutation(len(pooled))].reset_index(drop=True)  # another split, another order
    again, again_keys, again_records, _, _ = _records(shuffled.iloc[:1000], shuffled.iloc[1000:], train, columns)
    relabelled = record_strata(again, columns, again_keys, again_records, "y")
    assert dict(zip(again_keys[again_records], relabelled, strict=True)) == strata
    assert len(set(strata.values())) == 20  # ten score bins per label value


def test_the_stratified_test_rejects_at_its_level_when_nothing_is_copied() -> None:
    """A fresh sample of the population never saw the training rows: relabelling the records at
    random (the split's own law) gives the exact null, and the test rejects at its level."""
    rng, train, holdout, fresh = _table(1)
    columns = list(train.columns)
    pooled, keys, records, training, reproduced = _records(train, holdout, fresh, columns)
    assert reproduced.sum() > 300  # a coarse table: the fresh sample matches many records by chance
    strata = record_strata(pooled, columns, keys, records, "y")
    classes = pooled["y"].to_numpy()[records]
    p_values = []
    for draw in range(400):
        labels = training.copy()
        for value in ("0", "1"):
            where = np.flatnonzero(classes == value)
            labels[where] = rng.permutation(training[where])
        p_values.append(stratified_test(reproduced, labels, strata, random_state=draw, draws=400).p_value)
    rejected = np.mean(np.array(p_values) < 0.05)
    assert 0.02 <= rejected <= 0.085  # 400 draws at 5 %: within three standard errors
    assert np.mean(np.array(p_values) < 0.5) < 0.58


def test_copies_of_rare_records_are_found_where_the_one_stratum_comparison_misses_them() -> None:
    """2 % of a fresh sample's rows replaced by training records found once (as a memorising
    generator would leave them, spread over all records): the stratified test finds them in most
    draws, more often than the same test on one stratum (the comparison ``exact_copies`` judges)."""
    stratified = single = 0
    for seed in range(10):
        rng, train, holdout, fresh = _table(10 + seed)
        columns = list(train.columns)
        pooled, keys, records, training, _ = _records(train, holdout, fresh, columns)
        copies = train.iloc[records[training][rng.choice(training.sum(), 80, replace=False)]]
        leaky = pd.concat([fresh.iloc[80:], copies], ignore_index=True)
        reproduced = np.isin(keys[records], row_keys(leaky, columns))
        strata = record_strata(pooled, columns, keys, records, "y")
        stratified += stratified_test(reproduced, training, strata).p_value < 0.05
        single += stratified_test(reproduced, training, np.zeros_like(strata)).p_value < 0.05
        if seed == 0:
            data = AuditData.prepare(train, holdout, TableSchema.from_dict(SCHEMA))
            details = exact_copies_check(data, data.synthetic(leaky)).details["stratified_test"]
            assert details["p_value"] == stratified_test(reproduced, training, strata).p_value
    assert stratified >= 8 and stratified >= single + 2


def test_exact_copies_fails_on_copies_the_chance_margin_hides() -> None:
    """3 % of a fresh sample's rows replaced by training records found once: the margin rule
    blocks some of the six tables, the stratified test at 0.1 % the others; the fresh samples
    themselves pass."""
    failed_by = []
    for seed in range(6):
        rng, train, holdout, fresh = _table(30 + seed)
        data = AuditData.prepare(train, holdout, TableSchema.from_dict(SCHEMA))
        union = pd.Series(np.concatenate([data.train_keys, data.holdout_keys])).value_counts()
        once = np.flatnonzero(pd.Series(data.train_keys).map(union) == 1)
        leaky = pd.concat([fresh.iloc[120:], train.iloc[rng.choice(once, 120, replace=False)]], ignore_index=True)
        result = exact_copies_check(data, data.synthetic(leaky))
        assert result.passed is False and result.blocking
        failed_by.append(result.details["failed_by"])
        clean = exact_copies_check(data, data.synthetic(fresh))
        assert clean.passed is True and clean.details["failed_by"] is None
    assert failed_by.count("stratified_test") >= 2 and failed_by.count("chance_margin") >= 2


def _planted(rng: np.random.Generator, train: pd.DataFrame, release: pd.DataFrame, share: float) -> pd.DataFrame:
    """``release`` with ``ceil(share * rows)`` rows replaced by training rows drawn at random."""
    count = int(np.ceil(share * len(release)))
    copies = train.iloc[rng.choice(len(train), count, replace=False)]
    return pd.concat([release.iloc[count:], copies], ignore_index=True)


def test_the_detectable_copy_share_is_a_leak_the_check_blocks_and_a_smaller_one_it_does_not() -> None:
    """``details.detectable_copy_share`` is simulated from the audit's own counts: on a coarse
    table, copies at that share planted for real are blocked in most draws, copies at the next
    smaller share of the grid far less often; where nothing is reproduced by chance, 1 %."""
    rng, train, holdout, fresh = _table(50)
    data = AuditData.prepare(train, holdout, TableSchema.from_dict(SCHEMA))
    clean = exact_copies_check(data, data.synthetic(fresh))
    share = clean.details["detectable_copy_share"]
    assert clean.passed is True and share is not None and share > 0.01  # coarse: 1 % is not detectable
    smaller = max(s for s in reidentification.DETECT_SHARES if s < share)
    at_share = sum(
        exact_copies_check(data, data.synthetic(_planted(rng, train, fresh, share))).passed is False for _ in range(10)
    )
    below = sum(
        exact_copies_check(data, data.synthetic(_planted(rng, train, fresh, smaller))).passed is False
        for _ in range(10)
    )
    assert at_share >= 7 and below <= at_share - 4

    fine = train.assign(q7=np.arange(len(train)).astype(str))  # every row unique: no chance matches
    fine_holdout = holdout.assign(q7=(len(train) + np.arange(len(holdout))).astype(str))
    fine_release = fresh.assign(q7=(10**6 + np.arange(len(fresh))).astype(str))
    fine_data = AuditData.prepare(fine, fine_holdout, TableSchema.from_dict(SCHEMA))
    assert exact_copies_check(fine_data, fine_data.synthetic(fine_release)).details["detectable_copy_share"] == 0.01
