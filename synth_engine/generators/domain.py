"""Schema-driven encoding shared by the generators: validation, domains, codes and bins.

Privacy rule: nothing about a column's domain is read from the raw data without paying for it.

- Public (declared in the schema, never charged): ``min``/``max`` bounds, ``categories``, the
  boolean domain ``{False, True}``, ``nullable``, the column types and roles. Nothing is read
  from the frame's structure: not its pandas dtypes (a loader types an integer column ``Int64``
  only when a cell is empty), not which columns hold missing values, not the order of categories
  in the data. Synthetic columns get dtypes derived from the schema alone
  (:func:`output_dtype`).
- Private (estimated with differential privacy in :func:`fit_codecs`, charged to the fit's
  accountant under the stage ``"domain"``): undeclared category lists (Gaussian sparse histogram
  with a threshold; values below it share one *other* code) and undeclared numeric bounds
  (noisy histogram over fixed power-of-two magnitude buckets).

Every column is mapped to *fine codes* ``0 .. n_codes-1``:

- categorical / boolean: the released categories (sorted), then ``OTHER`` (rare values, only
  when the categories were estimated), then ``MISSING`` (when the column is nullable). The other
  code is sampled back as the string ``"other"`` (``OTHER_VALUE``); categorical columns come back
  with ``object`` dtype. Missing values (NaN, None, empty string) come back as NaN (``pd.NA``
  for nullable dtypes).
- Whether a column has missing values is not public: unless the schema says ``"nullable":
  false``, every column of every type has a missing code, measured with noise like any other
  code, so a DP model may emit a few missing values in a column that had none (and a column with
  one empty cell is modelled exactly like one with none). Declare ``"nullable": false`` to rule
  that out (then missing values in the data are refused before anything is spent).
- The label and protected columns (``core.schema.DOMAIN_ROLES``) never receive a value outside
  their declared domain (issue 11.7): their categories (or bounds) must be declared, else the
  frame is refused before anything is spent, so they have no ``OTHER`` code; and they have a
  missing code only when the schema declares ``"nullable": true``.
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

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core import schema as core_schema
from core.schema import ColumnSpec, numeric_values
from synth_engine.generators.base import GeneratorError, SchemaMismatchError
from synth_engine.privacy.accountant import ZCDPAccountant
from synth_engine.privacy.mechanisms import gaussian_noise, sparse_histogram, sparse_threshold
from synth_engine.privacy.zcdp import gaussian_sigma

if TYPE_CHECKING:
    from synth_engine.generators.counts import CountSource

OTHER_VALUE = "other"
MAX_UNDECLARED_CATEGORIES = 1000
_MAGNITUDE_RANGE = {True: (0, 62), False: (-30, 100)}  # power-of-two buckets, int / float
ANCHOR_FALSE_POSITIVE = 1e-6  # family-wise, over a column's magnitude buckets (see bounds_from_magnitudes)
GROW_FALSE_POSITIVE = 0.05  # per bucket next to the anchored range
GAP_FALSE_POSITIVE = 1e-3  # per bucket one empty bucket beyond the range (a top-coded cluster)
NONZERO_FALSE_POSITIVE = 0.01  # family-wise, over the windows searched for a zero-anchored column's other values
NONZERO_REACH = 2.0**20  # magnitudes a zero-anchored column's other values are looked for within
NONZERO_WINDOWS = (1, 2, 4, 8)  # lengths, in adjacent magnitude buckets, of the windows searched
DAY = 86400.0
_EPOCH_DAY = np.datetime64("1970-01-01", "D")  # a Thursday


def parse_schema(schema: dict[str, Any]) -> list[ColumnSpec]:
    """Read ``{"columns": [...]}`` into specs; raise :class:`SchemaMismatchError` on bad entries."""
    try:
        return core_schema.parse_schema(schema)
    except core_schema.SchemaError as error:
        raise SchemaMismatchError(str(error)) from error


# --------------------------------------------------------------------------- validation


def validate_frame(frame: pd.DataFrame, specs: list[ColumnSpec], *, private: bool) -> list[str]:
    """Check the frame against the schema before anything is spent; raise with what to change.

    Always refuses what contradicts the schema: identifiers, missing or extra columns, ±inf or
    non-numeric values in numeric columns, non-integral values in integer columns, values outside
    declared categories, missing values in a column declared ``"nullable": false``.

    When not private it also refuses all-null columns and a label with one class, and warns about
    single-valued columns and very high-cardinality categoricals. Under DP these data-dependent
    verdicts are not made: a refusal or a warning that one row can flip is itself a release (an
    all-missing column, a one-class label and a constant column are modelled like any other,
    through the noisy measurements).

    Returns
    -------
    list of str
        Warnings about data that can be used (empty under DP).
    """
    if len(frame) == 0:
        raise GeneratorError("the frame has no rows")
    _check_columns(frame, specs)
    messages: list[str] = []
    for spec in specs:
        messages += _check_column(frame[spec.name], spec, private=private, n_rows=len(frame))
    return messages


def check_rows_hold_declarations(frame: pd.DataFrame, specs: list[ColumnSpec]) -> None:
    """Refuse rows that contradict the schema's declarations about every row (``validate_frame``'s
    row-level refusals: a missing value without a missing code, a fraction or ±inf, a value off a
    declared ``step``, on a weekend of a weekdays calendar, or outside declared categories), for the
    columns of ``specs`` that ``frame`` holds.

    Registration and declaration run it on the stored rows (the steward's step), so a job's own
    check never refuses a stored version: a refusal there, which its requester reads, would flip on
    one row (issue 11.3)."""
    for spec in specs:
        if spec.name in frame.columns:
            _check_column(frame[spec.name], spec, private=True, n_rows=len(frame))


def refuse_structure(specs: list[ColumnSpec]) -> None:
    """Refuse a schema no fit may read: identifier columns, label or protected columns without a
    declared domain (for a frame here, and for a table where it lives by the engines' checks)."""
    identifiers = [spec.name for spec in specs if spec.role == "identifier"]
    if identifiers:
        raise SchemaMismatchError(f"drop identifier columns before fitting: {identifiers}")
    undeclared = core_schema.undeclared_domains(specs)
    if undeclared:
        raise SchemaMismatchError("; ".join(undeclared) + ".")


def _check_columns(frame: pd.DataFrame, specs: list[ColumnSpec]) -> None:
    names = [spec.name for spec in specs]
    refuse_structure(specs)
    missing = [name for name in names if name not in frame.columns]
    extra = [name for name in frame.columns if name not in names]
    if missing or extra:
        raise SchemaMismatchError(f"frame and schema disagree: missing from frame {missing}, not in schema {extra}")


def _check_column(series: pd.Series, spec: ColumnSpec, *, private: bool, n_rows: int) -> list[str]:
    mask = missing_mask(series)
    if not is_nullable(spec) and mask.any():
        if spec.nullable is False:
            raise SchemaMismatchError(f"column {spec.name!r} is declared nullable: false but has missing values")
        raise SchemaMismatchError(
            f"{spec.role} column {spec.name!r} has missing values: a {spec.role} column is not nullable unless "
            'the schema declares "nullable": true (then missing is one of its released values)'
        )
    present = series[~mask]
    if spec.is_numeric:
        _check_numeric(present, spec)
    elif spec.categories is not None:
        _check_declared_categories(present, spec)
    if private:
        return []
    if present.empty:
        raise GeneratorError(f"column {spec.name!r} is entirely missing: drop it from the schema")
    messages = _check_cardinality(present, spec, n_rows=n_rows)
    if spec.role == "label" and present.nunique() < 2:
        raise GeneratorError(f"label column {spec.name!r} has a single class: need at least two")
    if present.nunique() == 1:
        messages.append(f"column {spec.name!r} holds a single value; it is modelled as a constant")
    return messages


def _check_numeric(present: pd.Series, spec: ColumnSpec) -> None:
    if spec.type == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(present):
            raise SchemaMismatchError(f"column {spec.name!r} is declared datetime: convert it")
        # no count in a refusal: a failed job's reason is its requester's to read (the engines' too)
        if spec.calendar == "weekdays" and is_weekend(numeric_values(present, "datetime")).any():
            raise SchemaMismatchError(
                f"column {spec.name!r} is declared on the weekdays calendar but holds values on a Saturday or "
                "Sunday (UTC)"
            )
        return
    if not pd.api.types.is_numeric_dtype(present) or pd.api.types.is_bool_dtype(present):
        raise SchemaMismatchError(f"column {spec.name!r} is declared {spec.type} but not numeric")
    values = present.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise GeneratorError(f"column {spec.name!r} holds ±inf: replace it or mark it missing")
    if spec.type == "integer" and not np.array_equal(values, np.round(values)):
        raise SchemaMismatchError(f"column {spec.name!r} is declared integer but has fractions")
    if spec.step is not None and not np.allclose(values, on_grid(values, spec.step), rtol=1e-9, atol=0.0):
        raise SchemaMismatchError(
            f"column {spec.name!r} is declared on a grid of step {spec.step:g} but holds values off it"
        )


def on_grid(values: np.ndarray, step: float) -> np.ndarray:
    """The nearest whole multiples of a float column's declared ``step`` (issue 11.6)."""
    return grid_values(np.round(values / step), step)


def is_weekend(seconds: np.ndarray) -> np.ndarray:
    """Whether each epoch-seconds value falls on a Saturday or Sunday (UTC); False for NaN."""
    days = np.floor(np.asarray(seconds, dtype=np.float64) / DAY)
    return np.asarray(np.mod(days + 3.0, 7.0) >= 5.0)


def weekday_index(seconds: np.ndarray) -> np.ndarray:
    """The weekdays (Monday to Friday) counted from 1970-01-01 (index 0) for epoch-seconds
    values: consecutive weekdays get consecutive numbers, a weekend day the following Monday's.
    The axis of a column declared ``"calendar": "weekdays"`` (its grid counts weekdays only)."""
    days = np.floor(np.asarray(seconds, dtype=np.float64) / DAY).astype(np.int64).astype("datetime64[D]")
    # rolled to a weekday first: NumPy counts a span that ends before it begins from the other end
    return np.busday_count(_EPOCH_DAY, np.busday_offset(days, 0, roll="forward")).astype(np.float64)


def weekday_seconds(index: np.ndarray) -> np.ndarray:
    """Midnight (UTC epoch seconds) of each weekday number of :func:`weekday_index`."""
    days = np.busday_offset(_EPOCH_DAY, np.asarray(index, dtype=np.int64), roll="forward")
    return days.astype(np.int64).astype(np.float64) * DAY


def grid_values(multiples: np.ndarray, step: float) -> np.ndarray:
    """``multiples`` × ``step``, rounded to 12 decimals so that 3 × 0.1 prints as 0.3 (the one
    computation of grid values: encoding compares with cells' ends made by it)."""
    return np.round(np.asarray(multiples, dtype=np.float64) * step, 12)


def _check_declared_categories(present: pd.Series, spec: ColumnSpec) -> None:
    unknown = ~present.isin(list(spec.categories or ()))
    if unknown.any():
        raise SchemaMismatchError(
            f"column {spec.name!r} has values outside its declared categories: add them to the schema"
        )


def _check_cardinality(present: pd.Series, spec: ColumnSpec, *, n_rows: int) -> list[str]:
    if spec.type != "categorical" or spec.categories is not None:
        return []
    cardinality = present.nunique()
    if cardinality > min(0.5 * n_rows, MAX_UNDECLARED_CATEGORIES) and cardinality > 2:
        return [
            f"column {spec.name!r} has {cardinality} distinct values: drop it, coarsen it, "
            "or declare its categories as public in the schema"
        ]
    return []


def missing_mask(series: pd.Series) -> np.ndarray:
    """True where a value is missing: NaN, None, NaT, pd.NA or an empty string."""
    mask = series.isna().to_numpy()
    if series.dtype == object or pd.api.types.is_string_dtype(series):
        mask |= (series.astype(object) == "").to_numpy(dtype=bool)
    return mask


def is_nullable(spec: ColumnSpec) -> bool:
    """Whether the missing code exists: the schema's ``nullable``; when undeclared, yes for every
    column except a label or protected one (:data:`core.schema.DOMAIN_ROLES`), whose released
    values stay inside its declared domain (issue 11.7).

    Never the dtype: a loader types an integer column ``Int64`` exactly when a cell is empty, so
    a dtype-driven missing code makes "a missing value appears" possible only on data that had
    one, which one added row can flip (a structural leak no noise covers).
    """
    if spec.nullable is None:
        return not spec.needs_declared_domain
    return bool(spec.nullable)


def output_dtype(spec: ColumnSpec) -> str:
    """The pandas dtype of a synthetic column, from the schema alone.

    ``Int64``/``boolean`` (nullable) unless the schema declares ``"nullable": false``, then
    ``int64``/``bool``; ``float64``; naive ``datetime64[ns]`` (UTC); ``object`` for categoricals.
    """
    nullable = is_nullable(spec)
    if spec.type == "integer":
        return "Int64" if nullable else "int64"
    if spec.type == "boolean":
        return "boolean" if nullable else "bool"
    if spec.type == "float":
        return "float64"
    if spec.type == "datetime":
        return "datetime64[ns]"
    return "object"


def schema_dtypes(schema: dict[str, Any]) -> dict[str, str]:
    """Column name -> the dtype every DP generator gives that column (see :func:`output_dtype`)."""
    return {spec.name: output_dtype(spec) for spec in parse_schema(schema)}


# --------------------------------------------------------------------------- codecs


@dataclass
class CategoricalCodec:
    """Fine codes of a categorical or boolean column: categories, then other, then missing."""

    name: str
    values: list[Any]
    has_other: bool
    has_missing: bool
    dtype: str
    ordered: bool = False

    @property
    def n_codes(self) -> int:
        return len(self.values) + int(self.has_other) + int(self.has_missing)

    @property
    def other_code(self) -> int | None:
        return len(self.values) if self.has_other else None

    @property
    def missing_code(self) -> int | None:
        return self.n_codes - 1 if self.has_missing else None

    def encode(self, series: pd.Series) -> np.ndarray:
        """Map values to fine codes; unseen values go to the other code."""
        mask = missing_mask(series)
        categorical = pd.Categorical(series.where(~mask), categories=self.values)
        codes = np.asarray(categorical.codes, dtype=np.int64)
        outside = (codes < 0) & ~mask
        if outside.any():
            if self.other_code is None:
                raise SchemaMismatchError(f"column {self.name!r} has undeclared values")
            codes[outside] = self.other_code
        return _place_missing(codes, mask, self.missing_code, self.name)

    def decode(self, codes: np.ndarray, rng: np.random.Generator, *, categories: bool = False) -> pd.Series:
        """Map fine codes back to values with the source dtype (see the module docstring).

        ``categories``: a column of text comes back as a pandas ``Categorical`` of the same values
        (the codec's values, then other; missing as no category), the codes kept as they are drawn
        rather than a Python object a row (what a writer that stores each distinct value once wants)."""
        codes = np.asarray(codes, dtype=np.intp)
        if categories:
            categorical = self._categorical(codes)
            if categorical is not None:
                return pd.Series(categorical, name=self.name, copy=False)
        if self.dtype == "boolean" and not self.has_other and all(_is_bool(value) for value in self.values):
            known = np.zeros(self.n_codes, dtype=bool)  # the nullable booleans as arrays, not objects
            known[: len(self.values)] = self.values
            missing = codes == self.missing_code if self.has_missing else np.zeros(len(codes), dtype=bool)
            return pd.Series(pd.arrays.BooleanArray(np.take(known, codes), missing), name=self.name, copy=False)
        table = np.empty(self.n_codes, dtype=object)
        table[: len(self.values)] = self.values
        if self.has_other:
            table[self.other_code] = OTHER_VALUE
        if self.has_missing:
            table[self.missing_code] = np.nan
        series = pd.Series(table[codes], dtype=object, name=self.name)
        if self.dtype == "object":
            return series
        if self.has_other and not pd.api.types.is_string_dtype(pd.api.types.pandas_dtype(self.dtype)):
            return series
        return series.astype(self.dtype)

    def _categorical(self, codes: np.ndarray) -> pd.Categorical | None:
        """The values of ``codes`` as a ``Categorical`` when this column's values are distinct
        texts of an ``object`` column (else None: ``decode`` gives them as objects)."""
        dtype = self._text_dtype
        if dtype is None:
            return None
        n_texts = len(dtype.categories)
        width = np.int8 if n_texts < 127 else np.int16 if n_texts < 32_767 else np.int32  # as pandas keeps them
        if not self.has_missing:
            return pd.Categorical.from_codes(codes.astype(width), dtype=dtype)
        lookup = np.arange(self.n_codes, dtype=width)  # each code its category's, the missing code (the last) -1
        lookup[-1] = -1
        in_range = np.take(lookup, codes)  # by construction: not checked again
        return pd.Categorical.from_codes(in_range, dtype=dtype, validate=False)

    @functools.cached_property
    def _text_dtype(self) -> pd.CategoricalDtype | None:
        """The categories of a column of distinct texts (its values, then other), else None."""
        texts = [*self.values, OTHER_VALUE] if self.has_other else list(self.values)
        if self.dtype != "object" or not all(isinstance(value, str) for value in texts) or len(set(texts)) < len(texts):
            return None
        return pd.CategoricalDtype(pd.Index(texts, dtype=object))

    def code_of(self, value: Any) -> int:
        """Fine code of a released ``value`` (for conditional sampling)."""
        missing = self.missing_code
        if missing is not None and _is_missing_value(value):
            return missing
        for code, known in enumerate(self.values):
            if known == value and _is_bool(known) == _is_bool(value):
                return code
        raise GeneratorError(f"column {self.name!r} has no released value {value!r}; choose from {self.values}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "name": self.name,
            "values": self.values,
            "has_other": self.has_other,
            "has_missing": self.has_missing,
            "dtype": self.dtype,
        }


@dataclass
class NumericCodec:
    """Fine codes of a numeric column: public grid cells in value order, then missing.

    ``low`` and ``high`` (shape (n_cells,)) bound each cell, inclusive for integer cells and
    half-open ``[low, high)`` for float cells; a cell with ``low == high`` is a single value.
    ``unit`` is a datetime's declared resolution in seconds: its cells start at multiples of it
    and decode to multiples of it (whole days, hours, ...; 1 for every other column). ``step`` is
    a float column's declared grid: its cells hold whole multiples of it, inclusive at both ends,
    and decode to them. ``calendar`` ``"weekdays"``: a day-resolution datetime whose cells run from
    a weekday's midnight to the end of a weekday and decode to Monday to Friday only.
    """

    name: str
    type: str
    low: np.ndarray
    high: np.ndarray
    has_missing: bool
    dtype: str
    ordered: bool = True
    unit: float = 1.0
    step: float | None = None
    calendar: str | None = None

    @property
    def n_codes(self) -> int:
        return len(self.low) + int(self.has_missing)

    @property
    def missing_code(self) -> int | None:
        return len(self.low) if self.has_missing else None

    @property
    def is_integer(self) -> bool:
        return self.type in ("integer", "datetime")

    def encode(self, series: pd.Series) -> np.ndarray:
        """Map values to cells after clipping them into the bounds."""
        values = numeric_values(series, self.type)
        mask = np.isnan(values)
        if self.step is not None:  # onto the declared grid, computed as the cells' ends were
            values = on_grid(values, self.step)
        clipped = np.clip(np.where(mask, self.low[0], values), self.low[0], self.high[-1])
        return _place_missing(self.cells(clipped), mask, self.missing_code, self.name)

    def cells(self, clipped: np.ndarray) -> np.ndarray:
        """The cell of each value already on the grid and clipped into the bounds: the last cell
        starting at or below it (``searchsorted(low, value, side="right") - 1``), except a value on
        a single-value cell's point, which goes to that cell (see :meth:`point_cells`)."""
        codes = np.searchsorted(self.low, clipped, side="right") - 1
        previous = np.maximum(codes - 1, 0)
        on_point = (codes > 0) & (self.low[previous] == clipped) & (self.high[previous] == self.low[previous])
        return np.where(on_point, previous, codes).astype(np.int64)

    def point_cells(self) -> list[tuple[float, int]]:
        """The points of single-value cells that ``searchsorted`` alone puts in the next cell (a
        float cell ``[p, p]`` followed by ``[p, q)``), each with the cell :meth:`cells` gives it.

        An engine that codes values in its own language (SQL's ``width_bucket``) spells out these few
        points and is otherwise a plain ``searchsorted`` (Spark's executors call :meth:`cells`'s NumPy).
        """
        points = np.array(sorted({float(p) for p, q in zip(self.low, self.high, strict=True) if p == q}))
        if not len(points):
            return []
        plain = np.searchsorted(self.low, points, side="right") - 1
        codes = self.cells(points)
        return [(float(p), int(c)) for p, c, s in zip(points, codes, plain, strict=True) if c != s]

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> pd.Series:
        """Draw values uniformly inside each code's cell; single-value cells give that value."""
        codes = np.asarray(codes, dtype=np.intp)
        width = self.high - self.low + (1.0 if self.is_integer else 0.0)
        if self.step is None and self.calendar != "weekdays":  # NaN at the missing code gives NaN values
            low = np.append(self.low, np.nan) if self.has_missing else self.low
            if self.is_integer:  # a whole number of units (of seconds, days, ...) inside the cell
                steps, whole_lows = self._integer_cells
                offsets = rng.random(len(codes))
                offsets *= np.take(steps, codes)  # floored below (or truncated, as they are at least 0)
                if whole_lows is not None:
                    return pd.Series(self._whole_numbers(codes, offsets, whole_lows), name=self.name, copy=False)
                np.floor(offsets, out=offsets)
                values = np.take(low, codes) + offsets * self.unit
            else:  # low + u · span, computed in place (the same values)
                spans = np.append(width, 0.0) if self.has_missing else width
                values = rng.random(len(codes))
                values *= np.take(spans, codes)
                values += np.take(low, codes)
            return numeric_output(values, self.type, self.dtype, self.name)
        mask = codes == self.missing_code if self.has_missing else None
        cells = np.where(mask, 0, codes) if mask is not None else codes
        if self.step is not None:  # a whole multiple of the declared step inside the cell
            first, last = np.round(self.low / self.step), np.round(self.high / self.step)
            multiples = first[cells] + np.floor(rng.random(len(codes)) * (last - first + 1.0)[cells])
            values = grid_values(multiples, self.step)
        else:  # a whole weekday inside the cell
            first, last = weekday_index(self.low), weekday_index(self.high)
            values = weekday_seconds(first[cells] + np.floor(rng.random(len(codes)) * (last - first + 1.0)[cells]))
        if mask is not None:
            values[mask] = np.nan
        return numeric_output(values, self.type, self.dtype, self.name)

    @functools.cached_property
    def _integer_cells(self) -> tuple[np.ndarray, np.ndarray | None]:
        """An integer or datetime column's units a cell (1 at the missing code), and each cell's
        low end as an integer (0 at the missing code) when ``_whole_numbers`` computes its values
        in integers: an ``Int64`` or ``int64`` integer column or a ``datetime64[ns]`` one, whole
        ends and unit, ends below 2**52 (stamps: 9.2e9 seconds, beyond which ``numeric_output``
        leaves them to pandas); else None."""
        steps = np.maximum(np.floor((self.high - self.low + 1.0) / self.unit), 1.0)
        steps = np.append(steps, 1.0) if self.has_missing else steps
        ends = np.abs(np.concatenate([self.low, self.high, [self.unit]]))
        plain = self.dtype == "int64" and not self.has_missing
        stamps = self.type == "datetime" and self.dtype == "datetime64[ns]"
        whole = self.type != "datetime" and (self.dtype == "Int64" or plain)
        if not (stamps or whole) or not ends.max(initial=0.0) < (9.2e9 if stamps else 2.0**52):
            return steps, None
        if not (np.all(np.floor(self.low) == self.low) and float(self.unit).is_integer()):
            return steps, None
        return steps, (np.append(self.low, 0.0) if self.has_missing else self.low).astype(np.int64)

    def _whole_numbers(self, codes: np.ndarray, offsets: np.ndarray, lows: np.ndarray) -> Any:
        """``low + ⌊offsets⌋ · unit`` as ``Int64`` or ``int64`` (an integer column) or
        ``datetime64[ns]`` (a datetime column), computed in integers: the values ``numeric_output``
        gives from the floats, which are exact below 2**53. ``offsets`` are at least 0; ``lows``:
        ``_integer_cells``'."""
        values = offsets.astype(np.int64)  # ⌊offsets⌋: they are at least 0
        if self.unit != 1:
            values *= int(self.unit)
        values += np.take(lows, codes)
        if self.dtype == "int64":
            return values
        missing = codes == self.missing_code if self.has_missing else np.zeros(len(codes), dtype=bool)
        if self.type == "datetime":
            values *= 10**9
            values[missing] = np.iinfo(np.int64).min  # NaT
            return values.view("datetime64[ns]")
        return pd.arrays.IntegerArray(values, missing)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "name": self.name,
            "type": self.type,
            "low": self.low.tolist(),
            "high": self.high.tolist(),
            "has_missing": self.has_missing,
            "dtype": self.dtype,
            "unit": self.unit,
            "step": self.step,
            "calendar": self.calendar,
        }


Codec = CategoricalCodec | NumericCodec


def codec_from_dict(data: dict[str, Any]) -> Codec:
    """Rebuild a codec written by ``to_dict`` (JSON)."""
    data = dict(data)
    kind = data.pop("kind")
    if kind == "categorical":
        return CategoricalCodec(**data)
    data["low"] = np.asarray(data["low"], dtype=np.float64)
    data["high"] = np.asarray(data["high"], dtype=np.float64)
    return NumericCodec(**data)


def _place_missing(codes: np.ndarray, mask: np.ndarray, missing_code: int | None, name: str) -> np.ndarray:
    if mask.any():
        if missing_code is None:
            raise SchemaMismatchError(f"column {name!r} is not nullable but has missing values")
        codes[mask] = missing_code
    return codes


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def _is_missing_value(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


def numeric_output(values: np.ndarray, kind: str, dtype: str, name: str) -> pd.Series:
    """Drawn values (float64, NaN for missing) as a column of ``dtype``: datetimes from epoch
    seconds, integers rounded half to even."""
    fast = _numeric_output_arrays(values, kind, dtype)
    if fast is not None:
        return pd.Series(fast, name=name, copy=False)
    if kind == "datetime":
        stamps = pd.Series(pd.to_datetime(values, unit="s"), name=name)
        target = pd.api.types.pandas_dtype(dtype)
        if getattr(target, "tz", None) is not None:
            stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(target.tz)
        return stamps.astype(target)
    target = pd.api.types.pandas_dtype(dtype)
    if isinstance(target, np.dtype) and target.kind in "iuf":
        return pd.Series(
            np.rint(values).astype(target) if target.kind in "iu" else values.astype(target, copy=False),
            name=name,
            copy=False,
        )
    series = pd.Series(values, name=name)
    if pd.api.types.is_integer_dtype(target):
        series = series.round()
    return series.astype(target)


# --------------------------------------------------------------------------- public grids


def numeric_grid(lower: float, upper: float, *, integer: bool, max_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Public cells covering ``[lower, upper]``, in value order (data-independent).

    Single-value cells at both bounds and at zero (point masses such as censoring at a bound
    or "no capital gain"); every integer of a range shorter than ``max_cells`` is its own cell;
    otherwise each segment between those points gets about ``max_cells / n_segments`` cells
    whose edges mix linear and geometric spacing (right for both flat and heavy-tailed data).

    Returns
    -------
    (low, high) : ndarrays of shape (n_cells,)
    """
    if lower == upper:
        return np.array([lower]), np.array([upper])
    if integer and upper - lower + 1 <= max_cells:
        values = np.arange(lower, upper + 1, dtype=np.float64)
        return values, values.copy()
    points = sorted({lower, upper} | ({0.0} if lower < 0 < upper else set()))
    per_segment = max(2, (max_cells - len(points)) // (len(points) - 1))
    lows, highs, is_point = list(points), list(points), [True] * len(points)
    for start, stop in zip(points[:-1], points[1:], strict=True):
        low, high = _segment_cells(start, stop, integer=integer, n_cells=per_segment)
        lows += low.tolist()
        highs += high.tolist()
        is_point += [False] * len(low)
    order = np.lexsort((~np.array(is_point), np.array(lows)))
    return np.array(lows)[order], np.array(highs)[order]


def _segment_cells(start: float, stop: float, *, integer: bool, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells strictly between two grid points (integers) or covering [start, stop) (floats)."""
    if stop <= 0:
        low, high = _segment_cells(-stop, -start, integer=integer, n_cells=n_cells)
        return -high[::-1], -low[::-1]
    first = start + 1 if integer else start
    if first >= stop:
        return np.empty(0), np.empty(0)
    unit = first if first > 0 else (1.0 if integer else stop * 1e-6)
    half = n_cells // 2 + 1
    edges = np.concatenate([[first, stop], np.geomspace(unit, stop, half), np.linspace(first, stop, half)])
    edges = np.unique(np.round(edges) if integer else edges)
    edges = edges[(edges >= first) & (edges <= stop)]
    if integer:
        return edges[:-1], edges[1:] - 1.0
    return edges[:-1], edges[1:]


# --------------------------------------------------------------------------- private domains


def fit_codecs(
    source: CountSource,
    specs: list[ColumnSpec],
    *,
    rho: float,
    threshold_delta: float,
    max_cells: int,
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
) -> list[Codec]:
    """Build every column's codec, estimating undeclared domains with DP.

    Parameters
    ----------
    source : CountSource
        Where the counts come from (``FrameCounts(frame)`` for a frame in memory): the value
        counts of undeclared categorical columns and the magnitude histograms of numeric
        columns without declared bounds are all this stage reads.
    rho : float
        zCDP budget of the ``"domain"`` stage, split evenly over the columns that need it.
    threshold_delta : float
        Approximate-zCDP δ of the sparse category histograms, split evenly over them.
    """
    private = [spec for spec in specs if spec.needs_private_domain]
    sparse = [spec for spec in private if spec.type == "categorical"]
    sigma = gaussian_sigma(rho / len(private)) if private else math.inf
    delta = threshold_delta / len(sparse) if sparse else 0.0
    codecs: list[Codec] = []
    for spec in specs:
        nullable = is_nullable(spec)
        if spec.is_numeric:
            bounds = _bounds(source, spec, sigma, accountant, rng)
            codecs.append(_numeric_codec(spec, bounds, nullable, max_cells))
        else:
            values = _categories(source, spec, sigma, delta, accountant, rng)
            codecs.append(CategoricalCodec(spec.name, values, spec.categories is None, nullable, output_dtype(spec)))
    return codecs


def _categories(
    source: CountSource,
    spec: ColumnSpec,
    sigma: float,
    delta: float,
    accountant: ZCDPAccountant,
    rng: np.random.Generator,
) -> list[Any]:
    if spec.categories is not None:
        return list(spec.categories)
    found, counts = source.category_counts(spec)
    keys = np.array(found, dtype=object)
    order = np.argsort([repr(key) for key in keys], kind="stable")
    released, _ = sparse_histogram(keys[order], np.asarray(counts)[order], sigma, delta, rng)
    accountant.add_thresholded_gaussian("domain", sigma, delta)
    return list(released)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _numeric_codec(spec: ColumnSpec, bounds: tuple[float, float], nullable: bool, max_cells: int) -> NumericCodec:
    """The public grid of a numeric column; a datetime's grid counts whole units of its declared
    resolution (cells from a multiple of the unit to just before the next), so that it decodes to
    whole days, hours or minutes whatever the data hold (issue 11.3: never inferred from them)."""
    integer = spec.type in ("integer", "datetime")
    if spec.step is not None:  # whole multiples of the declared step, as an integer grid of them
        first = math.ceil(bounds[0] / spec.step - 1e-9)
        last = max(math.floor(bounds[1] / spec.step + 1e-9), first)
        low, high = numeric_grid(float(first), float(last), integer=True, max_cells=max_cells)
        return NumericCodec(
            spec.name,
            spec.type,
            grid_values(low, spec.step),
            grid_values(high, spec.step),
            nullable,
            output_dtype(spec),
            step=spec.step,
        )
    if spec.calendar == "weekdays":  # whole weekdays: the grid counts Monday to Friday only
        first = weekday_index(np.array([math.ceil(bounds[0] / DAY) * DAY]))[0]
        last = max(weekday_index(np.array([(math.floor(bounds[1] / DAY) + 1.0) * DAY]))[0] - 1.0, first)
        low, high = numeric_grid(first, last, integer=True, max_cells=max_cells)
        return NumericCodec(
            spec.name,
            spec.type,
            weekday_seconds(low),
            weekday_seconds(high) + (DAY - 1.0),
            nullable,
            output_dtype(spec),
            unit=DAY,
            calendar=spec.calendar,
        )
    unit = float(spec.unit_seconds)
    if unit == 1.0:
        low, high = numeric_grid(*bounds, integer=integer, max_cells=max_cells)
        return NumericCodec(spec.name, spec.type, low, high, nullable, output_dtype(spec))
    first = math.ceil(bounds[0] / unit)
    last = max(math.floor(bounds[1] / unit), first)
    low, high = numeric_grid(float(first), float(last), integer=True, max_cells=max_cells)
    return NumericCodec(
        spec.name, spec.type, low * unit, high * unit + (unit - 1.0), nullable, output_dtype(spec), unit=unit
    )


def _bounds(
    source: CountSource, spec: ColumnSpec, sigma: float, accountant: ZCDPAccountant, rng: np.random.Generator
) -> tuple[float, float]:
    integer = spec.type in ("integer", "datetime")
    lower, upper = spec.minimum, spec.maximum
    if lower is None or upper is None:
        histogram = source.magnitude_counts(spec, integer=integer)
        private_lower, private_upper = bounds_from_magnitudes(histogram, sigma, integer=integer, rng=rng)
        accountant.add_gaussian("domain", sigma)
        lower = private_lower if lower is None else lower
        upper = private_upper if upper is None else upper
        upper = max(upper, lower)
        lower = min(lower, upper)
    if integer:
        return float(math.ceil(lower)), float(math.floor(upper))
    return float(lower), float(upper)


def magnitude_thresholds(*, integer: bool) -> np.ndarray:
    """The public power-of-two magnitudes ``2^k`` that delimit the buckets of :func:`magnitude_index`."""
    smallest, largest = _MAGNITUDE_RANGE[integer]
    return np.array([2.0**k for k in range(smallest, largest + 1)])


def magnitude_index(values: np.ndarray, *, integer: bool) -> tuple[np.ndarray, int]:
    """Bucket of each value over public power-of-two magnitudes, and the number of buckets.

    Buckets are ``{0}`` (or ``(-2^k0, 2^k0)`` for floats) at the centre and ``±[2^k, 2^(k+1))``
    either side (the outermost open-ended). The step of a value is the number of thresholds
    ``2^k`` at most its magnitude: an exact comparison, so an engine computing it in SQL
    (``width_bucket``) puts every value in the same bucket.
    """
    thresholds = magnitude_thresholds(integer=integer)
    side = len(thresholds)
    step = np.searchsorted(thresholds, np.abs(values), side="right")
    return (side + np.sign(values) * step).astype(np.int64), 2 * side + 1


def private_bounds(values: np.ndarray, sigma: float, *, integer: bool, rng: np.random.Generator) -> tuple[float, float]:
    """DP range of ``values`` from a noisy histogram over public power-of-two buckets
    (:func:`magnitude_index`, then :func:`bounds_from_magnitudes`)."""
    index, length = magnitude_index(values, integer=integer)
    return bounds_from_magnitudes(np.bincount(index, minlength=length), sigma, integer=integer, rng=rng)


def bounds_from_magnitudes(
    histogram: np.ndarray, sigma: float, *, integer: bool, rng: np.random.Generator
) -> tuple[float, float]:
    """DP range from the exact magnitude histogram of a column (see :func:`magnitude_index`).

    One Gaussian measurement with L2 sensitivity 1 (a row falls in exactly one bucket); the range
    is a post-processing of the noisy counts, in three steps (issue 11.5):

    1. *Anchor*: the lowest to the highest bucket whose noisy count clears a threshold with a
       family-wise false-positive rate of :data:`ANCHOR_FALSE_POSITIVE` (10⁻⁶) over all the
       column's buckets (when none does, the best window of adjacent buckets,
       :func:`_best_window`). A bucket far from the data passes on noise alone in about one fit
       in a million per column (a 1 % rate let one in ~0.5 % of fits, and values reached
       10¹¹–10²⁴).
    2. *The other values of a zero-anchored column* (zero-inflated: capital gains are 92 % zeros,
       then hundreds to 99,999 with nothing between 1 and 100). When the anchor is the zero
       bucket alone, the windows of :data:`NONZERO_WINDOWS` adjacent buckets either side of zero
       within magnitude :data:`NONZERO_REACH` are scored by their noisy sum over its noise
       (σ·√length), and the best joins the range (with everything between it and zero) when it
       clears a family-wise false-positive rate of :data:`NONZERO_FALSE_POSITIVE` (1 %) over all
       of them: a sum over a few buckets finds a tail too thin in any one bucket for the anchor,
       and a column of zeros gains a noise-only range in at most 1 % of fits (never beyond
       :data:`NONZERO_REACH`). Before, growing never left zero and the column came out all
       zeros.
    3. *Grow*: from each end, the next bucket outward joins while its noisy count clears a
       threshold with a per-bucket false-positive rate of :data:`GROW_FALSE_POSITIVE` (5 %), or
       the bucket after it (both join) clears :data:`GAP_FALSE_POSITIVE` (10⁻³), so a thin tail
       next to the data is kept (hours worked above 63 were clipped in 78 % of fits at 3,000
       rows, ε = 1), and so is a cluster one empty bucket away (capital gains top-coded at 99,999
       beyond an almost empty [32768, 65536)), while noise can only widen the range by a factor
       of two per 5 % step or four per 0.1 % step. Growing stops at zero: a sign the anchor did
       not establish is never taken from one bucket.

    Returns
    -------
    (lower, upper) : floats, possibly wider than the data by a factor of two or more (rarely).
    """
    smallest, _ = _MAGNITUDE_RANGE[integer]
    side = (len(histogram) - 1) // 2
    noisy = gaussian_noise(histogram, sigma, rng)
    anchored = np.flatnonzero(noisy > sparse_threshold(sigma, ANCHOR_FALSE_POSITIVE / len(noisy)) - 1.0)
    low, high = (int(anchored.min()), int(anchored.max())) if anchored.size else _best_window(noisy, sigma)
    if low == high == side:
        low, high = _nonzero_part(noisy, sigma, side, integer=integer)
    grow = sparse_threshold(sigma, GROW_FALSE_POSITIVE) - 1.0
    gap = sparse_threshold(sigma, GAP_FALSE_POSITIVE) - 1.0
    # growing never crosses zero: a sign the anchor did not establish is not taken from one bucket
    floor, ceiling = (side if low >= side else 0), (side if high <= side else len(noisy) - 1)
    while low > floor and (noisy[low - 1] > grow or (low - 1 > floor and noisy[low - 2] > gap)):
        low -= 1 if noisy[low - 1] > grow else 2
    while high < ceiling and (noisy[high + 1] > grow or (high + 1 < ceiling and noisy[high + 2] > gap)):
        high += 1 if noisy[high + 1] > grow else 2
    return _bucket_edge(low - side, smallest, integer, low=True), _bucket_edge(
        high - side, smallest, integer, low=False
    )


def _best_window(noisy: np.ndarray, sigma: float) -> tuple[int, int]:
    """The first and last bucket of the window of :data:`NONZERO_WINDOWS` adjacent buckets whose
    noisy sum stands highest above its noise (σ·√length): the anchor when no single bucket clears
    its threshold (step 1 of :func:`bounds_from_magnitudes`). A small table spread over several
    magnitudes (569 rows over five buckets) has no bucket above the noise, but its sum over them
    is: the fullest single noisy bucket, the fallback before, was a noise-only bucket (bounds up to
    10²⁴) in about a fifth of fits at σ = 80. A post-processing of the noisy counts."""
    sums = np.concatenate([[0.0], np.cumsum(noisy)])
    best, where = -math.inf, (int(np.argmax(noisy)),) * 2
    for length in NONZERO_WINDOWS:
        if length > len(noisy):
            break
        scores = (sums[length:] - sums[:-length]) / (sigma * math.sqrt(length))
        start = int(np.argmax(scores))
        if scores[start] > best:
            best, where = float(scores[start]), (start, start + length - 1)
    return where


def _nonzero_part(noisy: np.ndarray, sigma: float, side: int, *, integer: bool) -> tuple[int, int]:
    """The range of bucket indices from zero to the far end of the best-scoring window either side
    of the zero bucket (step 2 of :func:`bounds_from_magnitudes`), or the zero bucket alone when
    no window clears the family-wise threshold. Public window set, noisy sums only."""
    reach = int(np.searchsorted(magnitude_thresholds(integer=integer), NONZERO_REACH, side="right"))
    sums = np.concatenate([[0.0], np.cumsum(noisy[side + 1 : side + reach + 1])])
    sums_below = np.concatenate([[0.0], np.cumsum(noisy[side - 1 : side - reach - 1 : -1])])
    best, best_far, count = -math.inf, 0, 0
    for length in NONZERO_WINDOWS:
        for direction, cumulative in ((1, sums), (-1, sums_below)):
            scores = (cumulative[length:] - cumulative[:-length]) / (sigma * math.sqrt(length))
            count += len(scores)
            if len(scores) and scores.max() > best:
                best, best_far = float(scores.max()), direction * (int(np.argmax(scores)) + length)
    if count == 0 or best <= -NormalDist().inv_cdf(NONZERO_FALSE_POSITIVE / count):
        return side, side
    return min(side, side + best_far), max(side, side + best_far)


def _bucket_edge(offset: int, smallest: int, integer: bool, *, low: bool) -> float:
    if offset == 0:
        zero_edge = 0.0 if integer else 2.0**smallest
        return -zero_edge if low else zero_edge
    exponent = smallest + abs(offset) - 1
    inner, outer = 2.0**exponent, 2.0 ** (exponent + 1) - (1.0 if integer else 0.0)
    if offset > 0:
        return inner if low else outer
    return -outer if low else -inner


# --------------------------------------------------------------------------- bins


def ordered_bins(counts: np.ndarray, *, max_bins: int, min_count: float) -> np.ndarray:
    """Group value-ordered cells into contiguous, quantile-like bins (a post-processing).

    A cell holding at least 1/``max_bins`` of the estimated mass keeps a bin to itself (point
    masses); the other cells are swept left to right into bins of about equal mass, at least
    ``min_count`` rows (so a bin is not noise-dominated in the 2-way tables).

    Parameters
    ----------
    counts : ndarray of shape (n_cells,)
        Non-negative estimated counts of the cells, in value order.

    Returns
    -------
    ndarray of int64, shape (n_cells,): the bin of each cell, 0 .. n_bins-1, non-decreasing.
    """
    total = float(counts.sum())
    heavy = counts >= total / max_bins if total > 0 else np.zeros(len(counts), bool)
    free = max(max_bins - int(heavy.sum()), 1)
    target = max(min_count, float(counts[~heavy].sum()) / free, 1e-12)
    groups: list[list[int]] = []
    current: list[int] = []
    mass = 0.0
    for cell in range(len(counts)):
        if heavy[cell]:
            groups += [current, [cell]] if current else [[cell]]
            current, mass = [], 0.0
            continue
        current.append(cell)
        mass += float(counts[cell])
        if mass >= target:
            groups.append(current)
            current, mass = [], 0.0
    groups = _merge_light(groups + ([current] if current else []), counts, min_count)
    bins = np.empty(len(counts), dtype=np.int64)
    for number, group in enumerate(groups):
        bins[group] = number
    return bins


def _merge_light(groups: list[list[int]], counts: np.ndarray, min_count: float) -> list[list[int]]:
    merged: list[list[int]] = []
    for group in groups:
        light = counts[group].sum() < min_count and len(counts[group]) > 0
        if merged and light and not _is_single_heavy(merged[-1], counts, min_count):
            merged[-1] = merged[-1] + group
        else:
            merged.append(group)
    if len(merged) > 1 and counts[merged[0]].sum() < min_count:
        merged[1] = merged[0] + merged[1]
        merged.pop(0)
    return merged


def _is_single_heavy(group: list[int], counts: np.ndarray, min_count: float) -> bool:
    return len(group) == 1 and counts[group[0]] >= min_count


def unordered_bins(counts: np.ndarray, *, max_bins: int, min_count: float, keep_all: bool = False) -> np.ndarray:
    """Bins for unordered codes: each frequent code alone, the rare ones pooled (post-processing).

    Codes with at least ``min_count`` estimated rows (the ``max_bins - 1`` largest) keep their
    own bin; the rest share one pooled bin, which joins the largest bin when it holds fewer than
    ``min_count`` rows itself (a noise-dominated bin costs more than it shows). ``keep_all``
    gives every code its own bin (the label, so that conditioning on a class is exact).
    """
    n_codes = len(counts)
    if keep_all or n_codes <= 1:
        return np.arange(n_codes, dtype=np.int64)
    ranked = np.lexsort((np.arange(n_codes), -counts))
    alone = np.zeros(n_codes, dtype=bool)
    alone[ranked[: max_bins - 1]] = True
    alone &= counts >= min_count
    if alone.sum() >= n_codes - 1:
        return np.arange(n_codes, dtype=np.int64)
    pooled = n_codes if alone.any() and counts[~alone].sum() >= min_count else ranked[0]
    labels = np.where(alone, np.arange(n_codes), pooled)
    _, bins = np.unique(labels, return_inverse=True)
    return bins.astype(np.int64)


def target_shares(codec: CategoricalCodec, wanted: Any, estimate: np.ndarray | None = None) -> np.ndarray:
    """Shares over ``codec``'s codes for a condition: one value, or ``{value: share}``.

    Shares may name only some values (``{"Yes": 0.5}``): the remainder goes to the values not
    named, in proportion to ``estimate`` (the model's own private estimate of the column's
    distribution; uniform when absent), so a rebalancing request need not list every class.
    """
    shares_by_value = wanted if isinstance(wanted, dict) else {wanted: 1.0}
    shares = np.zeros(codec.n_codes)
    named = np.zeros(codec.n_codes, dtype=bool)
    for value, share in shares_by_value.items():
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
            raise GeneratorError(f"share for {value!r} must be a number between 0 and 1")
        code = codec.code_of(value)
        shares[code] += share
        named[code] = True
    remainder = 1.0 - shares.sum()
    if remainder < -1e-6:
        raise GeneratorError(f"condition shares must sum to at most 1, got {shares.sum():.6g}")
    if remainder > 1e-6:
        if named.all():
            raise GeneratorError(f"condition shares name every value but sum to {shares.sum():.6g}, not 1")
        weights = np.where(named, 0.0, estimate if estimate is not None and len(estimate) == len(shares) else 1.0)
        weights = np.clip(weights, 0.0, None)
        if weights.sum() <= 0:
            weights = (~named).astype(float)
        shares += remainder * weights / weights.sum()
    return shares


def _numeric_output_arrays(values: np.ndarray, kind: str, dtype: str) -> Any:
    """The two common outputs built as arrays: what ``pd.to_datetime(values, unit="s")`` gives for
    whole seconds, and ``Series(values).round().astype("Int64")``; None for any other case."""
    if not ((kind == "datetime" and dtype == "datetime64[ns]") or (kind != "datetime" and dtype == "Int64")):
        return None
    missing = np.isnan(values)
    magnitude = np.abs(values)  # NaN compares false: only present values can fail the checks
    if kind == "datetime" and dtype == "datetime64[ns]":
        if ((np.floor(values) != values) & ~missing).any() or (magnitude >= 9.2e9).any():
            return None
        stamps = (np.where(missing, 0.0, values).astype(np.int64) * 10**9).view("datetime64[ns]")
        stamps[missing] = np.datetime64("NaT")
        return stamps
    if kind != "datetime" and dtype == "Int64" and not (magnitude >= 2.0**62).any():
        return pd.arrays.IntegerArray(np.rint(np.where(missing, 0.0, values)).astype(np.int64), missing)
    return None
