"""Reading an uploaded table safely: size and decompression limits, strict UTF-8, a
rectangular CSV, a schema (declared or inferred), typed columns, and canonical bytes.

Everything here checks outside data once, at the edge, and raises ``DatasetFormatError``
naming the line, column or field at fault. Nothing here writes to the database.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import io
import lzma
import math
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from core.errors import DatasetFormatError
from core.schema import DEFAULT_MISSING, SchemaError, numeric_values, parse_schema
from governance.canonical_csv import canonical_csv

TRUE_TOKENS = {"true", "t", "yes", "y", "1"}
FALSE_TOKENS = {"false", "f", "no", "n", "0"}
# A compression ratio is only meaningful once something sizeable has been expanded.
RATIO_CHECK_AFTER_BYTES = 1024 * 1024
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class IngestLimits:
    max_upload_bytes: int
    max_expanded_bytes: int
    max_compression_ratio: int
    max_columns: int = 1000
    max_cell_chars: int = 4096


@dataclass
class Table:
    """A validated table: typed frame (identifiers dropped), schema and canonical bytes."""

    frame: pd.DataFrame
    schema: dict[str, Any]
    schema_inferred: bool
    dropped_columns: list[str]
    canonical_bytes: bytes
    content_hash: str
    warnings: list[str] = field(default_factory=list)


@dataclass
class StreamedTable:
    """A table already written in its stored form (a temporary file until it is stored as a version)."""

    path: Path
    schema: dict[str, Any]
    content_hash: str
    n_rows: int
    n_columns: int
    size_bytes: int
    value_counts: dict[str, Counter[str]] = field(default_factory=dict)
    file_format: str = "csv"  # the stored form: canonical CSV, or Parquet (``governance.parquet_form``)

    def shares(self, column: str) -> dict[str, float]:
        """A counted column's shares of the rows, rounded to 4 places, largest first."""
        counts = self.value_counts[column]
        return {value: round(count / self.n_rows, 4) for value, count in counts.most_common()}

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


def read_table(path: Path, *, filename: str, limits: IngestLimits, schema: dict[str, Any] | None) -> Table:
    """Read, validate and canonicalise an uploaded CSV/Parquet file (optionally compressed)."""
    raw = _read_limited(path, filename=filename, limits=limits)
    if raw[:4] == b"PAR1":
        header, rows = _parquet_rows(raw, limits=limits)
    else:
        _check_no_nul(raw)
        header, rows = _csv_rows(_decode_utf8(raw), limits=limits)
    _check_cells(header, rows, limits=limits)
    missing = tuple(schema.get("missing_values", DEFAULT_MISSING)) if schema else DEFAULT_MISSING
    if schema is None:
        schema, inferred = infer_schema(header, rows, missing_values=missing), True
    else:
        schema, inferred = validate_schema(schema, header), False
    table = build_table(header, rows, schema, schema_inferred=inferred)
    if not inferred:
        table.warnings += domain_read_from_data_warnings(table.frame, table.schema)
    return table


def build_table(header: list[str], rows: list[list[str]], schema: dict[str, Any], *, schema_inferred: bool) -> Table:
    missing = tuple(schema.get("missing_values", DEFAULT_MISSING))
    by_name = {column["name"]: column for column in schema["columns"]}
    dropped = [name for name in header if by_name[name]["role"] == "identifier"]
    kept = [column for column in schema["columns"] if column["role"] != "identifier"]
    if not kept:
        raise DatasetFormatError(
            "Every column is an identifier: nothing would be stored.", extra={"dropped_columns": dropped}
        )
    index = {name: position for position, name in enumerate(header)}
    frame = pd.DataFrame(
        {column["name"]: typed_column(column, [row[index[column["name"]]] for row in rows], missing) for column in kept}
    )
    stored_schema = {**schema, "columns": kept}
    data = canonical_bytes(frame, stored_schema)
    return Table(
        frame=frame,
        schema=stored_schema,
        schema_inferred=schema_inferred,
        dropped_columns=dropped,
        canonical_bytes=data,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


# --- declared domains --------------------------------------------------------------------

READ_FROM_DATA = "this looks read from the data; declared domains must be public knowledge"


def domain_read_from_data_warnings(frame: pd.DataFrame, schema: dict[str, Any]) -> list[str]:
    """Warn where a declared public domain matches the data exactly (a bound equal to the exact
    minimum or maximum, a category list equal to the categories present): declared domains are
    never charged, so one read from the rows leaks them for free. A column whose entry names its
    public source (``domain_source``) is not warned about: the steward has said where it comes from."""
    warnings = []
    for spec in parse_schema(schema):
        if spec.entry.get("domain_source") or spec.name not in frame.columns:
            continue
        series = frame[spec.name]
        if spec.is_numeric and (spec.minimum is not None or spec.maximum is not None):
            values = numeric_values(series, spec.type)
            values = values[~np.isnan(values)]
            for key, declared, exact in (
                ("min", spec.minimum, values.min(initial=np.inf)),
                ("max", spec.maximum, values.max(initial=-np.inf)),
            ):
                if declared is not None and declared == exact:
                    warnings.append(
                        f"Column {spec.name!r}: the declared {key} {spec.entry[key]} equals the exact {key}imum "
                        f"of the data; {READ_FROM_DATA}."
                    )
        if spec.type == "categorical" and spec.categories is not None:
            present = {str(value) for value in series.dropna().unique()}
            if present == {str(value) for value in spec.categories}:
                warnings.append(
                    f"Column {spec.name!r}: the declared categories are exactly the {len(present)} present in the "
                    f"data; {READ_FROM_DATA}."
                )
    return warnings


# --- reading bytes -----------------------------------------------------------------------


def _read_limited(path: Path, *, filename: str, limits: IngestLimits) -> bytes:
    size = path.stat().st_size
    if size > limits.max_upload_bytes:
        raise DatasetFormatError(
            f"The file is {size:,} bytes, over the upload limit of {limits.max_upload_bytes:,} bytes.",
            extra={"size_bytes": size, "limit_bytes": limits.max_upload_bytes},
        )
    if size == 0:
        raise DatasetFormatError("The file is empty.")
    with path.open("rb") as handle:
        magic = handle.read(6)
    opener = _decompressor(magic, filename.lower(), path)
    if opener is None:
        return path.read_bytes()
    return _expand(opener, compressed_size=size, limits=limits)


def _decompressor(magic: bytes, lowered_name: str, path: Path) -> Any:
    if magic[:2] == b"\x1f\x8b":
        return lambda: gzip.open(path, "rb")
    if magic[:3] == b"BZh":
        return lambda: bz2.open(path, "rb")
    if magic[:6] == b"\xfd7zXZ\x00":
        return lambda: lzma.open(path, "rb")
    if magic[:4] == b"PK\x03\x04":
        return lambda: _zip_member(path)
    if lowered_name.endswith((".gz", ".bz2", ".xz", ".zip")):
        raise DatasetFormatError(f"{lowered_name!r} is named as compressed but its content is not a valid archive.")
    return None


def _zip_member(path: Path) -> io.BufferedIOBase:
    archive = zipfile.ZipFile(path)
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) != 1:
        raise DatasetFormatError(f"A zip upload must hold exactly one file; this one holds {len(members)}.")
    return archive.open(members[0])  # type: ignore[return-value]  # a ZipExtFile is a binary file, not typed as one


def _expand(opener: Any, *, compressed_size: int, limits: IngestLimits) -> bytes:
    """Decompress in chunks, stopping as soon as the size or ratio limit is passed (zip bombs)."""
    parts, expanded = [], 0
    try:
        with opener() as stream:
            while chunk := stream.read(CHUNK_BYTES):
                expanded += len(chunk)
                _check_expansion(expanded, compressed_size, limits)
                parts.append(chunk)
    # A damaged deflate stream raises zlib.error, which is not an OSError.
    except (OSError, EOFError, zipfile.BadZipFile, lzma.LZMAError, zlib.error) as error:
        raise DatasetFormatError(f"The compressed file is corrupt: {error}.") from error
    if expanded == 0:
        raise DatasetFormatError("The file is empty (the archive expands to nothing).")
    return b"".join(parts)


def _check_expansion(expanded: int, compressed_size: int, limits: IngestLimits) -> None:
    if expanded > limits.max_expanded_bytes:
        raise DatasetFormatError(
            f"The compressed upload expands past {limits.max_expanded_bytes:,} bytes, the limit.",
            extra={"limit_bytes": limits.max_expanded_bytes},
        )
    ratio = expanded / compressed_size
    if expanded > RATIO_CHECK_AFTER_BYTES and ratio > limits.max_compression_ratio:
        raise DatasetFormatError(
            f"The compressed upload expands more than {limits.max_compression_ratio}:1 "
            f"({expanded:,} bytes from {compressed_size:,}); refusing it as a likely decompression bomb.",
            extra={"ratio_limit": limits.max_compression_ratio},
        )


def _decode_utf8(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DatasetFormatError(
            f"The file is not valid UTF-8: byte {error.start} (line {line}) is {raw[error.start : error.start + 1]!r}. "
            "Re-export it as UTF-8.",
            extra={"byte_offset": error.start, "line": line},
        ) from error
    return text.removeprefix("\ufeff")


# --- rows and header ---------------------------------------------------------------------


def _csv_rows(
    text: str, *, delimiter: str | None = None, limits: IngestLimits | None = None
) -> tuple[list[str], list[list[str]]]:
    if not text.strip():
        raise DatasetFormatError("The file is empty.")
    delimiter = delimiter or _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [name.strip() for name in next(reader)]
        if limits is not None:
            _check_width(len(header), limits)
        _check_header(header)
        rows = _rectangular(reader, width=len(header))
    except csv.Error as error:
        raise DatasetFormatError(
            f"The CSV is malformed at line {reader.line_num}: {error}.", extra={"line": reader.line_num}
        ) from error
    return header, rows


def _sniff_delimiter(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    try:
        return csv.Sniffer().sniff(first_line, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _rectangular(reader: Any, *, width: int) -> list[list[str]]:
    rows = []
    for row in reader:
        if not row:
            continue  # blank lines carry no data
        if len(row) != width:
            raise DatasetFormatError(
                f"Line {reader.line_num} has {len(row)} fields; the header has {width}.",
                extra={"line": reader.line_num, "fields": len(row), "expected": width},
            )
        rows.append(row)
    if not rows:
        raise DatasetFormatError("The file has a header but no data rows.")
    return rows


def _check_no_nul(raw: bytes) -> None:
    position = raw.find(b"\x00")
    if position >= 0:
        line = raw.count(b"\n", 0, position) + 1
        raise DatasetFormatError(
            f"The file contains a NUL byte (line {line}, byte {position}); text cells may not hold NUL characters.",
            extra={"line": line, "byte_offset": position},
        )


def _check_width(width: int, limits: IngestLimits) -> None:
    # Checked on the header, before any per-column work (inference costs time per column).
    if width > limits.max_columns:
        raise DatasetFormatError(
            f"The table has {width:,} columns; the limit is {limits.max_columns:,} (SYNTHGATE_MAX_COLUMNS).",
            extra={"columns": width, "limit": limits.max_columns},
        )


def _check_cells(header: list[str], rows: list[list[str]], *, limits: IngestLimits) -> None:
    limit = limits.max_cell_chars
    longest_name = max(header, key=len)
    if len(longest_name) > limit:
        raise DatasetFormatError(
            f"A column name is {len(longest_name):,} characters long; the limit is {limit:,}.",
            extra={"length": len(longest_name), "limit": limit},
        )
    for number, row in enumerate(rows, start=1):
        if max(map(len, row)) > limit:
            column = next(name for name, cell in zip(header, row, strict=True) if len(cell) > limit)
            raise DatasetFormatError(
                f"Data row {number}, column {column!r}, holds a cell longer than {limit:,} characters "
                "(SYNTHGATE_MAX_CELL_CHARS).",
                extra={"row": number, "column": column, "limit": limit},
            )


def _check_header(header: list[str]) -> None:
    empty = [position + 1 for position, name in enumerate(header) if not name]
    if empty:
        raise DatasetFormatError(
            f"Column {empty[0]} of the header has an empty name.", extra={"empty_name_positions": empty}
        )
    duplicates = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicates:
        raise DatasetFormatError(
            f"Duplicate column names: {', '.join(duplicates)}.", extra={"duplicate_columns": duplicates}
        )


def _parquet_rows(raw: bytes, *, limits: IngestLimits) -> tuple[list[str], list[list[str]]]:
    try:
        width = len(pq.ParquetFile(io.BytesIO(raw)).schema_arrow.names)
    except Exception as error:  # pyarrow raises many kinds; all mean the same to the user
        raise DatasetFormatError(f"The Parquet file cannot be read: {error}.") from error
    _check_width(width, limits)
    try:
        frame = pd.read_parquet(io.BytesIO(raw))
    except Exception as error:  # pyarrow raises many kinds; all mean the same to the user
        raise DatasetFormatError(f"The Parquet file cannot be read: {error}.") from error
    header = [str(name).strip() for name in frame.columns]
    _check_header(header)
    if frame.empty:
        raise DatasetFormatError("The file has a header but no data rows.")
    columns = [_as_text(frame[name]) for name in frame.columns]
    if any("\x00" in value for values in columns for value in values):
        raise DatasetFormatError("The Parquet file holds a text cell with a NUL character; remove it and re-export.")
    return header, [list(values) for values in zip(*columns, strict=True)]


def _as_text(series: pd.Series) -> list[str]:
    if pd.api.types.is_float_dtype(series):
        return ["" if pd.isna(value) else repr(float(value)) for value in series]
    if pd.api.types.is_datetime64_any_dtype(series):
        return ["" if pd.isna(value) else value.isoformat() for value in series]
    return [
        "" if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA else str(value)
        for value in series
    ]


# --- schema ------------------------------------------------------------------------------


def validate_schema(schema: Any, header: list[str]) -> dict[str, Any]:
    """Check a declared schema's shape and that it names exactly the file's columns."""
    try:
        specs = parse_schema(schema, strict=True)
    except SchemaError as error:
        raise DatasetFormatError(str(error)) from error
    _check_schema_names([spec.name for spec in specs], header)
    missing_values = schema.get("missing_values", list(DEFAULT_MISSING))
    if not isinstance(missing_values, list) or not all(isinstance(token, str) for token in missing_values):
        raise DatasetFormatError('"missing_values" must be a list of strings.')
    order = {name: position for position, name in enumerate(header)}
    columns = [spec.entry for spec in sorted(specs, key=lambda spec: order[spec.name])]
    return {"columns": columns, "missing_values": missing_values}


def _check_schema_names(names: list[str], header: list[str]) -> None:
    absent = [name for name in names if name not in header]
    if absent:
        raise DatasetFormatError(
            f"The schema names columns the file lacks: {', '.join(absent)}.",
            extra={"unknown_columns": absent, "file_columns": header},
        )
    undeclared = [name for name in header if name not in names]
    if undeclared:
        raise DatasetFormatError(
            f"The file has columns the schema does not describe: {', '.join(undeclared)}.",
            extra={"undeclared_columns": undeclared},
        )


def infer_schema(header: list[str], rows: list[list[str]], *, missing_values: Iterable[str]) -> dict[str, Any]:
    """Propose each column's type from its values; every role is ``other`` until declared.

    ISO 8601 dates and times are datetimes. The type is only proposed (``"type_proposed": true``):
    it types the stored file, but one row (a 2.5 among whole numbers, one word among numbers)
    changes it, so the version cannot be requested, and requesters do not read it, until the
    steward declares it (``core.schema.proposed_type_columns``; issues 11.1, 11.3). Nothing else is
    taken from the rows: no bound, no category list, no resolution, calendar or step (the stored
    schema drives the generators, so a key read from the rows would let one row change what the
    output can hold). :func:`suggested_declarations` offers those the steward may declare.
    """
    missing = set(missing_values)
    columns = []
    for position, name in enumerate(header):
        values = [row[position] for row in rows if row[position] not in missing]
        columns.append({"name": name, "type": _infer_type(values), "role": "other", "type_proposed": True})
    return {"columns": columns, "missing_values": list(missing_values)}


def suggested_declarations(frame: pd.DataFrame, schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Column → the resolution, calendar or step its rows suggest, for the steward only; never stored
    unless the steward declares them (the shape ``dataset_schema_declare_columns`` takes).

    A datetime column whose values have no time of day gets ``"resolution": "day"``, and
    ``"calendar": "weekdays"`` when, besides, at least :data:`CALENDAR_MIN_VALUES` dates include no
    Saturday or Sunday (a trading-day table); a float column whose values all lie on a coarse grid
    (answers coded 17.5, 22, 27: at most :data:`GRID_MAX_POINTS` multiples of the step between its
    extremes) gets that ``step``. A key the schema already declares is not suggested again.
    """
    suggestions = {}
    for column in schema["columns"]:
        if column["name"] in frame.columns:
            found = _suggestion(column, frame[column["name"]].dropna())
            if found:
                suggestions[column["name"]] = found
    return suggestions


INFER_SAMPLE = 20000
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?")
CALENDAR_MIN_VALUES = 30  # (5/7)^30 < 10^-4: fewer dates without a weekend may be chance
GRID_STEPS = (1.0, 0.5, 0.25, 0.2, 0.1, 0.05, 0.025, 0.02, 0.01)
GRID_MAX_POINTS = 200


def _infer_type(values: list[str]) -> str:
    if not values:
        return "categorical"
    sample = values if len(values) <= INFER_SAMPLE else values[:INFER_SAMPLE]
    numbers = pd.to_numeric(pd.Series(sample), errors="coerce")
    if not numbers.isna().any() and np.isfinite(numbers).all():
        whole = pd.to_numeric(pd.Series(values), errors="coerce")
        if whole.isna().any():
            return "categorical"
        return "integer" if all(_looks_integral(value) for value in values) else "float"
    lowered = {value.strip().lower() for value in sample}
    if lowered and lowered <= {"true", "false"}:
        return "boolean"
    if _iso_datetimes(values) is not None:
        return "datetime"
    return "categorical"


def _iso_datetimes(values: list[str]) -> pd.Series | None:
    """The values as timestamps when every one is ISO 8601 text that the datetime reader accepts."""
    if not all(ISO_DATETIME.fullmatch(value.strip()) for value in values):
        return None
    try:
        parsed = _datetime_column("", values, np.zeros(len(values), dtype=bool))
    except (DatasetFormatError, ValueError, TypeError):
        return None
    return parsed if pd.api.types.is_datetime64_any_dtype(parsed) else None


def _suggestion(column: dict[str, Any], values: pd.Series) -> dict[str, Any]:
    """What :func:`suggested_declarations` suggests for one column, from its non-missing values."""
    if values.empty:
        return {}
    if column.get("type") == "datetime":
        if column.get("resolution", "day") != "day":
            return {}  # the steward declared another resolution
        seconds = numeric_values(values, "datetime")
        if not np.array_equal(seconds, np.floor(seconds / 86400) * 86400):
            return {}
        suggested: dict[str, Any] = {} if "resolution" in column else {"resolution": "day"}
        days = np.floor(seconds / 86400)
        weekend = np.mod(days + 3, 7) >= 5  # 1970-01-01 was a Thursday
        if "calendar" not in column and len(values) >= CALENDAR_MIN_VALUES and not weekend.any():
            suggested["calendar"] = "weekdays"
        return suggested
    if column.get("type") == "float" and "step" not in column:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
        span = float(numbers.max() - numbers.min())
        for step in GRID_STEPS:
            multiples = numbers / step
            if np.allclose(
                multiples, np.round(multiples), rtol=0.0, atol=1e-9 * max(1.0, float(np.abs(multiples).max()))
            ):
                return {"step": step} if span / step <= GRID_MAX_POINTS else {}
    return {}


def _looks_integral(text: str) -> bool:
    stripped = text.strip().lstrip("+-")
    return stripped.isdigit()


# --- typed columns -----------------------------------------------------------------------


def typed_column(column: dict[str, Any], values: list[str], missing: tuple[str, ...]) -> pd.Series:
    """One column's cells (text) typed as the schema says; a bad cell raises ``DatasetFormatError``."""
    kind, name = column["type"], column["name"]
    is_missing = np.array([value in missing for value in values])
    if kind == "datetime":
        return _datetime_column(name, values, is_missing)
    if kind in ("integer", "float"):
        return _numeric_column(name, kind, values, is_missing)
    if kind == "boolean":
        return _boolean_column(name, values, is_missing)
    return pd.Series(
        [None if flag else value for value, flag in zip(values, is_missing, strict=True)], dtype="object", name=name
    )


def _numeric_column(name: str, kind: str, values: list[str], is_missing: np.ndarray) -> pd.Series:
    parsed = pd.to_numeric(pd.Series(values, dtype="object").where(~is_missing, None), errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy() & ~is_missing)
    _raise_bad_values(name, values, bad, "is not a number")
    infinite = np.flatnonzero(~np.isfinite(parsed.fillna(0).to_numpy(dtype="float64")))
    _raise_bad_values(name, values, infinite, "is infinite")
    if kind == "float":
        return parsed.astype("float64").rename(name)
    fractional = np.flatnonzero(~is_missing & (parsed.fillna(0) % 1 != 0).to_numpy())
    _raise_bad_values(name, values, fractional, "is not a whole number (the column is integer)")
    return parsed.astype("Int64" if is_missing.any() else "int64").rename(name)


def _boolean_column(name: str, values: list[str], is_missing: np.ndarray) -> pd.Series:
    lowered = [value.strip().lower() for value in values]
    bad = np.flatnonzero(
        [not flag and token not in TRUE_TOKENS | FALSE_TOKENS for token, flag in zip(lowered, is_missing, strict=True)]
    )
    _raise_bad_values(name, values, bad, "is not a boolean (true/false)")
    data = [pd.NA if flag else token in TRUE_TOKENS for token, flag in zip(lowered, is_missing, strict=True)]
    return pd.Series(data, dtype="boolean", name=name)


def _datetime_column(name: str, values: list[str], is_missing: np.ndarray) -> pd.Series:
    series = pd.Series(values, dtype="object").where(~is_missing, None)
    parsed = pd.to_datetime(series, errors="coerce", format="ISO8601", utc=False)
    bad = np.flatnonzero(parsed.isna().to_numpy() & ~is_missing)
    _raise_bad_values(name, values, bad, "is not an ISO 8601 date or time")
    return parsed.rename(name)


def _raise_bad_values(name: str, values: list[str], bad_positions: np.ndarray, problem: str) -> None:
    if len(bad_positions) == 0:
        return
    first = int(bad_positions[0])
    examples = [
        {"row": int(position) + 1, "line": int(position) + 2, "value": values[int(position)]}
        for position in bad_positions[:5]
    ]
    raise DatasetFormatError(
        f"Column {name!r}, row {first + 1} (line {first + 2}): {values[first]!r} {problem}"
        + (f"; {len(bad_positions) - 1} more rows have the same problem." if len(bad_positions) > 1 else "."),
        extra={"column": name, "bad_rows": examples, "bad_count": int(len(bad_positions))},
    )


# --- canonical form ----------------------------------------------------------------------


def canonical_bytes(frame: pd.DataFrame, schema: dict[str, Any]) -> bytes:
    """The stored form: UTF-8 CSV, schema column order, ``\\n`` line ends, shortest exact floats,
    missing as empty fields. Its sha256 is the version's content address."""
    names = [column["name"] for column in schema["columns"]]
    fast = canonical_csv(frame, names)  # the same bytes, formatted by column in Arrow
    if fast is not None:
        return fast
    ordered = frame[names]
    buffer = io.StringIO()
    ordered.to_csv(buffer, index=False, lineterminator="\n", date_format="%Y-%m-%dT%H:%M:%S.%f")
    return buffer.getvalue().encode("utf-8")


def load_canonical(path: Path, schema: dict[str, Any]) -> pd.DataFrame:
    """Read a stored version back from a local file with the dtypes its schema gives."""
    return canonical_frame(path.read_text(encoding="utf-8"), schema)


def canonical_frame(text: str, schema: dict[str, Any]) -> pd.DataFrame:
    """A stored version's text (canonical CSV) as a frame with the dtypes its schema gives."""
    header, rows = _csv_rows(text, delimiter=",")
    stored = {**schema, "missing_values": [""]}
    return build_table(header, rows, stored, schema_inferred=False).frame
