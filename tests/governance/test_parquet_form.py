"""A synthetic table stored as Parquet reads back as the same frame its canonical CSV gives (every
kind of column, missing cells, exact floats), streamed a row group at a time; the job's writer
gives one row group a chunk, the same bytes for the same draws, and nothing left on a stop."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from governance.ingest import build_table, canonical_bytes, canonical_frame
from governance.output_formats import key_format, output_format_checked
from governance.parquet_form import (
    PRESENCE_CHECKS,
    PRESENCE_HEAD,
    _dictionary_column,
    arrow_table,
    frame_from_arrow,
    write_options,
)
from governance.storage import VersionStorage
from synth_engine.streaming import sample_to_file, table_from_frame
from tests.audits.test_audit_sample_stream import SCHEMA as STREAM_SCHEMA
from tests.audits.test_audit_sample_stream import _rows
from tests.governance.test_canonical_csv import SCHEMA, _generated


def _without_carriage_returns(frame: pd.DataFrame) -> pd.DataFrame:
    """A generated frame whose text the canonical CSV reads back (a bare ``\\r`` in a cell does not)."""
    frame = frame.copy()
    frame["text"] = frame["text"].map(lambda value: value.replace("\r", "") if isinstance(value, str) else value)
    return frame


def _sampler(seed: int):
    """A seeded draw of generated rows, as a fitted generator's ``sample`` gives them."""
    rng = np.random.default_rng(seed)

    def sample(rows: int) -> pd.DataFrame:
        return _without_carriage_returns(_generated(rows, int(rng.integers(2**31))))

    return sample


@pytest.mark.parametrize("seed", [0, 1])
def test_parquet_reads_back_as_the_frame_its_canonical_csv_gives(tmp_path, seed):
    frame = _without_carriage_returns(_generated(2_500, seed))
    typed = table_from_frame(frame, SCHEMA)
    from_csv = canonical_frame(typed.canonical_bytes.decode("utf-8"), typed.schema)
    pq.write_table(arrow_table(typed.frame, typed.schema), tmp_path / "t.parquet", **write_options(typed.schema))
    from_parquet = frame_from_arrow(pq.read_table(tmp_path / "t.parquet"), typed.schema)
    pd.testing.assert_frame_equal(from_parquet, from_csv)
    # the floats are the written values bit for bit (-0.0 and 5e-324 included); the CSV's reading
    # (pandas' to_numeric) may be an ulp off the value its text spells
    x, written = from_parquet["x"].to_numpy(), typed.frame["x"].to_numpy()
    present = ~np.isnan(written)
    assert x[present].tobytes() == written[present].tobytes()
    assert np.array_equal(np.isnan(x), ~present) and present.sum() < len(x)


def test_the_job_writer_gives_one_row_group_a_chunk_and_the_same_bytes_for_the_same_draws(tmp_path):
    asked: list[int] = []

    def recorded(sample):
        def draw(rows: int) -> pd.DataFrame:
            asked.append(rows)
            return sample(rows)

        return draw

    first = sample_to_file(recorded(_sampler(5)), 2_050, SCHEMA, tmp_path, chunk_rows=400, file_format="parquet")
    again = sample_to_file(_sampler(5), 2_050, SCHEMA, tmp_path, chunk_rows=400, file_format="parquet")
    data = first.path.read_bytes()
    assert data[:4] == data[-4:] == b"PAR1" and first.path.suffix == ".parquet"
    assert data == again.path.read_bytes() and first.content_hash == again.content_hash
    assert first.content_hash == hashlib.sha256(data).hexdigest() and first.size_bytes == len(data)
    assert asked == [400, 400, 400, 400, 400, 50]  # never more than a chunk drawn at once
    metadata = pq.ParquetFile(first.path).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == asked
    assert (first.n_rows, first.n_columns, first.file_format) == (2_050, len(SCHEMA["columns"]), "parquet")

    csv = sample_to_file(_sampler(5), 2_050, SCHEMA, tmp_path, chunk_rows=400)  # the same draws as CSV
    as_csv = canonical_frame(csv.path.read_text(encoding="utf-8"), csv.schema)
    storage = VersionStorage(str(tmp_path))
    pd.testing.assert_frame_equal(storage.read_version(first.path.name, first.schema), as_csv)
    different = sample_to_file(_sampler(6), 2_050, SCHEMA, tmp_path, chunk_rows=400, file_format="parquet")
    assert different.content_hash != first.content_hash


def test_a_stop_between_chunks_leaves_no_parquet_file(tmp_path):
    def stop_after_two(done: int) -> None:
        if done >= 200:
            raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        sample_to_file(
            _sampler(1), 1_000, SCHEMA, tmp_path, chunk_rows=100, file_format="parquet", after_chunk=stop_after_two
        )
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="file_format"):
        sample_to_file(_sampler(1), 10, SCHEMA, tmp_path, chunk_rows=100, file_format="xlsx")
    assert list(tmp_path.iterdir()) == []


def _stored_both(storage: VersionStorage, n: int) -> tuple[str, str, dict]:
    header = [column["name"] for column in STREAM_SCHEMA["columns"]]
    table = build_table(header, _rows(n), {**STREAM_SCHEMA, "missing_values": [""]}, schema_inferred=False)
    storage.write_new("v.csv", canonical_bytes(table.frame, table.schema))
    arrow = arrow_table(table.frame, table.schema)
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, arrow.schema, **write_options(table.schema)) as writer:
        for start in range(0, n, 700):  # several row groups, as a job writes them
            writer.write_table(arrow.slice(start, 700))
    storage.write_new("v.parquet", buffer.getvalue())
    return "v.csv", "v.parquet", table.schema


@pytest.mark.parametrize("where", ["local", "memory"])
def test_the_streamed_audit_sample_and_cell_counts_of_parquet_match_csv(tmp_path, where):
    # the local data directory, or an fsspec filesystem as S3 is one (its files opened, never paths)
    storage = VersionStorage(str(tmp_path) if where == "local" else f"memory://parquet-{tmp_path.name}")
    csv_key, parquet_key, schema = _stored_both(storage, 3_000)
    assert (key_format(csv_key), key_format(parquet_key)) == ("csv", "parquet")
    whole = storage.read_version(csv_key, schema)
    pd.testing.assert_frame_equal(storage.read_version(parquet_key, schema), whole)
    positions = sorted(np.random.default_rng(1).choice(2_999, size=400, replace=False).tolist())
    for wanted in (positions, [0], [699, 700], [2_999], list(range(3_000))):
        streamed = storage.read_version_rows(parquet_key, schema, wanted)
        pd.testing.assert_frame_equal(streamed, whole.iloc[wanted].reset_index(drop=True))
        pd.testing.assert_frame_equal(streamed, storage.read_version_rows(csv_key, schema, wanted))
    # 'rare' is missing in the last row only: a sample without it is still typed as the whole table
    assert str(storage.read_version_rows(parquet_key, schema, positions)["rare"].dtype) == "Int64"
    assert storage.read_version_rows(parquet_key, schema, [0, 3_000]) is None
    texts = {"note": ("", "plain", "a, comma"), "count": ("",), "share": ("", "1e-07"), "flag": ("", "True")}
    texts |= {"seen": ("",), "rare": ("", "0")}
    assert storage.cell_counts(parquet_key, texts, chunk_rows=500) == storage.cell_counts(csv_key, texts)
    assert storage.cell_counts(csv_key, texts)[1]["share"]["1e-07"] > 0


def test_an_unknown_output_format_is_refused_with_the_formats_offered():
    assert output_format_checked("parquet") == "parquet"
    with pytest.raises(Exception, match="csv, parquet") as refused:
        output_format_checked("xlsx")
    assert refused.value.extra == {"field": "output_format", "allowed": ["csv", "parquet"]}


def _dictionary_reference(codes: np.ndarray, categories: np.ndarray) -> tuple[list, list]:
    """The dictionary column by definition: the texts present sorted, each row its text's index."""
    texts = sorted({categories[code] for code in codes if code >= 0})
    return texts, [texts.index(categories[code]) if code >= 0 else None for code in codes]


@pytest.mark.parametrize(
    "case",
    ["all early", "one late", "many late", "missing and unused", "in order, the rest unused", "in order, one late"],
)
def test_a_dictionary_column_holds_the_texts_present_sorted_wherever_they_first_occur(case):
    """Whatever the categories' order: "in order" ones are sorted already, so the codes are the
    indices while the categories present are the first ones (the rest unused), not past a gap."""
    rng = np.random.default_rng(7)
    width = 40 if case == "many late" else 10  # more categories than are looked for one by one
    names = [f"t{index:02d}" for index in range(width)]
    categories = np.array((names if case.startswith("in order") else names[::-1]) + ["other"], dtype=object)
    n = PRESENCE_HEAD * 3
    codes = rng.integers(0, 5, n).astype(np.int8)
    if case in ("one late", "in order, one late"):  # a category first seen far past the head, others never
        codes[-3] = 8
    if case == "many late":
        codes[-PRESENCE_CHECKS - 5 :] = np.arange(10, 10 + PRESENCE_CHECKS + 5)
    if case == "missing and unused":
        codes[rng.random(n) < 0.2] = -1
        codes[PRESENCE_HEAD + 1] = width  # other
    column = _dictionary_column(codes, categories)
    texts, indices = _dictionary_reference(codes, categories)
    assert column.dictionary.to_pylist() == texts
    assert column.indices.to_pylist() == indices
