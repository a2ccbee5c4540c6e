"""Gaussian copula generator: empirical marginals joined by a normal-scores correlation.

NOT differentially private: the marginals are the data's own quantiles and category shares,
so ``privacy_spent()`` reports ε = ∞. Use it as a utility baseline or on data that may be
released as is.

Model (Nelsen 2006, *An Introduction to Copulas*, Sec. 2.3 (Sklar's theorem); the normal-scores
estimator of Genest, Ghoudi & Rivest 1995, Sec. 2): every column is mapped to a uniform score
``u`` by its empirical CDF (ties and categories spread uniformly over their probability
interval, missing values in a leading interval), then to ``z = Φ⁻¹(u)``; the correlation of the
``z`` is the copula. Sampling draws ``z ~ N(0, R)`` and inverts each marginal. With a label in the
schema, one copula is fitted per class so that conditional sampling on the label (rebalancing)
is exact; classes too small for a stable correlation share the pooled one.
"""

from __future__ import annotations

import json
import math
import secrets
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from synth_engine.generators.base import Generator, GeneratorError, PrivacySpent
from synth_engine.generators.checks import check_n_rows, check_target_is_numeric, round_counts
from synth_engine.generators.domain import (
    DAY,
    ColumnSpec,
    is_weekend,
    missing_mask,
    numeric_output,
    numeric_values,
    on_grid,
    parse_schema,
    validate_frame,
)

FORMAT_VERSION = 1
ACCOUNTANT = "none (non-private)"


class GaussianCopulaGenerator(Generator):
    """Non-private Gaussian copula with empirical marginals (one copula per label class).

    Parameters
    ----------
    n_quantiles : int
        Quantile levels kept per continuous column (columns with fewer distinct values keep
        their exact distribution).
    per_class : bool
        Fit one copula per class of the schema's label column (needed for conditioning).
    min_class_rows : int
        Classes with fewer rows use the pooled correlation matrix.
    """

    name = "copula"
    is_private = False

    def __init__(self, *, n_quantiles: int = 1001, per_class: bool = True, min_class_rows: int = 50) -> None:
        self.n_quantiles = n_quantiles
        self.per_class = per_class
        self.min_class_rows = min_class_rows

    def get_params(self) -> dict[str, Any]:
        return {"n_quantiles": self.n_quantiles, "per_class": self.per_class, "min_class_rows": self.min_class_rows}

    def check(self, frame: pd.DataFrame, schema: dict[str, Any]) -> list[str]:
        """Validate ``frame`` against ``schema``; return warnings, raise for unusable data."""
        return validate_frame(frame, parse_schema(schema), private=False)

    def plan_privacy(self, epsilon: float, delta: float, n_rows: int | None = None) -> PrivacySpent:
        """Non-private: no guarantee whatever the target (ε = ∞)."""
        check_target_is_numeric(epsilon, delta)
        return _no_privacy()

    def fit(
        self,
        frame: pd.DataFrame,
        schema: dict[str, Any],
        epsilon: float = math.inf,
        delta: float = 0.0,
        random_state: int | None = None,
    ) -> GaussianCopulaGenerator:
        """Fit the marginals and correlations; ``epsilon``/``delta`` are ignored (non-private).

        ``random_state=None`` seeds from :mod:`secrets`; an int makes fit and sampling
        reproducible.
        """
        check_target_is_numeric(epsilon, delta)
        if not isinstance(self.n_quantiles, int) or self.n_quantiles < 2:
            raise GeneratorError("n_quantiles must be an integer >= 2")
        if not isinstance(self.min_class_rows, int) or self.min_class_rows < 0:
            raise GeneratorError("min_class_rows must be a non-negative integer")
        specs = parse_schema(schema)
        for message in validate_frame(frame, specs, private=False):
            warnings.warn(message, UserWarning, stacklevel=2)
        seed = secrets.randbits(128) if random_state is None else int(random_state)
        fit_seed, sample_seed = np.random.SeedSequence(seed).spawn(2)
        rng = np.random.default_rng(fit_seed)
        self.columns_ = [spec.name for spec in specs]
        self.columns_meta_ = [_column_meta(frame[spec.name], spec) for spec in specs]
        label = next((spec.name for spec in specs if spec.role == "label"), None)
        self.label_ = label if self.per_class else None
        pooled = _fit_group(frame, self.columns_meta_, self.n_quantiles, rng)
        self.classes_: list[int] = []
        self.class_shares_, self.groups_ = np.ones(1), [pooled]
        if self.label_ is not None:
            self._fit_classes(frame, self.label_, pooled, rng)
        self.sample_rng_ = np.random.default_rng(sample_seed)
        return self

    def _fit_classes(self, frame: pd.DataFrame, label: str, pooled: dict[str, Any], rng: np.random.Generator) -> None:
        meta = self.columns_meta_[self.columns_.index(label)]
        codes = _category_codes(frame[label], meta["categories"])
        self.classes_ = [c for c in range(len(meta["categories"]) + 1) if (codes == c).any()]
        self.class_shares_ = np.array([(codes == c).mean() for c in self.classes_])
        self.groups_ = []
        for code in self.classes_:
            part = frame[codes == code]
            group = _fit_group(part, self.columns_meta_, self.n_quantiles, rng)
            if len(part) < self.min_class_rows:
                group["correlation"] = pooled["correlation"]
            self.groups_.append(group)

    def sample(self, n_rows: int, conditions: dict[str, Any] | None = None) -> pd.DataFrame:
        """Draw ``n_rows`` rows; ``conditions`` on the label picks class counts exactly."""
        if not hasattr(self, "groups_"):
            raise GeneratorError("call fit() before sample()")
        check_n_rows(n_rows)
        counts = round_counts(self._shares(conditions), n_rows, self.sample_rng_)
        parts = [
            _sample_group(group, self.columns_meta_, int(count), self.sample_rng_)
            for group, count in zip(self.groups_, counts, strict=True)
            if count > 0
        ]
        codes = np.concatenate(parts)[self.sample_rng_.permutation(n_rows)]
        columns = {meta["name"]: _decode(codes[:, i], meta) for i, meta in enumerate(self.columns_meta_)}
        return pd.DataFrame(columns, columns=self.columns_, copy=False)

    def _shares(self, conditions: dict[str, Any] | None) -> np.ndarray:
        if not conditions:
            return self.class_shares_
        if len(conditions) != 1 or self.label_ not in conditions:
            raise GeneratorError(
                f"the copula conditions only on its label column {self.label_!r}; got {sorted(conditions)}"
            )
        wanted = conditions[self.label_]
        wanted = wanted if isinstance(wanted, dict) else {wanted: 1.0}
        categories = self.columns_meta_[self.columns_.index(self.label_)]["categories"]
        shares = np.zeros(len(self.classes_))
        for value, share in wanted.items():
            if value not in categories or categories.index(value) not in self.classes_:
                raise GeneratorError(f"label has no class {value!r}; classes: {categories}")
            shares[self.classes_.index(categories.index(value))] += float(share)
        if not math.isclose(shares.sum(), 1.0, abs_tol=1e-6) or (shares < 0).any():
            raise GeneratorError("condition shares must be non-negative and sum to 1")
        return shares

    def privacy_spent(self) -> PrivacySpent:
        return _no_privacy()

    def save(self, directory: Path) -> None:
        """Write ``model.json`` (parameters, column metadata, sampler state) and ``arrays.npz``."""
        if not hasattr(self, "groups_"):
            raise GeneratorError("call fit() before save()")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "generator": self.name,
            "format_version": FORMAT_VERSION,
            "params": self.get_params(),
            "columns": self.columns_,
            "columns_meta": self.columns_meta_,
            "label": self.label_,
            "classes": self.classes_,
            "n_groups": len(self.groups_),
            "sample_rng": self.sample_rng_.bit_generator.state,
        }
        (directory / "model.json").write_text(json.dumps(meta, indent=1))
        arrays = {"class_shares": self.class_shares_}
        for g, group in enumerate(self.groups_):
            arrays[f"correlation_{g}"] = group["correlation"]
            for c, (levels, values) in enumerate(group["marginals"]):
                arrays[f"levels_{g}_{c}"], arrays[f"values_{g}_{c}"] = levels, values
        np.savez(directory / "arrays.npz", allow_pickle=False, **arrays)

    @classmethod
    def load(cls, directory: Path) -> GaussianCopulaGenerator:
        """Read a model written by :meth:`save` (no pickle)."""
        directory = Path(directory)
        meta = json.loads((directory / "model.json").read_text())
        if meta.get("generator") != cls.name or meta.get("format_version") != FORMAT_VERSION:
            raise GeneratorError(f"{directory} does not hold a copula model of this version")
        model = cls(**meta["params"])
        model.columns_, model.columns_meta_ = meta["columns"], meta["columns_meta"]
        model.label_, model.classes_ = meta["label"], meta["classes"]
        with np.load(directory / "arrays.npz", allow_pickle=False) as arrays:
            model.class_shares_ = arrays["class_shares"]
            model.groups_ = [
                {
                    "correlation": arrays[f"correlation_{g}"],
                    "marginals": [
                        (arrays[f"levels_{g}_{c}"], arrays[f"values_{g}_{c}"]) for c in range(len(model.columns_))
                    ],
                }
                for g in range(meta["n_groups"])
            ]
        model.sample_rng_ = np.random.default_rng()
        model.sample_rng_.bit_generator.state = meta["sample_rng"]
        return model


def _no_privacy() -> PrivacySpent:
    return PrivacySpent(math.inf, 1.0, ACCOUNTANT, {"note": "non-private: no DP guarantee"})


# ---------------------------------------------------------------------- marginals


def _column_meta(series: pd.Series, spec: ColumnSpec) -> dict[str, Any]:
    """Public-to-the-model facts of a column: kind, dtype and (categorical) the categories in
    descending frequency, so that neighbouring u-intervals hold similar mass."""
    meta: dict[str, Any] = {"name": spec.name, "type": spec.type, "dtype": str(series.dtype)}
    if spec.type == "datetime":
        meta["unit"] = spec.unit_seconds  # the declared resolution
        if spec.calendar:
            meta["calendar"] = spec.calendar  # the declared days (weekdays only)
    if spec.step is not None:
        meta["step"] = spec.step  # the declared grid of a float column
    if not spec.is_numeric:
        counts = series[~missing_mask(series)].value_counts(sort=False)
        order = np.lexsort(([repr(v) for v in counts.index], -counts.to_numpy()))
        meta["categories"] = [_plain(counts.index[i]) for i in order]
    return meta


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _category_codes(series: pd.Series, categories: list[Any]) -> np.ndarray:
    """Codes 0..k-1 for categories, k for missing (values unseen at fit time also map to k)."""
    mask = missing_mask(series)
    codes = pd.Categorical(series.where(~mask), categories=categories).codes.astype(np.int64)
    return np.where(codes < 0, len(categories), codes)


def _fit_group(
    frame: pd.DataFrame, columns: list[dict[str, Any]], n_quantiles: int, rng: np.random.Generator
) -> dict[str, Any]:
    """Marginals of every column and the normal-scores correlation for one group of rows."""
    marginals, scores = [], []
    for meta in columns:
        values = _model_values(frame[meta["name"]], meta)
        levels, support, u = _fit_marginal(values, meta, n_quantiles, rng)
        marginals.append((levels, support))
        scores.append(ndtri(np.clip(u, 1e-9, 1 - 1e-9)))
    return {"marginals": marginals, "correlation": _correlation(np.column_stack(scores))}


def _model_values(series: pd.Series, meta: dict[str, Any]) -> np.ndarray:
    if "categories" in meta:
        return _category_codes(series, meta["categories"]).astype(np.float64)
    return numeric_values(series, meta["type"])


def _fit_marginal(
    values: np.ndarray, meta: dict[str, Any], n_quantiles: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse-CDF table of one column and each row's uniform score.

    Returns ``(levels, support, u)``: for a *step* marginal (categories, missing, or at most
    ``n_quantiles`` distinct values) ``levels`` are the upper CDF edges of the sorted
    ``support``; for a *continuous* one ``levels`` are quantile levels with ``support`` the
    quantiles, interpolated linearly, and a leading ``NaN`` support value for missing rows.
    A tie (or category) is spread uniformly over its CDF interval when computing ``u``.
    """
    missing = np.isnan(values)
    present = values[~missing]
    distinct, counts = np.unique(present, return_counts=True)
    if "categories" in meta or len(distinct) <= n_quantiles:
        support = np.append(distinct, np.nan) if missing.any() else distinct
        counts = np.append(counts, missing.sum()) if missing.any() else counts
        upper = np.cumsum(counts) / len(values)
        index = np.where(missing, len(support) - 1, np.searchsorted(distinct, values))
        lower = upper[index] - counts[index] / len(values)
        return upper, support, lower + rng.random(len(values)) * (upper[index] - lower)
    share_missing = missing.mean()
    levels = np.linspace(0.0, 1.0, n_quantiles)
    quantiles = np.quantile(present, levels)
    ranks = np.empty(len(present))
    ranks[np.lexsort((rng.random(len(present)), present))] = np.arange(len(present))
    u = rng.random(len(values)) * share_missing
    u[~missing] = share_missing + (1 - share_missing) * (ranks + 0.5) / len(present)
    return np.append(share_missing, share_missing + (1 - share_missing) * levels), np.append(np.nan, quantiles), u


def _correlation(scores: np.ndarray) -> np.ndarray:
    """Correlation of the normal scores, clipped to be positive definite."""
    if scores.shape[1] == 1 or len(scores) < 3:
        return np.eye(scores.shape[1])
    correlation = np.nan_to_num(np.corrcoef(scores, rowvar=False))
    np.fill_diagonal(correlation, 1.0)
    eigenvalues, vectors = np.linalg.eigh(correlation)
    fixed = vectors @ np.diag(np.maximum(eigenvalues, 1e-6)) @ vectors.T
    scale = np.sqrt(np.diag(fixed))
    return fixed / np.outer(scale, scale)


# ---------------------------------------------------------------------- sampling


def _sample_group(
    group: dict[str, Any], columns: list[dict[str, Any]], n_rows: int, rng: np.random.Generator
) -> np.ndarray:
    """``n_rows`` model values (category codes or numbers) from one group's copula."""
    cholesky = np.linalg.cholesky(group["correlation"])
    u = ndtr(rng.standard_normal((n_rows, len(columns))) @ cholesky.T)
    out = np.empty((n_rows, len(columns)))
    for i, (levels, support) in enumerate(group["marginals"]):
        out[:, i] = _invert(u[:, i], levels, support, step=not np.isnan(support[0]))
    return out


def _invert(u: np.ndarray, levels: np.ndarray, support: np.ndarray, *, step: bool) -> np.ndarray:
    """Inverse CDF: the first support value whose level reaches ``u`` (step), or linear
    interpolation between quantiles with the leading missing interval (continuous)."""
    if step:
        index = np.minimum(np.searchsorted(levels, u, side="left"), len(support) - 1)
        return support[index]
    values = np.interp(u, levels[1:], support[1:])
    return np.where(u < levels[0], np.nan, values)


def _decode(values: np.ndarray, meta: dict[str, Any]) -> pd.Series:
    if "categories" not in meta:
        unit = float(meta.get("unit", 1))
        if unit > 1:  # whole days, hours or minutes (the declared resolution)
            values = np.floor(values / unit) * unit
        if meta.get("calendar") == "weekdays":  # a Saturday becomes the Friday before, a Sunday the Monday after
            values = values + np.where(
                is_weekend(values), np.where(np.mod(np.floor(values / DAY) + 3.0, 7.0) < 6.0, -DAY, DAY), 0.0
            )
        if meta.get("step"):  # the nearest whole multiple of the declared step
            values = on_grid(values, float(meta["step"]))
        return numeric_output(values, meta["type"], meta["dtype"], meta["name"])
    table = np.empty(len(meta["categories"]) + 1, dtype=object)
    table[:-1] = meta["categories"]
    table[-1] = np.nan
    series = pd.Series(
        table[np.nan_to_num(values, nan=len(table) - 1).astype(np.int64)], dtype=object, name=meta["name"]
    )
    return series if meta["dtype"] == "object" else series.astype(meta["dtype"])
