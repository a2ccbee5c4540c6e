"""Writes through the dashboard: forms show a service's refusal next to the field that caused
it, and the four-eyes rule holds for buttons and for forged POSTs alike."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from governance.models import Approval, AuditEvent, BudgetEntry, DataRequest, Dataset, RequestState

pytestmark = pytest.mark.django_db


def _upload(path, name=None):
    return SimpleUploadedFile(name or path.name, path.read_bytes())


def test_a_steward_registers_a_dataset_from_the_form(cast, adult_csv, adult_schema, login):
    response = login(cast.steward).post(
        "/datasets/new/",
        {
            "name": "adult",
            "description": "census",
            "sensitivity": "confidential",
            "epsilon_cap": "10",
            "delta_cap": "1e-4",
            "file": _upload(adult_csv),
            "schema_json": json.dumps(adult_schema),
        },
    )
    assert response.status_code == 302 and response["Location"] == "/datasets/adult/schema/"  # step 2: declare
    dataset = Dataset.objects.get(name="adult")
    assert dataset.versions.get().n_rows == 2000 and dataset.owner == cast.steward


def test_the_register_form_shows_each_error_at_its_field(cast, adult_csv, login):
    client = login(cast.steward)
    bad_json = client.post(
        "/datasets/new/",
        {
            "name": "adult",
            "sensitivity": "confidential",
            "epsilon_cap": "10",
            "delta_cap": "1e-4",
            "file": _upload(adult_csv),
            "schema_json": "{not json",
        },
    )
    assert bad_json.status_code == 400
    assert "This is not valid JSON" in bad_json.context["form"].errors["schema_json"][0]
    bad_delta = client.post(
        "/datasets/new/",
        {
            "name": "adult",
            "sensitivity": "confidential",
            "epsilon_cap": "10",
            "delta_cap": "2",
            "file": _upload(adult_csv),
        },
    )
    assert bad_delta.status_code == 400
    assert bad_delta.context["form"].errors["delta_cap"] == ["δ cap must be less than 1; got 2."]
    assert 'id="id_delta_cap-error"' in bad_delta.content.decode()  # rendered under the δ field
    bad_table = client.post(
        "/datasets/new/",
        {
            "name": "adult",
            "sensitivity": "confidential",
            "epsilon_cap": "10",
            "delta_cap": "1e-4",
            "file": SimpleUploadedFile("t.csv", b"\xff\xfe\x00garbage"),
        },
    )
    assert bad_table.status_code == 400 and bad_table.context["form"].errors["file"]
    assert not Dataset.objects.exists()


def test_the_register_form_shows_every_mistake_at_once_and_keeps_the_table(cast, adult_csv, adult_schema, login):
    client = login(cast.steward)
    fields = {"name": "no spaces allowed", "sensitivity": "confidential", "epsilon_cap": "-1", "delta_cap": "2"}

    first = client.post("/datasets/new/", {**fields, "file": _upload(adult_csv)})

    assert first.status_code == 400
    errors = first.context["form"].errors
    assert set(errors) >= {"name", "epsilon_cap", "delta_cap"}
    # In the words of the form's labels, never the service's field names.
    assert not [message for messages in errors.values() for message in messages if "_cap" in message]
    assert errors["epsilon_cap"][0].startswith("ε cap (total privacy budget) must be")
    staged = first.context["form"].staged
    assert staged.filename == "adult_2000.csv" and staged.read_bytes() == adult_csv.read_bytes()
    assert f'name="staged_file" value="{staged.token}"' in first.content.decode()
    # An incomplete form (no name, no table) still shows the service's verdict on the caps beside it.
    incomplete = client.post("/datasets/new/", {"sensitivity": "confidential", "epsilon_cap": "x", "delta_cap": "1"})
    assert incomplete.status_code == 400
    assert set(incomplete.context["form"].errors) >= {"name", "file", "epsilon_cap", "delta_cap"}
    assert not Dataset.objects.exists()
    # Another steward cannot use the token; the one who staged it registers without choosing the file again.
    other = type(cast.steward).objects.create_user("steward2", password="pw")
    other.groups.set(cast.steward.groups.all())
    stolen = login(other).post("/datasets/new/", {**fields, "name": "adult", "staged_file": staged.token})
    assert stolen.status_code == 400 and "file" in stolen.context["form"].errors
    fixed = {"name": "adult", "sensitivity": "confidential", "epsilon_cap": "10", "delta_cap": "1e-4"}
    second = client.post(
        "/datasets/new/", {**fixed, "staged_file": staged.token, "schema_json": json.dumps(adult_schema)}
    )
    assert second.status_code == 302
    assert Dataset.objects.get(name="adult").versions.get().n_rows == 2000
    assert not staged.exists()


def test_only_a_steward_may_open_the_register_form(cast, login, db):
    assert login(cast.requester).get("/datasets/new/").status_code == 403
    assert b"Register a dataset" not in login(cast.requester).get("/datasets/").content
    assert b"Register a dataset" in login(cast.steward).get("/datasets/").content


def test_a_requester_files_a_request_with_rebalancing(cast, adult, login):
    client = login(cast.requester)
    form = client.get("/requests/new/?dataset=adult")
    info = form.context["budget_info"]
    # registration spent ε 0.02 on the source version's DP row estimate
    assert info["datasets"]["adult"] == {"epsilon_cap": "10", "epsilon_remaining": "9.98", "delta_remaining": "0.0001"}
    assert info["purposes"]["research"]["max_epsilon"] == "5"
    assert 'id="budget-info"' in form.content.decode()
    response = client.post(
        "/requests/new/",
        {
            "dataset": "adult",
            "purpose": "research",
            "epsilon": "1",
            "delta": "1e-6",
            "n_rows": "500",
            "generator": "mst",
            "recipient_kind": "internal",
            "rebalance_column": "income",
            "rebalance_value": ">50K",
            "rebalance_share": "0.5",
        },
    )
    request = DataRequest.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/requests/{request.pk}/"
    assert request.state == RequestState.SUBMITTED and request.rebalance == {
        "column": "income",
        "shares": {">50K": 0.5},
    }
    assert request.output_format == "csv"  # not chosen: the default


def test_a_requester_chooses_parquet_output_and_an_unknown_format_is_refused(cast, adult, login):
    client = login(cast.requester)
    assert 'name="output_format"' in client.get("/requests/new/?dataset=adult").content.decode()
    fields = {"dataset": "adult", "purpose": "research", "epsilon": "1", "delta": "1e-6", "n_rows": "500"}
    fields |= {"generator": "mst", "recipient_kind": "internal"}
    refused = client.post("/requests/new/", {**fields, "output_format": "xlsx"})
    assert refused.status_code == 400 and "output_format" in refused.context["form"].errors
    assert not DataRequest.objects.exists()
    response = client.post("/requests/new/", {**fields, "output_format": "parquet"})
    request = DataRequest.objects.get()
    assert response.status_code == 302 and request.output_format == "parquet"
    assert "<dt>Output format</dt><dd>Parquet</dd>" in client.get(f"/requests/{request.pk}/").content.decode()


def test_the_request_form_shows_the_services_refusal_at_its_field(cast, adult, login):
    client = login(cast.requester)
    base = {
        "dataset": "adult",
        "purpose": "research",
        "epsilon": "1",
        "delta": "1e-6",
        "n_rows": "500",
        "generator": "mst",
        "recipient_kind": "internal",
    }
    too_much = client.post("/requests/new/", {**base, "epsilon": "7"})
    assert too_much.status_code == 400
    assert "is more than purpose “research” allows (at most ε = 5" in too_much.context["form"].errors["epsilon"][0]
    rows = client.post("/requests/new/", {**base, "n_rows": "lots"})
    assert rows.context["form"].errors["n_rows"] == ["rows must be a whole number; got 'lots'."]
    half = client.post("/requests/new/", {**base, "rebalance_column": "income"})
    assert half.status_code == 400 and half.context["form"].errors["rebalance_share"]
    share = client.post(
        "/requests/new/", {**base, "rebalance_column": "income", "rebalance_value": ">50K", "rebalance_share": "1.5"}
    )
    assert "share must lie in (0, 1)" in share.context["form"].errors["rebalance_column"][0]
    assert not DataRequest.objects.exists()


def test_the_same_form_sent_twice_files_one_request(cast, adult, login):
    client = login(cast.requester)
    token = client.get("/requests/new/?dataset=adult").context["form"]["form_token"].value()
    data = {
        "dataset": "adult",
        "purpose": "research",
        "epsilon": "1",
        "delta": "1e-6",
        "n_rows": "500",
        "generator": "mst",
        "recipient_kind": "internal",
        "form_token": token,
    }

    first, second = client.post("/requests/new/", data), client.post("/requests/new/", data)

    request = DataRequest.objects.get()
    assert first["Location"] == second["Location"] == f"/requests/{request.pk}/"
    assert AuditEvent.objects.filter(action="request.create").count() == 1
    assert client.get("/requests/new/").context["form"]["form_token"].value() != token


def test_error_lists_are_announced_through_a_wrapper_not_a_list_role(cast, adult, login):
    page = login(cast.requester).post("/requests/new/", {"dataset": "adult", "epsilon": "x"}).content.decode()

    assert '<div role="alert"><ul class="errorlist"' in page
    assert '<ul class="errorlist" role=' not in page


def test_a_draft_is_saved_then_submitted(cast, adult, login):
    client = login(cast.requester)
    client.post(
        "/requests/new/",
        {
            "dataset": "adult",
            "purpose": "research",
            "epsilon": "1",
            "delta": "1e-6",
            "n_rows": "500",
            "generator": "mst",
            "recipient_kind": "internal",
            "draft": "on",
        },
    )
    request = DataRequest.objects.get()
    assert request.state == RequestState.DRAFT
    assert f"Draft #{request.pk}" in client.get("/").content.decode()
    client.post(f"/requests/{request.pk}/submit/")
    request.refresh_from_db()
    assert request.state == RequestState.SUBMITTED


def test_the_requester_sees_no_approve_button_and_a_forged_post_is_refused(cast, submitted, login):
    client = login(cast.requester)
    page = client.get(f"/requests/{submitted.pk}/").content.decode()
    assert ">Approve</button>" not in page and "you cannot approve it" in page
    forged = client.post(f"/requests/{submitted.pk}/approve/", {"approve-reason": "looks good to me"})
    assert forged.status_code == 403
    assert "a requester can never approve their own request" in forged.content.decode()
    assert not Approval.objects.exists()
    submitted.refresh_from_db()
    assert submitted.state == RequestState.SUBMITTED


def test_an_approver_who_filed_a_request_cannot_approve_it(cast, adult, login):
    from tests.governance.factories import UserFactory, request_file

    both = UserFactory(username="both", roles=["requester", "approver"])
    request = request_file(requester=both)
    client = login(both)
    assert ">Approve</button>" not in client.get(f"/requests/{request.pk}/").content.decode()
    assert client.post(f"/requests/{request.pk}/approve/").status_code == 403
    assert not Approval.objects.exists()


def test_two_approvers_approve_and_the_budget_is_reserved(cast, submitted, login):
    first = login(cast.approver)
    page = first.get(f"/requests/{submitted.pk}/").content.decode()
    assert ">Approve</button>" in page
    assert f"/requests/{submitted.pk}/" in first.get("/").content.decode()  # awaiting my approval
    response = first.post(f"/requests/{submitted.pk}/approve/", {"approve-reason": "in policy"}, follow=True)
    assert "1 more approval needed" in response.content.decode()
    assert ">Approve</button>" not in response.content.decode()  # already decided
    again = first.post(f"/requests/{submitted.pk}/approve/")
    assert again.status_code == 409 and Approval.objects.count() == 1
    login(cast.second_approver).post(f"/requests/{submitted.pk}/approve/")
    submitted.refresh_from_db()
    assert submitted.state == RequestState.APPROVED
    assert BudgetEntry.objects.get(request=submitted).kind == "reserve"


def test_a_rejection_needs_a_reason_shown_at_the_reason_field(cast, submitted, login):
    client = login(cast.approver)
    response = client.post(f"/requests/{submitted.pk}/reject/", {"reject-reason": "  "})
    assert response.status_code == 400
    assert response.context["forms"]["reject"].errors["reason"] == ["A reason is required to reject a request."]
    assert not Approval.objects.exists()
    client.post(f"/requests/{submitted.pk}/reject/", {"reject-reason": "ε too high for this purpose"})
    submitted.refresh_from_db()
    assert submitted.state == RequestState.REJECTED and submitted.decision_reason == "ε too high for this purpose"


def test_the_requester_withdraws_and_the_reservation_is_released(cast, submitted, login):
    for approver in (cast.approver, cast.second_approver):
        login(approver).post(f"/requests/{submitted.pk}/approve/")
    login(cast.requester).post(f"/requests/{submitted.pk}/withdraw/", {"withdraw-reason": "no longer needed"})
    submitted.refresh_from_db()
    assert submitted.state == RequestState.WITHDRAWN
    assert sorted(BudgetEntry.objects.values_list("kind", flat=True)) == ["estimate", "release", "reserve"]


def test_starting_generation_opens_the_job_page_and_cancel_stops_it(cast, submitted, login):
    for approver in (cast.approver, cast.second_approver):
        login(approver).post(f"/requests/{submitted.pk}/approve/")
    client = login(cast.requester)
    assert ">Start generation</button>" in client.get(f"/requests/{submitted.pk}/").content.decode()
    response = client.post(f"/requests/{submitted.pk}/generate/")
    job = submitted.jobs.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    assert 'role="progressbar"' in page and f'data-progress-url="/jobs/{job.pk}/progress/"' in page
    assert 'aria-valuenow="0"' in page and ">Cancel job</button>" in page
    progress = client.get(f"/jobs/{job.pk}/progress/").json()
    assert progress == {**progress, "status": "queued", "progress": 0, "request_state": "generating", "finished": False}
    assert f"/jobs/{job.pk}/" in client.get("/").content.decode()  # running jobs on the home page
    client.post(f"/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    submitted.refresh_from_db()
    assert job.status == "cancelled" and submitted.state == RequestState.FAILED
    assert BudgetEntry.objects.filter(request=submitted, kind="release").exists()


def test_another_requester_cannot_read_or_cancel_a_job(cast, submitted, login):
    for approver in (cast.approver, cast.second_approver):
        login(approver).post(f"/requests/{submitted.pk}/approve/")
    login(cast.requester).post(f"/requests/{submitted.pk}/generate/")
    job = submitted.jobs.get()
    other = login(cast.other_requester)
    assert other.get(f"/jobs/{job.pk}/").status_code == 404
    assert other.get(f"/jobs/{job.pk}/progress/").status_code == 404
    assert other.post(f"/jobs/{job.pk}/cancel/").status_code == 404
    job.refresh_from_db()
    assert job.status == "queued" and not job.cancel_requested


def test_an_auditor_can_read_but_not_decide(cast, submitted, login):
    client = login(cast.auditor)
    page = client.get(f"/requests/{submitted.pk}/").content.decode()
    assert ">Approve</button>" not in page and ">Reject</button>" not in page
    assert client.post(f"/requests/{submitted.pk}/approve/").status_code == 403
    assert client.get(f"/requests/{submitted.pk}/approve/").status_code == 405
    assert not Approval.objects.exists()


def test_the_request_form_shows_every_mistake_at_once(cast, adult, login):
    data = {
        "dataset": "adult",
        "purpose": "research",
        "epsilon": "7",
        "delta": "2",
        "n_rows": "lots",
        "generator": "mst",
        "recipient_kind": "internal",
        "seed": "not a number",
    }

    response = login(cast.requester).post("/requests/new/", data)

    errors = response.context["form"].errors
    assert response.status_code == 400
    assert set(errors) == {"epsilon", "delta", "n_rows", "seed"}
    assert "is more than purpose “research” allows" in errors["epsilon"][0]
    assert errors["n_rows"] == ["rows must be a whole number; got 'lots'."]
    assert not DataRequest.objects.exists()


def test_the_register_form_takes_a_row_count_declared_public_and_refuses_a_wrong_one_with_the_reason(
    cast, adult_csv, adult_schema, login, settings, tmp_path
):
    settings.DATA_DIR = tmp_path
    client = login(cast.steward)
    assert 'name="declared_rows"' in client.get("/datasets/new/").content.decode()
    fields = {
        "name": "census",
        "sensitivity": "confidential",
        "epsilon_cap": "10",
        "delta_cap": "1e-4",
        "schema_json": json.dumps(adult_schema),
    }
    wrong = client.post("/datasets/new/", {**fields, "file": _upload(adult_csv), "declared_rows": "1999"})
    assert wrong.status_code == 400
    assert (
        wrong.context["form"]
        .errors["declared_rows"][0]
        .startswith("The table has 2,000 rows, not the 1,999 declared public")
    )
    assert 'id="id_declared_rows-error"' in wrong.content.decode()  # beside the field
    malformed = client.post("/datasets/new/", {**fields, "name": "", "file": _upload(adult_csv), "declared_rows": "x"})
    assert malformed.status_code == 400  # an incomplete form still names the count's mistake
    assert (
        malformed.context["form"]
        .errors["declared_rows"][0]
        .startswith("Row count declared public (optional) must be a positive whole number")
    )
    assert not Dataset.objects.exists() and not BudgetEntry.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="dataset").exists()
    assert not [path for path in (tmp_path / "versions").rglob("*") if path.is_file()]

    right = client.post("/datasets/new/", {**fields, "file": _upload(adult_csv), "declared_rows": "2000"})
    assert right.status_code == 302
    version = Dataset.objects.get(name="census").versions.get()
    assert version.rows_declared and version.public_rows == 2000
    assert not BudgetEntry.objects.exists()  # no estimate of the size is charged
