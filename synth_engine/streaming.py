"""Synthetic output written as it is sampled: chunk by chunk, never the whole table in memory.

Each chunk is drawn from the fitted generator, typed and checked as an upload's cells
(``governance.ingest.build_table``) and appended to a file in the stored (canonical CSV) form;
the SHA-256 of the bytes, which is the version's content address, is computed as they are
written. The worker holds one chunk at a time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance.ingest import StreamedTable, Table, build_table, canonical_bytes, typed_column


def table_from_frame(frame: pd.DataFrame, schema: dict[str, Any]) -> Table:
    """Type and check a generated frame as an upload's cells would be (its canonical form included).

    The result is that of writing every cell as text (``str``, missing as empty) and reading the
    text back as an upload (``build_table``); a column whose values are already of the schema's
    type (what the generators give) is typed by whole arrays, any other column cell by cell.
    """
    stored = {**schema, "missing_values": [""]}
    if any(column["role"] == "identifier" for column in schema["columns"]):
        header = [column["name"] for column in schema["columns"]]
        return build_table(header, _cells(frame[header]).to_numpy().tolist(), stored, schema_inferred=False)
    typed = typed_frame(frame, schema)
    data = canonical_bytes(typed, stored)
    return Table(
        frame=typed,
        schema=stored,
        schema_inferred=False,
        dropped_columns=[],
        canonical_bytes=data,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def typed_frame(frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    """The columns of ``frame`` typed as an upload's cells of ``schema`` would be (no identifier
    columns: ``table_from_frame`` reads those cell by cell), checked as they are."""
    typed = {}
    for column in schema["columns"]:
        series = frame[column["name"]]
        fast = _typed_values(series, column["type"])
        if fast is None:
            fast = typed_column(column, _cells(series).tolist(), ("",))
        typed[column["name"]] = fast.rename(column["name"])
    return pd.DataFrame(typed)


def _cells(values: Any) -> Any:
    """Every cell as the text an upload would hold (missing as empty)."""
    return values.astype(object).where(values.notna(), "").astype(str)


def _typed_values(series: pd.Series, kind: str) -> pd.Series | None:
    """``series`` as ``typed_column`` would give it from its cells' text, when its values already
    have the schema's type (else None: the caller types it cell by cell)."""
    dtype, missing = series.dtype, series.isna().to_numpy()
    numpy_kind = dtype.kind if isinstance(dtype, np.dtype) else ""
    if kind == "categorical" and numpy_kind == "O":
        values = series.to_numpy()
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return None
        out = values.copy()
        out[missing | (values == "")] = None
        return pd.Series(out, dtype=object)
    if kind == "integer" and numpy_kind in ("u", "f"):
        numbers = series.to_numpy(dtype="float64")
        if not _whole_and_exact(numbers[~missing]):
            return None  # fractions, infinities or beyond 2**53: the cell-by-cell path's errors and parsing
        return _integers(np.where(missing, 0, numbers).astype(np.int64), missing)
    if kind == "integer" and (numpy_kind == "i" or isinstance(dtype, pd.Int64Dtype)):
        return _integers(series.to_numpy(dtype=np.int64, na_value=0), missing)
    if kind == "float" and dtype == np.float64 and np.isfinite(series.to_numpy()[~missing]).all():
        return pd.Series(series.to_numpy(), dtype="float64")
    if kind == "boolean" and (isinstance(dtype, pd.BooleanDtype) or numpy_kind == "b"):
        return series.astype("boolean")
    if kind == "datetime" and dtype == np.dtype("datetime64[ns]"):
        return pd.Series(series.to_numpy(), dtype="datetime64[ns]")
    return None


def _integers(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    """Nullable integers when a value is missing, else int64 (as ``typed_column`` types them)."""
    return pd.Series(pd.arrays.IntegerArray(values, missing.copy())) if missing.any() else pd.Series(values)


def _whole_and_exact(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2.0**53)))


def sample_to_file(
    sample: Callable[[int], pd.DataFrame],
    n_rows: int,
    schema: dict[str, Any],
    directory: Path,
    *,
    chunk_rows: int,
    prefix: str = ".sampling-",
    count_columns: tuple[str, ...] = (),
    after_chunk: Callable[[int], None] = lambda done: None,
) -> StreamedTable:
    """Draw ``n_rows`` rows as ``sample(k)`` calls of at most ``chunk_rows`` and write them.

    ``prefix``: the file name's start (a job names itself, so a file its killed worker left
    can be found). ``count_columns``: columns whose values are counted on the way (the released shares of a
    rebalanced column). ``after_chunk(rows_done)`` runs after each chunk (progress, cancel
    checks); anything it raises removes the partial file.
    """
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".csv")
    path = Path(name)
    digest, size, done = hashlib.sha256(), 0, 0
    counts: dict[str, Counter[str]] = {column: Counter() for column in count_columns}
    stored_schema: dict[str, Any] = schema
    try:
        with os.fdopen(handle, "wb") as stream:
            while done < n_rows:
                table = table_from_frame(sample(min(chunk_rows, n_rows - done)), schema)
                stored_schema = table.schema
                data = table.canonical_bytes
                if done:  # the header is written once, with the first chunk
                    data = data[data.index(b"\n") + 1 :]
                stream.write(data)
                digest.update(data)
                size += len(data)
                done += len(table.frame)
                for column in count_columns:
                    counts[column].update(table.frame[column].astype(str))
                del table, data
                after_chunk(done)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return StreamedTable(
        path=path,
        schema=stored_schema,
        content_hash=digest.hexdigest(),
        n_rows=done,
        n_columns=len(stored_schema["columns"]),
        size_bytes=size,
        value_counts=counts,
    )
