"""Synthetic output written chunk by chunk: the same stored bytes and hash as the whole table,
and nothing left behind when sampling stops part-way."""

from __future__ import annotations

import hashlib
import threading
import time
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import DatasetFormatError
from governance.ingest import canonical_bytes
from synth_engine.streaming import ChunkDraws, sample_to_file, table_from_frame

SCHEMA = {
    "columns": [
        {"name": "age", "type": "integer", "role": "quasi_identifier"},
        {"name": "score", "type": "float", "role": "attribute"},
        {"name": "group", "type": "categorical", "role": "label", "categories": ["a", "b"]},
    ]
}


def _frame(n_rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    score = rng.normal(size=n_rows)
    score[::7] = np.nan
    return pd.DataFrame(
        {"age": rng.integers(18, 90, n_rows), "score": score, "group": rng.choice(["a", "b"], n_rows, p=[0.8, 0.2])}
    )


def _slicer(frame: pd.DataFrame):
    position = 0

    def sample(rows: int) -> pd.DataFrame:
        nonlocal position
        chunk = frame.iloc[position : position + rows].reset_index(drop=True)
        position += rows
        return chunk

    return sample


def test_chunks_give_the_whole_tables_bytes_hash_and_counts(tmp_path):
    frame = _frame(1_003)
    streamed = sample_to_file(
        _slicer(frame), 1_003, SCHEMA, tmp_path, chunk_rows=100, count_columns=("group",), after_chunk=lambda done: None
    )
    whole = table_from_frame(frame, SCHEMA)
    data = streamed.path.read_bytes()
    assert data == whole.canonical_bytes == canonical_bytes(whole.frame, whole.schema)
    assert streamed.content_hash == whole.content_hash == hashlib.sha256(data).hexdigest()
    assert (streamed.n_rows, streamed.n_columns, streamed.size_bytes) == (1_003, 3, len(data))
    expected = frame["group"].value_counts(normalize=True).round(4).to_dict()
    assert streamed.shares("group") == expected
    streamed.discard()
    assert list(tmp_path.iterdir()) == []


def test_a_stop_between_chunks_leaves_no_file(tmp_path):
    def stop_after_two(done: int) -> None:
        if done >= 200:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        sample_to_file(_slicer(_frame(1_000)), 1_000, SCHEMA, tmp_path, chunk_rows=100, after_chunk=stop_after_two)
    assert list(tmp_path.iterdir()) == []


def test_a_chunk_that_breaks_the_schema_is_refused_and_removed(tmp_path):
    bad = _frame(300).astype({"age": object})
    bad.loc[250, "age"] = "x"  # not an integer, in the third chunk
    with pytest.raises(DatasetFormatError, match="age"):
        sample_to_file(_slicer(bad), 300, SCHEMA, tmp_path, chunk_rows=100)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_drawn_categorical_is_stored_as_the_same_texts_as_objects_are(tmp_path, file_format):
    """A generator's ``sample_for_output`` may give text as a ``Categorical`` (unused categories,
    an empty text, missing cells): the stored bytes are those of the same column of objects."""
    frame = _frame(1_000)
    texts = np.random.default_rng(4).choice(["b", "", "a", None], 1_000, p=[0.5, 0.1, 0.3, 0.1])
    objects = frame.assign(group=pd.Series(texts, dtype=object))
    categories = pd.CategoricalDtype(["unused", "b", "", "a", "also unused"])
    drawn = objects.assign(group=pd.Series(pd.Categorical(texts, dtype=categories)))
    kept = [
        sample_to_file(_slicer(chunk), 1_000, SCHEMA, tmp_path, chunk_rows=300, file_format=file_format)
        for chunk in (objects, drawn)
    ]
    assert kept[0].path.read_bytes() == kept[1].path.read_bytes()
    if file_format == "parquet":  # each row group's dictionary: the texts present, sorted
        parquet = pq.ParquetFile(kept[1].path, read_dictionary=["group"])
        for group in range(parquet.num_row_groups):
            column = parquet.read_row_group(group, columns=["group"]).column("group")
            assert [chunk.dictionary.to_pylist() for chunk in column.chunks] == [["a", "b"]]
            assert column.null_count == sum(1 for text in texts[group * 300 : (group + 1) * 300] if text in ("", None))
        assert pq.read_table(kept[1].path).schema.field("group").type == pa.string()


DRAWN_SCHEMA = {
    "columns": [
        {"name": "n", "type": "integer", "role": "other"},
        {"name": "n_missing", "type": "integer", "role": "other"},
        {"name": "x", "type": "float", "role": "other"},
        {"name": "flag", "type": "boolean", "role": "other"},
        {"name": "when", "type": "datetime", "role": "other"},
        {"name": "group", "type": "categorical", "role": "label"},
    ]
}


def _drawn(n_rows: int) -> pd.DataFrame:
    """Columns of the dtypes MST's ``sample_for_output`` gives (kept as arrays by the writer)."""
    rng = np.random.default_rng(5)
    missing = rng.random(n_rows) < 0.1
    x = np.round(rng.normal(size=n_rows), 6)  # short decimals, which the cell-by-cell path reads back exactly
    x[missing] = np.nan
    return pd.DataFrame(
        {
            "n": pd.array(rng.integers(-50, 50, n_rows), dtype="Int64"),  # no missing cell: stored as int64
            "n_missing": pd.arrays.IntegerArray(rng.integers(0, 9, n_rows), missing.copy()),
            "x": x,
            "flag": pd.arrays.BooleanArray(rng.random(n_rows) < 0.5, rng.random(n_rows) < 0.05),
            "when": pd.Timestamp("2001-01-01") + pd.to_timedelta(rng.integers(0, 10**8, n_rows), unit="s"),
            "group": pd.Categorical.from_codes(rng.integers(-1, 3, n_rows), categories=["c", "a", "b"]),
        }
    )


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_columns_as_drawn_are_stored_as_the_same_cells_typed_one_by_one(tmp_path, file_format):
    """The writer keeps a drawn column's arrays (Int64, boolean, Categorical, datetime): the bytes
    are those of the same cells as Python objects, typed cell by cell as an upload's."""
    drawn = _drawn(1_000)
    objects = drawn.astype(object).where(drawn.notna(), None)
    assert all(objects[name].dtype == object for name in objects.columns)
    kept = [
        sample_to_file(_slicer(frame), 1_000, DRAWN_SCHEMA, tmp_path, chunk_rows=300, file_format=file_format)
        for frame in (drawn, objects)
    ]
    assert kept[0].path.read_bytes() == kept[1].path.read_bytes()
    if file_format == "csv":
        assert kept[0].path.read_bytes() == table_from_frame(drawn, DRAWN_SCHEMA).canonical_bytes


def test_memory_is_bounded_by_the_chunk_not_the_rows(tmp_path):
    """The NumPy memory held at once (``tracemalloc``'s peak) is that of a chunk or two: the same
    for 3 and for 30 chunks, far below the table's. Not a timing: a count of bytes."""

    chunk = _drawn(5_000)

    def peak(chunks: int) -> int:
        tracemalloc.start()
        try:
            sample_to_file(
                lambda rows: chunk.iloc[:rows].copy(), chunks * 5_000, DRAWN_SCHEMA, tmp_path, chunk_rows=5_000
            ).discard()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(1)  # caches filled once per process (the clock's texts, pandas' and Arrow's own)
    small, large = peak(3), peak(30)
    table_bytes = 30 * int(chunk.memory_usage(deep=True).sum())
    assert large < 1.5 * small
    assert large < table_bytes / 4


def _seeded(frame: pd.DataFrame, started: list[int] | None = None):
    """Draws in two steps, as ``Generator.seeded_output`` gives them: each call fixes the next rows
    of ``frame`` (its position taken in call order), the function returned slices them, on any
    thread, with a little numeric work; ``started`` records the position of each draw begun."""
    position = 0

    def prepare(rows: int):
        nonlocal position
        start, position = position, position + rows

        def draw() -> pd.DataFrame:
            if started is not None:
                started.append(start)
            np.sort(np.random.default_rng(start).random(20_000))  # NumPy work, the GIL released
            return frame.iloc[start : start + rows].reset_index(drop=True)

        return draw

    return prepare


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
@pytest.mark.parametrize("threads", [2, 3])
def test_chunks_drawn_at_once_give_the_bytes_of_drawing_them_in_order(tmp_path, file_format, threads):
    """Seven chunks (not a multiple of 2 or 3 threads), the last of 50 rows: the same file as
    drawing one chunk at a time (``sample(k)`` in order)."""
    frame = _drawn(2_150)
    parallel = sample_to_file(
        ChunkDraws(_seeded(frame), threads), 2_150, DRAWN_SCHEMA, tmp_path, chunk_rows=350, file_format=file_format
    )
    in_order = sample_to_file(_slicer(frame), 2_150, DRAWN_SCHEMA, tmp_path, chunk_rows=350, file_format=file_format)
    assert parallel.path.read_bytes() == in_order.path.read_bytes()
    assert (parallel.content_hash, parallel.n_rows) == (in_order.content_hash, 2_150)
    if file_format == "parquet":
        metadata = pq.ParquetFile(parallel.path).metadata
        assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [350] * 6 + [50]


def test_chunks_are_drawn_at_once_and_at_most_threads_plus_one_are_held(tmp_path):
    """The first two draws wait for each other (a barrier: drawn one at a time, they would time
    out); then, with a writer slower than the draws, the chunks begun and not yet written never
    exceed the threads plus the one being written."""
    frame = _drawn(4_000)
    meeting = threading.Barrier(2, timeout=20)
    prepare = _seeded(frame)
    held, peak, lock = 0, 0, threading.Lock()

    def counted(rows: int):
        draw = prepare(rows)
        first_two = counted.made < 2
        counted.made += 1

        def run() -> pd.DataFrame:
            nonlocal held, peak
            with lock:
                held += 1
                peak = max(peak, held)
            if first_two:
                meeting.wait()
            return draw()

        return run

    counted.made = 0

    def written(done: int) -> None:
        nonlocal held
        time.sleep(0.01)  # a slow writer: the draws run ahead as far as they may
        with lock:
            held -= 1

    streamed = sample_to_file(
        ChunkDraws(counted, 2), 4_000, DRAWN_SCHEMA, tmp_path, chunk_rows=200, after_chunk=written
    )
    assert streamed.n_rows == 4_000 and counted.made == 20
    assert peak == 3  # two drawn ahead of the one written, never more


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_an_error_in_a_drawing_thread_is_the_writes_error_and_leaves_no_file(tmp_path, file_format):
    """A draw that fails (the third of seven, two at once) raises its error from ``sample_to_file``,
    after the draws under way have ended, and the partial file is removed; the later chunks are
    not drawn."""
    frame = _drawn(2_100)
    started: list[int] = []
    prepare = _seeded(frame, started)

    def failing(rows: int):
        draw = prepare(rows)
        if failing.made == 2:
            draw = _raising
        failing.made += 1
        return draw

    failing.made = 0
    with pytest.raises(ValueError, match="a draw failed"):
        sample_to_file(ChunkDraws(failing, 2), 2_100, DRAWN_SCHEMA, tmp_path, chunk_rows=300, file_format=file_format)
    assert list(tmp_path.iterdir()) == []
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("sampling")]
    assert failing.made == 4 and max(started) <= 900  # none past the failing draw and the one beside it


def _raising() -> pd.DataFrame:
    raise ValueError("a draw failed")


def test_an_error_preparing_a_draw_is_the_writes_error_and_leaves_no_file(tmp_path):
    def prepare(rows: int):
        if rows < 300:
            raise ValueError("n_rows refused")
        return lambda: _drawn(rows)

    with pytest.raises(ValueError, match="n_rows refused"):
        sample_to_file(ChunkDraws(prepare, 2), 1_000, DRAWN_SCHEMA, tmp_path, chunk_rows=300)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="threads"):
        ChunkDraws(prepare, 0)
