"""The Parquet stored form of a typed table: a job's synthetic output when its request asks for
Parquet (``DataRequest.output_format``); every other version is canonical CSV.

A version's form is named by its storage key's suffix (``governance.output_formats``). The Arrow
types follow the schema, never the data (``arrow_schema``): categorical as UTF-8 strings
(dictionary-encoded in the file), integer as int64, float as float64 (the exact values), boolean,
datetime as naive microsecond timestamps (what the canonical CSV keeps of a datetime); a missing
cell is null. The job's writer hands a categorical column over as codes into a dictionary of the
texts present, sorted (``arrow_table(dictionaries=True)``), and the file stores no Arrow schema,
so it reads back as text either way. Reading one back (``frame_from_arrow``) gives the frame with exactly the dtypes and
values that reading the same table's canonical CSV gives (``governance.ingest.canonical_frame``):
``tests/governance/test_parquet_form.py`` compares both on every kind of column.

The file is written with fixed options (``write_options``) and no pandas or Arrow metadata, so the
same rows give the same bytes: its SHA-256 is the version's content address, as the CSV's is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Fixed writer options: the bytes depend on the rows and on pyarrow's version only (the column
# choices below are by declared type, never by the data). Each kind of column is stored the way
# that costs least to write for its size (measured on 100,000 drawn rows x 50 columns):
# - categorical: dictionary-encoded (each distinct text once, a code a row), zstd at its fastest
#   level, no statistics (no reader here uses a text column's min and max; 9 of 32 ms);
# - integer: DELTA_BINARY_PACKED, uncompressed (13 ms for 14 columns against 29 ms dictionary-encoded
#   with zstd, and a smaller file: 1.83 MB against 1.97 MB);
# - float: plain, uncompressed (drawn doubles barely compress: 9.5 MB against 9.1 MB, in half the time);
# - boolean and datetime: plain, zstd level 1.
WRITE_OPTIONS: dict[str, Any] = {
    "version": "2.6",
    "data_page_version": "1.0",
    "store_schema": False,  # the Parquet types alone: a categorical column reads back as text however it was written
}
DICTIONARY_TYPES = ("categorical",)
DELTA_TYPES = ("integer",)
UNCOMPRESSED_TYPES = ("integer", "float")
UNCOUNTED_TYPES = ("categorical",)  # no statistics
ZSTD_LEVEL = 1


def write_options(schema: dict[str, Any]) -> dict[str, Any]:
    """``pyarrow.parquet.ParquetWriter``'s options for a stored table of ``schema``."""
    columns = schema["columns"]
    compressed = [column["name"] for column in columns if column["type"] not in UNCOMPRESSED_TYPES]
    return {
        **WRITE_OPTIONS,
        "use_dictionary": [column["name"] for column in columns if column["type"] in DICTIONARY_TYPES],
        "column_encoding": {
            column["name"]: "DELTA_BINARY_PACKED" for column in columns if column["type"] in DELTA_TYPES
        },
        "compression": {
            column["name"]: "zstd" if column["type"] not in UNCOMPRESSED_TYPES else "none" for column in columns
        },
        "compression_level": dict.fromkeys(compressed, ZSTD_LEVEL),
        "write_statistics": [column["name"] for column in columns if column["type"] not in UNCOUNTED_TYPES],
    }


_ARROW_TYPES = {
    "categorical": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us"),
}


DICTIONARY_TEXT = pa.dictionary(pa.int32(), pa.string())


def arrow_schema(schema: dict[str, Any], *, dictionaries: bool = False) -> pa.Schema:
    """The Arrow schema of a stored table: one field a schema column, typed by its declared type.
    ``dictionaries``: a categorical column as ``dictionary<int32, string>`` (what the file holds of
    it: each distinct text once and a code a row; it reads back as ``string``, as the file stores no
    Arrow schema)."""
    return pa.schema(
        [
            pa.field(
                column["name"],
                DICTIONARY_TEXT if dictionaries and column["type"] == "categorical" else _ARROW_TYPES[column["type"]],
            )
            for column in schema["columns"]
        ]
    )


def arrow_table(frame: pd.DataFrame, schema: dict[str, Any], *, dictionaries: bool = False) -> pa.Table:
    """A typed frame (as ``governance.ingest.build_table`` or ``synth_engine.streaming.typed_frame``
    types it; a categorical column may be a pandas ``Categorical`` of texts with no empty text) as an
    Arrow table of :func:`arrow_schema` (``dictionaries``: a categorical column handed to the writer
    by code, its texts never materialised a row; the dictionary holds the texts present, in
    code-point order, so a ``Categorical`` and a column of objects with the same texts give the
    same table)."""
    target = arrow_schema(schema, dictionaries=dictionaries)
    arrays = [_arrow_column(frame[field.name], field.type) for field in target]
    return pa.Table.from_arrays(arrays, schema=target)


def _arrow_column(series: pd.Series, kind: pa.DataType) -> pa.Array:
    if kind == DICTIONARY_TEXT:
        if isinstance(series.dtype, pd.CategoricalDtype):
            return _dictionary_column(series.cat.codes.to_numpy(), series.cat.categories.to_numpy(dtype=object))
        codes, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
        uniques = np.asarray(uniques, dtype=object)
        empty = uniques == ""  # an empty text is missing, as in the CSV
        if empty.any():
            codes = np.where(empty[codes] & (codes >= 0), -1, codes)
        return _dictionary_column(codes, uniques)
    if kind == pa.timestamp("us"):
        values = series.to_numpy(dtype="datetime64[ns]")
        micros = np.floor_divide(values.view(np.int64), 1000)  # the CSV keeps whole microseconds (floored)
        return _masked(micros, np.isnat(values), kind)
    if kind == pa.string() and isinstance(series.dtype, pd.CategoricalDtype):  # by code: no text per row
        codes = series.cat.codes.to_numpy()
        categories = pa.array(series.cat.categories.to_numpy(dtype=object), pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), categories).cast(kind)
    if kind == pa.string():
        values = series.to_numpy(dtype=object)
        text = pa.array(values, pa.string(), from_pandas=True)
        return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)  # empty is missing, as in CSV
    if kind == pa.float64():
        values = series.to_numpy(dtype="float64")
        return _masked(values, np.isnan(values), kind)  # NaN is missing
    if kind == pa.int64() and isinstance(series.dtype, pd.Int64Dtype):  # its values and mask as they are
        return _masked(series.array._data, series.array._mask, kind)  # a null's value is not stored
    if kind == pa.int64() and series.dtype == np.int64:  # no missing value: its values as they are
        return _masked(series.to_numpy(), np.zeros(len(series), dtype=bool), kind)
    if kind == pa.int64() and isinstance(series.dtype, np.dtype):
        return _masked(series.to_numpy(dtype=np.int64, na_value=0), series.isna().to_numpy(), kind)
    if kind == pa.bool_() and isinstance(series.dtype, pd.BooleanDtype):  # bits packed by NumPy
        values = np.packbits(series.array._data, bitorder="little")
        return _masked(values, series.array._mask, kind, length=len(series))
    return pa.array(series.array if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) else series, kind)


def _masked(values: np.ndarray, missing: np.ndarray, kind: pa.DataType, *, length: int | None = None) -> pa.Array:
    """A fixed-width Arrow array over ``values`` (their bytes as they are, the type ``kind``; ``length``
    values when they are bits), null where ``missing``: the validity bitmap packed by NumPy
    (``pa.array``'s ``mask=`` costs about ten times as much)."""
    values = np.ascontiguousarray(values)
    nulls = int(np.count_nonzero(missing))
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if nulls else None
    size = len(values) if length is None else length
    return pa.Array.from_buffers(kind, size, [validity, pa.py_buffer(values)], null_count=nulls)


def _dictionary_column(codes: np.ndarray, categories: np.ndarray) -> pa.DictionaryArray:
    """Codes (-1 missing) into ``categories`` as a dictionary array of the texts present, in
    code-point order: the file's dictionary is a function of the rows alone, whatever order or
    unused categories the ``Categorical`` had."""
    missing = codes < 0
    present = _present(codes, len(categories))
    ordered = present[np.argsort(categories[present].astype(str), kind="stable")]
    if np.array_equal(ordered, np.arange(len(ordered))):  # the first categories present, in order, the rest absent
        indices = codes.astype(np.int32)  # the codes as they are
    else:
        lookup = np.full(len(categories) + 1, -1, dtype=np.int32)  # -1 (missing) reads the last entry
        lookup[ordered] = np.arange(len(ordered), dtype=np.int32)
        indices = lookup.take(codes)
    dictionary = pa.array(categories[ordered], pa.string())
    # in range by construction (a missing code's index is masked): not checked again (``safe``)
    return pa.DictionaryArray.from_arrays(_masked(indices, missing, pa.int32()), dictionary, safe=False)


PRESENCE_HEAD, PRESENCE_CHECKS = 4096, 16


def _present(codes: np.ndarray, n_categories: int) -> np.ndarray:
    """The categories that ``codes`` (-1 missing) hold, in code order: those the first
    ``PRESENCE_HEAD`` codes hold, and any other found by one comparison a category (when at most
    ``PRESENCE_CHECKS`` are left to look for), else counted over all codes."""
    head = np.bincount(codes[:PRESENCE_HEAD].astype(np.intp) + 1, minlength=n_categories + 1)[1:] > 0
    absent = np.flatnonzero(~head)
    if len(absent) > PRESENCE_CHECKS:
        return np.flatnonzero(np.bincount(codes.astype(np.intp) + 1, minlength=n_categories + 1)[1:])
    top = int(codes.max(initial=-1)) if len(absent) else -1  # no category above the largest code is present
    for category in absent[absent <= top]:
        head[category] = bool((codes == category).any())
    return np.flatnonzero(head)


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
