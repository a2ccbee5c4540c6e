"""Membership inference: can an attacker holding the synthetic rows tell training rows (members)
from holdout rows (non-members)?

Two attacks score each candidate ``x``:

- *DOMIAS* (van Breugel et al., AISTATS 2023, Sec. 3, Eq. 2): ``p_synth(x) / p_reference(x)``,
  with the holdout as the reference population. Densities are k-nearest-neighbour estimates
  (Loftsgaarden & Quesenberry 1965), ``p(x) ~ k / (n r_k(x)^d)``, in the Gower-like embedding of
  :mod:`audits.metrics.encoding`; the log-ratio ranks candidates by
  ``log(r_ref + c) - log(r_synth + c)`` whatever the dimension ``d`` (``c`` keeps exact matches
  finite). The reference density is *cross-fitted*: the holdout is split in two folds and each
  candidate is scored against the fold it is not in, so non-members never count in their own
  reference density (which would fake a membership signal).
- *Distance* (the DCR attack; e.g. Chen et al., GAN-Leaks, CCS 2020, Sec. 4.1): ``-r_synth(x)``.

Members are a random sample of training rows, non-members as many holdout rows. Each attack
reports ROC AUC with a DeLong 95 % interval (DeLong et al. 1988; fast form of Sun & Xu 2014) and
the TPR at 1 % and 0.1 % FPR (Carlini et al., "Membership Inference Attacks From First
Principles", S&P 2022, Sec. 3: low-FPR TPR is what exposes a few memorised records), on all
candidates and on the outlying 10 % (lowest reference density), where DOMIAS is aimed.

*What DP allows.* A release that is (ε, δ)-DP bounds every membership attack: at any
threshold, TPR ≤ e^ε · FPR + δ (Kairouz, Oh & Viswanath 2015, Thm. 2.1; averaged over members
drawn at random from the same pool as the non-members). :func:`dp_ceiling_check` holds each
attack's TPR at 1 % and 0.1 % FPR against that ceiling, both sides taken conservatively (the
Clopper–Pearson lower limit of the TPR against the ceiling at the upper limit of the FPR the
threshold actually had), and fails the release as "DP claim contradicted", naming the attack,
when the TPR is significantly above it. That check takes no purpose threshold: it tests the
claim, not a policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm, rankdata
from sklearn.metrics import roc_curve

from audits.metrics.base import CheckResult, judge
from audits.metrics.context import AuditData, SyntheticRows
from audits.metrics.encoding import nearest_neighbours
from audits.metrics.lowfpr import tpr_at_fpr
from synth_engine.assurance.bounds import clopper_pearson_lower, clopper_pearson_upper

Thresholds = dict[str, float | None] | None
SMOOTHING = 0.05  # in Gower units: a 5 % rank difference on one numeric column


@dataclass
class Candidates:
    """Members (training rows) and non-members (holdout rows) with their cross-fitted
    reference-density distances, which do not depend on the synthetic rows."""

    members: np.ndarray
    non_members: np.ndarray
    reference_distance: np.ndarray  # members first, then non-members

    @classmethod
    def draw(cls, data: AuditData, n_candidates: int, random_state: int) -> Candidates:
        rng = np.random.default_rng(random_state)
        m = int(min(n_candidates, len(data.train), len(data.holdout)))
        members = np.sort(rng.choice(len(data.train), m, replace=False))
        non_members = np.sort(rng.choice(len(data.holdout), m, replace=False))
        fold = rng.permutation(len(data.holdout)) % 2
        member_fold = rng.permutation(m) % 2
        distance = np.empty(2 * m)
        for f in (0, 1):
            reference = data.holdout_embedding[fold != f]
            pick_m = np.flatnonzero(member_fold == f)
            pick_n = np.flatnonzero(fold[non_members] == f)
            queries = np.vstack([data.train_embedding[members[pick_m]], data.holdout_embedding[non_members[pick_n]]])
            d, _ = nearest_neighbours(queries, reference)
            distance[pick_m] = d[: len(pick_m), 0]
            distance[m + pick_n] = d[len(pick_m) :, 0]
        return cls(members, non_members, distance)


def membership_checks(
    data: AuditData,
    synthetic: SyntheticRows,
    candidates: Candidates,
    *,
    thresholds: Thresholds = None,
    outlier_share: float = 0.10,
    privacy_claim: tuple[float, float] | None = None,
) -> list[CheckResult]:
    """DOMIAS and distance attacks: AUC and TPR-at-1 %-FPR checks, the outlier AUC, and (with a
    ``privacy_claim`` (ε, δ)) each attack's low-FPR TPR against the DP ceiling."""
    queries = np.vstack([data.train_embedding[candidates.members], data.holdout_embedding[candidates.non_members]])
    synth_distance, _ = synthetic.nearest("membership", queries)
    m = len(candidates.members)
    truth = np.r_[np.ones(m, dtype=int), np.zeros(m, dtype=int)]
    scores = {
        "domias": np.log(candidates.reference_distance + SMOOTHING) - np.log(synth_distance + SMOOTHING),
        "distance": -synth_distance,
    }
    outlying = candidates.reference_distance >= np.quantile(candidates.reference_distance, 1 - outlier_share)
    results, outlier_summaries = [], {}
    for attack, score in scores.items():
        summary = attack_summary(truth, score)
        results += _attack_results(attack, summary, thresholds)
        outlier_summaries[attack] = attack_summary(truth[outlying], score[outlying])
    worst = max(outlier_summaries, key=lambda a: outlier_summaries[a]["auc"])
    chosen = outlier_summaries[worst]
    results.append(
        judge(
            "membership_outlier_auc",
            chosen["auc"],
            thresholds=thresholds,
            baseline=0.5,
            ci=(chosen["auc_ci_low"], chosen["auc_ci_high"]),
            details={
                "attack": worst,
                "outlier_share": outlier_share,
                "n_members": int(truth[outlying].sum()),
                "n_non_members": int((1 - truth[outlying]).sum()),
                "per_attack": {a: _without_roc(s) for a, s in outlier_summaries.items()},
            },
            chart={"kind": "roc", "fpr": chosen["roc_fpr"], "tpr": chosen["roc_tpr"]},
        )
    )
    if privacy_claim is not None:
        results.append(dp_ceiling_check(truth, scores, privacy_claim))
    return results


CEILING_LEVELS = (("1pct", 0.01), ("0p1pct", 0.001))
CEILING_CONFIDENCE = 0.95


def dp_ceiling_check(
    truth: np.ndarray, scores: dict[str, np.ndarray], privacy_claim: tuple[float, float] | None
) -> CheckResult:
    """Each attack's TPR at 1 % and 0.1 % FPR beside the ceiling e^ε·FPR + δ (module docstring).

    The value is the largest margin ``TPR_low − ceiling(FPR_high)`` over attacks and levels
    (Clopper–Pearson limits, the error shared by Bonferroni over every comparison); above 0
    the DP claim is contradicted. Skipped when there is no finite claim.
    """
    if privacy_claim is None or not np.isfinite(privacy_claim[0]):
        return judge(
            "membership_dp_ceiling", None, skipped_reason="no differential-privacy claim (non-private or external data)"
        )
    epsilon, delta = privacy_claim
    alpha = (1 - CEILING_CONFIDENCE) / (2 * len(scores) * len(CEILING_LEVELS))
    rows = {attack: _ceiling_rows(truth, score, epsilon, delta, alpha) for attack, score in scores.items()}
    margins = [row["margin"] for levels in rows.values() for row in levels.values()]
    contradicted = [
        f"{attack} at {row['fpr_level']:.1%} FPR"
        for attack, levels in rows.items()
        for row in levels.values()
        if row["margin"] > 0
    ]
    verdict = "DP claim contradicted by " + ", ".join(contradicted) if contradicted else "consistent with the DP claim"
    details = {"epsilon": epsilon, "delta": delta, "attacks": rows, "contradicted_by": contradicted, "verdict": verdict}
    return judge("membership_dp_ceiling", float(max(margins)), details=details)


def _ceiling_rows(truth: np.ndarray, score: np.ndarray, epsilon: float, delta: float, alpha: float) -> dict:
    members, non_members = score[truth == 1], score[truth == 0]
    ordered = np.sort(non_members)[::-1]
    rows = {}
    for label, level in CEILING_LEVELS:
        allowed = int(np.floor(level * len(non_members)))  # false positives the threshold may admit
        threshold = ordered[allowed] if allowed < len(ordered) else -np.inf
        false_positives = int((non_members > threshold).sum())
        true_positives = int((members > threshold).sum())
        fpr_high = clopper_pearson_upper(false_positives, len(non_members), alpha)
        tpr_low = clopper_pearson_lower(true_positives, len(members), alpha)
        ceiling = min(1.0, float(np.exp(epsilon)) * fpr_high + delta)
        rows[label] = {
            "fpr_level": level,
            "fpr": false_positives / len(non_members),
            "fpr_high": fpr_high,
            "tpr": true_positives / len(members),
            "tpr_low": tpr_low,
            "ceiling": ceiling,
            "ceiling_at_level": min(1.0, float(np.exp(epsilon)) * level + delta),
            "margin": tpr_low - ceiling,
        }
    return rows


def _attack_results(attack: str, summary: dict, thresholds: Thresholds) -> list[CheckResult]:
    details = {"attack": attack, **_without_roc(summary)}
    chart = {"kind": "roc", "fpr": summary["roc_fpr"], "tpr": summary["roc_tpr"]}
    return [
        judge(
            f"membership_{attack}_auc",
            summary["auc"],
            thresholds=thresholds,
            baseline=0.5,
            ci=(summary["auc_ci_low"], summary["auc_ci_high"]),
            details=details,
            chart=chart,
        ),
        judge(
            f"membership_{attack}_tpr",
            summary["tpr_at_1pct_fpr"],
            thresholds=thresholds,
            baseline=0.01,
            ci=tuple(summary["tpr_at_1pct_fpr_ci"]),
            details=details,
            chart=chart,
        ),
    ]


def _without_roc(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if not k.startswith("roc_")}


def attack_summary(truth: np.ndarray, scores: np.ndarray) -> dict:
    """AUC with DeLong interval, TPR at 1 % and 0.1 % FPR (ties split as by random tie-breaking:
    linear interpolation on the ROC curve) with an interval that includes the threshold's own
    noise (:func:`audits.metrics.lowfpr.tpr_at_fpr`), and ~50 ROC points for a chart."""
    n_members = int(truth.sum())
    auc, low, high = delong_auc(scores[truth == 1], scores[truth == 0])
    fpr, tpr, _ = roc_curve(truth, scores, drop_intermediate=False)
    rates: dict[str, float | list[float] | dict] = {}
    for label, level in (("1pct", 0.01), ("0p1pct", 0.001)):
        rates[f"tpr_at_{label}_fpr"] = float(np.interp(level, fpr, tpr))
        at = tpr_at_fpr(scores[truth == 1], scores[truth == 0], level)
        rates[f"tpr_at_{label}_fpr_ci"] = [at.low, at.high]
        rates[f"tpr_at_{label}_fpr_threshold"] = {"members_above": at.hits, "non_members_above": at.admitted}
    grid = np.unique(np.r_[np.linspace(0, 1, 41), np.geomspace(1e-3, 1, 10)])
    return {
        "auc": auc,
        "auc_ci_low": low,
        "auc_ci_high": high,
        **rates,
        "n_members": n_members,
        "n_non_members": int(len(truth) - n_members),
        "roc_fpr": grid.round(4).tolist(),
        "roc_tpr": np.interp(grid, fpr, tpr).round(4).tolist(),
    }


def delong_auc(positive: np.ndarray, negative: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """ROC AUC of scores ``positive`` vs ``negative`` with DeLong's interval.

    Parameters
    ----------
    positive, negative : ndarray, shape (n1,) and (n0,)
        Attack scores of members and non-members (higher = more likely a member).

    Returns
    -------
    (auc, low, high) : tuple of float
        Ties count one half (Mann-Whitney); the interval is clipped to [0, 1].
    """
    n1, n0 = len(positive), len(negative)
    if n1 == 0 or n0 == 0:
        return 0.5, 0.0, 1.0
    pooled = rankdata(np.r_[positive, negative])
    rank_pos, rank_neg = pooled[:n1], pooled[n1:]
    auc = (rank_pos.sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    v10 = (rank_pos - rankdata(positive)) / n0
    v01 = 1 - (rank_neg - rankdata(negative)) / n1
    variance = (np.var(v10, ddof=1) / n1 if n1 > 1 else 0) + (np.var(v01, ddof=1) / n0 if n0 > 1 else 0)
    half = float(norm.ppf(0.5 + confidence / 2)) * float(np.sqrt(max(variance, 0.0)))
    return float(auc), float(max(0.0, auc - half)), float(min(1.0, auc + half))
