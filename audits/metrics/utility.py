"""Utility: train on synthetic, test on real (TSTR) against train on real, test on real (TRTR).

Both models are ``HistGradientBoostingClassifier`` with default parameters (``random_state``
fixes its early-stopping split), categorical columns ordinal-encoded with one vocabulary shared by
real and synthetic rows, scored on the holdout (Esteban, Hyland & Ratsch 2017, Sec. 4.1 introduce
TSTR). Reported: ROC AUC, accuracy, macro-F1 and minority-class recall, and each TSTR/TRTR ratio;
the gating check is the AUC ratio (higher is better, 1 = as useful as the real data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, recall_score, roc_auc_score

from audits.metrics.base import CheckResult, judge, skipped
from audits.metrics.encoding import TableSchema, category_values, lookup_codes
from core.schema import numeric_values


@dataclass
class UtilityModels:
    """Holdout predictions of the TRTR and TSTR models (reused by the bias checks)."""

    label: str
    favourable: str
    holdout_truth: np.ndarray  # 1 = favourable class
    trtr_predictions: np.ndarray
    tstr_predictions: np.ndarray
    trtr_scores: np.ndarray
    tstr_scores: np.ndarray


def favourable_class(train: pd.DataFrame, schema: TableSchema) -> tuple[str, str] | None:
    """The label column and its favourable value (declared ``favourable``, else the minority
    class of the training rows); ``None`` without a label column."""
    label = schema.label
    if label is None:
        return None
    declared = schema.extras[label].get("favourable")
    if declared is not None:
        return label, str(declared)
    counts = pd.Series(category_values(train[label])).value_counts()
    return label, str(counts.sort_index().idxmin()) if len(counts) else ""


def model_matrix(frames: list[pd.DataFrame], schema: TableSchema, features: list[str]) -> list[np.ndarray]:
    """Feature matrices for ``frames`` with one ordinal vocabulary per categorical column."""
    blocks: list[list[np.ndarray]] = [[] for _ in frames]
    for column in features:
        if column in schema.numeric:
            for block, frame in zip(blocks, frames, strict=True):
                block.append(numeric_values(frame[column]))
            continue
        values = [category_values(frame[column]) for frame in frames]
        vocab = {v: i for i, v in enumerate(sorted(pd.unique(np.concatenate(values)), key=str))}
        for block, column_values in zip(blocks, values, strict=True):
            block.append(lookup_codes(column_values, vocab, missing=-1).astype(float))
    return [np.column_stack(block) for block in blocks]


def fit_models(
    train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: TableSchema, random_state: int
) -> UtilityModels | str:
    """Fit TRTR and TSTR models and predict the holdout; a reason string when impossible."""
    target = favourable_class(train, schema)
    if target is None:
        return "the schema declares no label column"
    label, favourable = target
    features = [c for c in schema.columns if c != label]
    x_train, x_synth, x_hold = model_matrix([train, synthetic, holdout], schema, features)
    y = [(category_values(f[label]) == favourable).astype(int) for f in (train, synthetic, holdout)]
    if len(np.unique(y[0])) < 2 or len(np.unique(y[2])) < 2:
        return "the label has a single class in the training or holdout rows"
    outputs = []
    for x, labels in ((x_train, y[0]), (x_synth, y[1])):
        if len(np.unique(labels)) < 2:  # a synthetic set with one class predicts it everywhere
            constant = float(labels[0]) if len(labels) else 0.0
            outputs.append((np.full(len(x_hold), int(constant)), np.full(len(x_hold), constant)))
            continue
        model = HistGradientBoostingClassifier(random_state=random_state).fit(x, labels)
        outputs.append((model.predict(x_hold), model.predict_proba(x_hold)[:, 1]))
    return UtilityModels(label, favourable, y[2], outputs[0][0], outputs[1][0], outputs[0][1], outputs[1][1])


def half_split_predictions(
    train: pd.DataFrame, holdout: pd.DataFrame, schema: TableSchema, random_state: int, repeats: int = 2
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Holdout predictions of two TRTR models each trained on one of two disjoint random halves of
    the training rows, ``repeats`` times: how much a model of this population moves with the
    sample it was trained on (the bias checks' floor for the equal-opportunity change). A half
    whose label has a single class is left out."""
    target = favourable_class(train, schema)
    if target is None or len(train) < 4:
        return []
    label, favourable = target
    features = [c for c in schema.columns if c != label]
    x_train, x_hold = model_matrix([train, holdout], schema, features)
    y = (category_values(train[label]) == favourable).astype(int)
    rng = np.random.default_rng(random_state)
    out = []
    for _ in range(repeats):
        order = rng.permutation(len(train))
        halves = order[: len(order) // 2], order[len(order) // 2 :]
        if any(len(np.unique(y[h])) < 2 for h in halves):
            continue
        predictions = [
            HistGradientBoostingClassifier(random_state=random_state).fit(x_train[h], y[h]).predict(x_hold)
            for h in halves
        ]
        out.append((predictions[0], predictions[1]))
    return out


def classification_scores(truth: np.ndarray, predictions: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """ROC AUC, accuracy, macro-F1 and recall of the favourable (minority) class."""
    return {
        "roc_auc": float(roc_auc_score(truth, scores)) if len(np.unique(scores)) > 1 else 0.5,
        "accuracy": float(accuracy_score(truth, predictions)),
        "macro_f1": float(f1_score(truth, predictions, average="macro", zero_division=0)),
        "minority_recall": float(recall_score(truth, predictions, zero_division=0)),
    }


def utility_checks(
    models: UtilityModels | str,
    *,
    thresholds: dict[str, float | None] | None = None,
    n_bootstrap: int = 200,
    random_state: int = 0,
) -> list[CheckResult]:
    """The TSTR/TRTR AUC-ratio check with the other ratios in ``details`` and a bootstrap CI."""
    if isinstance(models, str):
        return [skipped("tstr_auc_ratio", models, thresholds)]
    trtr = classification_scores(models.holdout_truth, models.trtr_predictions, models.trtr_scores)
    tstr = classification_scores(models.holdout_truth, models.tstr_predictions, models.tstr_scores)
    ratios = {k: (tstr[k] / trtr[k] if trtr[k] > 0 else float("nan")) for k in trtr}
    ci = _bootstrap_auc_ratio(models, n_bootstrap, random_state)
    return [
        judge(
            "tstr_auc_ratio",
            ratios["roc_auc"],
            thresholds=thresholds,
            baseline=1.0,
            ci=ci,
            details={
                "label": models.label,
                "favourable": models.favourable,
                "trtr": trtr,
                "tstr": tstr,
                "ratios": ratios,
            },
            chart={"kind": "bars", "metrics": list(trtr), "trtr": list(trtr.values()), "tstr": list(tstr.values())},
        )
    ]


def _bootstrap_auc_ratio(models: UtilityModels, n_bootstrap: int, random_state: int) -> tuple[float, float]:
    rng = np.random.default_rng(random_state)
    truth, n = models.holdout_truth, len(models.holdout_truth)
    ratios = []
    for _ in range(n_bootstrap):
        pick = rng.integers(0, n, n)
        if truth[pick].min() == truth[pick].max():
            continue
        trtr = _auc(truth[pick], models.trtr_scores[pick])
        tstr = _auc(truth[pick], models.tstr_scores[pick])
        ratios.append(tstr / trtr if trtr > 0 else np.nan)
    ratios = [r for r in ratios if np.isfinite(r)]
    if not ratios:
        return float("nan"), float("nan")
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def _auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney ROC AUC (ties count one half); fast enough for a bootstrap."""
    ranks = rankdata(scores)
    n1 = int(truth.sum())
    n0 = len(truth) - n1
    return float((ranks[truth == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
