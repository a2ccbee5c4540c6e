"""Counts computed in PostgreSQL equal the in-memory counts, and MST fitted from them is the same model.

A table of the Adult fixture (with a float column holding NaN and missing values, a nullable
boolean and a datetime added) is copied into the machine's PostgreSQL; the in-memory path reads
the same values from a frame.
"""

from __future__ import annotations

import io
import itertools
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from synth_engine.engines.postgres import PostgresCounts, cover_groups, quote_identifier
from synth_engine.generators import GeneratorError, MSTGenerator, SchemaMismatchError
from synth_engine.generators.counts import FrameCounts, RowSample
from synth_engine.generators.domain import parse_schema
from synth_engine.privacy.row_count import PaidRowEstimate

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="counts in PostgreSQL need PostgreSQL"),
]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "adult_sample.csv"
INTEGERS = {"age": (17, 90), "education-num": (1, 16), "capital-gain": (0, 99_999), "hours-per-week": (1, 99)}
SQL_TYPES = {"integer": "bigint", "float": "double precision", "boolean": "boolean", "datetime": "timestamp"}


def adult_frame(n_rows: int = 1500) -> pd.DataFrame:
    frame = pd.read_csv(FIXTURE, dtype=str, keep_default_na=False).head(n_rows)
    frame = frame[["age", "workclass", "education", "education-num", "sex", "capital-gain", "hours-per-week", "income"]]
    for column in INTEGERS:
        frame[column] = pd.to_numeric(frame[column])
    rng = np.random.default_rng(3)
    score = rng.normal(50.0, 20.0, n_rows).round(3)
    score[rng.random(n_rows) < 0.05] = np.nan
    frame["score"] = score
    flags = pd.Series(rng.random(n_rows) < 0.3, dtype="boolean")
    flags[rng.random(n_rows) < 0.1] = pd.NA
    frame["flag"] = flags
    seconds = rng.integers(1_500_000_000, 1_700_000_000, n_rows)
    frame["seen"] = pd.to_datetime(seconds, unit="s") + pd.to_timedelta(rng.integers(0, 2, n_rows) * 500, unit="ms")
    frame.loc[rng.random(n_rows) < 0.02, "workclass"] = ""
    return frame


def adult_schema() -> dict:
    columns: list[dict] = []
    for name, (low, high) in INTEGERS.items():
        columns.append({"name": name, "type": "integer", "min": low, "max": high})
    columns[1].pop("max")  # one bound estimated with DP (the magnitude histogram)
    columns += [
        {"name": "workclass", "type": "categorical"},
        {"name": "education", "type": "categorical"},
        {"name": "sex", "type": "categorical", "categories": ["Female", "Male"], "nullable": False},
        {"name": "income", "type": "categorical", "role": "label", "categories": ["<=50K", ">50K"]},
        {"name": "score", "type": "float"},
        {"name": "flag", "type": "boolean"},
        {"name": "seen", "type": "datetime", "min": "2017-01-01T00:00:00", "max": "2024-01-01T00:00:00"},
    ]
    return {"columns": columns}


def create_table(name: str, frame: pd.DataFrame, schema: dict) -> None:
    types = {spec.name: SQL_TYPES.get(spec.type, "text") for spec in parse_schema(schema)}
    columns = ", ".join(f"{quote_identifier(column)} {types[column]}" for column in frame.columns)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with connection.cursor() as cursor:
        # A temporary table: the suite connects as the application role, which may not create tables
        # in the schema (tests/database.py); its own session's temporary tables are found first by name.
        cursor.execute(f"CREATE TEMPORARY TABLE {quote_identifier(name)} ({columns})")
        cursor.copy_expert(f"COPY {quote_identifier(name)} FROM STDIN WITH (FORMAT csv)", buffer)


@pytest.fixture
def adult() -> tuple[pd.DataFrame, dict, PostgresCounts]:
    frame, schema = adult_frame(), adult_schema()
    create_table("engine_adult", frame, schema)
    return frame, schema, PostgresCounts(connection, "engine_adult", schema)


def fitted(source, schema: dict, row_estimate=None, **params) -> MSTGenerator:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MSTGenerator(**params).fit_counts(source, schema, 2.0, 1e-5, random_state=11, row_estimate=row_estimate)


def assert_same_counts(source, frame: pd.DataFrame, schema: dict) -> None:
    """Every question MST asks gets the same integers from ``source`` as from the frame in memory."""
    memory = FrameCounts(frame)
    assert source.row_count() == memory.row_count() == len(frame)
    for spec in parse_schema(schema):
        if spec.type == "categorical" and spec.categories is None:
            keys, counts = source.category_counts(spec)
            expected_keys, expected = memory.category_counts(spec)
            assert dict(zip(keys, counts.tolist(), strict=True)) == dict(
                zip(expected_keys, expected.tolist(), strict=True)
            )
        if spec.is_numeric and spec.maximum is None:
            integer = spec.type != "float"
            assert np.array_equal(
                source.magnitude_counts(spec, integer=integer), memory.magnitude_counts(spec, integer=integer)
            )
    model = fitted(memory, schema)
    codecs, bins = model.codecs_, model.bins_
    for ours, theirs in zip(source.fine_counts(codecs), memory.fine_counts(codecs), strict=True):
        assert np.array_equal(ours, theirs)
    groups = [(7, a, b) for a, b in itertools.combinations([0, 2, 5, 8, 9, 10], 2)] + [(7, 4), (1,), (3, 6)]
    for ours, theirs in zip(
        source.binned_counts(codecs, bins, groups), memory.binned_counts(codecs, bins, groups), strict=True
    ):
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def assert_same_sampled_counts(source, frame: pd.DataFrame, schema: dict) -> None:
    """The binned tables of the rows a :class:`RowSample` keeps (a hash of every column's fine
    code) are the same integers from ``source`` as from the frame: the same rows are kept."""
    memory = FrameCounts(frame)
    model = fitted(memory, schema)
    codecs, bins = model.codecs_, model.bins_
    groups = [(7, a, b) for a, b in itertools.combinations([0, 2, 5, 8, 9, 10], 2)] + [(7, 4), (1,), (3, 6)]
    sample = RowSample.of_rate(0.3)
    sampled = source.binned_counts(codecs, bins, groups, sample=sample)
    for ours, theirs in zip(sampled, memory.binned_counts(codecs, bins, groups, sample=sample), strict=True):
        assert ours.shape == theirs.shape and np.array_equal(ours, theirs)
    assert 0.2 * len(frame) < sampled[-2].sum() < 0.4 * len(frame)


def test_every_count_mst_reads_is_the_same_from_postgresql_as_from_the_frame(adult) -> None:
    frame, schema, database = adult
    assert database.check() == []
    assert_same_counts(database, frame, schema)
    assert_same_sampled_counts(database, frame, schema)


# a job hands MST its version's paid row estimate: the fit then reads no row count at all
PAID = PaidRowEstimate(rows=1000.0, source="the version's DP row estimate", epsilon=0.02, charged="the ledger")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"label_fraction": 0.0},
        {"structure": "tree"},
        {"label_features": 2},
        {"label_features": 3, "label_edge_weight": 8.0},  # two σ's in the two_way stage
        {"row_estimate": PAID},
        # the tree scored on a sample of about 200 of the 1,500 rows (above 4 × 200 estimated rows)
        {"selection_rows": 200},
        {"selection_rows": 200, "structure": "tree"},
        {"selection_rows": 200, "label_features": 2},
    ],
)
def test_mst_fitted_from_postgresql_counts_samples_byte_identical_rows(adult, params) -> None:
    frame, schema, database = adult
    from_memory = fitted(FrameCounts(frame), schema, **params)
    from_database = fitted(database, schema, **params)
    assert from_memory.privacy_spent().to_dict() == from_database.privacy_spent().to_dict()
    assert from_database.count_engine_ == "postgresql" and from_memory.count_engine_ == "pandas"
    # in the test's transaction: the fit's stored fine codes in a savepoint of it, gone with it after
    assert database.paths.count("stored fine codes") == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname LIKE 'synthgate%%'")
        assert cursor.fetchone()[0] == 0
    ours, theirs = from_database.sample(3000), from_memory.sample(3000)
    assert ours.to_csv(index=False).encode() == theirs.to_csv(index=False).encode()


def test_fit_on_a_frame_and_fit_counts_on_its_frame_counts_are_the_same_model(adult) -> None:
    frame, schema, _ = adult
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = MSTGenerator().fit(frame, schema, 2.0, 1e-5, random_state=11)
    assert direct.sample(500).equals(fitted(FrameCounts(frame), schema).sample(500))


def bad_table(frame: pd.DataFrame, schema: dict) -> PostgresCounts:
    create_table("engine_bad", frame, schema)
    return PostgresCounts(connection, "engine_bad", schema)


def test_a_table_that_does_not_match_the_schema_is_refused_in_the_database_before_any_fit(adult) -> None:
    frame, schema, _ = adult
    with pytest.raises(SchemaMismatchError, match="does not exist"):
        PostgresCounts(connection, "no_such_table", schema).check()
    extra = {"columns": [*schema["columns"], {"name": "absent", "type": "integer"}]}
    with pytest.raises(SchemaMismatchError, match="no column 'absent'"):
        PostgresCounts(connection, "engine_adult", extra).check()
    as_integer = {"columns": [{**c, "type": "integer"} if c["name"] == "education" else c for c in schema["columns"]]}
    with pytest.raises(SchemaMismatchError, match="declared integer but is text"):
        PostgresCounts(connection, "engine_adult", as_integer).check()
    narrow = {
        "columns": [{**c, "categories": ["Private"]} if c["name"] == "workclass" else c for c in schema["columns"]]
    }
    with pytest.raises(SchemaMismatchError, match="outside its declared categories"):
        PostgresCounts(connection, "engine_adult", narrow).check()
    strict = {"columns": [{**c, "nullable": False} if c["name"] == "score" else c for c in schema["columns"]]}
    with pytest.raises(SchemaMismatchError, match="nullable: false"):
        PostgresCounts(connection, "engine_adult", strict).check()
    trading = {
        "columns": [
            {**c, "resolution": "day", "calendar": "weekdays"} if c["name"] == "seen" else c for c in schema["columns"]
        ]
    }
    with pytest.raises(SchemaMismatchError, match="weekdays calendar"):  # the fixture's dates include weekends
        PostgresCounts(connection, "engine_adult", trading).check()
    infinite = frame.assign(score=frame["score"].where(frame.index != 5, np.inf))
    with pytest.raises(SchemaMismatchError, match="±inf"):
        bad_table(infinite, schema).check()
    create_table("engine_unlabelled", frame.assign(income=frame["income"].where(frame.index != 5, None)), schema)
    with pytest.raises(SchemaMismatchError, match="label column 'income' has missing values"):
        PostgresCounts(connection, "engine_unlabelled", schema).check()


def test_an_empty_table_is_refused_and_a_quoted_name_reads_only_that_table(adult) -> None:
    frame, schema, _ = adult
    create_table('odd "name"; DROP TABLE engine_adult', frame.head(0), schema)
    with pytest.raises(GeneratorError, match="no rows"):
        PostgresCounts(connection, 'odd "name"; DROP TABLE engine_adult', schema).check()
    assert PostgresCounts(connection, "engine_adult", schema).row_count() == len(frame)


def grid_frame() -> tuple[pd.DataFrame, dict]:
    """Answers on a declared 0.1 grid, each stored a hair below its grid point (as arithmetic on
    floats leaves them): the codec snaps them onto the grid before bucketing, so an engine must too."""
    rng = np.random.default_rng(0)
    multiples = rng.integers(0, 60, 2000)
    frame = pd.DataFrame(
        {"score": np.round(multiples * 0.1, 12) - 1e-13 * (multiples > 0), "flag": rng.choice(["a", "b"], 2000)}
    )
    schema = {
        "columns": [
            {"name": "score", "type": "float", "role": "other", "min": 0.0, "max": 5.9, "step": 0.1, "nullable": False},
            {"name": "flag", "type": "categorical", "role": "label", "categories": ["a", "b"], "nullable": False},
        ]
    }
    return frame, schema


def assert_same_fine_counts(source, frame: pd.DataFrame, schema: dict) -> None:
    codecs = fitted(FrameCounts(frame), schema).codecs_
    for ours, theirs in zip(source.fine_counts(codecs), FrameCounts(frame).fine_counts(codecs), strict=True):
        assert np.array_equal(ours, theirs)


def test_values_a_hair_off_a_declared_step_count_in_postgresql_as_the_codec_snaps_them() -> None:
    frame, schema = grid_frame()
    create_table("engine_grid", frame, schema)
    database = PostgresCounts(connection, "engine_grid", schema)
    assert database.check() == []
    assert_same_fine_counts(database, frame, schema)


def wide_frame() -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({f"x{i}": rng.integers(0, 5 + i % 7, 1500) for i in range(40)})
    frame["y"] = rng.choice(["a", "b"], 1500)
    integer = {"type": "integer", "role": "other", "min": 0, "max": 12, "nullable": False}
    schema = {
        "columns": [{"name": f"x{i}", **integer} for i in range(40)]
        + [{"name": "y", "type": "categorical", "role": "label", "categories": ["a", "b"], "nullable": False}]
    }
    return frame, schema


def wide_groups() -> list[tuple[int, ...]]:
    """(label, a, b) sets naming all 41 columns, and a few of other shapes."""
    pairs = [(40, a, b) for a, b in itertools.combinations(range(0, 40, 3), 2)]
    return pairs + [(40, a, (a + 7) % 40) for a in range(40)] + [(38, 5), (39,), (33, 2)]


@pytest.mark.parametrize("temporary", [True, False])
@pytest.mark.parametrize("max_cells", [None, 300])
def test_a_table_wider_than_one_grouping_bitmask_counts_every_set_in_postgresql_as_in_memory(
    max_cells, temporary, monkeypatch
) -> None:
    # 41 columns: two GROUPING() masks (31 columns each at most) tell the sets of a statement
    # apart, and the binned keys come back packed in one text a row; with at most 300 cells a
    # part the 134 sets take many parts, each naming fewer columns; (label, 0, 33) and
    # (label, 33, 0) name the same columns: each gets its own table. Through the temporary
    # table of codes and through one statement alike.
    monkeypatch.setattr(PostgresCounts, "max_cells", max_cells)
    monkeypatch.setattr(PostgresCounts, "temporary", temporary)
    monkeypatch.setattr(PostgresCounts, "packed", False)  # a set a group, by columns
    frame, schema = wide_frame()
    create_table("engine_wide", frame, schema)
    database = PostgresCounts(connection, "engine_wide", schema)
    model = fitted(FrameCounts(frame), schema)
    parts: list[list] = []
    count = database._count_parts
    monkeypatch.setattr(
        database,
        "_count_parts",
        lambda selected, given, reading: parts.append(given) or count(selected, given, reading),
    )
    ours = database.binned_counts(model.codecs_, model.bins_, wide_groups())
    theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, wide_groups())
    assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert database.paths == ["temporary table" if temporary else "common table expression"]
    assert len(parts) == 1
    if max_cells is None:
        assert len(parts[0]) == 1 and len(parts[0][0].used) == 41
    else:
        sizes = [int(b.max()) + 1 for b in model.bins_]
        assert len(parts[0]) >= sum(int(np.prod([sizes[c] for c in g])) for g in wide_groups()) / max_cells
        assert all(len(part.used) < 41 for part in parts[0])
    assert_same_fine_counts(database, frame, schema)


@pytest.mark.parametrize("temporary", [True, False])
@pytest.mark.parametrize("statement_cells", [10**9, 2000])
def test_blocks_of_packed_codes_count_every_set_in_postgresql_as_in_memory(
    statement_cells, temporary, monkeypatch
) -> None:
    # the groups are covered by blocks of at most 600 cells (the bins here: 6 to 12), each
    # block's codes packed in one integer key: each group's table is summed from its block's. In
    # one statement the blocks are more than 31 keys, so several GROUPING() masks tell them apart; by
    # 2,000 cells a statement, many statements. The two groups of more than 600 cells (the same
    # columns in two orders) do not fit in the packing: counted by their columns, in another pass.
    monkeypatch.setattr(PostgresCounts, "temporary", temporary)
    monkeypatch.setattr(PostgresCounts, "max_block_cells", 600)
    monkeypatch.setattr(PostgresCounts, "max_packed_cells", statement_cells)
    frame, schema = wide_frame()
    create_table("engine_wide", frame, schema)
    database = PostgresCounts(connection, "engine_wide", schema)
    model = fitted(FrameCounts(frame), schema)
    sizes = [int(b.max()) + 1 for b in model.bins_]
    groups = [*wide_groups(), (40, 5, 6, 13), (40, 6, 5, 13)]
    big = [g for g in groups if int(np.prod([sizes[c] for c in g])) > 600]
    assert big and len(big) < len(groups)
    parts: list[list] = []
    count = database._count_parts
    monkeypatch.setattr(
        database,
        "_count_parts",
        lambda selected, given, reading: parts.append(given) or count(selected, given, reading),
    )
    ours = database.binned_counts(model.codecs_, model.bins_, groups)
    theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    path = "temporary table" if temporary else "common table expression"
    assert database.paths == [path, path]  # the groups by columns, then the blocks
    by_columns, packed = parts
    assert sum(len(part.sets) for part in by_columns) == len(big)
    blocks = [block for part in packed for block in part.blocks]
    assert len(blocks) < len(groups) - len(big)  # a block holds several groups
    assert all(cells <= 600 for part in packed for cells in part.cells)
    if statement_cells > 10**6:
        assert len(packed) == 1 and len(packed[0].chunks) >= 2  # more than 31 keys in one statement
    else:
        assert len(packed) > 1 and all(sum(part.cells) <= 2000 for part in packed)


@pytest.mark.parametrize("temporary", [True, False])
@pytest.mark.parametrize("labels", [["a", "b"], ["a", "b", "c"]])
def test_a_label_every_group_names_is_counted_by_aggregates_as_in_memory(labels, temporary, monkeypatch) -> None:
    # every group names the label (MST's (label, a, b) and (label, a)): the blocks' keys leave it
    # out and each key's cells are counted once a label value (count(*) FILTER), so a block of
    # 600 entries covers more groups; in several statements, the first with the label's own set
    monkeypatch.setattr(PostgresCounts, "temporary", temporary)
    monkeypatch.setattr(PostgresCounts, "max_block_cells", 600)
    monkeypatch.setattr(PostgresCounts, "max_packed_cells", 2000)
    frame, schema = wide_frame()
    frame["y"] = np.random.default_rng(2).choice(labels, len(frame))
    schema["columns"][-1]["categories"] = labels
    create_table("engine_wide", frame, schema)
    model = fitted(FrameCounts(frame), schema)
    groups = [(40, a, b) for a, b in itertools.combinations(range(0, 40, 4), 2)] + [(40, 7), (9, 40, 3)]
    theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    blocks: dict[bool, int] = {}
    for lead in [True, False]:
        monkeypatch.setattr(PostgresCounts, "lead_bins", 4 if lead else 0)
        database = PostgresCounts(connection, "engine_wide", schema)
        parts: list[list] = []
        count = database._count_parts
        monkeypatch.setattr(
            database,
            "_count_parts",
            lambda s, given, reading, parts=parts, count=count: parts.append(given) or count(s, given, reading),
        )
        ours = database.binned_counts(model.codecs_, model.bins_, groups)
        assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
        (packed,) = parts
        assert len(packed) > 1
        assert all((part.lead[1] == len(labels)) if lead else part.lead is None for part in packed)
        assert [part.lead_set for part in packed] == [lead] + [False] * (len(packed) - 1)
        assert all(cells <= 600 for part in packed for cells in part.cells)
        blocks[lead] = sum(len(part.blocks) for part in packed)
    assert blocks[True] - 1 < blocks[False]  # fewer blocks (the label's own set apart)


def test_a_label_value_its_bins_cannot_code_is_refused_when_counted_by_aggregates() -> None:
    # the label's bins cut short: its code is NULL, in no key; the label's own set refuses it
    frame, schema = wide_frame()
    create_table("engine_wide", frame, schema)
    database = PostgresCounts(connection, "engine_wide", schema)
    model = fitted(FrameCounts(frame), schema)
    bins = list(model.bins_)
    bins[40] = bins[40][:1]
    bins[40][0] = 1  # two bins still: a label counted by aggregates
    with pytest.raises(SchemaMismatchError, match="bins cannot code"):
        database.binned_counts(model.codecs_, bins, [(40, 3, 4), (40, 5, 6)])


def test_cover_groups_puts_each_group_in_a_block_within_the_bound() -> None:
    sizes = [2, 30, 30, 3, 3, 3, 3, 40000]
    groups = [(0, a, b) for a, b in itertools.combinations(range(1, 7), 2)]
    blocks, holder = cover_groups(groups, sizes, 65_536)
    assert all(set(group) <= set(blocks[b]) for group, b in zip(groups, holder, strict=True))
    assert all(np.prod([sizes[c] for c in block]) <= 65_536 for block in blocks)
    assert len(blocks) < len(groups)  # the 3-bin columns share blocks
    assert 7 not in {c for block in blocks for c in block}  # no group names it


def test_a_value_its_bins_cannot_code_is_refused_by_a_packed_block(monkeypatch) -> None:
    # a bins table cut short: the fine codes past it have no bin, their packed key is NULL
    frame, schema = wide_frame()
    create_table("engine_wide", frame, schema)
    database = PostgresCounts(connection, "engine_wide", schema)
    model = fitted(FrameCounts(frame), schema)
    bins = list(model.bins_)
    bins[3] = bins[3][:2]
    assert (model.codecs_[3].encode(frame["x3"]) >= 2).any()
    with pytest.raises(SchemaMismatchError, match="bins cannot code"):
        database.binned_counts(model.codecs_, bins, [(40, 3, 4)])


def test_a_group_inside_a_larger_one_is_summed_from_its_table_and_equals_the_frame_counts(adult, monkeypatch) -> None:
    # MST's (label, a) stars lie in its (label, a, b) tables: they are not counted again, in any order of columns
    frame, schema, database = adult
    model = fitted(FrameCounts(frame), schema)
    groups = [(7, 0, 4), (7,), (0, 7), (7, 4), (4, 0, 7), (4, 7, 0, 9), (9, 4), (2, 5), (5,), (3, 6)]
    counted: list[list] = []
    tables = database._binned_tables
    monkeypatch.setattr(
        database, "_binned_tables", lambda c, b, given, reading: counted.append(given) or tables(c, b, given, reading)
    )
    ours = database.binned_counts(model.codecs_, model.bins_, groups)
    theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert counted == [[(4, 7, 0, 9), (2, 5), (3, 6)]]
