"""Versions registered before type proposals existed: their types read from the rows were stored as
declared, and no stored field tells such a type from one the steward gave (docs/datasets.md,
"Versions registered before type proposals"). The steward puts them back under review with
`synthgate dataset declare NAME --repropose-types` (API ``repropose_types``, the schema step's
"Propose the types again"): logged per column, the version then cannot be requested until the
types are declared again, and a request filed on it before is refused at approval."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.errors import ConflictError, PermissionDeniedError, ValidationError
from core.schema import proposed_type_columns, schema_public
from governance.models import AuditEvent, BudgetEntry, DataRequest, DatasetVersion
from governance.services import access_request_approve, dataset_schema_types_repropose
from tests.governance.factories import PurposeFactory, dataset_register_adult, proposed_types_declared, request_file
from tests.governance.test_cli import synthgate

pytestmark = pytest.mark.django_db


def old_version(cast):
    """The adult table registered without a schema as it was stored before type proposals: the types
    read from the rows, unmarked (and a role declared since, so ``schema_inferred`` is false)."""
    version = dataset_register_adult(steward=cast.steward, declare_types=False)
    version.schema = {
        **version.schema,
        "columns": [
            {key: value for key, value in column.items() if key != "type_proposed"}
            for column in version.schema["columns"]
        ],
    }
    version.schema_inferred = False
    version.save(update_fields=["schema", "schema_inferred"])
    return version


def test_a_steward_puts_the_types_of_an_old_version_back_under_review_and_it_cannot_be_requested_until_declared(
    cast, data_dir
):
    PurposeFactory(name="research", max_epsilon="5")
    version = old_version(cast)
    filed = request_file(requester=cast.requester)  # the old types count as declared
    assert filed.state == "submitted"

    run = synthgate("dataset", "declare", "adult", "--repropose-types", "--as", "steward")
    assert run.code == 0, run.message
    assert "Types proposed again on adult@v1" in run.stdout
    assert "synthgate dataset declare adult --accept-proposed-types" in run.stdout
    version.refresh_from_db()
    names = [column["name"] for column in version.schema["columns"]]
    assert proposed_type_columns(version.schema) == names
    assert all(column["type"] is None for column in schema_public(version.schema)["columns"])
    events = AuditEvent.objects.filter(action="dataset_version.declare").order_by("pk")
    assert [(event.actor, event.after["column"]["name"], event.after["reproposed_type"]) for event in events] == [
        (cast.steward, column["name"], column["type"]) for column in version.schema["columns"]
    ]
    assert all("type_proposed" not in event.before["column"] for event in events)

    requests, entries = DataRequest.objects.count(), BudgetEntry.objects.count()
    with pytest.raises(ValidationError) as refused:
        request_file(requester=cast.requester)
    assert refused.value.code == "undeclared_types"
    with pytest.raises(ValidationError) as at_approval:  # filed before: refused before anything is reserved
        access_request_approve(actor=cast.approver, request_id=filed.pk)
    assert at_approval.value.code == "request_invalid" and "cannot be requested yet" in at_approval.value.message
    assert (DataRequest.objects.count(), BudgetEntry.objects.count()) == (requests, entries)

    proposed_types_declared(steward=cast.steward, name="adult")
    assert request_file(requester=cast.requester).state == "submitted"


def test_re_proposing_is_refused_with_nothing_written_when_it_cannot_be_done(cast, data_dir):
    version = old_version(cast)
    schema, events = version.schema, AuditEvent.objects.count()
    with pytest.raises(PermissionDeniedError):
        dataset_schema_types_repropose(actor=cast.requester, name="adult")
    with pytest.raises(ValidationError, match="has no column 'wage'"):
        dataset_schema_types_repropose(actor=cast.steward, name="adult", columns=["age", "wage"])
    assert DatasetVersion.objects.get().schema == schema and AuditEvent.objects.count() == events

    one = dataset_schema_types_repropose(actor=cast.steward, name="adult", columns=["income"]).version
    assert proposed_type_columns(one.schema) == ["income"]
    with pytest.raises(ValidationError, match="Nothing to re-propose: every named type of adult@v1 is already"):
        dataset_schema_types_repropose(actor=cast.steward, name="adult", columns=["income"])
    refused = synthgate("dataset", "declare", "adult", "--repropose-types", "--accept-proposed-types",
                        "--as", "steward")  # fmt: skip
    assert refused.code != 0 and "--repropose-types goes alone" in refused.stderr
    assert proposed_type_columns(DatasetVersion.objects.get().schema) == ["income"]


def test_re_proposing_waits_for_a_job_that_may_read_the_version(cast, data_dir):
    PurposeFactory(name="research", max_epsilon="5", approvals_required=1)
    old_version(cast)
    filed = request_file(requester=cast.requester)
    access_request_approve(actor=cast.approver, request_id=filed.pk)
    with pytest.raises(ConflictError, match="approved or generating"):
        dataset_schema_types_repropose(actor=cast.steward, name="adult")
    assert proposed_type_columns(DatasetVersion.objects.get().schema) == []


def test_the_api_and_the_schema_step_re_propose_the_types(cast, data_dir, client):
    old_version(cast)
    api = APIClient()
    api.force_authenticate(cast.steward)
    both = api.post(
        "/api/datasets/adult/declare/", {"repropose_types": [], "accept_proposed_types": True}, format="json"
    )
    assert both.status_code == 400
    answer = api.post("/api/datasets/adult/declare/", {"repropose_types": ["age"]}, format="json")
    assert answer.status_code == 200, answer.json()
    assert [(column["name"], column["type_proposed"]) for column in answer.json()["columns"]] == [("age", True)]
    api.force_authenticate(cast.requester)
    assert api.post("/api/datasets/adult/declare/", {"repropose_types": []}, format="json").status_code == 403
    assert proposed_type_columns(DatasetVersion.objects.get().schema) == ["age"]

    proposed_types_declared(steward=cast.steward, name="adult")
    client.force_login(cast.steward)
    page = client.get("/datasets/adult/schema/").content.decode()
    assert 'id="repropose-types"' in page and "Propose the types again" in page
    posted = client.post("/datasets/adult/schema/", {"action": "repropose_types"})
    assert posted.status_code == 302 and posted["Location"] == "/datasets/adult/schema/"
    assert len(proposed_type_columns(DatasetVersion.objects.get().schema)) == 15
    page = client.get("/datasets/adult/schema/").content.decode()
    assert "Declare the proposed types as shown" in page and 'id="repropose-types"' not in page
