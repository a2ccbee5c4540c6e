"""External and on-demand audits against a dataset registered by reference: the training rows stay
in PostgreSQL (a table of the machine's PostgreSQL) or in Parquet files (read by DuckDB), and the
audit reads a uniform random sample of them drawn there (``SYNTHGATE_REFERENCE_AUDIT_ROWS`` at
most), never the table. The sample sizes and the engine are recorded on the run and stated in the
internal report; the planted positive controls run on the same samples, and a leaky synthetic table
(a tenth of it copied training rows) is still blocked. Rows changed since registration fail the
audit with the reason instead of judging other data.
"""

from __future__ import annotations

import io

import pandas as pd
import psycopg2
import pytest
from django.db import connection

from audits.facts import datasheet_facts
from audits.models import AuditKind, AuditStatus
from audits.services import audit_external, audit_run_on_demand
from synth_engine.engines.postgres import quote_identifier
from synth_engine.generators import get_generator
from synth_engine.generators.base import GeneratorError
from synth_engine.sources import reference_audit_sample, source_register
from tests.database import APP_ROLE, as_owner
from tests.governance.factories import FIXTURES
from tests.jobs.worker import database_url

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = "warehouse_adult_audit"
SAMPLE = 500


@pytest.fixture
def files(adult_schema, tmp_path):
    """1,200 real rows for the referenced data, 800 others as the holdout, and two synthetic tables
    fitted on the 1,200 elsewhere: a clean one and a leaky one (a tenth of it copied rows)."""
    source = pd.read_csv(FIXTURES / "adult_2000.csv")
    columns = [column["name"] for column in adult_schema["columns"]]
    train, holdout = source.iloc[:1200][columns], source.iloc[1200:][columns]
    holdout.to_csv(tmp_path / "holdout.csv", index=False)
    synthetic = get_generator("mst").fit(train, adult_schema, 1.0, 1e-6, random_state=3).sample(len(train))
    synthetic.to_csv(tmp_path / "clean.csv", index=False)
    copies = train.sample(frac=0.10, random_state=1)
    pd.concat([synthetic.iloc[len(copies) :], copies]).to_csv(tmp_path / "leaky.csv", index=False)
    return train, tmp_path


@pytest.fixture
def warehouse(settings, adult_schema, files):
    """The 1,200 training rows as a table of a source database named ``warehouse``, loaded by the owner."""
    if connection.vendor != "postgresql":
        pytest.skip("a source database by reference is a PostgreSQL table (the suite is on SQLite)")
    settings.SYNTHGATE_SOURCE_DATABASES = {"warehouse": database_url()}
    train, _ = files
    types = {column["name"]: "bigint" if column["type"] == "integer" else "text" for column in adult_schema["columns"]}
    with as_owner():
        owner = psycopg2.connect(database_url())
    owner.autocommit = True
    buffer = io.StringIO()
    train[list(types)].to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    with owner.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        cursor.execute(f"CREATE TABLE {TABLE} ({', '.join(f'{quote_identifier(n)} {t}' for n, t in types.items())})")
        cursor.copy_expert(f"COPY {TABLE} FROM STDIN WITH (FORMAT csv)", buffer)
        cursor.execute(f"GRANT SELECT ON {TABLE} TO {APP_ROLE}")
    yield owner
    with owner.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
    owner.close()


@pytest.fixture
def lake(settings, adult_schema, files):
    """The 1,200 training rows as two Parquet files under an allowed root."""
    train, folder = files
    root = folder / "lake"
    (root / "adult").mkdir(parents=True)
    settings.SYNTHGATE_SOURCE_PARQUET_ROOTS = [str(root.resolve())]
    train.iloc[:600].to_parquet(root / "adult" / "part-0.parquet", index=False)
    train.iloc[600:].to_parquet(root / "adult" / "part-1.parquet", index=False)
    return root / "adult" / "*.parquet"


def _register(cast, schema, **where):
    return source_register(
        actor=cast.steward, name="adult-lake", schema=schema, epsilon_cap="10", delta_cap="1e-4", **where
    ).version


def _rows(frame: pd.DataFrame) -> set[tuple]:
    return set(frame.astype(str).itertuples(index=False, name=None))


def test_an_external_audit_against_a_postgresql_table_reads_a_sample_drawn_there(
    cast, adult_schema, settings, files, warehouse
):
    settings.SYNTHGATE_REFERENCE_AUDIT_ROWS = SAMPLE
    train, folder = files
    source = _register(cast, adult_schema, connection="warehouse", table=TABLE)
    assert source.storage_key == "" and source.source_reference["engine"] == "postgresql"

    sample = reference_audit_sample(source, seed=11, limit=SAMPLE)
    assert len(sample.frame) == SAMPLE and list(sample.frame.columns) == list(train.columns)
    assert _rows(sample.frame) <= _rows(train)  # rows of the table, typed as a stored version's
    assert _rows(sample.frame) != _rows(reference_audit_sample(source, seed=12, limit=SAMPLE).frame)

    run = audit_external(
        actor=cast.steward,
        dataset_name="adult-lake",
        synthetic_path=folder / "leaky.csv",
        holdout_path=folder / "holdout.csv",
        seed=5,
    )
    assert run.status == AuditStatus.FAILED and run.blocked, run.error
    assert run.kind == AuditKind.EXTERNAL and run.train_version_id == source.pk
    assert "exact_copies" in run.failed_checks  # the copies are found in a sample of the table
    assert run.controls and all(control["caught"] for control in run.controls)
    assert run.audit_sample_rows == {
        "train": SAMPLE,
        "holdout": SAMPLE,  # the uploaded holdout (800 rows) is sampled too
        "fetched": {"train": {"engine": "postgresql", "where": f"table {TABLE!r} in source database 'warehouse'"}},
    }
    steps = " ".join(datasheet_facts(run).preprocessing)
    assert f"uniform random sample of the training rows ({SAMPLE:,} rows), drawn by the engine" in steps
    assert "(postgresql;" in steps and f"table {TABLE!r} in source database 'warehouse'" in steps

    # The table changed after registration: the audit ends with the reason, not on other rows.
    with warehouse.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET age = age + 1 WHERE age < 30")
    again = audit_run_on_demand(actor=cast.approver, version_id=run.version_id, seed=6)
    assert again.status == AuditStatus.ERROR
    assert "changed since" in again.error and "was registered" in again.error
    with pytest.raises(GeneratorError, match="changed since"):
        reference_audit_sample(source, seed=11, limit=SAMPLE)


def test_external_and_on_demand_audits_against_parquet_files_read_a_sample_drawn_by_duckdb(
    cast, adult_schema, settings, files, lake
):
    settings.SYNTHGATE_REFERENCE_AUDIT_ROWS = SAMPLE
    train, folder = files
    source = _register(cast, adult_schema, path=str(lake))
    assert source.source_reference["engine"] == "duckdb"

    run = audit_external(
        actor=cast.steward,
        dataset_name="adult-lake",
        synthetic_path=folder / "clean.csv",
        holdout_path=folder / "holdout.csv",
        seed=5,
    )
    assert run.status != AuditStatus.ERROR, run.error
    assert "exact_copies" not in run.failed_checks
    assert run.controls and all(control["caught"] for control in run.controls)
    assert run.audit_sample_rows["train"] == SAMPLE and run.audit_sample_rows["holdout"] == SAMPLE
    assert run.audit_sample_rows["fetched"] == {
        "train": {"engine": "duckdb", "where": f"the Parquet data at {str(lake)!r}"}
    }

    again = audit_run_on_demand(actor=cast.approver, version_id=run.version_id, seed=6)
    assert again.status != AuditStatus.ERROR, again.error
    assert again.train_version_id == source.pk and again.audit_sample_rows["train"] == SAMPLE

    leaky = audit_external(
        actor=cast.steward,
        dataset_name="adult-lake",
        synthetic_path=folder / "leaky.csv",
        holdout_path=folder / "holdout.csv",
        seed=5,
    )
    assert leaky.blocked and "exact_copies" in leaky.failed_checks
    steps = " ".join(datasheet_facts(leaky).preprocessing)
    assert "drawn by the engine where the data lives (duckdb" in steps


def test_a_referenced_table_smaller_than_the_limit_is_read_whole_by_its_engine(cast, adult_schema, settings, lake):
    settings.SYNTHGATE_REFERENCE_AUDIT_ROWS = 5_000
    source = _register(cast, adult_schema, path=str(lake))
    sample = reference_audit_sample(source, seed=1, limit=5_000)
    assert len(sample.frame) == 1200 and sample.engine == "duckdb"
