"""How PostgreSQL counts a stage, and that every way gives the frame's counts.

The binned stage writes its codes into a temporary table of the session where it can, and else
(a read-only transaction of the caller's, as on a standby) counts them in one statement; a large
table given a way to open more connections is counted by several at once, each over a range of
its pages. Each way gives the same integers as the frame in memory and the same fitted model,
and leaves nothing behind in the caller's session: no table, no setting, a usable transaction.

The table is created by the owner role and read by the application role (tests/database.py), so
that the other connections see it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg2
import psycopg2.extensions
import pytest
from django.db import connection  # noqa: F401 - read by the skipif condition

from synth_engine.engines.postgres import PostgresCounts, holdout_predicate, quote_identifier
from synth_engine.generators import mst
from synth_engine.generators.counts import FrameCounts
from synth_engine.generators.domain import parse_schema
from tests.database import APP_ROLE, as_owner
from tests.jobs.worker import database_url
from tests.synth_engine.test_engine_postgres import SQL_TYPES, adult_frame, adult_schema, assert_same_counts, fitted

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="counts in PostgreSQL need PostgreSQL"),
]

TABLE = "engine_paths_adult"


@pytest.fixture
def warehouse():
    """The adult frame as a table the application role may read, from any connection."""
    frame, schema = adult_frame(), adult_schema()
    types = {spec.name: SQL_TYPES.get(spec.type, "text") for spec in parse_schema(schema)}
    with as_owner():
        owner = psycopg2.connect(database_url())
    owner.autocommit = True
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with owner.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        columns = ", ".join(f"{quote_identifier(column)} {types[column]}" for column in frame.columns)
        cursor.execute(f"CREATE TABLE {TABLE} ({columns})")
        cursor.copy_expert(f"COPY {TABLE} FROM STDIN WITH (FORMAT csv)", buffer)
        cursor.execute(f"GRANT SELECT ON {TABLE} TO {APP_ROLE}")
    yield frame, schema
    with owner.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
    owner.close()


class Recorded(psycopg2.extensions.connection):
    """A connection that notes its ``statement_timeout`` and ``lock_timeout`` when it is closed."""

    seen: list[tuple[str, str]] = []

    def close(self) -> None:
        if not self.closed:
            with self.cursor() as cursor:
                cursor.execute("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
                Recorded.seen.append(cursor.fetchone())
        super().close()


def app_connection(**options) -> psycopg2.extensions.connection:
    return psycopg2.connect(database_url(), **options)


def session_state(session) -> tuple:
    """What a count must leave as it was: the settings it changes for a statement, the session's
    temporary tables, whether the session is read-only."""
    with session.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('hash_mem_multiplier'), current_setting('jit'), "
            "current_setting('transaction_read_only'), "
            "(SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relname LIKE 'synthgate_codes%%')"
        )
        return cursor.fetchone()


def assert_same_fit(source, frame, schema) -> None:
    # every row, and the tree scored on a sample of about 200 rows (its hash computed in each range)
    for params in ({}, {"selection_rows": 200}):
        from_memory, from_database = fitted(FrameCounts(frame), schema, **params), fitted(source, schema, **params)
        assert from_memory.privacy_spent().to_dict() == from_database.privacy_spent().to_dict()
        assert from_database.sample(2000).to_csv(index=False) == from_memory.sample(2000).to_csv(index=False)


@pytest.mark.parametrize("splits", [2, 3])
def test_a_table_counted_by_several_connections_at_once_gives_the_frame_counts_and_the_same_fit(
    warehouse, splits, monkeypatch
) -> None:
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)  # the test's table has a few dozen pages
    monkeypatch.setattr(PostgresCounts, "splits", splits)
    main = app_connection()
    main.set_session(readonly=True, autocommit=True)  # as synth_engine.sources.source_connection opens one
    with main.cursor() as cursor:
        cursor.execute("SET statement_timeout = '123s'")
        cursor.execute("SET lock_timeout = '45s'")
    before = session_state(main)
    Recorded.seen = []
    opened = []

    def connect():
        other = app_connection(connection_factory=Recorded)
        other.set_session(readonly=True, autocommit=True)
        opened.append(other)
        return other

    source = PostgresCounts(main, TABLE, schema, connect=connect)
    assert source.check() == []
    assert_same_counts(source, frame, schema)
    assert_same_fit(source, frame, schema)
    # every stage was counted by `splits` connections: the binned stages through a temporary table each
    counted = [path for path in source.paths if path.endswith(("table", "expression"))]
    assert len(counted) % splits == 0 and "temporary table" in counted
    assert source.paths.count("temporary table") % splits == 0
    # each of the two fits stored every row's fine codes on each connection and counted the 1-ways there
    assert source.paths.count("stored fine codes") == source.paths.count("stored table") == 2 * splits
    # every stage's connections read one snapshot (a fit's, once for the whole fit)
    assert set(source.paths) - set(counted) == {"one snapshot", "stored fine codes"}
    # the other connections took the caller's bounds on waiting, and are closed
    assert opened and all(other.closed for other in opened)
    assert set(Recorded.seen) == {("123s", "45s")} and len(Recorded.seen) == len(opened)
    assert session_state(main) == before
    main.close()


def test_without_a_way_to_connect_or_on_a_small_table_one_connection_counts(warehouse) -> None:
    frame, schema = warehouse
    main = app_connection()
    main.autocommit = True
    opened = []
    source = PostgresCounts(main, TABLE, schema, connect=lambda: opened.append(1) or app_connection())
    assert_same_counts(source, frame, schema)  # the table is far below split_pages
    assert opened == [] and source.paths.count("temporary table") == 1
    main.close()


def test_a_read_only_transaction_of_the_caller_counts_the_binned_stage_without_a_temporary_table(
    warehouse,
) -> None:
    # a caller's transaction that may not write (as every transaction on a standby): no temporary
    # table can be made in it, so the binned stage counts its codes in one statement
    frame, schema = warehouse
    main = app_connection(options="-c default_transaction_read_only=on")
    assert not main.autocommit
    before = session_state(main)
    source = PostgresCounts(main, TABLE, schema)
    assert_same_counts(source, frame, schema)
    assert_same_fit(source, frame, schema)
    assert source.paths and set(source.paths) == {"common table expression"}
    assert session_state(main) == before  # and the caller's transaction is still usable
    main.close()


def test_a_read_only_autocommit_session_counts_through_a_temporary_table_and_keeps_nothing(warehouse) -> None:
    frame, schema = warehouse
    main = app_connection()
    main.set_session(readonly=True, autocommit=True)
    before = session_state(main)
    assert before[2] == "on"
    source = PostgresCounts(main, TABLE, schema)
    assert_same_counts(source, frame, schema)
    assert "temporary table" in source.paths
    assert session_state(main) == before
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction), main.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE}")  # the session is as read-only as it was
    main.close()


def test_a_failing_count_on_one_connection_stops_the_others_and_is_raised(warehouse, monkeypatch) -> None:
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    main = app_connection()
    main.autocommit = True
    opened = []

    def connect():
        other = app_connection()
        other.autocommit = True
        opened.append(other)
        with other.cursor() as cursor:  # the table as another connection sees it: gone
            cursor.execute("SET search_path = pg_catalog")
        return other

    source = PostgresCounts(main, TABLE, schema, connect=connect)
    model = fitted(FrameCounts(frame), schema)
    with pytest.raises(psycopg2.errors.UndefinedTable):
        source.fine_counts(model.codecs_)
    assert opened and all(other.closed for other in opened)
    with main.cursor() as cursor:
        cursor.execute("SELECT 1")
    main.close()


def test_the_binned_stage_counts_every_set_the_same_through_either_path(warehouse, monkeypatch) -> None:
    frame, schema = warehouse
    model = fitted(FrameCounts(frame), schema)
    groups = [(7, a, b) for a in range(len(model.codecs_)) for b in range(a + 1, len(model.codecs_)) if 7 not in (a, b)]
    expected = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    main = app_connection()
    main.autocommit = True
    monkeypatch.setattr(PostgresCounts, "max_cells", 500)  # many parts
    for temporary in (True, False):
        monkeypatch.setattr(PostgresCounts, "temporary", temporary)
        source = PostgresCounts(main, TABLE, schema)
        ours = source.binned_counts(model.codecs_, model.bins_, groups)
        assert all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ours, expected, strict=True))
        assert source.paths == ["temporary table" if temporary else "common table expression"]
    main.close()


def test_when_no_other_connection_can_be_opened_one_connection_counts_every_range(warehouse, monkeypatch) -> None:
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    main = app_connection()
    main.autocommit = True

    def refused():
        raise psycopg2.OperationalError("too many clients already")

    source = PostgresCounts(main, TABLE, schema, connect=refused)
    assert_same_counts(source, frame, schema)
    assert source.paths.count("temporary table") == 2  # both ranges, one after the other
    stages = source.paths.count("one snapshot")  # each stage's ranges in its connection's one snapshot
    assert stages and len(source.paths) == 3 * stages
    main.close()


def test_rows_restricted_by_a_predicate_are_counted_alike_over_page_ranges_and_a_view_by_one_connection(
    warehouse, monkeypatch
) -> None:
    # the job's holdout predicate restricts each range; a view has no pages of its own: one connection
    frame, schema = warehouse
    where = holdout_predicate(schema, seed=5, fraction=0.3)
    main = app_connection()
    main.autocommit = True
    model = fitted(FrameCounts(frame), schema)
    groups = [(7, 0, 4), (7, 8), (2, 5, 9)]
    whole = PostgresCounts(main, TABLE, schema, where=where)
    expected = whole.binned_counts(model.codecs_, model.bins_, groups), whole.fine_counts(model.codecs_)
    assert 0 < int(expected[1][0].sum()) < len(frame)  # the predicate keeps some rows, not all
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    opened = []
    split = PostgresCounts(main, TABLE, schema, where=where, connect=lambda: opened.append(1) or app_connection())
    found = split.binned_counts(model.codecs_, model.bins_, groups), split.fine_counts(model.codecs_)
    assert len(opened) == 2 and split.paths == ["one snapshot", "temporary table", "temporary table"] + [
        "one snapshot",
        "common table expression",
        "common table expression",
    ]
    for ours, theirs in zip([*found[0], *found[1]], [*expected[0], *expected[1]], strict=True):
        assert np.array_equal(ours, theirs)
    with as_owner():
        owner = psycopg2.connect(database_url())
    owner.autocommit = True
    with owner.cursor() as cursor:
        cursor.execute(f"CREATE VIEW {TABLE}_view AS SELECT * FROM {TABLE}")
        cursor.execute(f"GRANT SELECT ON {TABLE}_view TO {APP_ROLE}")
    try:
        opened.clear()
        view = PostgresCounts(main, f"{TABLE}_view", schema, connect=lambda: opened.append(1) or app_connection())
        assert_same_counts(view, frame, schema)
        assert opened == []
    finally:
        with owner.cursor() as cursor:
            cursor.execute(f"DROP VIEW {TABLE}_view")
        owner.close()
    main.close()


@pytest.mark.parametrize("split", [False, True])
def test_the_callers_bound_on_waiting_for_a_lock_holds_on_every_counting_connection(
    warehouse, split, monkeypatch
) -> None:
    # as SourceData.bound_waits sets it: a count waiting on a table locked by another session fails
    # after the caller's lock_timeout on every connection, the error is raised, the other
    # connections are closed, and the caller's session is left usable and as it was
    frame, schema = warehouse
    if split:
        monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    main = app_connection()
    main.set_session(readonly=True, autocommit=True)
    with main.cursor() as cursor:
        cursor.execute("SET lock_timeout = '300ms'")
    before = session_state(main)
    opened = []

    def connect():
        other = app_connection()
        other.autocommit = True
        opened.append(other)
        return other

    source = PostgresCounts(main, TABLE, schema, connect=connect)
    assert len(source._page_ranges()) == (2 if split else 1)
    model = fitted(FrameCounts(frame), schema)
    groups = [(7, a, b) for a in range(7) for b in range(a + 1, 7)]
    with as_owner():
        locker = psycopg2.connect(database_url())
    with locker.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {TABLE} IN ACCESS EXCLUSIVE MODE")
    try:
        with pytest.raises(psycopg2.errors.LockNotAvailable):
            source.binned_counts(model.codecs_, model.bins_, groups)
    finally:
        locker.rollback()
        locker.close()
    assert bool(opened) == split and all(other.closed for other in opened)
    assert session_state(main) == before
    ours = source.binned_counts(model.codecs_, model.bins_, groups)  # and counts once the lock is gone
    theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    main.close()


class Interleaving(psycopg2.extensions.cursor):
    """A cursor of another counting connection that runs ``hook`` (once) before its first
    statement reading the table: where another session changes the table meanwhile."""

    hook: Callable[[], None] | None = None

    def execute(self, sql, params=None):
        hook = Interleaving.hook
        if hook is not None and TABLE in str(sql) and ("INSERT INTO synthgate_codes" in sql or sql.startswith("WITH")):
            Interleaving.hook = None
            hook()
        return super().execute(sql, params)


def counted_its_range(observer, pid: int) -> bool:
    """Whether the session ``pid`` has ended its last counting statement (of a range)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with observer.cursor() as cursor:
            cursor.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", [pid])
            state, query = cursor.fetchone()
        if state != "active" and (query.startswith("RELEASE SAVEPOINT") or query in ("ROLLBACK", "COMMIT")):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("stage", ["fine", "binned"])
def test_every_counting_connection_reads_one_snapshot_whatever_another_session_commits_meanwhile(
    warehouse, stage, monkeypatch
) -> None:
    # the caller's connection counts its range of pages; only then another session deletes rows
    # from every page and appends copies of others (on the last range's pages), and only then the
    # other connection counts its range: the counts are still those of the table as it was
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    model = fitted(FrameCounts(frame), schema)
    groups = [(7, a, b) for a in range(7) for b in range(a + 1, 7)]
    main = app_connection()
    main.set_session(readonly=True, autocommit=True)
    with as_owner():
        owner = psycopg2.connect(database_url())
    owner.autocommit = True
    seen: list[bool] = []

    def change_meanwhile() -> None:
        seen.append(counted_its_range(owner, main.get_backend_pid()))
        with owner.cursor() as cursor:
            cursor.execute(f'DELETE FROM {TABLE} WHERE "age" > 50')
            cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE} WHERE income = '>50K'")

    def connect():
        other = app_connection()
        other.set_session(readonly=True, autocommit=True)
        other.cursor_factory = Interleaving
        return other

    Interleaving.hook = change_meanwhile
    source = PostgresCounts(main, TABLE, schema, connect=connect)
    if stage == "fine":
        ours, theirs = source.fine_counts(model.codecs_), FrameCounts(frame).fine_counts(model.codecs_)
    else:
        ours = source.binned_counts(model.codecs_, model.bins_, groups)
        theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    try:
        assert seen == [True]  # the change came after the caller's range was counted, before the other's
        with owner.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {TABLE}")
            assert cursor.fetchone()[0] != len(frame)  # the table did change
        assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
        assert source.paths[0] == "one snapshot"
        assert source.paths[1:] == ["common table expression" if stage == "fine" else "temporary table"] * 2
        assert session_state(main)[2] == "on"  # and the caller's session is as it was: read-only, no transaction
        assert main.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        Interleaving.hook = None
        owner.close()
        main.close()


def test_a_connection_that_cannot_set_the_snapshot_leaves_its_range_to_the_callers_connection(
    warehouse, monkeypatch
) -> None:
    # a snapshot is only set by a connection to the same database: one to another database
    # cannot, and the caller's connection counts both ranges in its snapshot
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    main = app_connection()
    main.autocommit = True
    elsewhere = urlunsplit(urlsplit(database_url())._replace(path="/postgres"))
    opened = []

    def connect():
        other = psycopg2.connect(elsewhere)
        other.autocommit = True
        opened.append(other)
        return other

    source = PostgresCounts(main, TABLE, schema, connect=connect)
    model = fitted(FrameCounts(frame), schema)
    groups = [(7, 0, 4), (2, 5, 9)]
    ours = source.binned_counts(model.codecs_, model.bins_, groups)
    theirs = FrameCounts(frame).binned_counts(model.codecs_, model.bins_, groups)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert source.paths == ["one snapshot", "temporary table", "temporary table"]
    assert len(opened) == 1 and opened[0].closed
    main.close()


def test_in_a_callers_transaction_each_range_is_counted_in_a_snapshot_of_its_own(warehouse, monkeypatch) -> None:
    # no snapshot is exported from a caller's transaction (it may be a savepoint, where PostgreSQL
    # refuses, and the refusal would abort it): the ranges are counted as before, and it says so
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    main = app_connection()
    with main.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SAVEPOINT callers")
    source = PostgresCounts(main, TABLE, schema, connect=lambda: app_connection())
    model = fitted(FrameCounts(frame), schema)
    ours, theirs = source.fine_counts(model.codecs_), FrameCounts(frame).fine_counts(model.codecs_)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert source.paths == ["separate snapshots", "common table expression", "common table expression"]
    with main.cursor() as cursor:  # the caller's transaction is still usable, at its isolation
        cursor.execute("RELEASE SAVEPOINT callers")
        cursor.execute("SELECT current_setting('transaction_isolation')")
        assert cursor.fetchone()[0] == "repeatable read"
    main.rollback()
    main.close()


# ---------------------------------------------------------------------- a fit's stored fine codes


class Noted(psycopg2.extensions.cursor):
    """A cursor that notes each statement it runs in ``Noted.statements`` (by connection), and
    runs ``Noted.hook`` (once) before the first statement containing ``Noted.trigger``."""

    statements: list[tuple[int, str]] = []
    trigger = ""
    hook: Callable[[psycopg2.extensions.cursor], None] | None = None

    def execute(self, sql, params=None):
        Noted.statements.append((id(self.connection), str(sql)))
        hook = Noted.hook
        if hook is not None and Noted.trigger and Noted.trigger in str(sql):
            Noted.hook = None
            hook(self)
        return super().execute(sql, params)


#: every connection a test of a fit opened, closed after it whatever it did (before the table is dropped)
OPENED: list = []


@pytest.fixture
def closing(warehouse):
    yield OPENED
    for opened in OPENED:
        opened.close()
    OPENED.clear()


@pytest.fixture
def noted():
    Noted.statements, Noted.trigger, Noted.hook = [], "", None
    yield Noted
    Noted.statements, Noted.trigger, Noted.hook = [], "", None


def leftovers(owner, pids: list[int]) -> tuple[int, int]:
    """The fit's temporary tables still in the database (any session's), and how many of ``pids``
    (the connections it opened) still have a server session (waiting a little for them to end)."""
    deadline = time.monotonic() + 10
    while True:
        with owner.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_class "
                "WHERE relpersistence = 't' AND relname ~ '^synthgate_(fine|codes|probe)_'"
            )
            tables = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", [pids])
            sessions = cursor.fetchone()[0]
        if (tables, sessions) == (0, 0) or time.monotonic() > deadline:
            return tables, sessions
        time.sleep(0.05)


@pytest.fixture
def owner():
    with as_owner():
        connection = psycopg2.connect(database_url())
    connection.autocommit = True
    yield connection
    connection.close()


def fit_source(schema, splits: int, opened: list, *, main=None, **options) -> PostgresCounts:
    """A source over the warehouse table counted by ``splits`` connections (the job's kind: read-only
    autocommit sessions), every statement noted; the connections it opens go in ``opened``."""
    if main is None:
        main = app_connection(cursor_factory=Noted, **options)
        main.set_session(readonly=True, autocommit=True)
        OPENED.append(main)

    def connect():
        other = app_connection(cursor_factory=Noted, **options)
        other.set_session(readonly=True, autocommit=True)
        opened.append(other)
        OPENED.append(other)
        return other

    return PostgresCounts(main, TABLE, schema, connect=connect if splits > 1 else None)


@pytest.mark.parametrize("splits", [1, 2, 3])
def test_a_fit_stores_every_rows_fine_codes_once_and_its_binned_stages_read_them(
    warehouse, closing, owner, noted, splits, monkeypatch
) -> None:
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    monkeypatch.setattr(PostgresCounts, "splits", splits)
    opened: list = []
    source = fit_source(schema, splits, opened)
    main = source.connection
    before = session_state(main)
    for params in ({}, {"selection_rows": 200}):  # every row; the tree scored on a sample of about 200
        noted.statements = []
        opened.clear()
        source.paths = []
        from_memory, from_database = fitted(FrameCounts(frame), schema, **params), fitted(source, schema, **params)
        assert from_memory.privacy_spent().to_dict() == from_database.privacy_spent().to_dict()
        assert from_database.sample(2000).to_csv(index=False) == from_memory.sample(2000).to_csv(index=False)
        # the table is read once a connection for the fine codes (after the rows and domain stages)
        connections = {key for key, _ in noted.statements}
        assert len(connections) == splits and len(opened) == splits - 1
        stores = [(key, sql) for key, sql in noted.statements if sql.startswith("INSERT INTO synthgate_fine_")]
        assert len(stores) == splits and {key for key, _ in stores} == connections
        assert all(f'FROM (SELECT * FROM "{TABLE}" WHERE ctid' in sql or f'FROM "{TABLE}"' in sql for _, sql in stores)
        assert source.paths.count("stored fine codes") == splits
        # every later statement reads the stored codes, never the table
        last = max(i for i, (_, sql) in enumerate(noted.statements) if sql.startswith("INSERT INTO synthgate_fine_"))
        later = [sql for _, sql in noted.statements[last + 1 :]]
        fills = [sql for sql in later if sql.startswith("INSERT INTO synthgate_codes_")]
        assert fills and all("FROM synthgate_fine_" in sql for sql in fills)
        assert not any(TABLE in sql for sql in later)
        sampled = [sql for sql in fills if "synthgate_row_hash" in sql]
        assert len(sampled) == (splits if params else 0)  # the sample's hash from the stored codes
        assert source.paths.count("one snapshot") == (1 if splits > 1 else 0)  # the whole fit's, once
        # nothing is left: every temporary table dropped, the connections opened for the fit closed
        assert all(other.closed for other in opened)
        assert leftovers(owner, []) == (0, 0)
        assert session_state(main) == before
        assert main.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    main.close()


def test_a_fit_reads_one_snapshot_from_its_row_count_to_its_last_table(warehouse, closing, owner, monkeypatch) -> None:
    # another session deletes and adds rows once the rows and domain stages are counted, before the
    # fine codes are stored: the fit is still the frame's, as the table was when it began
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    changed: list[bool] = []
    fine_counts = PostgresCounts.fine_counts

    def changed_first(self, codecs):
        with owner.cursor() as changing:
            changing.execute(f'DELETE FROM {TABLE} WHERE "age" > 50')
            changing.execute(f"INSERT INTO {TABLE} SELECT * FROM {TABLE} WHERE income = '>50K'")
        changed.append(True)
        return fine_counts(self, codecs)

    monkeypatch.setattr(PostgresCounts, "fine_counts", changed_first)
    opened: list = []
    source = fit_source(schema, 2, opened)
    from_database = fitted(source, schema, selection_rows=200)
    from_memory = fitted(FrameCounts(frame), schema, selection_rows=200)
    assert changed == [True]
    with owner.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        assert cursor.fetchone()[0] != len(frame)  # the table did change
    assert from_database.sample(2000).to_csv(index=False) == from_memory.sample(2000).to_csv(index=False)
    assert source.paths.count("one snapshot") == 1 and source.paths.count("stored fine codes") == 2
    source.connection.close()


@pytest.mark.parametrize("way", ["cancelled statement", "interrupted", "failed stage"])
def test_a_fit_that_ends_early_leaves_no_table_and_no_connection_behind(
    warehouse, closing, owner, noted, way, monkeypatch
) -> None:
    # a statement of another connection cancelled on the server (as a cancel of the job's statement
    # arrives) while the sampled pass fills its table; the worker interrupted between stages (a
    # KeyboardInterrupt, as a signal raises); a stage that fails in the worker: each with the fine
    # codes stored in every session
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    opened: list = []
    source = fit_source(schema, 2, opened)
    main = source.connection
    with main.cursor() as cursor:
        cursor.execute("SET statement_timeout = '77s'")
    before = session_state(main)
    pids: list[int] = []
    original = PostgresCounts._fine_codes_stored

    def stored(self, fit, codecs):
        found = original(self, fit, codecs)
        for counter in fit.connections:  # every session holds its table now
            with counter.connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid(), to_regclass(%s) IS NOT NULL", [found.table])
                pid, present = cursor.fetchone()
            assert present
            if counter.opened:
                pids.append(pid)
        return found

    monkeypatch.setattr(PostgresCounts, "_fine_codes_stored", stored)
    expected: type[BaseException]
    if way == "cancelled statement":

        def hook(cursor) -> None:  # the other connection's statement is cancelled on the server
            if cursor.connection is main:
                Noted.hook = hook  # the other connection's turn
                return
            psycopg2.extensions.cursor.execute(cursor, "SELECT pg_cancel_backend(pg_backend_pid())")

        noted.trigger, noted.hook = "synthgate_row_hash", hook
        expected = psycopg2.errors.QueryCanceled
    else:
        error = KeyboardInterrupt if way == "interrupted" else RuntimeError

        def select_tree(*args, **kwargs):
            raise error("stopped between the sampled and the measured pass")

        monkeypatch.setattr("synth_engine.generators.mst.select_tree", select_tree)
        expected = error
    with pytest.raises(expected):
        fitted(source, schema, selection_rows=200)
    assert len(pids) == 1 and len(opened) == 1
    assert all(other.closed for other in opened)
    assert leftovers(owner, pids) == (0, 0)
    assert session_state(main) == before  # the caller's session as it was, usable, its bounds kept
    assert main.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    with main.cursor() as cursor:
        cursor.execute("SELECT current_setting('statement_timeout')")
        assert cursor.fetchone()[0] == "77s"
    main.close()


def test_a_fit_outlasts_a_servers_short_bound_on_idle_transactions_and_leaves_it_as_it_was(
    warehouse, closing, owner, monkeypatch
) -> None:
    # every session bounds an idle transaction at 300 ms (as a role's setting would) and the worker
    # computes for a second between the sampled and the measured pass: the fit's transactions,
    # idle meanwhile, are not ended; the callers' bound is the same afterwards
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    select_tree = mst.select_tree

    def slow(*args, **kwargs):
        time.sleep(1.0)
        return select_tree(*args, **kwargs)

    monkeypatch.setattr(mst, "select_tree", slow)
    opened: list = []
    source = fit_source(schema, 2, opened, options="-c idle_in_transaction_session_timeout=300")
    from_database = fitted(source, schema, selection_rows=200)
    from_memory = fitted(FrameCounts(frame), schema, selection_rows=200)
    assert from_database.sample(2000).to_csv(index=False) == from_memory.sample(2000).to_csv(index=False)
    assert source.paths.count("stored fine codes") == 2 and len(opened) == 1
    with source.connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('idle_in_transaction_session_timeout')")
        assert cursor.fetchone()[0] == "300ms"
    source.connection.close()


@pytest.fixture
def reader(warehouse, owner):
    """A role that may read the warehouse table but not make temporary tables in the database (the
    application role keeps the right, which it otherwise has from PUBLIC)."""
    with owner.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        database = cursor.fetchone()[0]
    role = f"synthgate_reader_{database}"[:63]
    statements = [
        f"DROP ROLE IF EXISTS {role}",
        f"CREATE ROLE {role} LOGIN NOSUPERUSER",
        f"GRANT CONNECT ON DATABASE {database} TO {role}",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT ON {TABLE} TO {role}",
        f"GRANT TEMPORARY ON DATABASE {database} TO {APP_ROLE}",
        f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC",
    ]
    with owner.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
    url = urlsplit(database_url())
    yield urlunsplit(url._replace(netloc=f"{role}@{url.hostname}:{url.port or 5432}"))
    with owner.cursor() as cursor:
        cursor.execute(f"GRANT TEMPORARY ON DATABASE {database} TO PUBLIC")
        cursor.execute(f"REVOKE TEMPORARY ON DATABASE {database} FROM {APP_ROLE}")
        cursor.execute(f"REVOKE ALL ON {TABLE} FROM {role}")
        cursor.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
        cursor.execute(f"REVOKE ALL ON DATABASE {database} FROM {role}")
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
            [role],
        )
        cursor.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("splits", [1, 2])
def test_a_role_without_temporary_tables_fits_stage_by_stage_as_before(
    warehouse, closing, reader, owner, noted, splits, monkeypatch
) -> None:
    frame, schema = warehouse
    monkeypatch.setattr(PostgresCounts, "split_pages", 1)
    monkeypatch.setattr(PostgresCounts, "splits", splits)
    opened: list = []
    main = psycopg2.connect(reader, cursor_factory=Noted)
    main.set_session(readonly=True, autocommit=True)
    OPENED.append(main)
    with main.cursor() as cursor:
        cursor.execute("SELECT has_database_privilege(current_database(), 'TEMPORARY')")
        assert cursor.fetchone()[0] is False

    def connect():
        other = psycopg2.connect(reader, cursor_factory=Noted)
        other.set_session(readonly=True, autocommit=True)
        opened.append(other)
        OPENED.append(other)
        return other

    source = PostgresCounts(main, TABLE, schema, connect=connect if splits > 1 else None)
    before = session_state(main)
    assert_same_fit(source, frame, schema)
    assert not any("synthgate_fine_" in sql for _, sql in noted.statements)
    # each stage counted as outside a fit: in one statement a range, each stage's ranges in one snapshot
    expected = {"common table expression", "one snapshot"} if splits > 1 else {"common table expression"}
    assert set(source.paths) == expected
    assert all(other.closed for other in opened) and (splits == 1 or opened)
    assert leftovers(owner, []) == (0, 0)
    assert session_state(main) == before
    main.close()
