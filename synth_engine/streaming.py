"""Synthetic output written as it is sampled: chunk by chunk, never the whole table in memory.

Each chunk is drawn from the fitted generator, typed and checked as an upload's cells
(``governance.ingest.build_table``) and appended to a file in the stored form the request chose
(canonical CSV, or Parquet: ``governance.parquet_form``);
the SHA-256 of the bytes, which is the version's content address, is computed as they are
written. The next chunks are drawn meanwhile on drawing threads (``drawn_chunks``): the worker holds
at most the one being written and ``ChunkDraws.threads`` more.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from governance.canonical_csv import canonical_csv_parts
from governance.ingest import StreamedTable, Table, build_table, canonical_bytes, typed_column
from governance.output_formats import CSV, OUTPUT_FORMATS, SUFFIXES
from governance.parquet_form import arrow_schema, arrow_table, write_options


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


def typed_frame(
    frame: pd.DataFrame, schema: dict[str, Any], *, categories: bool = False, copy: bool = True
) -> pd.DataFrame:
    """The columns of ``frame`` typed as an upload's cells of ``schema`` would be (no identifier
    columns: ``table_from_frame`` reads those cell by cell), checked as they are.

    ``categories``: a categorical column of text comes back as a pandas ``Categorical`` (its
    distinct values once, a code a row: checked, formatted and written by value, not by row) with
    the same values (an empty text is missing, as the stored form reads it). ``copy=False``: the
    columns are not gathered into pandas' blocks (a column may share ``frame``'s values: for a
    chunk written and let go)."""
    typed = {}
    for column in schema["columns"]:
        series = frame[column["name"]]
        fast = _categorical(series) if categories and column["type"] == "categorical" else None
        if fast is None:
            fast = _typed_values(series, column["type"])
        if fast is None:
            fast = typed_column(column, _cells(series).tolist(), ("",))
        fast.name = column["name"]  # a Series of its own (``rename`` would copy the values)
        typed[column["name"]] = fast
    return pd.DataFrame(typed, copy=copy)


def _cells(values: Any) -> Any:
    """Every cell as the text an upload would hold (missing as empty)."""
    return values.astype(object).where(values.notna(), "").astype(str)


def _typed_values(series: pd.Series, kind: str) -> pd.Series | None:
    """``series`` as ``typed_column`` would give it from its cells' text, when its values already
    have the schema's type (else None: the caller types it cell by cell). A column as the
    generators draw it (``Int64``, ``float64``, ``boolean``, ``datetime64[ns]``) keeps its arrays."""
    dtype = series.dtype
    numpy_kind = dtype.kind if isinstance(dtype, np.dtype) else ""
    if kind == "categorical" and numpy_kind == "O":
        values, missing = series.to_numpy(), series.isna().to_numpy()
        if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
            return None
        out = values.copy()
        out[missing | (values == "")] = None
        return pd.Series(out, dtype=object)
    if kind == "integer" and numpy_kind in ("u", "f"):
        numbers, missing = series.to_numpy(dtype="float64"), series.isna().to_numpy()
        if not _whole_and_exact(numbers[~missing]):
            return None  # fractions, infinities or beyond 2**53: the cell-by-cell path's errors and parsing
        return _integers(np.where(missing, 0, numbers).astype(np.int64), missing)
    if kind == "integer" and isinstance(dtype, pd.Int64Dtype):  # as drawn: its values uncopied
        return _integers(series.array._data, series.array._mask)
    if kind == "integer" and numpy_kind == "i":
        return pd.Series(series.to_numpy(dtype=np.int64), copy=False)
    if kind == "float" and dtype == np.float64 and not np.isinf(series.to_numpy()).any():  # NaN is missing
        return pd.Series(series.to_numpy(), dtype="float64", copy=False)
    if kind == "boolean" and isinstance(dtype, pd.BooleanDtype):
        return pd.Series(series.array, copy=False)
    if kind == "boolean" and numpy_kind == "b":
        return series.astype("boolean")
    if kind == "datetime" and dtype == np.dtype("datetime64[ns]"):
        return pd.Series(series.to_numpy(), dtype="datetime64[ns]", copy=False)
    return None


def _categorical(series: pd.Series) -> pd.Series | None:
    """A column of text (or missing) as a ``Categorical`` of its distinct texts in the order they
    first occur; None when a value is not text (the caller types it cell by cell)."""
    if isinstance(series.dtype, pd.CategoricalDtype):  # as drawn (``Generator.sample_for_output``): by category
        drawn = _drawn_categorical(series)
        if drawn is not None:
            return drawn
        series = series.astype(object)
    if series.dtype.kind != "O":
        return None
    codes, uniques = pd.factorize(series.to_numpy(), use_na_sentinel=True)  # None and NaN: -1
    uniques = np.asarray(uniques, dtype=object)
    if pd.api.types.infer_dtype(uniques, skipna=True) not in ("string", "empty"):
        return None
    empty = np.flatnonzero(uniques == "")
    if len(empty):  # an empty text is a missing cell in the stored form
        position = int(empty[0])
        codes = np.where(codes == position, -1, np.where(codes > position, codes - 1, codes))
        uniques = np.delete(uniques, position)
    return pd.Series(pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object)))


def _drawn_categorical(series: pd.Series) -> pd.Series | None:
    """A ``Categorical`` column of texts as ``_categorical`` types it, by its categories alone (an
    empty text is missing); None when a category is not text."""
    categories = series.cat.categories
    if categories.dtype.kind != "O" or pd.api.types.infer_dtype(categories, skipna=False) not in ("string", "empty"):
        return None
    empty = np.flatnonzero(categories.to_numpy() == "")
    if not len(empty) and not series.cat.ordered:
        return pd.Series(series.array, copy=False)  # already so (as drawn): the same Categorical
    codes = series.cat.codes.to_numpy()
    if len(empty):  # an empty text is a missing cell in the stored form
        position = int(empty[0])
        codes = np.where(codes == position, -1, np.where(codes > position, codes - 1, codes)).astype(codes.dtype)
        categories = categories.delete(position)
    dtype = pd.CategoricalDtype(pd.Index(categories, dtype=object))
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype))


def _counted(series: pd.Series) -> pd.Series:
    """A column's values as the texts a rebalanced column's shares are counted by."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        return series.astype(object).where(series.notna(), None).astype(str)
    return series.astype(str)


def _integers(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    """Nullable integers when a value is missing, else int64 (as ``typed_column`` types them)."""
    return pd.Series(pd.arrays.IntegerArray(values, missing.copy())) if missing.any() else pd.Series(values)


def _whole_and_exact(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values) & (np.floor(values) == values) & (np.abs(values) < 2.0**53)))


@dataclass(frozen=True)
class ChunkDraws:
    """Chunks drawn in two steps: ``prepare(k)``, called in chunk order on the caller's thread,
    fixes a chunk of ``k`` rows (``Generator.seeded_output``: what it takes from the model's
    sampling stream is taken then) and returns the function that draws it, run on a drawing
    thread; up to ``threads`` of them at once, so they must give the rows of running them one after
    another in the order they were prepared (``Generator.independent_draws``)."""

    prepare: Callable[[int], Callable[[], pd.DataFrame]]
    threads: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ValueError(f"threads must be positive, got {self.threads}")


def drawn_chunks(draws: ChunkDraws, sizes: list[int]) -> Generator[pd.DataFrame, None, None]:
    """The chunks of ``sizes`` rows in order: while the caller holds one, the next ``draws.threads``
    are drawn (at most ``draws.threads + 1`` chunks held at once). Closing the iterator (or an
    error in a draw, raised where its chunk is due) cancels the draws not started and waits for
    those under way."""
    pending: deque[Future[pd.DataFrame]] = deque()
    ahead = iter(sizes)
    with ThreadPoolExecutor(max_workers=draws.threads, thread_name_prefix="sampling") as drawing:

        def fill() -> None:  # each chunk prepared here, in chunk order
            while len(pending) < draws.threads and (rows := next(ahead, None)) is not None:
                pending.append(drawing.submit(draws.prepare(rows)))

        try:
            fill()
            while pending:
                frame = pending.popleft().result()
                fill()
                yield frame
                del frame  # not held while the next chunk is awaited
        finally:
            for future in pending:
                future.cancel()
            for future in pending:
                with contextlib.suppress(BaseException):
                    future.result()  # a draw under way ends before the caller goes on (or removes its file)


def sample_to_file(
    sample: Callable[[int], pd.DataFrame] | ChunkDraws,
    n_rows: int,
    schema: dict[str, Any],
    directory: Path,
    *,
    chunk_rows: int,
    file_format: str = CSV,
    prefix: str = ".sampling-",
    count_columns: tuple[str, ...] = (),
    after_chunk: Callable[[int], None] = lambda done: None,
) -> StreamedTable:
    """Draw ``n_rows`` rows in chunks of at most ``chunk_rows`` and write them in the stored form
    ``file_format``: canonical CSV (the header once, then each chunk's lines) or Parquet
    (``governance.parquet_form``: one row group a chunk, through ``pyarrow``'s ``ParquetWriter``,
    which holds one row group at a time).

    ``sample``: ``sample(k)`` calls, one at a time in chunk order on a second thread (the next chunk
    drawn while the current one is typed and written; two chunks held at most), or ``ChunkDraws``,
    whose ``threads`` chunks are drawn at once while the current one is written (``drawn_chunks``:
    ``threads + 1`` chunks held at most); the rows are those of drawing the chunks one after
    another either way. ``prefix``: the file name's start (a job names itself, so a file its killed
    worker left can be found). ``count_columns``: columns whose values are counted on the way (the
    released shares of a rebalanced column). ``after_chunk(rows_done)`` runs after each chunk
    (progress, cancel checks); anything it raises, or a draw raises, removes the partial file.
    """
    if chunk_rows <= 0:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    if file_format not in OUTPUT_FORMATS:
        raise ValueError(f"file_format must be one of {', '.join(OUTPUT_FORMATS)}, got {file_format!r}")
    draws = sample if isinstance(sample, ChunkDraws) else ChunkDraws(lambda rows: functools.partial(sample, rows))
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=SUFFIXES[file_format])
    path = Path(name)
    sizes = [min(chunk_rows, n_rows - start) for start in range(0, n_rows, chunk_rows)]
    counts: dict[str, Counter[str]] = {column: Counter() for column in count_columns}
    stored_schema: dict[str, Any] = {**schema, "missing_values": [""]}
    done = 0
    writer: _Writer = _CsvWriter(handle) if file_format == CSV else _ParquetWriter(handle, _stored_columns(schema))
    try:
        with contextlib.closing(drawn_chunks(draws, sizes)) as chunks:
            for index, frame in enumerate(chunks):
                typed, stored_schema = _typed_chunk(frame, schema)
                del frame
                writer.write(typed, stored_schema, first=index == 0)
                done += len(typed)
                for column in count_columns:
                    counts[column].update(_counted(typed[column]))
                del typed
                after_chunk(done)
        content_hash, size = writer.close()
    except BaseException:
        writer.abort()
        path.unlink(missing_ok=True)
        raise
    return StreamedTable(
        path=path,
        schema=stored_schema,
        content_hash=content_hash,
        n_rows=done,
        n_columns=len(stored_schema["columns"]),
        size_bytes=size,
        value_counts=counts,
        file_format=file_format,
    )


def _typed_chunk(frame: pd.DataFrame, schema: dict[str, Any]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A drawn chunk typed and checked as an upload's cells (identifier columns dropped), and the
    stored schema."""
    if any(column["role"] == "identifier" for column in schema["columns"]):
        table = table_from_frame(frame, schema)
        return table.frame, table.schema
    return typed_frame(frame, schema, categories=True, copy=False), {**schema, "missing_values": [""]}


def _stored_columns(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "columns": [column for column in schema["columns"] if column["role"] != "identifier"]}


class _Writer:
    def write(self, typed: pd.DataFrame, schema: dict[str, Any], *, first: bool) -> None:
        raise NotImplementedError

    def close(self) -> tuple[str, int]:
        """Finish the file: its SHA-256 and size."""
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


CSV_FORMAT_THREADS = 2


class _CsvWriter(_Writer):
    """Canonical CSV: the header with the first chunk, hashed as it is written. A chunk's rows are
    formatted in ``CSV_FORMAT_THREADS`` runs at once (Arrow's kernels release the GIL, and a line
    is a function of its row alone, so the bytes are those of formatting them at once)."""

    def __init__(self, handle: int) -> None:
        self.stream = os.fdopen(handle, "wb")
        self.digest, self.size = hashlib.sha256(), 0
        self.formatting = ThreadPoolExecutor(CSV_FORMAT_THREADS, thread_name_prefix="csv-format")

    def write(self, typed: pd.DataFrame, schema: dict[str, Any], *, first: bool) -> None:
        names = [column["name"] for column in schema["columns"]]
        ends = np.linspace(0, len(typed), CSV_FORMAT_THREADS + 1).astype(int)
        runs = [typed.iloc[start:end] for start, end in zip(ends[:-1], ends[1:], strict=True) if end > start]

        def formatted(index: int) -> list[bytes | Any] | None:  # the header once, with the first chunk's first run
            return canonical_csv_parts(runs[index] if runs else typed, names, header=first and index == 0)

        pieces = list(self.formatting.map(formatted, range(max(len(runs), 1))))
        parts = [part for piece in pieces if piece is not None for part in piece]
        if any(piece is None for piece in pieces):  # a column pandas' writer spells
            data = canonical_bytes(typed, schema)
            parts = [data if first else data[data.index(b"\n") + 1 :]]
        for part in parts:  # Arrow's buffers of the lines written and hashed where they are
            view = memoryview(part)
            self.stream.write(view)
            self.digest.update(view)
            self.size += view.nbytes

    def close(self) -> tuple[str, int]:
        self.formatting.shutdown()
        self.stream.close()
        return self.digest.hexdigest(), self.size

    def abort(self) -> None:
        self.formatting.shutdown(cancel_futures=True)
        self.stream.close()


class _ParquetWriter(_Writer):
    """Parquet: one row group a chunk, the schema's Arrow types (``governance.parquet_form``),
    hashed as the bytes are written."""

    def __init__(self, handle: int, schema: dict[str, Any]) -> None:
        self.stream = _HashingFile(os.fdopen(handle, "wb"))
        self.writer = pq.ParquetWriter(self.stream, arrow_schema(schema, dictionaries=True), **write_options(schema))

    def write(self, typed: pd.DataFrame, schema: dict[str, Any], *, first: bool) -> None:
        table = arrow_table(typed, schema, dictionaries=True)
        self.writer.write_table(table, row_group_size=max(table.num_rows, 1))

    def close(self) -> tuple[str, int]:
        self.writer.close()
        self.stream.close()
        return self.stream.digest.hexdigest(), self.stream.size

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        self.stream.close()


class _HashingFile(io.RawIOBase):
    """A binary file that hashes what is written to it (Arrow writes through it)."""

    def __init__(self, raw: io.BufferedWriter) -> None:
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.raw.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if not self.raw.closed:
            self.raw.flush()

    def close(self) -> None:
        if not self.raw.closed:
            self.raw.close()
        super().close()
