"""Bounded work for every input (issue 12 §4): each measured abuse is answered by a 4xx naming the
limit, fast, with nothing stored. Each test replays one reproduction from the issue."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from rest_framework.test import APIClient

from governance.models import Approval, AuditEvent, DataRequest, Dataset, DatasetVersion, RequestState
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file
from tests.governance.test_cli import synthgate


def client_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def stored_counts() -> dict:
    return {model.__name__: model.objects.count() for model in (Dataset, DatasetVersion, DataRequest, AuditEvent)}


def csv_upload(content: bytes, name: str = "wide") -> dict:
    return {
        "file": SimpleUploadedFile(f"{name}.csv", content, content_type="text/csv"),
        "name": name,
        "epsilon_cap": "1",
        "delta_cap": "0",
    }


def wide_csv(columns: int) -> bytes:
    header = ",".join(f"c{i}" for i in range(columns))
    row = ",".join("1" for _ in range(columns))
    return f"{header}\n{row}\n{row}\n".encode()


# --- tables: columns, cells, NUL -------------------------------------------------------------


def test_a_100k_column_csv_is_refused_at_once_through_the_api(cast):
    content = wide_csv(100_000)  # ~0.9 MB: held a web worker 120 s before the limit
    before = stored_counts()

    response = client_as(cast.steward).post("/api/datasets/", csv_upload(content), format="multipart")

    # Refused from the header, before any per-column work (bench figures: README, issue 12 §4).
    assert response.status_code == 400
    assert response.json()["message"] == "The table has 100,000 columns; the limit is 1,000 (SYNTHGATE_MAX_COLUMNS)."
    assert response.json()["extra"] == {"columns": 100_000, "limit": 1000}
    assert stored_counts() == before


@override_settings(SYNTHGATE_MAX_COLUMNS=3)
def test_the_column_limit_is_a_setting_and_the_cli_refuses_too(cast, tmp_path):
    path = tmp_path / "four.csv"
    path.write_bytes(wide_csv(4))

    result = synthgate(
        "dataset", "register", path, "--name", "four", "--epsilon-cap", "1", "--delta-cap", "0", "--as", "steward"
    )

    assert result.code == 2
    assert "The table has 4 columns; the limit is 3 (SYNTHGATE_MAX_COLUMNS)." in result.stderr
    assert not Dataset.objects.exists()


@override_settings(SYNTHGATE_MAX_CELL_CHARS=100)
def test_a_cell_over_the_size_limit_is_refused_naming_row_and_column(cast):
    content = b"a,b\n1,x\n2," + b"y" * 101 + b"\n"

    response = client_as(cast.steward).post("/api/datasets/", csv_upload(content), format="multipart")

    assert response.status_code == 400
    assert response.json()["message"] == (
        "Data row 2, column 'b', holds a cell longer than 100 characters (SYNTHGATE_MAX_CELL_CHARS)."
    )
    assert not Dataset.objects.exists()


def test_nul_bytes_in_a_csv_cell_are_refused_through_the_api_and_the_cli(cast, tmp_path):
    content = b"a,b\n1,x\n2,y\x00z\n"

    response = client_as(cast.steward).post("/api/datasets/", csv_upload(content), format="multipart")
    path = tmp_path / "nul.csv"
    path.write_bytes(content)
    result = synthgate(
        "dataset", "register", path, "--name", "nul", "--epsilon-cap", "1", "--delta-cap", "0", "--as", "steward"
    )

    expected = "The file contains a NUL byte (line 3, byte 11); text cells may not hold NUL characters."
    assert response.status_code == 400
    assert response.json()["message"] == expected
    assert result.code == 2 and expected in result.stderr
    assert not Dataset.objects.exists()


# --- text fields -----------------------------------------------------------------------------


@pytest.fixture
def submitted(cast, adult_schema):
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    PurposeFactory()
    return request_file(requester=cast.requester)


def test_a_1_mb_rejection_reason_is_refused_and_nothing_is_stored(cast, submitted):
    events = AuditEvent.objects.count()

    response = client_as(cast.approver).post(
        f"/api/requests/{submitted.pk}/reject/", {"reason": "x" * 1_000_000}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "too_long",
        "message": "reason is 1,000,000 characters long; the limit is 10,000.",
        "extra": {"field": "reason", "length": 1_000_000, "limit": 10_000},
    }
    submitted.refresh_from_db()
    assert submitted.state == RequestState.SUBMITTED and submitted.decision_reason == ""
    assert not Approval.objects.exists() and AuditEvent.objects.count() == events


def test_an_overlong_reason_is_refused_by_the_cli(cast, submitted):
    result = synthgate("request", "reject", submitted.pk, "--reason", "x" * 10_001, "--as", "approver")

    assert result.code == 2
    assert "reason is 10,001 characters long; the limit is 10,000." in result.stderr
    assert DataRequest.objects.get(pk=submitted.pk).state == RequestState.SUBMITTED


def test_a_reason_at_the_limit_is_accepted(cast, submitted):
    response = client_as(cast.approver).post(
        f"/api/requests/{submitted.pk}/reject/", {"reason": "x" * 10_000}, format="json"
    )

    assert response.status_code == 200
    assert len(DataRequest.objects.get(pk=submitted.pk).decision_reason) == 10_000


def test_an_overlong_justification_and_recipient_are_refused(cast, submitted):
    body = {"dataset": "adult", "purpose": "research", "epsilon": "0.5", "delta": "1e-6", "n_rows": 100}
    client = client_as(cast.requester)

    long_justification = client.post("/api/requests/", {**body, "justification": "j" * 10_001}, format="json")
    long_recipient = client.post("/api/requests/", {**body, "recipient": "r" * 201}, format="json")

    assert long_justification.status_code == 400
    assert long_justification.json()["extra"]["field"] == "justification"
    assert long_recipient.status_code == 400
    assert long_recipient.json()["extra"]["field"] == "recipient"
    assert DataRequest.objects.count() == 1


# --- JSON bodies -----------------------------------------------------------------------------


def test_json_nested_100k_deep_is_a_400_not_a_500(cast):
    body = "[" * 100_000 + "]" * 100_000

    response = client_as(cast.steward).post("/api/purposes/", body, content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "code": "json_too_deep",
        "message": "The JSON body is nested more than 32 levels deep, the limit.",
        "extra": {"limit_depth": 32},
    }


def test_json_just_over_the_depth_limit_is_refused_and_at_it_accepted_as_json(cast):
    client = client_as(cast.steward)

    deep = client.post("/api/purposes/", {"name": "p", "audit_thresholds": nested(32)}, format="json")
    shallow = client.post("/api/purposes/", {"name": "p", "audit_thresholds": nested(30)}, format="json")

    assert deep.json()["code"] == "json_too_deep"
    # Parsed; refused by the purpose rules, not by the JSON limits.
    assert shallow.status_code == 400 and shallow.json()["code"] != "json_too_deep"


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_a_json_body_over_the_byte_limit_is_a_413_read_no_further(cast):
    body = '{"name": "' + "n" * (1024 * 1024) + '"}'

    response = client_as(cast.steward).post("/api/purposes/", body, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert response.json()["message"] == "The JSON body is larger than 1,048,576 bytes, the limit."


def test_a_deep_schema_sent_as_a_form_field_is_a_400(cast):
    body = {**csv_upload(b"a,b\n1,2\n"), "schema": "[" * 100_000 + "]" * 100_000}

    response = client_as(cast.steward).post("/api/datasets/", body, format="multipart")

    assert response.status_code == 400
    assert response.json()["message"] == "The schema is nested more than 32 levels deep, the limit."
    assert not Dataset.objects.exists()


def test_a_deep_schema_file_is_refused_by_the_cli(cast, tmp_path, adult_csv):
    schema = tmp_path / "deep.json"
    schema.write_text("[" * 100_000 + "]" * 100_000)

    result = synthgate(
        "dataset", "register", adult_csv, "--name", "a", "--epsilon-cap", "1", "--delta-cap", "0",
        "--schema", schema, "--as", "steward",
    )  # fmt: skip

    assert result.code == 2
    assert f"The schema file {schema} is nested more than 32 levels deep, the limit." in result.stderr


# --- compliance report period ----------------------------------------------------------------


def test_a_report_for_0001_to_9999_is_a_400_through_the_api_and_the_cli(cast):
    response = client_as(cast.auditor).get("/api/reports/compliance/", {"from": "0001-01-01", "to": "9999-12-31"})
    result = synthgate("report", "compliance", "--from", "0001-01-01", "--to", "9999-12-31", "--as", "auditor")

    expected = "The period's 'from' date 0001-01-01 is outside 1970-01-01 to 9000-12-31."
    assert response.status_code == 400
    assert response.json()["message"] == expected
    assert result.code == 2 and expected in result.stderr


def test_a_report_longer_than_the_period_limit_is_refused(cast):
    response = client_as(cast.auditor).get("/api/reports/compliance/", {"from": "2000-01-01", "to": "2020-12-31"})

    assert response.status_code == 400
    assert response.json()["message"] == (
        "The period covers 7,671 days; a report may cover at most 3,660 (SYNTHGATE_MAX_REPORT_DAYS)."
    )


# --- datasheet verification uploads ----------------------------------------------------------


def test_an_anonymous_50_mb_verify_upload_is_refused_by_its_declared_length(db):
    big = SimpleUploadedFile("big.pdf", b"%PDF" + b"0" * (50 * 1024 * 1024), content_type="application/pdf")

    response = APIClient().post("/api/datasheets/verify/", {"file": big}, format="multipart")

    assert response.status_code == 413
    assert response.json() == {
        "code": "request_too_large",
        "message": "The uploaded datasheet is larger than 20,971,520 bytes, the limit.",
        "extra": {"limit_bytes": 20_971_520},
    }


@override_settings(SYNTHGATE_MAX_VERIFY_BYTES=10_000)
def test_a_verify_upload_is_counted_as_it_streams_and_stopped_past_the_limit(db):
    # Declared length under limit + envelope allowance: the upload handler stops it instead.
    upload = SimpleUploadedFile("big.pdf", b"%PDF" + b"0" * 20_000, content_type="application/pdf")

    response = APIClient().post("/api/datasheets/verify/", {"file": upload}, format="multipart")

    assert response.status_code == 413
    assert response.json()["message"] == "The uploaded datasheet is larger than 10,000 bytes, the limit."


@override_settings(SYNTHGATE_MAX_VERIFY_BYTES=10_000)
def test_the_cli_refuses_a_datasheet_over_the_limit(db, tmp_path):
    path = tmp_path / "big.pdf"
    path.write_bytes(b"%PDF" + b"0" * 20_000)

    result = synthgate("datasheet", "verify", path)

    assert result.code == 2
    assert f"{path} is larger than 10,000 bytes, the limit." in result.stderr


def test_read_capped_reads_a_stream_at_the_limit_whole():
    from core.limits import read_capped

    assert read_capped(io.BytesIO(b"x" * 10), limit_bytes=10, what="it") == b"x" * 10
