"""Synthetic output written chunk by chunk: the same stored bytes and hash as the whole table,
and nothing left behind when sampling stops part-way."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from core.errors import DatasetFormatError
from governance.ingest import canonical_bytes
from synth_engine.streaming import sample_to_file, table_from_frame

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
