"""Anonymeter-style attacks: singling out, linkability and inference (Giomi et al., "A Unified
Framework for Quantifying Privacy Risk in Synthetic Data", PoPETs 2023, Sec. 3-4).

Each attack uses only the synthetic rows, then is scored on training targets (the "main" attack)
and on as many holdout targets (the "control" attack, rows the generator never saw); a random
guesser gives the baseline. The risk is ``(main - control) / (1 - control)`` with a 95 % interval
from the Wilson intervals of both rates (Sec. 4, Eq. 1-2; :class:`~audits.metrics.base.AttackRates`).
The ``anonymeter`` package itself cannot be installed next to our NumPy, so the attacks are
re-implemented here with its defaults where they matter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from audits.metrics.base import AttackRates, CheckResult, judge, skipped
from audits.metrics.context import AuditData, SyntheticRows
from audits.metrics.encoding import category_values, numeric_values

Thresholds = dict[str, float | None] | None
Query = tuple[tuple[int, str, float], ...]  # (column position, operator, value) conjunction


@dataclass
class Targets:
    """Equal-sized training (main) and holdout (control) target rows, by position."""

    train: np.ndarray
    holdout: np.ndarray

    @classmethod
    def draw(cls, data: AuditData, n_targets: int, random_state: int) -> Targets:
        rng = np.random.default_rng(random_state)
        m = int(min(n_targets, len(data.train), len(data.holdout)))
        return cls(
            np.sort(rng.choice(len(data.train), m, replace=False)),
            np.sort(rng.choice(len(data.holdout), m, replace=False)),
        )


def attack_checks(
    data: AuditData,
    synthetic: SyntheticRows,
    targets: Targets,
    *,
    random_state: int,
    thresholds: Thresholds = None,
    n_attacks: int = 500,
) -> list[CheckResult]:
    """Singling-out, linkability and inference risks of ``synthetic``."""
    return [
        singling_out_check(
            data, synthetic, targets, n_attacks=n_attacks, random_state=random_state, thresholds=thresholds
        ),
        linkability_check(data, synthetic, targets, random_state=random_state, thresholds=thresholds),
        inference_check(data, synthetic, targets, random_state=random_state, thresholds=thresholds),
    ]


def _risk_result(name: str, rates: AttackRates, thresholds: Thresholds, extra: dict | None = None) -> CheckResult:
    risk, low, high = rates.risk()
    baseline, _ = rates.rate(rates.n_baseline_success, rates.n_baseline)
    details = {**rates.as_details(), **(extra or {})}
    return judge(
        name,
        risk,
        thresholds=thresholds,
        baseline=0.0,
        ci=(low, high),
        details={**details, "random_guess_rate": baseline},
        chart={
            "kind": "bars",
            "labels": ["main (train)", "control (holdout)", "baseline"],
            "values": [details["main_rate"], details["control_rate"], details["baseline_rate"]],
            "low": [details["main_ci"][0], details["control_ci"][0], details["baseline_ci"][0]],
            "high": [details["main_ci"][1], details["control_ci"][1], details["baseline_ci"][1]],
        },
    )


# ---------------------------------------------------------------------- singling out


class _Columns:
    """Columns as arrays: numeric as float64, categorical as integer codes of one vocabulary."""

    def __init__(self, frames: list[pd.DataFrame], schema_numeric: tuple[str, ...], columns: list[str]) -> None:
        self.columns = columns
        self.numeric = [c in schema_numeric for c in columns]
        self.arrays: list[list[np.ndarray]] = [[] for _ in frames]
        for column, is_numeric in zip(columns, self.numeric, strict=True):
            if is_numeric:
                for arrays, frame in zip(self.arrays, frames, strict=True):
                    arrays.append(numeric_values(frame[column]))
                continue
            values = [category_values(frame[column]) for frame in frames]
            codes = pd.factorize(np.concatenate(values))[0].astype(float)
            start = 0
            for arrays, column_values in zip(self.arrays, values, strict=True):
                arrays.append(codes[start : start + len(column_values)])
                start += len(column_values)


def _count(arrays: list[np.ndarray], query: Query, limit: int = 2) -> int:
    """Rows matching a conjunction, counted up to ``limit`` (enough to tell 0, 1 or more)."""
    rows = None
    for position, operator, value in query:
        column = arrays[position] if rows is None else arrays[position][rows]
        if operator == "==":
            match = column == value
        elif operator == "<=":
            match = column <= value
        else:
            match = column >= value
        rows = np.flatnonzero(match) if rows is None else rows[match]
        if len(rows) == 0:
            return 0
    return min(len(rows), limit) if rows is not None else limit


def singling_out_check(
    data: AuditData,
    synthetic: SyntheticRows,
    targets: Targets,
    *,
    n_attacks: int = 500,
    n_columns: int = 4,
    random_state: int = 0,
    thresholds: Thresholds = None,
) -> CheckResult:
    """Univariate and multivariate singling-out predicates built from the synthetic rows that
    isolate one synthetic row; success when a predicate isolates exactly one target
    (Giomi et al. 2023, Sec. 4.1). The reported risk is the larger of the two."""
    columns = list(data.schema.columns)
    table = _Columns(
        [synthetic.frame, data.train.iloc[targets.train], data.holdout.iloc[targets.holdout]],
        data.schema.numeric,
        columns,
    )
    synth, main, control = table.arrays
    rng = np.random.default_rng(random_state)
    results = {}
    for mode in ("univariate", "multivariate"):
        if mode == "univariate":
            queries = _univariate_queries(synth, table.numeric, rng, n_attacks)
        else:
            queries = _multivariate_queries(synth, table.numeric, rng, n_attacks, n_columns)
        baseline = _random_queries(synth, table.numeric, rng, len(queries), 1 if mode == "univariate" else n_columns)
        n = len(queries)
        # the larger of two risks is reported: Bonferroni-adjusted (simultaneous) intervals
        results[mode] = AttackRates(
            n,
            sum(_count(main, q) == 1 for q in queries),
            n,
            sum(_count(control, q) == 1 for q in queries),
            len(baseline),
            sum(_count(main, q) == 1 for q in baseline),
            confidence=1 - 0.05 / 2,
        )
    if all(r.n_main == 0 for r in results.values()):
        return skipped("singling_out_risk", "no predicate singles out a synthetic row", thresholds)
    worst = max(results, key=lambda k: results[k].risk()[0] if results[k].n_main else -1)
    extra = {
        "mode": worst,
        "n_targets": len(targets.train),
        "per_mode": {k: {"risk": list(r.risk()), **r.as_details()} for k, r in results.items()},
    }
    return _risk_result("singling_out_risk", results[worst], thresholds, extra)


def _univariate_queries(
    synth: list[np.ndarray], numeric: list[bool], rng: np.random.Generator, n_attacks: int
) -> list[Query]:
    """One-column predicates isolating one synthetic row: a value held by one row, or (numeric)
    the minimum or maximum when only one row holds it."""
    queries: list[Query] = []
    for position, (column, is_numeric) in enumerate(zip(synth, numeric, strict=True)):
        present = column[~np.isnan(column)]
        if present.size == 0:
            continue
        values, counts = np.unique(present, return_counts=True)
        queries += [((position, "==", float(v)),) for v in values[counts == 1]]
        if is_numeric and counts[0] == 1 and len(values) > 1:
            queries.append(((position, "<=", float(values[0])),))
        if is_numeric and counts[-1] == 1 and len(values) > 1:
            queries.append(((position, ">=", float(values[-1])),))
    queries = list(dict.fromkeys(queries))
    if len(queries) > n_attacks:
        keep = rng.choice(len(queries), n_attacks, replace=False)
        queries = [queries[i] for i in np.sort(keep)]
    return queries


def _multivariate_queries(
    synth: list[np.ndarray],
    numeric: list[bool],
    rng: np.random.Generator,
    n_attacks: int,
    n_columns: int,
    tries_per_attack: int = 10,
) -> list[Query]:
    """Predicates on ``n_columns`` random columns of a random synthetic row (``==`` for
    categories, ``<=``/``>=`` at the row's value for numbers) that isolate that row."""
    n_rows, d = len(synth[0]), len(synth)
    n_tries = tries_per_attack * n_attacks
    k = min(n_columns, d)
    rows = rng.integers(0, n_rows, n_tries)
    chosen = np.sort(np.argsort(rng.random((n_tries, d)), axis=1)[:, :k], axis=1)
    matrix = np.column_stack(synth)
    values = matrix[rows[:, None], chosen]
    is_numeric = np.asarray(numeric)[chosen]
    operators = np.where(is_numeric, 1 + rng.integers(0, 2, (n_tries, k)), 0)
    operators = np.where(np.isnan(values), 3, operators)  # a missing value constrains nothing
    # most candidates match several rows already among the first 512: reject them in bulk
    survivors = np.flatnonzero(_prefix_counts(matrix[:512], chosen, values, operators) <= 1)
    symbols = ("==", "<=", ">=")
    found: dict[Query, None] = {}
    for t in survivors:
        if len(found) >= n_attacks:
            break
        query = tuple(
            (int(c), symbols[o], float(v)) for c, o, v in zip(chosen[t], operators[t], values[t], strict=True) if o != 3
        )
        if query and query not in found and _count(synth, query) == 1:
            found[query] = None
    return list(found)


def _prefix_counts(
    prefix: np.ndarray, columns: np.ndarray, values: np.ndarray, operators: np.ndarray, batch: int = 512
) -> np.ndarray:
    """Rows of ``prefix`` matching each candidate conjunction (vectorised over candidates; a
    missing cell never matches, which only lets more candidates through to the exact count)."""
    lower = np.where((operators == 0) | (operators == 2), values, -np.inf)
    upper = np.where((operators == 0) | (operators == 1), values, np.inf)
    counts = np.empty(len(columns), dtype=np.int64)
    for start in range(0, len(columns), batch):
        stop = min(start + batch, len(columns))
        cells = prefix[:, columns[start:stop]]  # (rows, candidates, k)
        match = (cells >= lower[start:stop][None]) & (cells <= upper[start:stop][None])
        counts[start:stop] = match.all(axis=2).sum(axis=0)
    return counts


def _operator(is_numeric: bool, rng: np.random.Generator) -> str:
    return ("<=", ">=")[int(rng.integers(2))] if is_numeric else "=="


def _random_queries(
    synth: list[np.ndarray], numeric: list[bool], rng: np.random.Generator, n_queries: int, n_columns: int
) -> list[Query]:
    """Baseline predicates: random columns, values drawn uniformly from each column's range of
    distinct synthetic values, with no regard to any row."""
    distinct = [np.unique(c[~np.isnan(c)]) for c in synth]
    usable = [i for i, values in enumerate(distinct) if values.size]
    queries = []
    for _ in range(n_queries):
        chosen = np.sort(rng.choice(usable, min(n_columns, len(usable)), replace=False))
        queries.append(
            tuple(
                (int(c), _operator(numeric[c], rng), float(distinct[c][rng.integers(distinct[c].size)])) for c in chosen
            )
        )
    return queries


# ---------------------------------------------------------------------- linkability


def default_link_columns(data: AuditData) -> tuple[list[str], list[str]]:
    """Two disjoint column sets the attacker holds in two separate datasets: the
    quasi-identifiers with every other remaining column, and the rest."""
    columns = list(data.schema.columns)
    qis = data.schema.with_role("quasi_identifier")
    others = [c for c in columns if c not in qis]
    first = qis + others[0::2] if qis else others[0::2]
    second = [c for c in columns if c not in first]
    return first, second


def linkability_check(
    data: AuditData,
    synthetic: SyntheticRows,
    targets: Targets,
    *,
    link_columns: tuple[list[str], list[str]] | None = None,
    random_state: int = 0,
    thresholds: Thresholds = None,
) -> CheckResult:
    """Link each target's two column sets through their nearest synthetic rows; success when
    both halves point at the same synthetic row (Giomi et al. 2023, Sec. 4.2)."""
    first, second = link_columns or default_link_columns(data)
    if not first or not second:
        return skipped("linkability_risk", "linkability needs two non-empty column sets", thresholds)
    queries = np.vstack([data.train_embedding[targets.train], data.holdout_embedding[targets.holdout]])
    links = []
    for side, columns in enumerate((first, second)):
        _, index = synthetic.nearest(f"linkability:{side}", queries, data.embedder.features(columns))
        links.append(index)
    success = links[0] == links[1]
    m = len(targets.train)
    rng = np.random.default_rng(random_state)
    n_synth = len(synthetic.embedding)
    guesses = rng.integers(0, n_synth, (m, 2))
    rates = AttackRates(
        m, int(success[:m].sum()), m, int(success[m:].sum()), m, int((guesses[:, 0] == guesses[:, 1]).sum())
    )
    return _risk_result(
        "linkability_risk", rates, thresholds, {"columns_a": first, "columns_b": second, "n_targets": m}
    )


# ---------------------------------------------------------------------- inference


def inference_check(
    data: AuditData,
    synthetic: SyntheticRows,
    targets: Targets,
    *,
    secrets: list[str] | None = None,
    tolerance: float = 0.05,
    random_state: int = 0,
    thresholds: Thresholds = None,
) -> CheckResult:
    """Guess each secret column from the nearest synthetic row on all other columns (Giomi et al.
    2023, Sec. 4.3); numeric guesses succeed within ``tolerance`` relative error. The reported
    risk is that of the most exposed secret."""
    schema = data.schema
    secrets = secrets or schema.with_role("sensitive") or ([schema.label] if schema.label else [])
    if not secrets:
        return skipped("inference_risk", "no sensitive or label column to infer", thresholds)
    queries = np.vstack([data.train_embedding[targets.train], data.holdout_embedding[targets.holdout]])
    truth_frame = pd.concat([data.train.iloc[targets.train], data.holdout.iloc[targets.holdout]])
    rng = np.random.default_rng(random_state)
    m, per_secret = len(targets.train), {}
    for secret in secrets:
        features = data.embedder.features([c for c in schema.columns if c != secret])
        _, index = synthetic.nearest(f"inference:{secret}", queries, features)
        guess_column, truth = synthetic.frame[secret], truth_frame[secret]
        correct = _correct(guess_column.iloc[index], truth, secret in schema.numeric, tolerance)
        random_guess = guess_column.iloc[rng.integers(0, len(guess_column), m)]
        lucky = _correct(random_guess, truth.iloc[:m], secret in schema.numeric, tolerance)
        # the most exposed of several secrets is reported: Bonferroni-adjusted intervals
        per_secret[secret] = AttackRates(
            m,
            int(correct[:m].sum()),
            m,
            int(correct[m:].sum()),
            m,
            int(lucky.sum()),
            confidence=1 - 0.05 / len(secrets),
        )
    worst = max(per_secret, key=lambda s: (per_secret[s].risk()[0], per_secret[s].risk()[1]))
    extra = {
        "secret": worst,
        "n_targets": m,
        "per_secret": {s: {"risk": list(r.risk()), **r.as_details()} for s, r in per_secret.items()},
    }
    return _risk_result("inference_risk", per_secret[worst], thresholds, extra)


def _correct(guess: pd.Series, truth: pd.Series, is_numeric: bool, tolerance: float) -> np.ndarray:
    if is_numeric:
        g, t = numeric_values(guess), numeric_values(truth)
        return np.abs(g - t) <= tolerance * np.abs(t)
    return category_values(guess) == category_values(truth)
