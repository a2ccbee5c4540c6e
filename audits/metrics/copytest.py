"""Stratified exact test of verbatim copies (``exact_copies``' ``details.stratified_test``).

``exact_copies`` compares the share of training-side records (rows found once in all the real
rows) the release reproduces with the holdout-side share. On a coarse table a generator that
never saw a record reproduces it by chance when the record is probable, so chance matches are
many and a few copies drown among them. Chance matches are concentrated on probable records,
whereas copies of training rows are spread over all of them: this test compares the two sides
*within strata of the records' chance of being reproduced* and weights the strata where chance
matches are rare, so those carry the power.

**Chance score.** Each record's log-probability under a Chow–Liu tree (the maximum
mutual-information spanning tree of pairwise dependencies; Chow & Liu 1968) fitted on *all the
real rows pooled*, training and holdout together, values taken as exact codes (as
:func:`audits.metrics.encoding.row_keys` compares them). Records are cut into
:data:`STRATA` equal-size score bins (ties broken by the row key, never by position) and crossed
with the label's value when the schema has one.

**Statistic.** Per stratum ``s``: ``T_s`` training and ``H_s`` holdout records, ``m_s`` of all
``N_s`` reproduced, ``O_s`` of them training records. ``D_s = O_s − m_s T_s / N_s`` is the excess
of training records reproduced over their share; ``S = Σ w_s D_s`` with weights that are the
inverse variance of the stratum's excess *rate* (a copy share common to every stratum) under
the null plus :data:`TARGET_SHARE`'s own binomial spread, so strata where chance matches are
rare dominate and a stratum with none at all is not given unbounded weight.

**Why the null stays calibrated.** The null is that the release's law does not depend on which
real rows were training (a generator that did not memorise). The platform draws the holdout
uniformly at random within each label class (``synth_engine.services._split``), so given the
pooled real rows and the release, the training labels are a uniformly random subset within each
label class, independent of everything computed from the pooled rows and the release. The scores
and strata here are functions of the pooled rows and the record keys only (symmetric in which
rows are training: relabelling leaves every score unchanged, which the tests check), never of
the synthetic rows (a model fitted on the release would carry the fitted training rows' traces
into the weights, and planted copies into the weights of the records they copy) and never of
the row order (the pooled frame lists training rows first). Conditionally on the strata, on the
training records per stratum ``T_s`` and on the reproduced records per stratum ``m_s`` (functions
of the release), ``O_s`` is hypergeometric, independently across strata, and the weights are
constants: the p-value computed from :data:`DRAWS` seeded draws of those hypergeometrics,
``(1 + #{S* ≥ S}) / (1 + draws)``, is exactly valid (a Monte Carlo permutation test), whatever
the scores' quality; a poor score costs power, not calibration. What remains is the null's own
assumption: a generator fitted on the training rows reproduces them a little more often than
unseen ones even without memorising (a DP generator at ε may, by up to ``e^ε``); measured on
clean ``mst`` releases (``bench/bench_exact_copies.py``) the p-values are uniform within noise.

**Power and its limit.** Under the null each reproduced record is a training record with
probability ``T / N`` (0.8 at the default 20 % holdout), so a stratum needs about 14 reproduced
training records and no holdout one to reach 5 %; copies landing where chance matches are common
add little. On statsmodels' Fair survey (9 coarse answers, 884 holdout-side records) 1 % planted
copies (about 36 records) reach p < 0.05 in about half of the releases, against a fifth for the
unstratified comparison, and stratifying by the generator's *own* probabilities (a million draws
from the fitted model) does no better: no score can, at that split. A 50 % holdout raises it to
about four in five at 5 %, not at the 0.1 % the check gates at: a larger holdout leaves fewer
training rows and so fewer copies (docs/audit-calibration.md: even a statistic told which
reproduced records are the copies reaches 0.1 % in about half of Fair's 20 % splits).

:func:`audits.metrics.reidentification.exact_copies_check` reports the test to stewards in its
details and fails on it at 0.1 % (an exact level: one clean release in a thousand) when the
excess may exceed the threshold; at 5 % it would withhold one clean release in 20 on a coarse
table for half of the 1 % copies found (docs/audit-calibration.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STRATA = 10  # score bins (per label value)
DRAWS = 4000  # Monte Carlo draws of the conditional null
TARGET_SHARE = 0.01  # the copy share the weights are tuned to detect (1 % of training records)
SMOOTHING = 0.5  # additive smoothing of the tree's conditional frequencies
TREE_ROWS = 50_000  # rows the tree's structure (pairwise mutual information) is chosen on, at most


@dataclass(frozen=True)
class StratifiedCopyTest:
    """The stratified exact test's outcome (counts per stratum, statistic, p-value)."""

    p_value: float
    statistic: float
    null_sd: float
    n_strata: int
    training_records: list[int]
    holdout_records: list[int]
    reproduced: list[int]
    training_reproduced: list[int]
    weights: list[float]

    def to_dict(self) -> dict[str, object]:
        return {
            "p_value": self.p_value,
            "statistic": self.statistic,
            "null_sd": self.null_sd,
            "n_strata": self.n_strata,
            "per_stratum": {
                "training_records": self.training_records,
                "holdout_records": self.holdout_records,
                "reproduced": self.reproduced,
                "training_reproduced": self.training_reproduced,
                "weights": [round(w, 6) for w in self.weights],
            },
            "method": (
                "exact conditional (Monte Carlo) test of training records reproduced beyond their share, "
                f"within {STRATA} bins of each record's log-probability under a Chow-Liu tree of all the real "
                "rows (crossed with the label), strata weighted toward rare records"
            ),
        }


def value_codes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``(rows, columns)`` integer codes of the values, missing values one more code; numeric
    columns compared as float64 (``3`` equals ``3.0``), as :func:`row_keys` does."""
    codes = np.empty((len(frame), len(columns)), dtype=np.int64)
    for j, column in enumerate(columns):
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            values: pd.Series = series.astype(float)
        else:
            values = series.astype(str).where(series.notna(), None)
        codes[:, j] = pd.factorize(values, use_na_sentinel=False)[0]
    return codes


def _pair_counts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each row's count of its ``(a, b)`` pair among the rows."""
    pairs = a * (int(b.max()) + 1) + b
    _, inverse, counts = np.unique(pairs, return_inverse=True, return_counts=True)
    result: np.ndarray = counts[inverse].astype(float)
    return result


def tree_log_probability(codes: np.ndarray, keys: np.ndarray | None = None) -> np.ndarray:
    """Each row's log-probability under the Chow–Liu tree fitted on the rows themselves.

    The tree is the maximum spanning tree of the columns' pairwise mutual information (Prim),
    rooted at column 0; conditional frequencies are smoothed by :data:`SMOOTHING` over the
    child's observed values. A function of the multiset of rows only (row order is irrelevant):
    above :data:`TREE_ROWS` rows the structure is chosen on the rows with the smallest ``keys``
    (a choice by content, not position; copies of a row are alike), the frequencies counted on all.
    """
    n, d = codes.shape
    if n == 0 or d == 0:
        return np.zeros(n)
    single = [np.bincount(codes[:, j]) for j in range(d)]
    sizes = [int((c > 0).sum()) for c in single]
    row_single = np.stack([single[j][codes[:, j]] for j in range(d)], axis=1).astype(float)
    information = _mutual_information(codes if keys is None or n <= TREE_ROWS else codes[np.argsort(keys)[:TREE_ROWS]])
    parent = np.full(d, -1)
    in_tree = np.zeros(d, dtype=bool)
    in_tree[0] = True
    best = information[0].copy()
    best_from = np.zeros(d, dtype=int)
    for _ in range(d - 1):
        candidates = np.where(in_tree, -np.inf, best)
        child = int(np.argmax(candidates))
        parent[child] = best_from[child]
        in_tree[child] = True
        better = (~in_tree) & (information[child] > best)
        best[better] = information[child][better]
        best_from[better] = child
    log_p = np.log((row_single[:, 0] + SMOOTHING) / (n + SMOOTHING * sizes[0]))
    for child in range(1, d):
        joint = _pair_counts(codes[:, parent[child]], codes[:, child])
        log_p += np.log((joint + SMOOTHING) / (row_single[:, parent[child]] + SMOOTHING * sizes[child]))
    return log_p


def _mutual_information(codes: np.ndarray) -> np.ndarray:
    """The columns' pairwise mutual information, ``E[log(p(a, b) / (p(a) p(b)))]`` over the rows."""
    n, d = codes.shape
    row_single = np.stack([np.bincount(codes[:, j])[codes[:, j]] for j in range(d)], axis=1).astype(float)
    information = np.zeros((d, d))
    for i in range(d):
        for j in range(i + 1, d):
            joint = _pair_counts(codes[:, i], codes[:, j])
            information[i, j] = information[j, i] = float(
                np.mean(np.log(joint * n / (row_single[:, i] * row_single[:, j])))
            )
    return information


def strata_of(scores: np.ndarray, keys: np.ndarray, groups: np.ndarray | None, n_bins: int = STRATA) -> np.ndarray:
    """Equal-size score bins (ties broken by the record's key), crossed with ``groups``."""
    n = len(scores)
    order = np.lexsort((keys, scores))
    bins = np.empty(n, dtype=np.int64)
    bins[order] = np.minimum(np.arange(n) * n_bins // max(n, 1), n_bins - 1)
    if groups is None:
        return bins
    _, group_codes = np.unique(groups, return_inverse=True)
    return group_codes.astype(np.int64) * n_bins + bins


def stratified_test(
    reproduced: np.ndarray, training: np.ndarray, strata: np.ndarray, *, random_state: int = 0, draws: int = DRAWS
) -> StratifiedCopyTest:
    """The weighted stratified exact test of ``reproduced`` training records beyond chance.

    ``reproduced``, ``training`` and ``strata`` are per record (found once in the real rows):
    whether the release reproduces it, whether it is a training record, and its stratum (a
    function of the pooled real rows only).
    """
    reproduced, training = reproduced.astype(bool), training.astype(bool)
    k = int(strata.max()) + 1 if len(strata) else 0
    n_s = np.bincount(strata, minlength=k).astype(float)
    t_s = np.bincount(strata, training, minlength=k)
    m_s = np.bincount(strata, reproduced, minlength=k)
    o_s = np.bincount(strata, reproduced & training, minlength=k)
    p_value, statistic, null_sd, weights = counts_test(t_s, n_s - t_s, m_s, o_s, random_state=random_state, draws=draws)
    return StratifiedCopyTest(
        p_value=p_value,
        statistic=statistic,
        null_sd=null_sd,
        n_strata=int((n_s > 0).sum()),
        training_records=t_s.astype(int).tolist(),
        holdout_records=(n_s - t_s).astype(int).tolist(),
        reproduced=m_s.astype(int).tolist(),
        training_reproduced=o_s.astype(int).tolist(),
        weights=weights.tolist(),
    )


def counts_test(
    t_s: np.ndarray, h_s: np.ndarray, m_s: np.ndarray, o_s: np.ndarray, *, random_state: int = 0, draws: int = DRAWS
) -> tuple[float, float, float, np.ndarray]:
    """:func:`stratified_test` on the per-stratum counts: training and holdout records, records
    reproduced, training records reproduced. Returns the p-value, the statistic, its null
    standard deviation and the strata's weights."""
    t_s, h_s = np.asarray(t_s, dtype=float), np.asarray(h_s, dtype=float)
    m_s, o_s = np.asarray(m_s, dtype=float), np.asarray(o_s, dtype=float)
    n_s = t_s + h_s
    decidable = (t_s > 0) & (h_s > 0) & (m_s > 0)
    safe_n = np.maximum(n_s, 1)
    expected = m_s * t_s / safe_n
    variance = np.where(decidable, m_s * (t_s / safe_n) * (h_s / safe_n) * (n_s - m_s) / np.maximum(n_s - 1, 1), 0.0)
    rate = (m_s + 0.5) / (n_s + 1)
    to_share = safe_n / np.maximum(t_s * h_s, 1) / (1 - rate)  # excess count -> excess share of records
    target = TARGET_SHARE * (1 - TARGET_SHARE) / np.maximum(t_s, 1)
    weights = np.where(decidable, to_share / (variance * to_share**2 + target), 0.0)
    statistic = float(weights @ (o_s - expected))
    null_sd = float(np.sqrt(weights**2 @ variance))
    if not decidable.any():
        p_value = 1.0
    else:
        rng = np.random.default_rng(random_state)
        live = np.flatnonzero(decidable)
        null = rng.hypergeometric(
            t_s[live].astype(np.int64), h_s[live].astype(np.int64), m_s[live].astype(np.int64), size=(draws, len(live))
        )
        simulated = (null - expected[live]) @ weights[live]
        p_value = float((1 + np.count_nonzero(simulated >= statistic - 1e-9 * max(1.0, abs(statistic)))) / (1 + draws))
    return p_value, statistic, null_sd, weights


def record_strata(
    pooled: pd.DataFrame, columns: list[str], pooled_keys: np.ndarray, records: np.ndarray, label: str | None
) -> np.ndarray:
    """Strata of the records at positions ``records`` of the pooled real rows ``pooled``: bins of
    their log-probability under the tree fitted on every pooled row, crossed with the label."""
    scores = tree_log_probability(value_codes(pooled, columns), pooled_keys)[records]
    groups = pooled[label].astype(str).to_numpy()[records] if label is not None else None
    return strata_of(scores, pooled_keys[records], groups)
