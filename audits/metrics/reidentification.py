"""Re-identification: verbatim copies, reproduced unique rows, k-anonymity, l-diversity and
distance to closest record (DCR).

- ``exact_copies`` (blocking): real records the release reproduces verbatim, per synthetic row,
  in excess of chance. Only records found once in all the real rows (training and holdout) count:
  given those rows, which of them went to training is a uniformly random draw, so a generator that
  did not memorise reproduces a training-side record at the same rate as a holdout-side one, and
  that holdout rate times the training-side records is the control. Training records reproduced
  minus that control, over the synthetic rows; range [0, 1], lower is better. The verdict reads
  the value less its chance margin (one-sided 95 %, from the holdout rate's binomial error): on
  a table where no record recurs the margin is 0 and the value is judged as it is; on a coarse
  one a fresh real sample reproduces many records by chance and the holdout only estimates how
  many. (The previous
  control, training-only against holdout-only *keys*, was biased on coarse tables, where a key
  seen only in the four-times-larger training set is far more common in the population than one
  seen only in the holdout: a fresh real sample of Fair's survey answers failed it 8 times in 10.
  A record repeated in the real rows is not one person's, so reproducing it is not counted.)
  The check also fails when :mod:`audits.metrics.copytest`'s exact test of the same comparison,
  within strata of each record's chance of being reproduced, finds training records reproduced
  beyond chance at :data:`COPIES_ALPHA` (0.1 %, an exact level) while the value's high end is
  above the threshold (copies certain, their share not shown to be within it): on a coarse table
  it finds copies the margin hides (Fair's survey, 5 % copies: 5 of 5 releases, the margin 4);
  at 5 % it would find 1 % copies in half the releases and fail one clean release in 20, which is
  why it gates at 0.1 % (``details.stratified_test``, ``details.failed_by``; stewards only;
  docs/audit-calibration.md). ``details.detectable_copy_share`` is the smallest share of the
  release's rows that, planted as verbatim training rows, this audit would block in 4 plantings of
  5 (simulated on its own counts, :func:`detectable_copy_share`): 1 % where chance matches are
  rare, 2-5 % on Fair's survey (1-10 % over 40 splits), where no test calibrated on the holdout
  can find 1 % reliably.
- ``unique_row_reproduction`` (blocking, zero tolerance): synthetic rows equal in every column to a
  training row that is unique on its quasi-identifiers and absent from the holdout (the classic
  re-identification of a population unique; Sweeney 2002, Sec. 2). Matches on
  quasi-identifiers + sensitive columns alone are reported in ``details`` with the holdout rate as
  their control (chance matches of a DP generator are common there, so they are not a criterion).
- ``k_anonymity`` / ``l_diversity`` (Sweeney 2002; Machanavajjhala et al. 2007, Sec. 4.1) of the
  release on the quasi-identifiers, for information: synthetic rows are not people, so a small
  class is not a disclosure by itself.
- ``distance_to_closest_record``: median DCR of synthetic rows to the training rows over the
  median DCR of holdout rows to the training rows (1 = as far as unseen real people), with the
  nearest-neighbour distance ratio; information only, never a pass criterion on its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from audits.metrics.base import CheckResult, judge, skipped
from audits.metrics.context import AuditData, SyntheticRows
from audits.metrics.copytest import StratifiedCopyTest, counts_test, record_strata, stratified_test
from audits.metrics.encoding import nearest_neighbours, row_keys
from audits.metrics.power import planted_rows

Thresholds = dict[str, float | None] | None
COPIES_Z = 1.645  # exact_copies fails only when its excess is beyond chance at one-sided 95 %
COPIES_ALPHA = 0.001  # ... or when the stratified exact test finds copies at this level (copytest.py)
# detectable_copy_share: the smallest of these shares of the release's rows that, planted as verbatim
# training rows, the check blocks in at least DETECT_POWER of DETECT_PLANTINGS simulated plantings
DETECT_SHARES = (0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5)
DETECT_PLANTINGS = 20
DETECT_POWER = 0.8


def exact_copies_check(data: AuditData, synthetic: SyntheticRows, thresholds: Thresholds = None) -> CheckResult:
    """Training records found once in the real rows that the release reproduces, per synthetic
    row, net of the rate at which it reproduces such holdout records."""
    keys, counts = np.unique(np.concatenate([data.train_keys, data.holdout_keys]), return_counts=True)
    once = keys[counts == 1]
    train_records = once[np.isin(once, data.train_keys)]
    holdout_records = once[np.isin(once, data.holdout_keys)]
    released = np.unique(synthetic.keys)
    n = len(synthetic.keys)
    reproduced_train = int(np.isin(train_records, released).sum())
    reproduced_holdout = int(np.isin(holdout_records, released).sum())
    value, baseline, margin = chance_margin(
        reproduced_train, len(train_records), reproduced_holdout, len(holdout_records), n
    )
    holdout_rate = reproduced_holdout / max(len(holdout_records), 1)
    copies = np.isin(synthetic.keys, data.train_keys)
    stratified = copies_stratified_test(data, synthetic)
    result = judge(
        "exact_copies",
        value,
        thresholds=thresholds,
        baseline=baseline,
        ci=(max(0.0, value - margin), min(1.0, value + margin)),
        details={
            "n_copies": int(copies.sum()),
            "copy_share": float(copies.mean()) if n else 0.0,
            "n_training_records": len(train_records),
            "n_training_records_reproduced": reproduced_train,
            "n_holdout_records": len(holdout_records),
            "n_holdout_records_reproduced": reproduced_holdout,
            "holdout_reproduction_rate": holdout_rate,
            "chance_margin": margin,
            "n_synthetic": n,
            "ci_applies_to": "value: chance reproduction's one-sided 95 % margin (the verdict reads its low end)",
            "stratified_test": stratified.to_dict(),
            "failed_by": None,
        },
    )
    if result.passed is not None and result.threshold is not None:
        failed_by = copies_failed_by(value, margin, result.threshold, lambda: stratified.p_value)
        result.passed = failed_by is None
        result.details["failed_by"] = failed_by
    result.details["detectable_copy_share"] = detectable_copy_share(
        stratified,
        n_train_rows=len(data.train_keys),
        n_synthetic=n,
        holdout_reproduced=reproduced_holdout,
        holdout_records=len(holdout_records),
        threshold=result.threshold,
    )
    return result


def detectable_copy_share(
    test: StratifiedCopyTest,
    *,
    n_train_rows: int,
    n_synthetic: int,
    holdout_reproduced: int,
    holdout_records: int,
    threshold: float | None,
    random_state: int = 0,
) -> float | None:
    """The smallest share in :data:`DETECT_SHARES` of the release's rows that, replaced by verbatim
    training rows drawn at random (as the benchmark plants them, and as the audit's positive
    control does), would fail ``exact_copies`` in at least :data:`DETECT_POWER` of
    :data:`DETECT_PLANTINGS` simulated plantings; ``None`` when none of them would.

    Simulated on this audit's own counts: a planted row lands on a training record found once and
    not yet reproduced in stratum ``s`` with probability ``(T_s - O_s) / training rows`` (a
    multivariate hypergeometric draw), adding one to that stratum's reproduced and training
    reproduced records; the margin rule and the stratified test then judge the new counts as the
    check would. The rows a planted copy replaces are not removed (a copy rarely replaces a
    reproduction). It tells stewards how large a leak this audit could have caught: on a coarse
    table, where a clean release reproduces many records by chance and the holdout is small, it is
    above 1 % (docs/audit-calibration.md)."""
    if threshold is None or n_synthetic == 0 or n_train_rows == 0:
        return None
    t_s, o_s = np.array(test.training_records), np.array(test.training_reproduced)
    open_records = t_s - o_s
    colours = np.append(open_records, max(n_train_rows - int(open_records.sum()), 0))
    rng = np.random.default_rng(random_state)
    for share in DETECT_SHARES:
        planted = planted_rows(n_synthetic, share, int(colours.sum()))  # the positive control's count
        needed = math.ceil(DETECT_POWER * DETECT_PLANTINGS)
        blocked = missed = 0
        while blocked < needed and missed <= DETECT_PLANTINGS - needed:  # stop once the verdict is sure
            added = rng.multivariate_hypergeometric(colours, planted)[:-1]
            value, _, margin = chance_margin(
                int(o_s.sum() + added.sum()), int(t_s.sum()), holdout_reproduced, holdout_records, n_synthetic
            )
            if copies_failed_by(value, margin, threshold, partial(_planted_p_value, test, added, rng)):
                blocked += 1
            else:
                missed += 1
        if blocked >= needed:
            return share
    return None


def _planted_p_value(test: StratifiedCopyTest, added: np.ndarray, rng: np.random.Generator) -> float:
    """The stratified test's p-value once ``added`` copies land per stratum (its seed drawn from
    ``rng`` only when asked)."""
    t_s, h_s = np.array(test.training_records), np.array(test.holdout_records)
    m_s, o_s = np.array(test.reproduced), np.array(test.training_reproduced)
    return counts_test(t_s, h_s, m_s + added, o_s + added, random_state=int(rng.integers(2**31)))[0]


def copies_failed_by(value: float, margin: float, threshold: float, p_value: Callable[[], float]) -> str | None:
    """Which of ``exact_copies``' two rules fails a release (``None``: it passes): ``"chance_margin"``
    when the excess less its chance margin is above ``threshold``, ``"stratified_test"`` when the
    stratified exact test's p-value (asked only then) is below :data:`COPIES_ALPHA` while the excess
    plus its margin is above it (copies certain, their share not shown to be within the threshold).
    The check and :func:`detectable_copy_share`'s simulated plantings judge by this one function."""
    low, high = max(0.0, value - margin), min(1.0, value + margin)
    if low > threshold:
        return "chance_margin"
    if high > threshold and p_value() < COPIES_ALPHA:
        return "stratified_test"
    return None


def chance_margin(
    reproduced_train: int, train_records: int, reproduced_holdout: int, holdout_records: int, n_synthetic: int
) -> tuple[float, float, float]:
    """``exact_copies``' value, its chance baseline and its one-sided 95 % chance margin, per
    synthetic row, from the records found once on each side and those the release reproduces."""
    holdout_rate = reproduced_holdout / max(holdout_records, 1)
    baseline = min(1.0, holdout_rate * train_records / max(n_synthetic, 1))
    value = max(0.0, reproduced_train / max(n_synthetic, 1) - baseline)
    # the chance rate is estimated from the holdout's few records: its binomial error, scaled to
    # the training records, and the training side's own, give the one-sided interval judged
    chance_sd = math.sqrt(holdout_rate * (1 - holdout_rate))
    spread = chance_sd * math.sqrt(train_records + train_records**2 / max(holdout_records, 1))
    return value, baseline, COPIES_Z * spread / max(n_synthetic, 1)


def copies_stratified_test(data: AuditData, synthetic: SyntheticRows) -> StratifiedCopyTest:
    """:mod:`audits.metrics.copytest`'s stratified exact test on the records found once in the
    real rows (information for stewards; the strata depend on the pooled real rows only, so they
    are computed once per :class:`AuditData`)."""
    pooled_keys = np.concatenate([data.train_keys, data.holdout_keys])
    _, inverse, counts = np.unique(pooled_keys, return_inverse=True, return_counts=True)
    records = np.flatnonzero(counts[inverse] == 1)
    training = records < len(data.train_keys)
    reproduced = np.isin(pooled_keys[records], synthetic.keys)
    if not reproduced.any():  # nothing reproduced: no stratum can show an excess
        strata = np.zeros(len(records), dtype=np.int64)
    else:
        if "copies_strata" not in data.memo:
            pooled = pd.concat([data.train, data.holdout], ignore_index=True)
            data.memo["copies_strata"] = record_strata(
                pooled, list(data.schema.columns), pooled_keys, records, data.schema.label
            )
        strata = data.memo["copies_strata"]
    return stratified_test(reproduced, training, strata)


def unique_row_reproduction_check(
    data: AuditData, synthetic: SyntheticRows, thresholds: Thresholds = None
) -> CheckResult:
    """Synthetic rows reproducing in full a training row unique on its quasi-identifiers."""
    schema = data.schema
    qis = schema.with_role("quasi_identifier")
    if not qis:
        return skipped("unique_row_reproduction", "the schema declares no quasi-identifiers", thresholds)
    unique_train = _unique_on(data.train, qis)
    at_risk = np.setdiff1d(data.train_keys[unique_train], data.holdout_keys)
    hits = np.isin(synthetic.keys, at_risk)
    partial = _partial_matches(data, synthetic, qis + schema.with_role("sensitive"))
    # positions only: the reproduced rows are real people's records and must not be copied into
    # audit records or datasheets
    positions = np.flatnonzero(hits)[:20].tolist()
    return judge(
        "unique_row_reproduction",
        float(hits.sum()),
        thresholds=thresholds,
        baseline=0.0,
        details={
            "n_unique_training_rows": int(unique_train.sum()),
            "n_at_risk": len(at_risk),
            "n_reproduced_rows": int(len(np.unique(synthetic.keys[hits]))),
            "quasi_identifiers": qis,
            "synthetic_positions": positions,
            "qi_sensitive_matches": partial,
        },
    )


def _unique_on(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    keys = row_keys(frame, columns)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    unique: np.ndarray = counts[inverse] == 1
    return unique


def _partial_matches(data: AuditData, synthetic: SyntheticRows, columns: list[str]) -> dict[str, float]:
    """Share of QI-unique training rows (and, as control, QI-unique holdout rows) whose
    quasi-identifier + sensitive values appear in the synthetic rows."""
    qis = data.schema.with_role("quasi_identifier")
    synthetic_keys = row_keys(synthetic.frame, columns)
    rates = {}
    for name, frame in (("train", data.train), ("holdout", data.holdout)):
        unique = _unique_on(frame, qis)
        keys = row_keys(frame.loc[unique], columns)
        rates[f"{name}_rate"] = float(np.isin(keys, synthetic_keys).mean()) if len(keys) else 0.0
        rates[f"{name}_n_unique"] = int(unique.sum())
    return rates


def k_anonymity_checks(data: AuditData, synthetic: SyntheticRows, thresholds: Thresholds = None) -> list[CheckResult]:
    """k-anonymity and l-diversity of the release on the quasi-identifiers (information)."""
    schema = data.schema
    qis = schema.with_role("quasi_identifier")
    if not qis:
        reason = "the schema declares no quasi-identifiers"
        return [skipped("k_anonymity", reason, thresholds), skipped("l_diversity", reason, thresholds)]
    groups = pd.Series(row_keys(synthetic.frame, qis))
    sizes = groups.value_counts()
    row_sizes = groups.map(sizes).to_numpy()
    histogram = {
        str(k): int(v)
        for k, v in pd.cut(
            sizes, [0, 1, 2, 4, 9, 19, 49, np.inf], labels=["1", "2", "3-4", "5-9", "10-19", "20-49", "50+"]
        )
        .value_counts(sort=False)
        .items()
    }
    k_result = judge(
        "k_anonymity",
        float(sizes.min()),
        thresholds=thresholds,
        details={
            "n_classes": len(sizes),
            "share_rows_k1": float((row_sizes == 1).mean()),
            "share_rows_below_5": float((row_sizes < 5).mean()),
            "quasi_identifiers": qis,
        },
        chart={"kind": "histogram", "bins": list(histogram), "counts": list(histogram.values())},
    )
    sensitive = schema.with_role("sensitive")
    if not sensitive:
        return [k_result, skipped("l_diversity", "the schema declares no sensitive columns", thresholds)]
    per_column = {}
    for column in sensitive:
        distinct = pd.DataFrame({"g": groups, "s": synthetic.frame[column].astype(str)}).groupby("g")["s"].nunique()
        per_column[column] = {"l": int(distinct.min()), "share_classes_l1": float((distinct == 1).mean())}
    l_value = min(v["l"] for v in per_column.values())
    return [k_result, judge("l_diversity", float(l_value), thresholds=thresholds, details={"per_column": per_column})]


def dcr_check(
    data: AuditData,
    synthetic: SyntheticRows,
    *,
    n_queries: int = 2000,
    random_state: int = 0,
    thresholds: Thresholds = None,
) -> CheckResult:
    """DCR of synthetic and holdout rows to the training rows, and NNDR (information only)."""
    rng = np.random.default_rng(random_state)
    synth_pick = _subsample(rng, len(synthetic.embedding), n_queries)
    hold_pick = _subsample(rng, len(data.holdout_embedding), n_queries)
    synth_d, _ = nearest_neighbours(synthetic.embedding[synth_pick], data.train_embedding, n_neighbours=2)
    hold_d, _ = nearest_neighbours(data.holdout_embedding[hold_pick], data.train_embedding, n_neighbours=2)
    synth_median, hold_median = float(np.median(synth_d[:, 0])), float(np.median(hold_d[:, 0]))
    ratio = synth_median / hold_median if hold_median > 0 else (1.0 if synth_median == 0 else np.inf)
    top = float(max(np.quantile(synth_d[:, 0], 0.99), np.quantile(hold_d[:, 0], 0.99), 1e-9))
    edges = np.linspace(0, top, 31)
    return judge(
        "distance_to_closest_record",
        ratio,
        thresholds=thresholds,
        baseline=1.0,
        details={
            "synthetic_median_dcr": synth_median,
            "holdout_median_dcr": hold_median,
            "synthetic_share_dcr_zero": float((synth_d[:, 0] == 0).mean()),
            "holdout_share_dcr_zero": float((hold_d[:, 0] == 0).mean()),
            "synthetic_median_nndr": float(np.median(_nndr(synth_d))),
            "holdout_median_nndr": float(np.median(_nndr(hold_d))),
            "synthetic_dcr_5th_percentile": float(np.quantile(synth_d[:, 0], 0.05)),
            "holdout_dcr_5th_percentile": float(np.quantile(hold_d[:, 0], 0.05)),
            "n_queries": len(synth_pick),
        },
        chart={
            "kind": "histogram",
            "edges": edges.round(5).tolist(),
            "synthetic_to_train": np.histogram(np.minimum(synth_d[:, 0], top), edges)[0].tolist(),
            "holdout_to_train": np.histogram(np.minimum(hold_d[:, 0], top), edges)[0].tolist(),
        },
    )


def _nndr(distances: np.ndarray) -> np.ndarray:
    second = distances[:, 1]
    return np.where(second > 0, distances[:, 0] / np.where(second > 0, second, 1), 1.0)


def _subsample(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    return np.sort(rng.choice(n, size, replace=False)) if n > size else np.arange(n)
