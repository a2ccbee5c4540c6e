"""Schema-driven encoding shared by the generators: validation, domains, codes and bins.

Privacy rule: nothing about a column's domain is read from the raw data without paying for it.

- Public (declared in the schema, never charged): ``min``/``max`` bounds, ``categories``, the
  boolean domain ``{False, True}``, ``nullable: false``, the column types and roles, and the
  frame's pandas dtypes (so synthetic columns come back with the source dtypes). The row count
  is used to refuse hopeless budgets before anything is spent.
- Private (estimated with differential privacy in :func:`fit_codecs`, charged to the fit's
  accountant under the stage ``"domain"``): undeclared category lists (Gaussian sparse histogram
  with a threshold; values below it share one *other* code) and undeclared numeric bounds
  (noisy histogram over fixed power-of-two magnitude buckets).

Every column is mapped to *fine codes* ``0 .. n_codes-1``:

- categorical / boolean: the released categories (sorted), then ``OTHER`` (rare values, only
  when the categories were estimated), then ``MISSING`` (when the column is nullable). The other
  code is sampled back as the string ``"other"`` (``OTHER_VALUE``); a column whose source dtype
  cannot hold that string (for example integer codes without declared categories) therefore
  comes back with ``object`` dtype. Declare ``categories`` to keep the source dtype exactly.
  Missing values (NaN, None, empty string) come back as NaN (``pd.NA`` for nullable dtypes).
- numeric (integer, float, datetime as epoch seconds): *cells* of a public grid inside the
  bounds, in value order, then ``MISSING``. The grid gives exact single-value cells to the
  bounds, to zero, and to every integer of a short integer range, so point masses (zero capital
  gain, 40 working hours) are sampled exactly; wider ranges get cells spaced both linearly and
  geometrically. Sampling draws uniformly within a cell; integers stay integers; values always
  lie inside the bounds.

Generators model *bins* (groups of fine codes, see :func:`ordered_bins` and
:func:`unordered_bins`) and decode a bin to a fine code with the fine-level 1-way estimate.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from synth_engine.generators.base import GeneratorError, SchemaMismatchError
from synth_engine.privacy.accountant import ZCDPAccountant
from synth_engine.privacy.mechanisms import gaussian_noise, sparse_histogram, sparse_threshold
from synth_engine.privacy.zcdp import gaussian_sigma

OTHER_VALUE = "other"
COLUMN_TYPES = ("integer", "float", "categorical", "boolean", "datetime")
COLUMN_ROLES = ("identifier", "quasi_identifier", "sensitive", "protected", "label", "other")
NUMERIC_TYPES = ("integer", "float", "datetime")
MAX_UNDECLARED_CATEGORIES = 1000
_MAGNITUDE_RANGE = {True: (0, 62), False: (-30, 100)}  # power-of-two buckets, int / float


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the schema, with its public facts."""

    name: str
    type: str
    role: str = "other"
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Any, ...] | None = None
    nullable: bool | None = None

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def needs_private_domain(self) -> bool:
        if self.type == "categorical":
            return self.categories is None
        return self.is_numeric and (self.minimum is None or self.maximum is None)


def parse_schema(schema: dict[str, Any]) -> list[ColumnSpec]:
    """Read ``{"columns": [...]}`` into specs; raise :class:`SchemaMismatchError` on bad entries."""
    columns = schema.get("columns") if isinstance(schema, dict) else None
    if not columns:
        raise SchemaMismatchError("schema must be a dict with a non-empty 'columns' list")
    specs = [_parse_column(column) for column in columns]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise SchemaMismatchError("schema lists a column more than once")
    return specs


def _parse_column(column: dict[str, Any]) -> ColumnSpec:
    name, kind = column.get("name"), column.get("type")
    role = column.get("role", "other")
    if not name or kind not in COLUMN_TYPES:
        raise SchemaMismatchError(f"column {name!r}: type must be one of {COLUMN_TYPES}")
    if role not in COLUMN_ROLES:
        raise SchemaMismatchError(f"column {name!r}: role must be one of {COLUMN_ROLES}")
    categories = column.get("categories")
    if kind == "boolean":
        categories = [False, True]
    bounds = [_parse_bound(column.get(key), kind, name) for key in ("min", "max")]
    if None not in bounds and bounds[0] > bounds[1]:
        raise SchemaMismatchError(f"column {name!r}: min is greater than max")
    return ColumnSpec(
        name=name,
        type=kind,
        role=role,
        minimum=bounds[0],
        maximum=bounds[1],
        categories=tuple(categories) if categories is not None else None,
        nullable=column.get("nullable"),
    )


def _parse_bound(value: Any, kind: str, name: str) -> float | None:
    if value is None:
        return None
    if kind == "datetime":
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo else stamp
        return float(stamp.value // 10**9)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaMismatchError(f"column {name!r}: bounds must be finite numbers")
    return float(value)


# --------------------------------------------------------------------------- validation


def validate_frame(frame: pd.DataFrame, specs: list[ColumnSpec], *, private: bool) -> None:
    """Check the frame against the schema before anything is spent; raise with what to change.

    Refuses: identifiers, missing or extra columns, all-null columns, ±inf or non-numeric
    values in numeric columns, non-integral values in integer columns, a label with one
    class, values outside declared categories, and (under DP) very high-cardinality
    categoricals without declared categories. Warns about single-valued columns, which are
    modelled as they are, and about high cardinality when not private.
    """
    if len(frame) == 0:
        raise GeneratorError("the frame has no rows")
    _check_columns(frame, specs)
    for spec in specs:
        _check_column(frame[spec.name], spec, private=private, n_rows=len(frame))


def _check_columns(frame: pd.DataFrame, specs: list[ColumnSpec]) -> None:
    names = [spec.name for spec in specs]
    identifiers = [spec.name for spec in specs if spec.role == "identifier"]
    if identifiers:
        raise SchemaMismatchError(f"drop identifier columns before fitting: {identifiers}")
    missing = [name for name in names if name not in frame.columns]
    extra = [name for name in frame.columns if name not in names]
    if missing or extra:
        raise SchemaMismatchError(
            f"frame and schema disagree: missing from frame {missing}, not in schema {extra}"
        )


def _check_column(series: pd.Series, spec: ColumnSpec, *, private: bool, n_rows: int) -> None:
    present = series[~missing_mask(series)]
    if present.empty:
        raise GeneratorError(f"column {spec.name!r} is entirely missing: drop it from the schema")
    if spec.is_numeric:
        _check_numeric(present, spec)
    else:
        _check_categorical(present, spec, private=private, n_rows=n_rows)
    if spec.role == "label" and present.nunique() < 2:
        raise GeneratorError(f"label column {spec.name!r} has a single class: need at least two")
    if present.nunique() == 1:
        warnings.warn(
            f"column {spec.name!r} holds a single value; it is modelled as a constant",
            UserWarning,
            stacklevel=4,
        )


def _check_numeric(present: pd.Series, spec: ColumnSpec) -> None:
    if spec.type == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(present):
            raise SchemaMismatchError(f"column {spec.name!r} is declared datetime: convert it")
        return
    if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        raise SchemaMismatchError(f"column {spec.name!r} is declared {spec.type} but not numeric")
    values = present.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise GeneratorError(f"column {spec.name!r} holds ±inf: replace it or mark it missing")
    if spec.type == "integer" and not np.array_equal(values, np.round(values)):
        raise SchemaMismatchError(f"column {spec.name!r} is declared integer but has fractions")


def _check_categorical(
    present: pd.Series, spec: ColumnSpec, *, private: bool, n_rows: int
) -> None:
    if spec.categories is not None:
        unknown = ~present.isin(list(spec.categories))
        if unknown.any():
            raise SchemaMismatchError(
                f"column {spec.name!r} has {int(unknown.sum())} values outside its declared "
                "categories: add them to the schema"
            )
        return
    cardinality = present.nunique()
    if cardinality > min(0.5 * n_rows, MAX_UNDECLARED_CATEGORIES) and cardinality > 2:
        message = (
            f"column {spec.name!r} has {cardinality} distinct values: drop it, coarsen it, "
            "or declare its categories as public in the schema"
        )
        if private:
            raise GeneratorError(message)
        warnings.warn(message, UserWarning, stacklevel=5)


def missing_mask(series: pd.Series) -> np.ndarray:
    """True where a value is missing: NaN, None, NaT, pd.NA or an empty string."""
    mask = series.isna().to_numpy()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        mask |= (series.astype(object) == "").to_numpy(dtype=bool)
    return mask


def is_nullable(spec: ColumnSpec, dtype: Any) -> bool:
    """Whether the missing code exists: the schema's ``nullable`` wins, else the dtype decides
    (an ``int64`` or ``bool`` column cannot hold missing values)."""
    if spec.nullable is not None:
        return bool(spec.nullable)
    return not (isinstance(dtype, np.dtype) and dtype.kind in "iub")
