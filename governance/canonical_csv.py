"""The stored form of a typed table (canonical CSV), written column by column in Arrow.

``canonical_csv(frame, columns)`` gives the bytes ``frame.to_csv(index=False,
lineterminator="\\n", date_format="%Y-%m-%dT%H:%M:%S.%f")`` gives (pandas formats each cell in
Python, about a microsecond a cell), but formats whole columns at once and joins the rows in
Arrow's C++ kernels:

- text: the value, quoted as Python's ``csv`` module quotes it under ``QUOTE_MINIMAL`` (a value
  holding the delimiter, the quote or a line end; the quote doubled); missing is empty;
- integers: ``str(int)``; booleans: ``True``/``False``;
- floats: Python's shortest round-trip ``repr`` (which is what NumPy's ``astype(str)``, used by
  pandas, gives). Arrow's cast spells the same shortest digits positionally for 1e-4 ≤ |x| < 1e10
  (and zero) without a trailing ``.0`` on whole numbers, which is added; every other value goes
  through ``repr``;
- datetimes (naive, whole microseconds): ISO 8601 with six fractional digits (Arrow's cast, its
  space made a ``T``).

The spelled cells are then written as lines by Arrow's CSV writer without quoting (each cell as
it is, a missing one empty, commas between, ``\n`` after), into one buffer of the lines' exact
size; that writer refuses a cell holding a comma, a quote or a line end, which is a cell the CSV
quotes (already quoted above), and then the rows are joined by ``binary_join_element_wise``
instead: the same bytes either way, the writer's in about half the time.

A column of any other kind (time zones, nanoseconds, mixed objects), and a one-column table
(where the csv module quotes an empty row), are left to pandas: :func:`canonical_csv` returns
``None`` and the caller falls back. ``tests/governance/test_canonical_csv.py`` compares both on
every kind of column.
"""

from __future__ import annotations

import csv
import functools
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv


def _quoted_characters() -> str:
    """The characters that make Python's csv writer quote a field (with ``\\n`` line ends)."""
    found = []
    for character in ',"\r\n':
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([f"a{character}b", "x"])
        if buffer.getvalue().startswith('"'):
            found.append(character)
    return "".join(found)


QUOTED = _quoted_characters()
_QUOTED_PATTERN = "[" + QUOTED.replace("\r", "\\r").replace("\n", "\\n") + "]"  # an RE2 character class
_EMPTY = pa.scalar("", pa.string())


def header_line(names: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(names)
    return buffer.getvalue()


def canonical_csv(frame: pd.DataFrame, columns: list[str], *, header: bool = True) -> bytes | None:
    """The canonical CSV of ``frame[columns]``, or None when a column needs pandas' writer."""
    parts = canonical_csv_parts(frame, columns, header=header)
    return None if parts is None else b"".join(parts)  # one copy


def canonical_csv_parts(
    frame: pd.DataFrame, columns: list[str], *, header: bool = True
) -> list[bytes | pa.Buffer] | None:
    """:func:`canonical_csv`'s bytes as the header's and Arrow's buffer of the lines, uncopied (a
    writer writes and hashes them as they are), or None when a column needs pandas' writer."""
    if len(columns) < 2:
        return None
    cells = []
    for name in columns:
        formatted = _cells(frame[name])
        if formatted is None:
            return None
        cells.append(formatted)
    head = header_line(columns).encode("utf-8") if header else b""
    if len(frame) == 0:
        return [head]
    written = _written_lines(cells)
    if written is not None:
        return [head, written]
    # a missing cell is null until the rows are joined, which spells it empty
    cells[-1] = pc.binary_join_element_wise(_filled(cells[-1]), _EMPTY, "\n")  # the line end after the last cell
    lines = pc.binary_join_element_wise(*cells, ",", null_handling="replace", null_replacement="")
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    body = lines.buffers()[2]
    if body is None:
        return [head]
    return [head, body.slice(int(offsets[0]), int(offsets[-1]) - int(offsets[0]))]


def _written_lines(cells: list[pa.Array]) -> pa.Buffer | None:
    """The lines of ``cells`` written by Arrow's CSV writer without quoting (each cell as it is,
    a missing one empty, joined by commas, each line ended by ``\\n``): the bytes of joining them,
    written faster; None when a cell holds a comma, a quote or a line end (a cell the CSV quotes,
    which Arrow's writer refuses unquoted), for the caller to join."""
    table = pa.Table.from_arrays(cells, names=[str(index) for index in range(len(cells))])
    # the lines' exact size (each cell's text, then a comma or the line end), so that the bytes are
    # written once into one buffer of that size rather than a growing one
    size = table.num_rows * len(cells) + sum(pc.sum(pc.binary_length(cell)).as_py() or 0 for cell in cells)
    buffer = pa.allocate_buffer(size)
    sink = pa.FixedSizeBufferWriter(buffer)
    try:
        pa_csv.write_csv(table, sink, _UNQUOTED)
    except pa.ArrowInvalid:
        return None
    # the size is exact by construction (more bytes would not fit: an OSError); fewer cannot
    # happen either, but would leave the buffer's end unwritten, so the caller would join instead
    return buffer if sink.tell() == size else None


_UNQUOTED = pa_csv.WriteOptions(include_header=False, quoting_style="none", batch_size=1024)


def column_cells(series: pd.Series) -> pa.Array | None:
    """One column's cells as the canonical CSV spells them (quoted where the CSV quotes), or None."""
    cells = _cells(series)
    return None if cells is None else _filled(cells)


def _cells(series: pd.Series) -> pa.Array | None:
    """:func:`column_cells`, a missing cell null."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):  # each distinct value spelled once, then taken by code
        if dtype.categories.dtype.kind != "O":
            return None
        spelled = _text_cells(dtype.categories.to_numpy(dtype=object))
        if spelled is None:
            return None
        codes = series.cat.codes.to_numpy()
        return spelled.take(pa.array(codes, mask=codes < 0))
    if isinstance(dtype, pd.BooleanDtype) or dtype == np.bool_:
        array = pa.array(series.array if isinstance(dtype, pd.BooleanDtype) else series.to_numpy())
        return pc.if_else(array, "True", "False")
    if isinstance(dtype, pd.Int64Dtype) or (isinstance(dtype, np.dtype) and dtype.kind in "iu"):
        array = pa.array(series.array, from_pandas=True) if isinstance(dtype, pd.Int64Dtype) else pa.array(series)
        return pc.cast(array, pa.string())
    if isinstance(dtype, np.dtype) and dtype == np.float64:
        return _float_cells(series.to_numpy())
    if isinstance(dtype, np.dtype) and dtype == np.dtype("datetime64[ns]"):
        return _datetime_cells(series.to_numpy())
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        return _text_cells(series.to_numpy())
    return None


def _filled(array: pa.Array) -> pa.Array:
    return pc.fill_null(array, _EMPTY)


def _float_cells(values: np.ndarray) -> pa.Array:
    missing = np.isnan(values)
    magnitude = np.abs(values)
    positional = (magnitude == 0) | ((magnitude >= 1e-4) & (magnitude < 1e10))
    text = pc.cast(pa.array(values, mask=missing | ~positional), pa.string())
    # A whole number is spelled without its ".0" (added); the others by Python. Both are put in
    # place without touching the other cells.
    whole = positional & (np.floor(values) == values)
    if whole.any():
        text = pc.replace_with_mask(text, pa.array(whole), pc.binary_join_element_wise(text.filter(whole), ".0", ""))
    others = ~missing & ~positional
    if others.any():
        spelled = pa.array([repr(value) for value in values[others].tolist()], pa.string())
        text = pc.replace_with_mask(text, pa.array(others), spelled)
    return text


def _datetime_cells(values: np.ndarray) -> pa.Array | None:
    missing = np.isnat(values)
    nanoseconds = values.view(np.int64)
    if np.any(nanoseconds[~missing] % 1000 != 0):
        return None  # below a microsecond: pandas' formatting
    # spelled as numpy spells datetime64[us] (ISO 8601, six fractional digits), in parts: each day
    # of the column's span and each second of a day spelled once, taken by row, joined in Arrow
    micros = np.where(missing, 0, nanoseconds // 1000)
    if missing.all():
        return pa.nulls(len(values), pa.string())
    cast = _cast_datetime_cells(micros, missing)
    if cast is not None:
        return cast
    days = np.floor_divide(micros, _DAY_MICROS)
    first, last = int(days[~missing].min()), int(days[~missing].max())
    if last - first > 4 * len(values) + 1000:  # a sparse span: spelled row by row
        spelled = np.datetime_as_string(values.astype("datetime64[us]"), unit="us")
        return pa.array(spelled, pa.string(), mask=missing)
    dates = np.datetime_as_string(np.arange(first, last + 1).astype("datetime64[D]"))
    day_index = np.where(missing, 0, days - first)
    within = micros - days * _DAY_MICROS
    date_text = pa.array(dates, pa.string()).take(pa.array(day_index, mask=missing))
    clock_text = _clock_texts().take(pa.array(within // 1_000_000))
    fraction = within % 1_000_000
    fraction_text: pa.Array | pa.Scalar = pa.scalar("000000", pa.string())
    if fraction.any():
        fraction_text = pc.utf8_lpad(pc.cast(pa.array(fraction), pa.string()), 6, "0")
    stamped = pc.binary_join_element_wise(date_text, clock_text, "T")
    return pc.binary_join_element_wise(stamped, fraction_text, ".")


_DAY_MICROS = 86_400_000_000
_STAMP_LENGTH = len("2000-01-01 00:00:00.000000")


def _cast_datetime_cells(micros: np.ndarray, missing: np.ndarray) -> pa.Array | None:
    """The stamps spelled by Arrow's cast (``2000-01-01 00:00:00.000000``), the space made a ``T``
    in place: ISO 8601 with six fractional digits, as NumPy spells them. None (the caller spells
    them by parts) unless every stamp has that layout (a four-digit year)."""
    stamps = pa.Array.from_buffers(
        pa.timestamp("us"),
        len(micros),
        [pa.py_buffer(np.packbits(~missing, bitorder="little")) if missing.any() else None, pa.py_buffer(micros)],
    )
    text = pc.cast(stamps, pa.string())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32, count=len(text) + 1, offset=text.offset * 4)
    starts = offsets[:-1][~missing]
    if not np.all(np.diff(offsets)[~missing] == _STAMP_LENGTH):
        return None
    data = np.frombuffer(text.buffers()[2], dtype=np.uint8).copy()
    if not np.all(data[starts + 10] == ord(" ")):
        return None
    data[starts + 10] = ord("T")
    return pa.Array.from_buffers(pa.string(), len(text), [text.buffers()[0], text.buffers()[1], pa.py_buffer(data)])


@functools.cache
def _clock_texts() -> pa.Array:
    """``HH:MM:SS`` for each second of a day, by its number."""
    return pa.array(
        [f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}" for second in range(86_400)], pa.string()
    )


def _text_cells(values: np.ndarray) -> pa.Array | None:
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return None
    text = pa.array(values, pa.string(), from_pandas=True)  # None and NaN are missing
    needs = pc.match_substring_regex(text, _QUOTED_PATTERN)
    if pc.any(needs).as_py():
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(needs, quoted, text)
    return text
