"""What fidelity a clean release can have at a given n and ε, before any data is read, and the
limits the audit holds a release to.

A release's distance from its training rows has three parts: sampling (the release is a finite
sample: a real holdout of the same size is no closer), the generator's DP noise (which grows as
ε or n shrinks), and what the generator's model cannot represent. Fixed thresholds judged all
three together, so a clean ε = 1 release of a few-thousand-row table failed them. Here:

- the *sampling floor* is measured on real rows by the audit: the holdout's own distance from
  the training rows, rescaled to the synthetic size (:func:`sampling_floor`);
- the *noise error* is predicted from public inputs only: the generator is fitted, at the
  requested ε, δ and n, on a surrogate table drawn uniformly from the schema's public domain
  (declared categories and bounds), and its output is compared with the surrogate as the audit
  would; the part a perfect generator (a fresh surrogate sample of the same size) also shows is
  sampling and is taken out (:func:`predict_noise`);
- the limit of a lower-is-better fidelity check is the larger of the purpose's threshold and
  :data:`TOLERANCE` times the expected clean value ``sqrt(floor^2 + noise^2)``, but never more
  than :data:`MAX_RELAXATION` times the purpose's threshold for the TVD checks; the association
  check is bounded instead by what independent columns score, and not decided when the
  tolerated value reaches it (:func:`fidelity_limit`). A release
  passes when its error is what sampling and the noise explain, or within the purpose's
  threshold; a broken generator (or one that ignores the data) is several times above both.
  When the noise alone is expected to exceed the most the threshold can be relaxed, a clean
  release will fail, and the request form says so before anything is spent.

The purpose's threshold is then the modelling error it tolerates on top of what DP and
sampling cost; the request form shows when the expected value already exceeds it (the release
will pass but be noisier than the purpose's target).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from audits.metrics.base import CheckResult
from audits.metrics.encoding import TableSchema, category_values
from audits.metrics.fidelity import fidelity_checks
from audits.metrics.limits import CALIBRATED_CHECKS, TOLERANCE, FidelityLimit, fidelity_limit, sampling_floor
from core.schema import DATETIME_RESOLUTIONS

ASSUMED_CATEGORIES = 10  # undeclared category lists: the surrogate's guess, stated with the result
SURROGATE_SPAN = (0.0, 1000.0)
# latent correlation of neighbouring surrogate columns (a public assumption, like the two above)
ASSUMED_DEPENDENCE = 0.7  # undeclared numeric bounds (the checks use quantile bins: scale-free)
CELL_SAMPLE_FACTOR, CELL_SAMPLE_CAP = 10, 200_000  # rows sampled to measure the label cells' noise

FitSample = Callable[[pd.DataFrame, dict[str, Any], int, int], pd.DataFrame]


@dataclass
class NoisePrediction:
    """Expected values of the calibrated checks on a surrogate: the generator's output
    (``generator``), a perfect generator's (``sampling``) and the noise part (``noise``)."""

    n_rows: int
    n_synthetic: int
    generator: dict[str, float]
    sampling: dict[str, float]
    noise: dict[str, float]
    assumptions: list[str] = field(default_factory=list)
    # per protected column: noise per cell of the (label, column) table, in training rows
    cell_noise: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "n_synthetic": self.n_synthetic,
            "generator": self.generator,
            "sampling": self.sampling,
            "noise": self.noise,
            "assumptions": self.assumptions,
            "cell_noise": self.cell_noise,
        }


def surrogate_frame(schema: dict[str, Any], n_rows: int, rng: np.random.Generator) -> tuple[pd.DataFrame, list[str]]:
    """``n_rows`` rows drawn from each column's public domain (uniform over declared categories
    and bounds), dependent along the schema's column order, and the assumptions made where the
    schema declares none.

    The columns share a latent Gaussian chain ``z_j = r z_(j-1) + sqrt(1 - r^2) e_j`` with
    ``r =`` :data:`ASSUMED_DEPENDENCE`, and each column is its marginal's quantile of
    ``Phi(z_j)``. Real tables have dependence, and a DP generator loses the part its noise hides
    (its estimates shrink toward independence): on independent surrogate columns there is none to
    lose, so the predicted association error was the sampling error alone (0.01 where a clean
    ε = 1 release of 353 rows lost 0.24). A chain is what a tree model can represent, so what the
    generator loses on it is noise, not the model's limits.
    """
    columns, assumptions = {}, []
    uniforms = _chain_uniforms(n_rows, len(schema["columns"]), rng)
    for index, column in enumerate(schema["columns"]):
        name, kind, u = column["name"], column.get("type", "categorical"), uniforms[:, index]
        if kind == "boolean":
            columns[name] = u < 0.5
        elif kind == "categorical":
            categories = column.get("categories")
            if categories:
                codes = np.minimum((u * len(categories)).astype(int), len(categories) - 1)
                columns[name] = np.asarray(categories, dtype=object)[codes]
                continue
            # real category frequencies are skewed; Zipf's 1/rank is the usual first guess
            weights = 1 / np.arange(1, ASSUMED_CATEGORIES + 1)
            labels = np.asarray([f"category {i}" for i in range(ASSUMED_CATEGORIES)], dtype=object)
            codes = np.minimum(np.searchsorted(np.cumsum(weights / weights.sum()), u), ASSUMED_CATEGORIES - 1)
            columns[name] = labels[codes]
            assumptions.append(
                f"{name}: no declared categories, assumed {ASSUMED_CATEGORIES} with Zipf (1/rank) frequencies"
            )
        else:
            columns[name] = _numeric(column, u, assumptions)
    return pd.DataFrame(columns), assumptions


def _chain_uniforms(n_rows: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_rows, d)`` uniforms, each column ``Phi`` of a Gaussian chain with correlation
    :data:`ASSUMED_DEPENDENCE` between neighbours."""
    r = ASSUMED_DEPENDENCE
    noise = rng.standard_normal((n_rows, max(d, 1)))
    latent = np.empty_like(noise)
    latent[:, 0] = noise[:, 0]
    for j in range(1, latent.shape[1]):
        latent[:, j] = r * latent[:, j - 1] + math.sqrt(1 - r * r) * noise[:, j]
    return np.clip(norm.cdf(latent), 0.0, 1.0 - 1e-12)


def _numeric(column: dict[str, Any], u: np.ndarray, assumptions: list[str]) -> pd.Series:
    """The column's values on its declared domain: inside its bounds, and on its declared grid
    (a float's ``step``, a datetime's ``resolution`` and ``calendar``), which the generators
    refuse source values off (a surrogate off the grid previewed nothing)."""
    name, kind = column["name"], column["type"]
    if kind == "datetime":
        low = pd.Timestamp(column.get("min", "2000-01-01")).value / 1e9
        high = pd.Timestamp(column.get("max", "2020-12-31")).value / 1e9
        unit = DATETIME_RESOLUTIONS[column.get("resolution", "second")]
        seconds = np.floor((low + u * (high - low)) / unit).astype("int64") * unit
        if column.get("calendar") == "weekdays":  # a weekend day moves to the Friday before (day resolution)
            days = np.busday_offset((seconds // 86400).astype("datetime64[D]"), 0, roll="backward")
            seconds = days.astype("int64") * 86400
            seconds = np.where(seconds < low, seconds + 3 * 86400, seconds)  # that Friday before the start: Monday
        return pd.Series(pd.to_datetime(seconds, unit="s"))
    low, high = column.get("min"), column.get("max")
    if low is None or high is None:
        assumptions.append(f"{name}: no declared bounds, shape assumed uniform")
        low, high = SURROGATE_SPAN if low is None and high is None else (low or 0.0, high or (low or 0.0) + 1000.0)
    values = float(low) + u * (float(high) - float(low))
    if kind == "integer":
        return pd.Series(np.round(values).astype("int64"))
    step = column.get("step")
    if step:  # whole multiples of the step inside the bounds
        first, last = math.ceil(float(low) / step), math.floor(float(high) / step)
        return pd.Series(np.clip(np.rint(values / step), first, max(first, last)) * step)
    return pd.Series(values)


def predict_noise(
    schema: dict[str, Any],
    n_rows: int,
    n_synthetic: int,
    fit_sample: FitSample,
    *,
    repeats: int = 2,
    random_state: int = 0,
) -> NoisePrediction:
    """Expected fidelity error of the generator at ``n_rows`` training rows and ``n_synthetic``
    output rows, from the public domain only.

    Parameters
    ----------
    schema : dict
        The dataset's declared schema (types, roles, categories, bounds).
    n_rows, n_synthetic : int
        Training rows the generator will see and rows it will release.
    fit_sample : callable
        ``fit_sample(frame, schema, n_synthetic, seed)`` fits the requested generator at the
        requested (ε, δ) on ``frame`` and returns ``n_synthetic`` rows.
    repeats : int
        Surrogate fits averaged.
    """
    rng = np.random.default_rng(random_state)
    table = TableSchema.from_dict(schema)
    generated: dict[str, list[float]] = {c: [] for c in CALIBRATED_CHECKS}
    sampled: dict[str, list[float]] = {c: [] for c in CALIBRATED_CHECKS}
    assumptions: list[str] = []
    cells: dict[str, list[np.ndarray]] = {}
    for repeat in range(repeats):
        train, assumptions = surrogate_frame(schema, n_rows, rng)
        perfect, _ = surrogate_frame(schema, n_synthetic, rng)
        # a larger sample of the same fit measures the (label, protected) cells' noise with little
        # sampling error left to remove; the fidelity checks read n_synthetic of its rows
        n_cells = max(n_synthetic, min(CELL_SAMPLE_FACTOR * n_rows, CELL_SAMPLE_CAP))
        large = fit_sample(train, schema, n_cells, int(rng.integers(2**31)) + repeat)
        pick = np.random.default_rng(repeat).choice(len(large), min(n_synthetic, len(large)), replace=False)
        output = large.iloc[np.sort(pick)].reset_index(drop=True)
        for result in fidelity_checks(train, output, table):
            generated[result.name].append(_measured(result))
        for result in fidelity_checks(train, perfect, table):
            sampled[result.name].append(_measured(result))
        for column, excess in label_cell_errors(train, large, table).items():
            cells.setdefault(column, []).append(excess)
    mean = {c: float(np.mean(v)) for c, v in generated.items()}
    floor = {c: float(np.mean(v)) for c, v in sampled.items()}
    noise = {c: math.sqrt(max(mean[c] ** 2 - floor[c] ** 2, 0.0)) for c in CALIBRATED_CHECKS}
    cell_noise = {c: math.sqrt(max(float(np.mean(np.concatenate(v))), 0.0)) for c, v in cells.items()}
    return NoisePrediction(n_rows, n_synthetic, mean, floor, noise, sorted(set(assumptions)), cell_noise)


def label_cell_errors(train: pd.DataFrame, output: pd.DataFrame, table: TableSchema) -> dict[str, np.ndarray]:
    """Per protected column, each cell of the (label, column) table: the squared error of the
    output's count (scaled to the training size ``n``) beyond what sampling the output's ``m``
    rows explains, ``(c_out n / m - c)^2 - n^2 q (1 - q) / m`` with ``q = c / n``. Its mean is
    the generator's noise variance per cell, in training rows (what the bias checks need: with
    the real group sizes and rates it gives the noise of each group's favourable rate)."""
    label = table.label
    protected = table.with_role("protected")
    if label is None or not protected or len(output) == 0 or len(train) == 0:
        return {}
    n, m = len(train), len(output)
    out = {}
    for column in protected:
        real = pd.crosstab(category_values(train[label]), category_values(train[column]))
        fake = pd.crosstab(category_values(output[label]), category_values(output[column]))
        real, fake = real.align(fake, fill_value=0)
        c, c_out = real.to_numpy(float).ravel(), fake.to_numpy(float).ravel()
        q = c / n
        out[column] = (c_out * n / m - c) ** 2 - n * n * q * (1 - q) / m
    return out


__all__ = [
    "CALIBRATED_CHECKS",
    "TOLERANCE",
    "FidelityLimit",
    "NoisePrediction",
    "fidelity_limit",
    "label_cell_errors",
    "predict_noise",
    "sampling_floor",
    "surrogate_frame",
]


def _measured(result: CheckResult) -> float:
    """A fidelity check's value (it always measures on a surrogate table; a skipped check is a bug)."""
    if result.value is None:
        raise ValueError(f"fidelity check {result.name} measured nothing on a surrogate table")
    return float(result.value)
