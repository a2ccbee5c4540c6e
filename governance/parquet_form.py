"""The Parquet stored form of a typed table: a job's synthetic output when its request asks for
Parquet (``DataRequest.output_format``); every other version is canonical CSV.

A version's form is named by its storage key's suffix (``governance.output_formats``). The Arrow
types follow the schema, never the data (``arrow_schema``): categorical as UTF-8 strings
(dictionary-encoded in the file), integer as int64, float as float64 (the exact values), boolean,
datetime as naive microsecond timestamps (what the canonical CSV keeps of a datetime); a missing
cell is null. Reading one back (``frame_from_arrow``) gives the frame with exactly the dtypes and
values that reading the same table's canonical CSV gives (``governance.ingest.canonical_frame``):
``tests/governance/test_parquet_form.py`` compares both on every kind of column.

The file is written with fixed options (``WRITE_OPTIONS``) and no pandas metadata, so the same
rows give the same bytes: its SHA-256 is the version's content address, as the CSV's is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Fixed writer options: the bytes depend on the rows and on pyarrow's version only. Dictionary
# encoding for the columns that repeat values (categories, integers); floats and datetimes are
# stored plain (a dictionary of mostly distinct values only costs time); zstd at its fastest level.
WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 1,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
}
DICTIONARY_TYPES = ("categorical", "integer")


def write_options(schema: dict[str, Any]) -> dict[str, Any]:
    """``pyarrow.parquet.ParquetWriter``'s options for a stored table of ``schema``."""
    dictionary = [column["name"] for column in schema["columns"] if column["type"] in DICTIONARY_TYPES]
    return {**WRITE_OPTIONS, "use_dictionary": dictionary}


_ARROW_TYPES = {
    "categorical": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us"),
}


def arrow_schema(schema: dict[str, Any]) -> pa.Schema:
    """The Arrow schema of a stored table: one field a schema column, typed by its declared type."""
    return pa.schema([pa.field(column["name"], _ARROW_TYPES[column["type"]]) for column in schema["columns"]])


def arrow_table(frame: pd.DataFrame, schema: dict[str, Any]) -> pa.Table:
    """A typed frame (as ``governance.ingest.build_table`` or ``synth_engine.streaming.typed_frame``
    types it; a categorical column may be a pandas ``Categorical`` of texts with no empty text) as an
    Arrow table of :func:`arrow_schema`."""
    target = arrow_schema(schema)
    arrays = [_arrow_column(frame[field.name], field.type) for field in target]
    return pa.Table.from_arrays(arrays, schema=target)


def _arrow_column(series: pd.Series, kind: pa.DataType) -> pa.Array:
    if kind == pa.timestamp("us"):
        values = series.to_numpy(dtype="datetime64[ns]")
        missing = np.isnat(values)
        micros = np.floor_divide(values.view(np.int64), 1000)  # the CSV keeps whole microseconds (floored)
        return pa.array(micros, pa.int64(), mask=missing).cast(kind)
    if kind == pa.string() and isinstance(series.dtype, pd.CategoricalDtype):  # by code: no text per row
        codes = series.cat.codes.to_numpy()
        categories = pa.array(series.cat.categories.to_numpy(dtype=object), pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), categories).cast(kind)
    if kind == pa.string():
        values = series.to_numpy(dtype=object)
        text = pa.array(values, pa.string(), from_pandas=True)
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)  # empty is missing, as in CSV
    if kind == pa.float64():
        return pa.array(series.to_numpy(dtype="float64"), pa.float64(), from_pandas=True)  # NaN is missing
    return pa.array(series.array if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) else series, kind)


def frame_from_arrow(
    table: pa.Table, schema: dict[str, Any], *, nullable_integers: frozenset[str] | None = None
) -> pd.DataFrame:
    """The stored table's frame with the dtypes ``canonical_frame`` gives its CSV: an integer column
    with a missing cell is ``Int64`` (with ``nullable_integers``: those named, as the whole table
    types them when ``table`` holds only some of its rows), else ``int64``."""
    columns = {}
    for column in schema["columns"]:
        name = column["name"]
        data = table.column(name)
        if pa.types.is_dictionary(data.type):
            data = data.cast(data.type.value_type)
        nullable = data.null_count > 0 if nullable_integers is None else name in nullable_integers
        columns[name] = _pandas_column(data, column["type"], nullable).rename(name)
    return pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows))


def _pandas_column(data: pa.ChunkedArray, kind: str, nullable: bool) -> pd.Series:
    missing = data.is_null().to_numpy(zero_copy_only=False)
    if kind == "integer":
        values = data.fill_null(0).to_numpy().astype(np.int64, copy=False)
        return pd.Series(pd.arrays.IntegerArray(values, missing.copy())) if nullable else pd.Series(values)
    if kind == "float":
        return pd.Series(data.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype="float64")
    if kind == "boolean":
        values = data.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
        return pd.Series(pd.arrays.BooleanArray(values, missing.copy()))
    if kind == "datetime":
        micros = data.cast(pa.timestamp("us")).cast(pa.int64()).fill_null(0).to_numpy()
        values = (micros * 1000).view("datetime64[ns]")
        values[missing] = np.datetime64("NaT")
        return pd.Series(values, dtype="datetime64[ns]")
    text = data.cast(pa.string()).to_numpy(zero_copy_only=False).astype(object)
    text[missing] = None
    return pd.Series(text, dtype="object")


def cell_texts(data: pa.ChunkedArray | pa.Array, kind: str) -> pd.Series:
    """A column's cells as the canonical CSV holds them unquoted (a missing cell is ``""``)."""
    from governance.canonical_csv import column_cells  # the CSV's spelling of every kind

    if pa.types.is_dictionary(data.type):
        data = data.cast(data.type.value_type)
    if kind == "categorical":
        return pd.Series(pc.fill_null(data.cast(pa.string()), "").to_numpy(zero_copy_only=False))
    chunked = data if isinstance(data, pa.ChunkedArray) else pa.chunked_array([data])
    series = _pandas_column(chunked, kind, bool(chunked.null_count))
    cells = column_cells(series)
    if cells is None:  # a datetime below a microsecond cannot be stored here; kept for completeness
        return series.astype(str)
    return pd.Series(cells.to_numpy(zero_copy_only=False))
