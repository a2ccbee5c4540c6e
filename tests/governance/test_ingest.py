"""Reading uploaded tables at the edge: every malformed input is refused with an error that
names the line, row, column or field at fault; good input of every supported format comes
out as the same typed frame and the same canonical bytes.

These tests need no database: ``governance.ingest`` never writes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from core.errors import DatasetFormatError, ValidationError
from governance.ingest import IngestLimits, load_canonical, read_table, suggested_declarations

LIMITS = IngestLimits(max_upload_bytes=10 * 1024 * 1024, max_expanded_bytes=64 * 1024 * 1024, max_compression_ratio=200)

SMALL_CSV = b"age,income,city,member\n34,51000.5,Leeds,true\n51,72000,York,false\n29,,Leeds,true\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read(
    tmp_path: Path, data: bytes, *, name: str = "table.csv", schema: dict | None = None, limits: IngestLimits = LIMITS
):
    return read_table(write(tmp_path, name, data), filename=name, limits=limits, schema=schema)


def refused(tmp_path: Path, data: bytes, **kwargs) -> DatasetFormatError:
    with pytest.raises(DatasetFormatError) as caught:
        read(tmp_path, data, **kwargs)
    return caught.value


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def schema_of(*columns: tuple[str, str, str]) -> dict:
    return {"columns": [{"name": name, "type": kind, "role": role} for name, kind, role in columns]}


SMALL_SCHEMA = schema_of(
    ("age", "integer", "quasi_identifier"),
    ("income", "float", "sensitive"),
    ("city", "categorical", "other"),
    ("member", "boolean", "label"),
)


# --- shape of the file --------------------------------------------------------------------


def test_format_error_is_a_validation_error_with_a_stable_code():
    assert issubclass(DatasetFormatError, ValidationError)
    assert DatasetFormatError("x").code == "invalid_dataset"
    assert DatasetFormatError("x").status == 400


def test_refuses_an_empty_file(tmp_path):
    error = refused(tmp_path, b"")
    assert error.message == "The file is empty."


def test_refuses_a_file_of_only_whitespace(tmp_path):
    assert refused(tmp_path, b"\n\n  \n").message == "The file is empty."


def test_refuses_a_header_without_data_rows(tmp_path):
    error = refused(tmp_path, b"age,income\n")
    assert "header but no data rows" in error.message


def test_refuses_a_row_with_too_many_fields_naming_its_line(tmp_path):
    error = refused(tmp_path, b"a,b,c\n1,2,3\n4,5,6,7\n8,9,10\n")
    assert error.message == "Line 3 has 4 fields; the header has 3."
    assert error.extra == {"line": 3, "fields": 4, "expected": 3}


def test_refuses_a_row_with_too_few_fields_naming_its_line(tmp_path):
    error = refused(tmp_path, b"a,b,c\n1,2,3\n4,5,6\n7,8\n")
    assert error.message == "Line 4 has 2 fields; the header has 3."
    assert error.extra == {"line": 4, "fields": 2, "expected": 3}


def test_counts_lines_of_the_file_not_rows_when_a_quoted_field_spans_lines(tmp_path):
    error = refused(tmp_path, b'a,b\n"two\nlines",1\n3\n')
    assert error.extra["line"] == 4


def test_skips_blank_lines_between_rows(tmp_path):
    table = read(tmp_path, b"a,b\n1,2\n\n3,4\n")
    assert table.frame["a"].tolist() == [1, 3]


def test_refuses_duplicate_column_names(tmp_path):
    error = refused(tmp_path, b"age,city,age\n1,x,2\n")
    assert error.message == "Duplicate column names: age."
    assert error.extra == {"duplicate_columns": ["age"]}


def test_refuses_an_empty_column_name_naming_its_position(tmp_path):
    error = refused(tmp_path, b"age,,city\n1,2,x\n")
    assert error.message == "Column 2 of the header has an empty name."
    assert error.extra == {"empty_name_positions": [2]}


def test_refuses_a_column_name_of_only_spaces(tmp_path):
    error = refused(tmp_path, b"age,  \n1,2\n")
    assert error.extra == {"empty_name_positions": [2]}


def test_refuses_a_malformed_quote_naming_its_line(tmp_path):
    error = refused(tmp_path, b'a,b\n1,2\n3,"4"x\n')
    assert "line 3" in error.message
    assert error.extra == {"line": 3}


# --- encoding -----------------------------------------------------------------------------


def test_refuses_bytes_that_are_not_utf8_naming_the_byte_offset_and_line(tmp_path):
    data = b"name,city\nAnna,Leeds\nJos\xe9,M\xe1laga\n"  # Latin-1, as Excel exports it
    error = refused(tmp_path, data)
    offset = data.index(b"\xe9")
    assert error.extra == {"byte_offset": offset, "line": 3}
    assert f"byte {offset} (line 3)" in error.message
    assert "UTF-8" in error.message


def test_reads_utf8_with_a_byte_order_mark_and_accents(tmp_path):
    table = read(tmp_path, "\ufeffname,city\nJosé,Málaga\n".encode())
    assert list(table.frame.columns) == ["name", "city"]
    assert table.frame["city"].tolist() == ["Málaga"]


# --- values and schemas ---------------------------------------------------------------------


def test_refuses_an_unparseable_number_naming_the_column_row_and_line(tmp_path):
    data = b"age,income,city,member\n34,1.5,Leeds,true\n51,lots,York,false\n29,2,Leeds,true\n40,n/a,Hull,true\n"
    error = refused(tmp_path, data, schema=SMALL_SCHEMA)
    assert error.message.startswith("Column 'income', row 2 (line 3): 'lots' is not a number")
    assert "1 more rows have the same problem" in error.message
    assert error.extra == {
        "column": "income",
        "bad_count": 2,
        "bad_rows": [{"row": 2, "line": 3, "value": "lots"}, {"row": 4, "line": 5, "value": "n/a"}],
    }


def test_refuses_a_fraction_in_an_integer_column(tmp_path):
    error = refused(tmp_path, b"age,income,city,member\n34.5,1,Leeds,true\n", schema=SMALL_SCHEMA)
    assert error.extra["column"] == "age"
    assert "is not a whole number" in error.message


def test_refuses_an_infinite_number(tmp_path):
    error = refused(tmp_path, b"age,income,city,member\n34,inf,Leeds,true\n", schema=SMALL_SCHEMA)
    assert error.extra["column"] == "income"
    assert "is infinite" in error.message


def test_refuses_a_value_that_is_not_a_boolean(tmp_path):
    error = refused(tmp_path, b"age,income,city,member\n34,1,Leeds,maybe\n", schema=SMALL_SCHEMA)
    assert error.extra["column"] == "member"
    assert error.extra["bad_rows"] == [{"row": 1, "line": 2, "value": "maybe"}]


def test_refuses_a_schema_naming_columns_the_file_lacks(tmp_path):
    schema = schema_of(
        *[(c["name"], c["type"], c["role"]) for c in SMALL_SCHEMA["columns"]], ("zip", "categorical", "other")
    )
    error = refused(tmp_path, SMALL_CSV, schema=schema)
    assert error.message == "The schema names columns the file lacks: zip."
    assert error.extra == {"unknown_columns": ["zip"], "file_columns": ["age", "income", "city", "member"]}


def test_refuses_file_columns_the_schema_does_not_describe(tmp_path):
    schema = schema_of(("age", "integer", "other"), ("income", "float", "other"))
    error = refused(tmp_path, SMALL_CSV, schema=schema)
    assert error.message == "The file has columns the schema does not describe: city, member."
    assert error.extra == {"undeclared_columns": ["city", "member"]}


def test_refuses_a_schema_listing_a_column_twice(tmp_path):
    schema = {"columns": [*SMALL_SCHEMA["columns"], {"name": "age", "type": "integer"}]}
    assert refused(tmp_path, SMALL_CSV, schema=schema).message == "The schema lists columns twice: age."


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ({"name": "age", "type": "number"}, "Schema column 'age': type must be one of"),
        ({"name": "age"}, "Schema column 'age': type must be one of"),
        ({"name": "age", "type": "integer", "role": "secret"}, "Schema column 'age': role must be one of"),
        ({"name": "age", "type": "integer", "colour": "red"}, "Schema column 'age' has unknown keys: colour."),
        ({"name": "", "type": "integer"}, 'Schema column 1 needs a non-empty string "name".'),
        ({"name": "age", "type": "integer", "min": 90, "max": 17}, "Schema column 'age': min is greater than max."),
        ({"name": "age", "type": "integer", "min": "17"}, "Schema column 'age': min must be a finite number."),
        ({"name": "age", "type": "categorical", "max": 3}, "Schema column 'age': max is only allowed on numeric"),
        (
            {"name": "age", "type": "categorical", "categories": []},
            "Schema column 'age': categories must be a non-empty",
        ),
    ],
)
def test_refuses_a_bad_schema_column_naming_it(tmp_path, column, expected):
    schema = {"columns": [column, *SMALL_SCHEMA["columns"][1:]]}
    assert refused(tmp_path, SMALL_CSV, schema=schema).message.startswith(expected)


@pytest.mark.parametrize("schema", [[], {"columns": "age"}, {"cols": []}])
def test_refuses_a_schema_that_is_not_an_object_with_a_columns_list(tmp_path, schema):
    assert "columns" in refused(tmp_path, SMALL_CSV, schema=schema).message


def test_refuses_two_label_columns(tmp_path):
    schema = schema_of(
        ("age", "integer", "label"),
        ("income", "float", "other"),
        ("city", "categorical", "other"),
        ("member", "boolean", "label"),
    )
    assert refused(tmp_path, SMALL_CSV, schema=schema).message.startswith("At most one label column is allowed")


def test_refuses_missing_values_that_are_not_a_list_of_strings(tmp_path):
    schema = {**SMALL_SCHEMA, "missing_values": ["?", 0]}
    assert '"missing_values"' in refused(tmp_path, SMALL_CSV, schema=schema).message


def test_refuses_a_table_whose_every_column_is_an_identifier(tmp_path):
    schema = schema_of(("a", "integer", "identifier"), ("b", "categorical", "identifier"))
    error = refused(tmp_path, b"a,b\n1,x\n", schema=schema)
    assert error.extra == {"dropped_columns": ["a", "b"]}


# --- size and compression -------------------------------------------------------------------


def test_refuses_a_file_over_the_upload_limit(tmp_path):
    limits = IngestLimits(max_upload_bytes=len(SMALL_CSV) - 1, max_expanded_bytes=10**9, max_compression_ratio=200)
    error = refused(tmp_path, SMALL_CSV, limits=limits)
    assert error.extra == {"size_bytes": len(SMALL_CSV), "limit_bytes": len(SMALL_CSV) - 1}
    assert "over the upload limit" in error.message


def test_accepts_a_file_exactly_at_the_upload_limit(tmp_path):
    limits = IngestLimits(max_upload_bytes=len(SMALL_CSV), max_expanded_bytes=10**9, max_compression_ratio=200)
    assert len(read(tmp_path, SMALL_CSV, limits=limits).frame) == 3


def highly_compressible_csv(n_rows: int) -> bytes:
    return b"a,b\n" + b"1,2\n" * n_rows


def test_refuses_a_gzip_that_expands_past_the_expanded_size_limit(tmp_path):
    data = gzip.compress(highly_compressible_csv(50_000))  # 200 kB expanded
    limits = IngestLimits(max_upload_bytes=10**9, max_expanded_bytes=100_000, max_compression_ratio=10**6)
    error = refused(tmp_path, data, name="bomb.csv.gz", limits=limits)
    assert error.extra == {"limit_bytes": 100_000}
    assert "expands past 100,000 bytes" in error.message


def test_refuses_a_gzip_with_an_excessive_compression_ratio(tmp_path):
    data = gzip.compress(highly_compressible_csv(1_000_000))  # 4 MB of repetition compresses ~1000:1
    error = refused(tmp_path, data, name="bomb.csv.gz")
    assert error.extra == {"ratio_limit": 200}
    assert "decompression bomb" in error.message


def test_refuses_a_zip_with_an_excessive_compression_ratio(tmp_path):
    data = zipped({"bomb.csv": highly_compressible_csv(1_000_000)})
    assert refused(tmp_path, data, name="bomb.zip").extra == {"ratio_limit": 200}


def test_refuses_a_zip_that_expands_past_the_expanded_size_limit(tmp_path):
    data = zipped({"big.csv": highly_compressible_csv(50_000)})
    limits = IngestLimits(max_upload_bytes=10**9, max_expanded_bytes=100_000, max_compression_ratio=10**6)
    assert refused(tmp_path, data, name="big.zip", limits=limits).extra == {"limit_bytes": 100_000}


def test_refuses_a_gzip_whose_deflate_stream_is_damaged(tmp_path):
    damaged = bytearray(gzip.compress(b"a,b,c\n" + b"".join(b"%d,x%d,%d.5\n" % (i, i % 7, i) for i in range(3000))))
    for position in range(20, 60):
        damaged[position] ^= 0xFF
    error = refused(tmp_path, bytes(damaged), name="table.csv.gz")
    assert error.message.startswith("The compressed file is corrupt")


def test_refuses_a_truncated_gzip(tmp_path):
    data = gzip.compress(SMALL_CSV * 50)
    error = refused(tmp_path, data[: len(data) // 2], name="table.csv.gz")
    assert error.message.startswith("The compressed file is corrupt")


def test_refuses_a_damaged_zip(tmp_path):
    damaged = bytearray(zipped({"t.csv": b"a,b,c\n" + b"".join(b"%d,x%d,%d\n" % (i, i % 7, i) for i in range(3000))}))
    for position in range(50, 90):
        damaged[position] ^= 0xFF
    assert refused(tmp_path, bytes(damaged), name="t.zip").message.startswith("The compressed file is corrupt")


def test_refuses_a_file_named_compressed_whose_content_is_not_an_archive(tmp_path):
    error = refused(tmp_path, SMALL_CSV, name="table.csv.gz")
    assert "named as compressed but its content is not a valid archive" in error.message


def test_refuses_a_zip_holding_more_than_one_file(tmp_path):
    error = refused(tmp_path, zipped({"a.csv": SMALL_CSV, "b.csv": SMALL_CSV}), name="two.zip")
    assert error.message == "A zip upload must hold exactly one file; this one holds 2."


def test_refuses_a_gzip_of_nothing(tmp_path):
    assert "empty" in refused(tmp_path, gzip.compress(b""), name="t.csv.gz").message


def test_refuses_a_corrupt_parquet_file(tmp_path):
    assert refused(tmp_path, b"PAR1garbage", name="t.parquet").message.startswith("The Parquet file cannot be read")


# --- good input -------------------------------------------------------------------------------


def test_infers_integer_float_categorical_and_boolean_columns(tmp_path):
    table = read(tmp_path, SMALL_CSV)
    assert table.schema_inferred is True
    assert table.schema == {
        "missing_values": [""],
        "columns": [
            {"name": "age", "type": "integer", "role": "other", "type_proposed": True},
            {"name": "income", "type": "float", "role": "other", "type_proposed": True},
            {"name": "city", "type": "categorical", "role": "other", "type_proposed": True},
            {"name": "member", "type": "boolean", "role": "other", "type_proposed": True},
        ],
    }
    assert table.frame.dtypes.astype(str).to_dict() == {
        "age": "int64",
        "income": "float64",
        "city": "object",
        "member": "boolean",
    }
    assert table.dropped_columns == []


def test_infers_a_column_of_mixed_numbers_and_words_as_categorical(tmp_path):
    table = read(tmp_path, b"code\n12\nA7\n")
    assert table.schema["columns"][0]["type"] == "categorical"
    assert table.frame["code"].tolist() == ["12", "A7"]


def test_an_integer_column_with_missing_values_becomes_nullable(tmp_path):
    table = read(tmp_path, b"a,b\n1,x\n,y\n3,z\n")
    assert str(table.frame["a"].dtype) == "Int64"
    assert table.frame["a"].isna().tolist() == [False, True, False]


def test_declared_missing_value_tokens_are_read_as_missing(tmp_path):
    schema = {**schema_of(("a", "integer", "other"), ("b", "categorical", "other")), "missing_values": ["?", ""]}
    table = read(tmp_path, b"a,b\n1,x\n?,?\n", schema=schema)
    assert table.frame["a"].isna().tolist() == [False, True]
    assert table.frame["b"].tolist() == ["x", None]


def test_a_declared_schema_is_used_as_given_and_not_marked_inferred(tmp_path):
    table = read(tmp_path, SMALL_CSV, schema=SMALL_SCHEMA)
    assert table.schema_inferred is False
    assert [(c["name"], c["type"], c["role"]) for c in table.schema["columns"]] == [
        ("age", "integer", "quasi_identifier"),
        ("income", "float", "sensitive"),
        ("city", "categorical", "other"),
        ("member", "boolean", "label"),
    ]


def test_identifier_columns_are_dropped_and_named(tmp_path):
    data = b"patient_id,age,nhs_number,city\nP1,34,943 476 5919,Leeds\nP2,51,943 476 5870,York\n"
    schema = schema_of(
        ("patient_id", "categorical", "identifier"),
        ("age", "integer", "other"),
        ("nhs_number", "categorical", "identifier"),
        ("city", "categorical", "other"),
    )
    table = read(tmp_path, data, schema=schema)
    assert table.dropped_columns == ["patient_id", "nhs_number"]
    assert list(table.frame.columns) == ["age", "city"]
    assert [column["name"] for column in table.schema["columns"]] == ["age", "city"]
    assert table.canonical_bytes == b"age,city\n34,Leeds\n51,York\n"
    assert b"P1" not in table.canonical_bytes and b"943" not in table.canonical_bytes


def test_content_hash_is_the_sha256_of_the_canonical_bytes(tmp_path):
    table = read(tmp_path, SMALL_CSV)
    assert table.content_hash == hashlib.sha256(table.canonical_bytes).hexdigest()
    assert (
        table.canonical_bytes == b"age,income,city,member\n34,51000.5,Leeds,True\n51,72000.0,York,False\n"
        b"29,,Leeds,True\n"
    )


def test_sniffs_semicolon_and_tab_delimiters_to_the_same_canonical_bytes(tmp_path):
    comma = read(tmp_path, SMALL_CSV, name="comma.csv")
    semicolon = read(tmp_path, SMALL_CSV.replace(b",", b";"), name="semicolon.csv")
    tab = read(tmp_path, SMALL_CSV.replace(b",", b"\t"), name="tab.tsv")
    assert comma.content_hash == semicolon.content_hash == tab.content_hash


def test_line_endings_and_number_spelling_do_not_change_the_content_hash(tmp_path):
    plain = read(tmp_path, SMALL_CSV, name="plain.csv")
    respelled = read(tmp_path, SMALL_CSV.replace(b"\n", b"\r\n").replace(b"72000", b"72000.000"), name="crlf.csv")
    assert respelled.canonical_bytes == plain.canonical_bytes


@pytest.mark.parametrize("container", ["gzip", "zip", "parquet", "parquet-gzip"])
def test_compressed_and_parquet_uploads_give_the_same_table_as_the_csv(tmp_path, container):
    plain = read(tmp_path, SMALL_CSV, name="plain.csv")
    frame = pd.read_csv(io.BytesIO(SMALL_CSV))
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    data, name = {
        "gzip": (gzip.compress(SMALL_CSV), "t.csv.gz"),
        "zip": (zipped({"t.csv": SMALL_CSV}), "t.zip"),
        "parquet": (parquet.getvalue(), "t.parquet"),
        "parquet-gzip": (gzip.compress(parquet.getvalue()), "t.parquet.gz"),
    }[container]
    table = read(tmp_path, data, name=name)
    assert table.schema == plain.schema
    assert table.content_hash == plain.content_hash
    pd.testing.assert_frame_equal(table.frame, plain.frame)


def test_detects_compression_by_content_not_by_file_name(tmp_path):
    table = read(tmp_path, gzip.compress(SMALL_CSV), name="upload.bin")
    assert len(table.frame) == 3


def test_load_canonical_round_trips_values_and_dtypes(tmp_path):
    data = (
        b"id,n,m,x,flag,cat,when\n"
        b"1,1,,1.5,true,a,2024-01-02T03:04:05\n"
        b"2,2,3,2,no,b,2024-02-03\n"
        b"3,3,4,-0.25,,,2024-03-04T00:00:00.5\n"
    )
    schema = schema_of(
        ("id", "categorical", "identifier"),
        ("n", "integer", "other"),
        ("m", "integer", "other"),
        ("x", "float", "sensitive"),
        ("flag", "boolean", "other"),
        ("cat", "categorical", "label"),
        ("when", "datetime", "other"),
    )
    table = read(tmp_path, data, schema=schema)
    stored = write(tmp_path, "stored.csv", table.canonical_bytes)

    loaded = load_canonical(stored, table.schema)

    assert loaded.dtypes.astype(str).to_dict() == {
        "n": "int64",
        "m": "Int64",
        "x": "float64",
        "flag": "boolean",
        "cat": "object",
        "when": "datetime64[ns]",
    }
    pd.testing.assert_frame_equal(loaded, table.frame)


def test_load_canonical_round_trips_the_adult_fixture(tmp_path, adult_csv, adult_schema):
    table = read_table(adult_csv, filename=adult_csv.name, limits=LIMITS, schema=adult_schema)
    stored = write(tmp_path, "stored.csv", table.canonical_bytes)
    pd.testing.assert_frame_equal(load_canonical(stored, table.schema), table.frame)
    assert table.frame.shape == (2000, 15)


def _trading_days_csv(days: pd.DatetimeIndex, with_time: bool = False) -> bytes:
    lines = ["day,price,answer"]
    for number, day in enumerate(days):
        stamp = day.strftime("%Y-%m-%dT%H:%M:%S" if with_time else "%Y-%m-%d")
        lines.append(f"{stamp},{100 + number * 0.37:.2f},{[17.5, 22.0, 27.0, 32.5][number % 4]}")
    return ("\n".join(lines) + "\n").encode()


def test_infers_iso_dates_as_datetimes_and_suggests_the_weekday_calendar_and_a_grid_without_storing_them(tmp_path):
    # Issue 11.6: ISO dates used to be inferred as categorical (then refused by the generators as a
    # high-cardinality column); float answers on a 0.5 grid came out continuous unless declared.
    # Issue 11.1: the resolution, calendar and step read from the rows are suggestions for the
    # steward, never in the schema the generators read.
    table = read(tmp_path, _trading_days_csv(pd.bdate_range("2024-01-01", periods=40)))
    assert table.schema["columns"] == [
        {"name": "day", "type": "datetime", "role": "other", "type_proposed": True},
        {"name": "price", "type": "float", "role": "other", "type_proposed": True},
        {"name": "answer", "type": "float", "role": "other", "type_proposed": True},
    ]
    assert str(table.frame["day"].dtype) == "datetime64[ns]"
    assert table.frame["day"].iloc[-1] == pd.Timestamp("2024-02-23")
    assert suggested_declarations(table.frame, table.schema) == {
        "day": {"resolution": "day", "calendar": "weekdays"},
        "answer": {"step": 0.5},  # price: cents over a wide range, continuous
    }


@pytest.mark.parametrize(
    ("days", "with_time", "suggested"),
    [
        (pd.date_range("2024-01-01", periods=40), False, {"resolution": "day"}),  # weekends present
        (pd.bdate_range("2024-01-01", periods=10), False, {"resolution": "day"}),  # too few to tell
        (pd.bdate_range("2024-01-01", periods=40) + pd.Timedelta(hours=9, minutes=30), True, None),
    ],
)
def test_suggests_the_weekday_calendar_only_on_enough_whole_dates_without_a_weekend(
    tmp_path, days, with_time, suggested
):
    table = read(tmp_path, _trading_days_csv(days, with_time))
    assert table.schema["columns"][0] == {"name": "day", "type": "datetime", "role": "other", "type_proposed": True}
    assert suggested_declarations(table.frame, table.schema).get("day") == suggested


def test_a_declared_key_is_not_suggested_again(tmp_path):
    table = read(tmp_path, _trading_days_csv(pd.bdate_range("2024-01-01", periods=40)))
    declared = {
        **table.schema,
        "columns": [
            {"name": "day", "type": "datetime", "role": "other", "resolution": "day"},
            {"name": "price", "type": "float", "role": "other"},
            {"name": "answer", "type": "float", "role": "other", "step": 0.25},
        ],
    }
    assert suggested_declarations(table.frame, declared) == {"day": {"calendar": "weekdays"}}
    hourly = {**declared, "columns": [{"name": "day", "type": "datetime", "role": "other", "resolution": "hour"}]}
    assert suggested_declarations(table.frame, hourly) == {}


def test_text_that_is_not_all_iso_dates_stays_categorical(tmp_path):
    table = read(tmp_path, b"when\n2024-01-31\nsoon\n2024-02-01\n")
    assert table.schema["columns"][0]["type"] == "categorical"
    assert read(tmp_path, b"when\n2024-01-31\n2024-13-01\n").schema["columns"][0]["type"] == "categorical"
