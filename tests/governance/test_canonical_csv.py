"""The stored form written by column in Arrow is byte for byte pandas' CSV writer's, and a
generated frame typed by whole arrays is the frame its cells' text would give as an upload."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.errors import DatasetFormatError
from governance import canonical_csv as canonical_csv_module
from governance.canonical_csv import canonical_csv
from governance.ingest import build_table
from synth_engine.streaming import table_from_frame

SCHEMA = {
    "columns": [
        {"name": "n", "type": "integer", "role": "other"},
        {"name": "n_missing", "type": "integer", "role": "other"},
        {"name": "n_float", "type": "integer", "role": "other"},
        {"name": "x", "type": "float", "role": "other"},
        {"name": "text", "type": "categorical", "role": "other"},
        {"name": "flag", "type": "boolean", "role": "other"},
        {"name": "flag_missing", "type": "boolean", "role": "other"},
        {"name": "when", "type": "datetime", "role": "other"},
    ]
}
ODD_TEXT = ["plain", 'say "hi"', "a,b", "line\nend", "cr\rhere", " padded ", "", "nan", "Ünïcode", "''"]


def _pandas_csv(frame: pd.DataFrame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n", date_format="%Y-%m-%dT%H:%M:%S.%f")
    return buffer.getvalue().encode("utf-8")


def _generated(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """A frame as generators give one: every kind of column, missing values, awkward values."""
    rng = np.random.default_rng(seed)
    magnitudes = 10.0 ** rng.integers(-12, 22, n_rows)
    x = rng.standard_normal(n_rows) * magnitudes
    x[rng.random(n_rows) < 0.1] = np.nan
    x[:8] = [0.0, -0.0, 1e-4, 9.9999e-5, 1e10, 9999999999.5, 1e16, 5e-324]
    missing = rng.random(n_rows) < 0.2
    stamps = pd.Timestamp("1990-01-01") + pd.to_timedelta(rng.integers(0, 10**9, n_rows), unit="s")
    when = pd.Series(stamps).mask(rng.random(n_rows) < 0.1)
    text = pd.Series(rng.choice(ODD_TEXT, n_rows), dtype=object).mask(rng.random(n_rows) < 0.1)
    return pd.DataFrame(
        {
            "n": rng.integers(-(2**62), 2**62, n_rows),
            "n_missing": pd.Series(rng.integers(-5, 10**6, n_rows), dtype="Int64").mask(missing),
            "n_float": np.where(rng.random(n_rows) < 0.1, np.nan, rng.integers(0, 10**9, n_rows).astype(float)),
            "x": x,
            "text": text,
            "flag": rng.random(n_rows) < 0.5,
            "flag_missing": pd.Series(rng.random(n_rows) < 0.5, dtype="boolean").mask(missing),
            "when": when,
        }
    )


def _through_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The reference: every cell written as text and read back as an upload's."""
    header = list(frame.columns)
    text = frame.astype(object).where(frame.notna(), "").astype(str)
    return build_table(header, text.to_numpy().tolist(), {**SCHEMA, "missing_values": [""]}, schema_inferred=False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_arrow_writer_gives_pandas_bytes_for_every_kind_of_column(seed):
    typed = _through_text(_generated(3_000, seed)).frame
    assert canonical_csv(typed, list(typed.columns)) == _pandas_csv(typed)


def test_floats_of_every_magnitude_are_spelled_as_python_repr():
    rng = np.random.default_rng(4)
    values = rng.uniform(-1, 1, 60_000) * 10.0 ** rng.uniform(-330, 308, 60_000)
    values = np.concatenate([values, np.round(values[:20_000]), [1e-4, -1e-4, 1e10, -1e10, 0.1, 2.0**53]])
    frame = pd.DataFrame({"a": values, "b": values[::-1].copy()})
    assert canonical_csv(frame, ["a", "b"]) == _pandas_csv(frame)


def test_generated_frame_is_typed_as_its_text_would_be_but_floats_keep_their_exact_value():
    frame = _generated(2_000)
    reference = _through_text(frame).frame
    table = table_from_frame(frame, SCHEMA)
    pd.testing.assert_frame_equal(table.frame.drop(columns="x"), reference.drop(columns="x"), check_exact=True)
    # pandas.to_numeric reads some decimal texts off in the last digits; the arrays keep the drawn value
    assert table.frame["x"].equals(frame["x"])
    assert np.allclose(table.frame["x"], reference["x"], rtol=1e-12, atol=1e-300, equal_nan=True)
    assert table.canonical_bytes == _pandas_csv(table.frame)


def test_columns_of_another_type_are_typed_cell_by_cell_with_the_uploads_errors():
    frame = _generated(50)
    frame["n_float"] = frame["n_float"].astype(object)
    frame.loc[3, "n_float"] = "4"
    assert table_from_frame(frame, SCHEMA).frame["n_float"].iloc[3] == 4
    frame.loc[5, "x"] = np.inf
    with pytest.raises(DatasetFormatError, match="'x', row 6.*infinite"):
        table_from_frame(frame, SCHEMA)
    frame = _generated(50)
    frame.loc[7, "n_float"] = 2.5
    with pytest.raises(DatasetFormatError, match="not a whole number"):
        table_from_frame(frame, SCHEMA)


def test_a_column_arrow_cannot_spell_is_left_to_pandas():
    stamps = pd.Series(pd.to_datetime(["2020-01-01T00:00:00.000000001", None]))
    assert canonical_csv(pd.DataFrame({"a": stamps, "b": [1, 2]}), ["a", "b"]) is None
    assert canonical_csv(pd.DataFrame({"a": [1, None]}), ["a"]) is None  # one column: the csv module quotes ""
    assert canonical_csv(pd.DataFrame({"a": [1, "x"], "b": [1, 2]}), ["a", "b"]) is None


def test_a_categorical_column_is_written_as_its_texts_are():
    """The job types text columns as Categoricals (each distinct text spelled once): the same bytes."""
    typed = _through_text(_generated(3_000, 5)).frame
    coded = typed.assign(text=typed["text"].astype("category"))
    assert isinstance(coded["text"].dtype, pd.CategoricalDtype) and coded["text"].isna().any()
    assert canonical_csv(coded, list(coded.columns)) == canonical_csv(typed, list(typed.columns)) == _pandas_csv(typed)


def test_lines_without_a_quoted_cell_are_written_by_arrow_and_others_joined_with_the_same_bytes():
    """Arrow's CSV writer writes the lines when no cell needs quoting (it refuses a comma, a quote
    or a line end unquoted); with one such cell the lines are joined; pandas' bytes either way."""
    plain = _through_text(
        _generated(3_000, 6).assign(text=lambda f: f["text"].where(f["text"].isin(["plain", ""])))
    ).frame
    cells = [canonical_csv_module._cells(plain[name]) for name in plain.columns]
    assert canonical_csv_module._written_lines(cells) is not None
    assert canonical_csv(plain, list(plain.columns)) == _pandas_csv(plain)
    for odd in ['say "hi"', "a,b", "line\nend", "cr\rhere"]:
        frame = plain.copy()
        frame.loc[1_234, "text"] = odd
        cells = [canonical_csv_module._cells(frame[name]) for name in frame.columns]
        assert canonical_csv_module._written_lines(cells) is None
        assert canonical_csv(frame, list(frame.columns)) == _pandas_csv(frame)


def test_datetimes_across_the_whole_range_are_spelled_as_pandas_spells_them():
    stamps = pd.Series(
        pd.to_datetime(
            [
                "1677-09-22T00:12:43.145224",
                "2262-04-11T23:47:16.854775",
                "1970-01-01T00:00:00.000000",
                None,
                "1999-12-31T23:59:59.000001",
            ]
        )
    )
    frame = pd.DataFrame({"when": stamps, "n": range(len(stamps))})
    assert canonical_csv(frame, ["when", "n"]) == _pandas_csv(frame)
