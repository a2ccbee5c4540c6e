"""dataset_register: validate once at the edge, then store content-addressed canonical bytes.

Every refusal leaves nothing behind: no Dataset, no DatasetVersion, no AuditEvent and no
file under DATA_DIR.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from core.errors import ConflictError, DatasetFormatError, PermissionDeniedError, ValidationError
from governance.ingest import load_canonical, read_table
from governance.models import AuditEvent, Dataset, DatasetVersion, VersionKind
from governance.services import (
    audit_log_verify,
    dataset_register,
    dataset_version_store,
    files_removed_on_error,
    ingest_limits,
)

CSV = b"patient_id,age,income,city,member\nP1,34,51000.5,Leeds,true\nP2,51,72000,York,false\nP3,29,,Leeds,true\n"
SCHEMA = {
    "columns": [
        {"name": "patient_id", "type": "categorical", "role": "identifier"},
        {"name": "age", "type": "integer", "role": "quasi_identifier", "min": 0, "max": 120},
        {"name": "income", "type": "float", "role": "sensitive"},
        {"name": "city", "type": "categorical", "role": "quasi_identifier"},
        {"name": "member", "type": "boolean", "role": "label"},
    ]
}


@pytest.fixture
def upload(tmp_path):
    def make(data: bytes, name: str = "upload.csv") -> Path:
        path = tmp_path / "uploads" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return path

    return make


def register(
    actor,
    path: Path,
    *,
    name: str = "patients",
    schema: dict | None = None,
    epsilon_cap="5",
    delta_cap="1e-5",
    filename: str | None = None,
):
    return dataset_register(
        actor=actor,
        name=name,
        path=path,
        filename=filename or path.name,
        epsilon_cap=epsilon_cap,
        delta_cap=delta_cap,
        schema=schema,
    )


def stored_files(data_dir: Path) -> list[Path]:
    return sorted(path for path in data_dir.rglob("*") if path.is_file()) if data_dir.exists() else []


def assert_nothing_written(data_dir: Path) -> None:
    assert Dataset.objects.count() == 0
    assert DatasetVersion.objects.count() == 0
    assert AuditEvent.objects.count() == 0
    assert stored_files(data_dir) == []


def zipped(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


# --- refusals write nothing ---------------------------------------------------------------

BAD_UPLOADS = {
    "empty file": (b"", "upload.csv", None, "The file is empty."),
    "header only": (b"age,city\n", "upload.csv", None, "header but no data rows"),
    "too many fields": (b"a,b\n1,2\n3,4,5\n", "upload.csv", None, "Line 3 has 3 fields; the header has 2."),
    "too few fields": (b"a,b\n1,2\n3\n", "upload.csv", None, "Line 3 has 1 fields; the header has 2."),
    "duplicate column": (b"a,a\n1,2\n", "upload.csv", None, "Duplicate column names: a."),
    "empty column name": (b"a,,c\n1,2,3\n", "upload.csv", None, "Column 2 of the header has an empty name."),
    "not utf-8": (b"city\nM\xe1laga\n", "upload.csv", None, "byte 6 (line 2)"),
    "unparseable number": (
        CSV.replace(b"72000", b"72k"),
        "upload.csv",
        SCHEMA,
        "Column 'income', row 2 (line 3): '72k' is not a number",
    ),
    "schema names a missing column": (
        CSV,
        "upload.csv",
        {"columns": [*SCHEMA["columns"], {"name": "zip", "type": "categorical"}]},
        "The schema names columns the file lacks: zip.",
    ),
    "file column not in schema": (
        CSV,
        "upload.csv",
        {"columns": SCHEMA["columns"][1:]},
        "The file has columns the schema does not describe: patient_id.",
    ),
    "bad schema type": (
        CSV,
        "upload.csv",
        {"columns": [{**SCHEMA["columns"][0], "type": "text"}, *SCHEMA["columns"][1:]]},
        "Schema column 'patient_id': type must be one of",
    ),
    "bad schema role": (
        CSV,
        "upload.csv",
        {"columns": [{**SCHEMA["columns"][0], "role": "pii"}, *SCHEMA["columns"][1:]]},
        "Schema column 'patient_id': role must be one of",
    ),
    "corrupt gzip": (gzip.compress(CSV * 40)[:-30], "upload.csv.gz", None, "The compressed file is corrupt"),
    "gzip bomb": (gzip.compress(b"a,b\n" + b"1,2\n" * 1_000_000), "bomb.csv.gz", None, "decompression bomb"),
    "zip bomb": (zipped("bomb.csv", b"a,b\n" + b"1,2\n" * 1_000_000), "bomb.zip", None, "decompression bomb"),
    "fake gzip": (CSV, "upload.csv.gz", None, "is named as compressed but its content is not a valid archive"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_refuses_a_malformed_upload_and_writes_nothing(cast, data_dir, upload, case):
    data, name, schema, expected = case
    with pytest.raises(DatasetFormatError) as caught:
        register(cast.steward, upload(data, name), schema=schema)
    assert expected in caught.value.message
    assert_nothing_written(data_dir)


def test_refuses_a_file_over_the_configured_size_limit_and_writes_nothing(cast, data_dir, upload, settings):
    settings.SYNTHGATE_MAX_UPLOAD_BYTES = len(CSV) - 1
    with pytest.raises(DatasetFormatError) as caught:
        register(cast.steward, upload(CSV))
    assert caught.value.extra == {"size_bytes": len(CSV), "limit_bytes": len(CSV) - 1}
    assert_nothing_written(data_dir)


def test_refuses_a_compressed_upload_expanding_past_the_configured_limit(cast, data_dir, upload, settings):
    settings.SYNTHGATE_MAX_EXPANDED_BYTES = len(CSV) * 10
    with pytest.raises(DatasetFormatError) as caught:
        register(cast.steward, upload(gzip.compress(CSV * 20), "upload.csv.gz"))
    assert caught.value.extra == {"limit_bytes": len(CSV) * 10}
    assert_nothing_written(data_dir)


def test_refuses_a_compression_ratio_over_the_configured_limit(cast, data_dir, upload, settings):
    settings.SYNTHGATE_MAX_COMPRESSION_RATIO = 5
    data = gzip.compress(b"a,b\n" + b"".join(b"%d,%d\n" % (i % 10, i % 7) for i in range(400_000)))
    with pytest.raises(DatasetFormatError) as caught:
        register(cast.steward, upload(data, "upload.csv.gz"))
    assert caught.value.extra == {"ratio_limit": 5}
    assert_nothing_written(data_dir)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("epsilon_cap", {"epsilon_cap": "0"}),
        ("epsilon_cap", {"epsilon_cap": "-1"}),
        ("epsilon_cap", {"epsilon_cap": "lots"}),
        ("epsilon_cap", {"epsilon_cap": "Infinity"}),
        ("delta_cap", {"delta_cap": "1"}),
        ("delta_cap", {"delta_cap": "-1e-9"}),
        ("name", {"name": "my data!"}),
    ],
)
def test_refuses_bad_caps_or_name_naming_the_field_and_writes_nothing(cast, data_dir, upload, field, kwargs):
    with pytest.raises(ValidationError) as caught:
        register(cast.steward, upload(CSV), **kwargs)
    assert caught.value.extra["field"] == field
    assert_nothing_written(data_dir)


@pytest.mark.parametrize("who", ["requester", "approver", "auditor"])
def test_only_a_steward_may_register(cast, data_dir, upload, who):
    with pytest.raises(PermissionDeniedError):
        register(getattr(cast, who), upload(CSV))
    assert_nothing_written(data_dir)


def test_a_failure_after_the_file_is_written_removes_the_file_and_every_row(cast, data_dir, upload, monkeypatch):
    def broken_audit(**kwargs):
        if kwargs["action"] == "dataset_version.create":
            raise RuntimeError("database went away")
        return original(**kwargs)

    import governance.services.datasets as datasets

    original = datasets.audit_event_record
    monkeypatch.setattr(datasets, "audit_event_record", broken_audit)
    with pytest.raises(RuntimeError):
        register(cast.steward, upload(CSV), schema=SCHEMA)
    assert_nothing_written(data_dir)


# --- registration -----------------------------------------------------------------------------


def test_registers_a_dataset_with_caps_and_its_first_source_version(cast, data_dir, upload):
    result = register(cast.steward, upload(CSV, "patients.csv"), schema=SCHEMA, epsilon_cap="5", delta_cap="1e-5")

    version = result.version
    assert result.created is True
    dataset = Dataset.objects.get()
    assert (dataset.name, dataset.owner, dataset.epsilon_cap, dataset.delta_cap) == (
        "patients",
        cast.steward,
        Decimal("5"),
        Decimal("0.00001"),
    )
    assert (version.number, version.kind, version.n_rows, version.n_columns) == (1, VersionKind.SOURCE, 3, 4)
    assert version.schema_inferred is False
    assert version.dropped_columns == ["patient_id"]
    assert version.original_filename == "patients.csv"
    assert version.created_by == cast.steward
    assert version.parent is None
    assert [c["name"] for c in version.schema["columns"]] == ["age", "income", "city", "member"]


def test_the_stored_file_is_the_canonical_bytes_addressed_by_their_sha256(cast, data_dir, upload):
    version = register(cast.steward, upload(CSV), schema=SCHEMA).version

    stored = data_dir / version.storage_key
    assert stored_files(data_dir) == [stored]
    data = stored.read_bytes()
    assert hashlib.sha256(data).hexdigest() == version.content_hash
    assert version.storage_key == f"datasets/patients/source-{version.content_hash}.csv"
    assert version.size_bytes == len(data)
    assert data == b"age,income,city,member\n34,51000.5,Leeds,True\n51,72000.0,York,False\n29,,Leeds,True\n"
    assert b"patient_id" not in data and b"P1" not in data


def test_an_inferred_schema_is_stored_and_marked_inferred(cast, data_dir, upload):
    version = register(cast.steward, upload(CSV)).version
    assert version.schema_inferred is True
    assert version.dropped_columns == []
    assert [(c["name"], c["type"], c["role"]) for c in version.schema["columns"]] == [
        ("patient_id", "categorical", "other"),
        ("age", "integer", "other"),
        ("income", "float", "other"),
        ("city", "categorical", "other"),
        ("member", "boolean", "other"),
    ]


def test_registration_writes_audit_events_that_verify(cast, data_dir, upload):
    version = register(cast.steward, upload(CSV), schema=SCHEMA).version

    events = list(AuditEvent.objects.order_by("id"))
    assert [(e.action, e.object_type, e.actor, e.actor_name) for e in events] == [
        ("dataset.register", "dataset", cast.steward, "steward"),
        ("dataset_version.create", "datasetversion", cast.steward, "steward"),
        ("budget.estimate", "budgetentry", cast.steward, "steward"),
    ]
    assert events[0].after == {"name": "patients", "epsilon_cap": "5", "delta_cap": "0.00001"}
    assert events[1].after == {
        "dataset": "patients",
        "number": 1,
        "kind": "source",
        "content_hash": version.content_hash,
        "n_rows": 3,
        "n_columns": 4,
        "dropped_columns": ["patient_id"],
    }
    # the source version's DP row estimate, paid for once at registration (issue 11.2)
    assert {key: events[2].after[key] for key in ("dataset", "request", "version", "epsilon", "delta")} == {
        "dataset": "patients",
        "request": None,
        "version": 1,
        "epsilon": "0.02",
        "delta": "0",
    }
    assert audit_log_verify().ok


def test_re_registering_identical_content_returns_the_existing_version(cast, data_dir, upload):
    first = register(cast.steward, upload(CSV), schema=SCHEMA)
    events = AuditEvent.objects.count()

    again = register(cast.steward, upload(gzip.compress(CSV), "again.csv.gz"), schema=SCHEMA)

    assert again.created is False
    assert again.version.pk == first.version.pk
    assert DatasetVersion.objects.count() == 1
    assert AuditEvent.objects.count() == events
    assert len(stored_files(data_dir)) == 1


def test_identical_content_with_different_roles_is_refused(cast, data_dir, upload):
    register(cast.steward, upload(CSV), schema=SCHEMA)
    relabelled = {
        "columns": [{**column, "role": "other"} if column["name"] == "city" else column for column in SCHEMA["columns"]]
    }
    with pytest.raises(ConflictError) as caught:
        register(cast.steward, upload(CSV), schema=relabelled)
    assert caught.value.extra == {"version": 1}
    assert DatasetVersion.objects.count() == 1


def test_new_content_becomes_the_next_source_version(cast, data_dir, upload):
    register(cast.steward, upload(CSV), schema=SCHEMA)
    more = CSV + b"P4,62,39000,Hull,false\n"

    result = register(cast.steward, upload(more, "more.csv"), schema=SCHEMA)

    assert result.created is True
    assert (result.version.number, result.version.n_rows) == (2, 4)
    assert result.version.parent is None  # source versions are independent uploads, not derived
    assert Dataset.objects.count() == 1
    assert len(stored_files(data_dir)) == 2


def test_a_new_version_with_different_caps_is_refused_and_writes_nothing(cast, data_dir, upload):
    register(cast.steward, upload(CSV), schema=SCHEMA, epsilon_cap="5")
    before = (AuditEvent.objects.count(), stored_files(data_dir))

    with pytest.raises(ConflictError) as caught:
        register(cast.steward, upload(CSV + b"P4,62,39000,Hull,false\n"), schema=SCHEMA, epsilon_cap="6")

    extra = caught.value.extra
    assert (Decimal(extra["epsilon_cap"]), Decimal(extra["delta_cap"])) == (Decimal("5"), Decimal("1e-5"))
    assert "caps cannot be changed" in caught.value.message
    assert DatasetVersion.objects.count() == 1
    assert (AuditEvent.objects.count(), stored_files(data_dir)) == before


def test_caps_given_in_another_spelling_are_the_same_caps(cast, data_dir, upload):
    register(cast.steward, upload(CSV), schema=SCHEMA, epsilon_cap="5", delta_cap="1e-5")
    result = register(
        cast.steward, upload(CSV + b"P4,62,39000,Hull,false\n"), schema=SCHEMA, epsilon_cap=5.0, delta_cap="0.00001"
    )
    assert result.version.number == 2


def test_the_file_column_order_is_part_of_the_content(cast, data_dir, upload):
    """Real behaviour: a declared schema is re-ordered to the file's column order, and the
    canonical bytes follow it, so the same rows with columns in another order are new content."""
    register(cast.steward, upload(CSV), schema=SCHEMA)
    frame = pd.read_csv(io.BytesIO(CSV), keep_default_na=False, dtype=str)
    reordered = frame[["member", "city", "income", "age", "patient_id"]].to_csv(index=False).encode()

    result = register(cast.steward, upload(reordered, "reordered.csv"), schema=SCHEMA)

    first = DatasetVersion.objects.get(number=1)
    assert result.created is True
    assert result.version.content_hash != first.content_hash
    assert [c["name"] for c in result.version.schema["columns"]] == ["member", "city", "income", "age"]
    stored = load_canonical(data_dir / result.version.storage_key, result.version.schema)
    original = load_canonical(data_dir / first.storage_key, first.schema)
    pd.testing.assert_frame_equal(stored[list(original.columns)], original)


def test_the_same_table_with_the_same_column_order_hashes_the_same_whatever_the_container(cast, data_dir, upload):
    frame = pd.read_csv(io.BytesIO(CSV))
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    first = register(cast.steward, upload(CSV), schema=SCHEMA)
    for data, name in [
        (parquet.getvalue(), "p.parquet"),
        (zipped("t.csv", CSV), "t.zip"),
        (CSV.replace(b",", b";").replace(b"\n", b"\r\n"), "t.csv"),
    ]:
        again = register(cast.steward, upload(data, name), schema=SCHEMA)
        assert (again.created, again.version.pk) == (False, first.version.pk), name


@pytest.mark.parametrize("container", ["gzip", "zip", "parquet"])
def test_registers_compressed_and_parquet_uploads(cast, data_dir, upload, container):
    frame = pd.read_csv(io.BytesIO(CSV))
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    data, name = {
        "gzip": (gzip.compress(CSV), "p.csv.gz"),
        "zip": (zipped("p.csv", CSV), "p.zip"),
        "parquet": (parquet.getvalue(), "p.parquet"),
    }[container]

    version = register(cast.steward, upload(data, name), schema=SCHEMA).version

    assert (version.n_rows, version.n_columns, version.original_filename) == (3, 4, name)
    assert hashlib.sha256((data_dir / version.storage_key).read_bytes()).hexdigest() == version.content_hash


def test_registers_the_adult_fixture_and_loads_it_back_with_the_same_dtypes(cast, data_dir, adult_csv, adult_schema):
    version = register(cast.steward, adult_csv, name="adult", schema=adult_schema).version
    table = read_table(adult_csv, filename=adult_csv.name, limits=ingest_limits(), schema=adult_schema)

    loaded = load_canonical(data_dir / version.storage_key, version.schema)

    assert (version.n_rows, version.n_columns) == (2000, 15)
    assert version.content_hash == table.content_hash
    assert loaded.dtypes.to_dict() == table.frame.dtypes.to_dict()
    pd.testing.assert_frame_equal(loaded, table.frame)


def test_a_derived_version_records_its_parent_and_lineage(cast, data_dir, upload, tmp_path):
    from django.db import transaction

    source = register(cast.steward, upload(CSV), schema=SCHEMA).version
    synthetic = read_table(
        upload(b"age,income,city,member\n40,1.5,York,false\n", "synthetic.csv"),
        filename="synthetic.csv",
        limits=ingest_limits(),
        schema={"columns": SCHEMA["columns"][1:]},
    )

    with files_removed_on_error() as written, transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(name="patients")
        result = dataset_version_store(
            dataset=dataset,
            table=synthetic,
            actor=None,
            kind=VersionKind.SYNTHETIC,
            written=written,
            parent=source,
            lineage={"job": 7},
        )

    version = result.version
    assert (version.number, version.kind, version.parent, version.lineage) == (2, "synthetic", source, {"job": 7})
    assert version.storage_key == f"datasets/patients/synthetic-{version.content_hash}.csv"
    assert AuditEvent.objects.filter(action="dataset_version.create").last().actor_name == "system"


def test_every_mistake_in_a_registration_is_named_in_one_refusal(cast, data_dir, upload):
    path = upload(b"\xff\xfe\x00not a table", name="broken.csv")

    with pytest.raises(ValidationError) as caught:
        register(cast.steward, path, name="has spaces", epsilon_cap="0", delta_cap="1")

    listed = caught.value.extra["errors"]
    assert [item["field"] for item in listed[:3]] == ["epsilon_cap", "delta_cap", "name"]
    assert len(listed) == 4 and listed[3]["code"] == "invalid_dataset"  # the table's own refusal too
    assert all(item["message"] in caught.value.message for item in listed)
    assert_nothing_written(data_dir)
