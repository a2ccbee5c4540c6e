"""The table schema: one vocabulary, one parser, one numeric view. Pure (no Django).

A schema is ``{"columns": [{"name", "type", "role", ...}], "missing_values": [...]}``. Every app
reads it through this module: ingest (``governance/ingest.py``) checks a declared schema against
the uploaded file, the generators (``synth_engine/generators/domain.py``) turn it into codecs,
and the audit checks (``audits/metrics/encoding.py``) into roles and distances. Each translates
:class:`SchemaError` into its own error type.

Column keys:

- ``name``, ``type`` (:data:`COLUMN_TYPES`), ``role`` (:data:`COLUMN_ROLES`, default ``other``);
- public domain, declared by the steward and never charged: ``min``/``max`` (numbers; ISO 8601
  strings for datetimes), ``categories`` (a non-empty list), ``nullable`` (a boolean) and, for
  datetimes, ``resolution`` (:data:`DATETIME_RESOLUTIONS`, default ``second``: released values are
  whole days, hours, minutes or seconds in UTC; never read from the data by a generator, and
  never stored from the rows: registration only suggests it to the steward) and ``calendar``
  (:data:`DATETIME_CALENDARS`; ``"weekdays"``: a day-resolution column holds only Monday to
  Friday, such as trading days, and is released on those days only) and, for floats,
  ``step`` (a positive number: the column holds only whole multiples of it, such as answers
  coded 17.5, 22, 27 on a 0.5 grid, and is released on that grid; likewise only suggested);
- ``domain_source``: where the public domain comes from (a codebook, a standard), shown with it;
- ``description``; ``privileged`` (protected columns) and ``favourable`` (label column), read by
  the bias and utility checks;
- ``type_proposed``: ``true`` while the column's ``type`` is only what registration read from the
  rows (:func:`proposed_type_columns`). A type is structure, and one row (a 2.5 in a column of whole
  numbers, one word in a column of numbers) would change it, so it is the steward's to declare
  (``"type"`` in a declaration, which drops the key); a version with a proposed type cannot be
  requested, and requesters read its type as ``null`` (:func:`schema_public`). A schema the steward
  gives declares its types outright (:func:`schema_types_declared`).

Datetimes are numeric: they are modelled on a number line as whole seconds since the epoch in
UTC. A naive timestamp is taken to be UTC; an aware one is converted to UTC (the one time-zone
rule, in :func:`numeric_values` and in datetime bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

COLUMN_TYPES = ("integer", "float", "categorical", "boolean", "datetime")
COLUMN_ROLES = ("identifier", "quasi_identifier", "sensitive", "protected", "label", "other")
NUMERIC_TYPES = ("integer", "float", "datetime")
CATEGORICAL_TYPES = ("categorical", "boolean")
COLUMN_KEYS = (
    *("name", "type", "role", "min", "max", "categories", "nullable", "resolution", "calendar", "step"),
    *("description", "domain_source", "privileged", "favourable", "type_proposed"),
)
DEFAULT_MISSING = ("",)
# The declared resolution of a datetime column: released values are whole multiples of it (UTC).
DATETIME_RESOLUTIONS = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}
# The declared calendar of a day-resolution datetime column: the days its values may fall on.
DATETIME_CALENDARS = ("weekdays",)
# Columns whose released values must stay inside a declared domain (no "other", no missing value
# unless declared nullable): the label and the protected attributes (issue 11.7).
DOMAIN_ROLES = ("label", "protected")


class SchemaError(ValueError):
    """A schema that cannot be read; the message names the column and what to change."""


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the schema, with its public facts (bounds as floats, datetimes in epoch seconds)."""

    name: str
    type: str
    role: str = "other"
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Any, ...] | None = None
    nullable: bool | None = None
    resolution: str = "second"
    calendar: str | None = None
    step: float | None = None
    entry: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def unit_seconds(self) -> int:
        """A datetime's declared resolution in seconds (1 for other types)."""
        return DATETIME_RESOLUTIONS[self.resolution] if self.type == "datetime" else 1

    @property
    def is_numeric(self) -> bool:
        return self.type in NUMERIC_TYPES

    @property
    def needs_declared_domain(self) -> bool:
        """A label or protected column (:data:`DOMAIN_ROLES`): its domain must be declared."""
        return self.role in DOMAIN_ROLES

    @property
    def domain_declared(self) -> bool:
        """Categories (categorical; booleans always have theirs) or both bounds (numeric) are declared."""
        if self.is_numeric:
            return self.minimum is not None and self.maximum is not None
        return self.categories is not None

    @property
    def needs_private_domain(self) -> bool:
        if self.type == "categorical":
            return self.categories is None
        return self.is_numeric and (self.minimum is None or self.maximum is None)


def parse_schema(schema: Any, *, strict: bool = False) -> list[ColumnSpec]:
    """Read a schema into column specs, in its order.

    Parameters
    ----------
    schema : dict
        ``{"columns": [...]}``.
    strict : bool
        Also refuse keys outside :data:`COLUMN_KEYS` (a steward's declaration at the edge).

    Raises
    ------
    SchemaError
        Not an object with a non-empty ``columns`` list, a bad column, a column listed twice, or
        more than one label.
    """
    if not isinstance(schema, dict) or not isinstance(schema.get("columns"), list) or not schema["columns"]:
        raise SchemaError('The schema must be a JSON object with a non-empty "columns" list.')
    specs = [parse_column(position, column, strict=strict) for position, column in enumerate(schema["columns"])]
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SchemaError(f"The schema lists columns twice: {', '.join(duplicates)}.")
    labels = [spec.name for spec in specs if spec.role == "label"]
    if len(labels) > 1:
        raise SchemaError(f"At most one label column is allowed; the schema marks {', '.join(labels)}.")
    return specs


def parse_column(position: int, column: Any, *, strict: bool = False) -> ColumnSpec:
    """Read one column entry (``position`` counts from 0 and names a column without a name)."""
    if not isinstance(column, dict) or not isinstance(column.get("name"), str) or not column["name"].strip():
        raise SchemaError(f'Schema column {position + 1} needs a non-empty string "name".')
    name, kind, role = column["name"].strip(), column.get("type"), column.get("role", "other")
    unknown = sorted(set(column) - set(COLUMN_KEYS))
    if strict and unknown:
        raise SchemaError(f"Schema column {name!r} has unknown keys: {', '.join(unknown)}.")
    if kind not in COLUMN_TYPES:
        raise SchemaError(f"Schema column {name!r}: type must be one of {', '.join(COLUMN_TYPES)}; got {kind!r}.")
    if role not in COLUMN_ROLES:
        raise SchemaError(f"Schema column {name!r}: role must be one of {', '.join(COLUMN_ROLES)}; got {role!r}.")
    minimum, maximum = (_bound(name, kind, key, column.get(key)) for key in ("min", "max"))
    if minimum is not None and maximum is not None and minimum > maximum:
        raise SchemaError(f"Schema column {name!r}: min is greater than max.")
    if not isinstance(column.get("domain_source", ""), str):
        raise SchemaError(f"Schema column {name!r}: domain_source must be text (where the public domain comes from).")
    nullable = column.get("nullable")
    if nullable is not None and not isinstance(nullable, bool):
        raise SchemaError(f"Schema column {name!r}: nullable must be true or false.")
    resolution = column.get("resolution", "second")
    if "resolution" in column and kind != "datetime":
        raise SchemaError(f"Schema column {name!r}: resolution is only allowed on datetime columns.")
    if resolution not in DATETIME_RESOLUTIONS:
        raise SchemaError(
            f"Schema column {name!r}: resolution must be one of {', '.join(DATETIME_RESOLUTIONS)}; got {resolution!r}."
        )
    if not isinstance(column.get("type_proposed", False), bool):
        raise SchemaError(f"Schema column {name!r}: type_proposed must be true or false.")
    calendar = column.get("calendar")
    if calendar is not None and (kind != "datetime" or resolution != "day" or calendar not in DATETIME_CALENDARS):
        raise SchemaError(
            f"Schema column {name!r}: calendar is only allowed on datetime columns of resolution day, "
            f"and must be one of {', '.join(DATETIME_CALENDARS)}; got {calendar!r}."
        )
    return ColumnSpec(
        name=name,
        type=kind,
        role=role,
        minimum=minimum,
        maximum=maximum,
        categories=_categories(name, kind, column),
        nullable=nullable,
        resolution=resolution,
        calendar=calendar,
        step=_step(name, kind, column),
        entry={**column, "name": name, "role": role},
    )


def _step(name: str, kind: str, column: dict[str, Any]) -> float | None:
    """A float column's declared grid step (issue 11.6), or ``None`` for a continuous column."""
    if "step" not in column:
        return None
    value = column["step"]
    if kind != "float":
        raise SchemaError(f"Schema column {name!r}: step is only allowed on float columns.")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise SchemaError(f"Schema column {name!r}: step must be a positive number; got {value!r}.")
    return float(value)


def _bound(name: str, kind: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if kind not in NUMERIC_TYPES:
        raise SchemaError(f"Schema column {name!r}: {key} is only allowed on numeric columns.")
    if kind == "datetime" and isinstance(value, str):
        import pandas as pd  # only here and for frames: reading a schema must not load pandas

        try:
            return float(_epoch_seconds(pd.Series([pd.Timestamp(value)]))[0])
        except ValueError as error:
            raise SchemaError(f"Schema column {name!r}: {key} must be an ISO 8601 date or time.") from error
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SchemaError(f"Schema column {name!r}: {key} must be a finite number.")
    return float(value)


def _categories(name: str, kind: str, column: dict[str, Any]) -> tuple[Any, ...] | None:
    if kind == "boolean":
        return (False, True)
    if "categories" not in column:
        return None
    categories = column["categories"]
    if not isinstance(categories, list) or not categories:
        raise SchemaError(f"Schema column {name!r}: categories must be a non-empty list.")
    return tuple(categories)


def undeclared_domains(specs: list[ColumnSpec]) -> list[str]:
    """One sentence per label or protected column whose domain is not declared (empty: all are).

    A DP generator estimates an undeclared domain from the data and pools rare values into an
    ``other`` code, so such a column could receive values it never had; a label or a protected
    attribute must not (a classifier or a bias check would read them as classes). The steward
    declares the categories from a codebook (``synthgate dataset declare --categories``), or both
    bounds for a numeric column.
    """
    sentences = []
    for spec in specs:
        if spec.needs_declared_domain and not spec.domain_declared:
            what = "min and max" if spec.is_numeric else "categories"
            sentences.append(
                f"{spec.role} column {spec.name!r} has no declared {what}: a steward must declare them "
                f"(synthgate dataset declare NAME --column {spec.name} "
                f"{'--min X --max Y' if spec.is_numeric else '--categories A,B,...'}, "
                "from a codebook, not from the rows)"
            )
    return sentences


DECLARABLE_KEYS = (
    "type",
    "role",
    "categories",
    "min",
    "max",
    "nullable",
    "resolution",
    "calendar",
    "step",
    "domain_source",
)


def schema_declared(schema: dict[str, Any], declarations: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``schema`` with each named column's declarations applied (``None`` removes a key); not parsed.

    ``declarations`` maps a column name to keys of :data:`DECLARABLE_KEYS`. An unknown column or key
    raises :class:`SchemaError` naming it; nothing else is checked here (parse the result).
    """
    if not isinstance(schema.get("columns"), list) or not all(isinstance(entry, dict) for entry in schema["columns"]):
        raise SchemaError('The schema must be an object with a "columns" list of column objects.')
    columns = [dict(entry) for entry in schema["columns"]]
    by_name = {entry.get("name"): entry for entry in columns}
    for column, changes in declarations.items():
        entry = by_name.get(column)
        if entry is None:
            names = ", ".join(str(name) for name in by_name)
            raise SchemaError(f"There is no column {column!r} to declare; the columns: {names}.")
        if not isinstance(changes, dict):
            raise SchemaError(f"Column {column!r}: a declaration is an object of keys to values.")
        unknown = sorted(set(changes) - set(DECLARABLE_KEYS))
        if unknown:
            raise SchemaError(
                f"Column {column!r}: cannot declare {', '.join(map(str, unknown))}; "
                f"declarable: {', '.join(DECLARABLE_KEYS)}."
            )
        if "type" in changes and changes["type"] is None:
            raise SchemaError(f"Column {column!r}: a type cannot be removed; declare one of {', '.join(COLUMN_TYPES)}.")
        for key, value in changes.items():
            if value is None:
                entry.pop(key, None)
            else:
                entry[key] = value
        if "type" in changes:
            entry.pop("type_proposed", None)  # the steward's declaration, no longer a proposal
    return {**schema, "columns": columns}


def proposed_type_columns(schema: dict[str, Any]) -> list[str]:
    """The columns whose type is still only proposed from the rows (``type_proposed``), in order."""
    return [
        str(entry.get("name"))
        for entry in schema.get("columns", [])
        if isinstance(entry, dict) and entry.get("type_proposed")
    ]


def proposed_types_declarations(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Declarations that declare every proposed type as proposed (column → ``{"type": ...}``)."""
    by_name = {entry["name"]: entry for entry in schema.get("columns", []) if isinstance(entry, dict)}
    return {name: {"type": by_name[name]["type"]} for name in proposed_type_columns(schema)}


def schema_types_declared(schema: Any) -> Any:
    """A schema the steward gives, its types declared outright (any ``type_proposed`` dropped);
    anything that is not a schema is returned as it is, for the parser to refuse."""
    if not isinstance(schema, dict) or not isinstance(schema.get("columns"), list):
        return schema
    columns = [
        {key: value for key, value in entry.items() if key != "type_proposed"} if isinstance(entry, dict) else entry
        for entry in schema["columns"]
    ]
    return {**schema, "columns": columns}


def schema_public(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as anyone but a steward reads it: a proposed type (read from the rows, not yet
    declared) is ``null``, so the same columns give the same public schema whatever their rows hold."""
    columns = [
        {**entry, "type": None} if isinstance(entry, dict) and entry.get("type_proposed") else entry
        for entry in schema.get("columns", [])
    ]
    return {**schema, "columns": columns}


def numeric_values(series: pd.Series, kind: str | None = None) -> np.ndarray:
    """Float64 view of a numeric column; missing (or unreadable) values are NaN.

    Parameters
    ----------
    series : pandas.Series
        The column's values.
    kind : str, optional
        The schema type; ``"datetime"`` (or a datetime dtype) gives whole seconds since the epoch
        in UTC, naive timestamps read as UTC.

    Returns
    -------
    numpy.ndarray of shape (n,), dtype float64
    """
    import numpy as np
    import pandas as pd

    if kind == "datetime" or pd.api.types.is_datetime64_any_dtype(series):
        return _epoch_seconds(series)
    values: np.ndarray = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def _epoch_seconds(series: pd.Series) -> np.ndarray:
    import numpy as np
    import pandas as pd

    stamps = pd.to_datetime(series, utc=True)
    missing = stamps.isna().to_numpy()
    nanos = stamps.dt.tz_localize(None).astype("datetime64[ns]").to_numpy().astype(np.int64).astype(np.float64)
    return np.where(missing, np.nan, np.floor(nanos / 1e9))
