"""A column's type read from the rows is a proposal the steward declares (issues 11.1, 11.3: nothing
about the data flows through structure). One row changes an inferred type (a 2.5 among whole
numbers makes a column float; one word among numbers makes it categorical), and the stored type
decides what the generators can output, so: registered without a schema, both tables store the
same public schema and show requesters the same facts, and neither can be requested (refused at
filing, nothing written or spent) until the steward declares the types."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from core.errors import ValidationError
from core.schema import proposed_type_columns, schema_public
from governance.models import AuditEvent, BudgetEntry, DataRequest, DatasetVersion
from governance.services import (
    access_request_outlook,
    dataset_register,
    dataset_schema_declare_columns,
    dataset_schema_types_accept,
)
from tests.governance.factories import PurposeFactory, dataset_register_adult, proposed_types_declared, request_file
from tests.governance.test_cli import synthgate

pytestmark = pytest.mark.django_db

ROWS = [(20 + n % 50, f"{1000 + 7 * n}", "yes" if n % 3 else "no") for n in range(60)]
# Version-level facts that name the version itself, not what its rows hold.
OWN = ("number", "content_hash", "original_filename", "created_at")


def table(tmp_path: Path, name: str, extra: str | None = None) -> Path:
    lines = ["age,income,member"] + [f"{age},{income},{member}" for age, income, member in ROWS]
    if extra is not None:
        lines.append(extra)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def register(cast, path: Path, name: str = "survey", **fields):
    return dataset_register(
        actor=cast.steward, name=name, path=path, filename=path.name, epsilon_cap="5", delta_cap="0", **fields
    ).version


def requester_view(cast, number: int) -> dict:
    client = APIClient()
    client.force_authenticate(cast.requester)
    body = client.get(f"/api/datasets/survey/versions/{number}/").json()
    return {key: value for key, value in body.items() if key not in OWN}


def test_one_row_changes_no_public_schema_and_nothing_a_requester_reads(cast, data_dir, tmp_path):
    plain = register(cast, table(tmp_path, "a.csv"))
    fractional = register(cast, table(tmp_path, "b.csv", extra="2.5,1070,yes"))
    worded = register(cast, table(tmp_path, "c.csv", extra="31,unknown,no"))
    assert (plain.number, fractional.number, worded.number) == (1, 2, 3)
    # What the rows proposed differs, as it did when it was stored as the type...
    types = [{c["name"]: c["type"] for c in version.schema["columns"]} for version in (plain, fractional, worded)]
    assert (types[0]["age"], types[1]["age"]) == ("integer", "float")
    assert (types[0]["income"], types[2]["income"]) == ("integer", "categorical")
    # ...but only as a proposal: the public schema and what a requester reads are the same.
    assert schema_public(plain.schema) == schema_public(fractional.schema) == schema_public(worded.schema)
    assert all(column["type"] is None for column in schema_public(plain.schema)["columns"])
    views = [requester_view(cast, number) for number in (1, 2, 3)]
    assert views[0] == views[1] == views[2]
    assert "integer" not in json.dumps(views) and "float" not in json.dumps(views)
    listing = APIClient()
    listing.force_authenticate(cast.requester)
    shown = listing.get("/api/datasets/survey/").content.decode()
    assert "categorical" not in shown and "integer" not in shown and "float" not in shown
    # The steward reads the proposals, marked as such.
    steward = APIClient()
    steward.force_authenticate(cast.steward)
    stewards_view = steward.get("/api/datasets/survey/versions/2/").json()["schema"]["columns"][0]
    assert (stewards_view["type"], stewards_view["type_proposed"]) == ("float", True)


def test_a_request_on_undeclared_types_is_refused_at_filing_with_nothing_written_or_spent(cast, data_dir):
    PurposeFactory(name="research", max_epsilon="5")
    version = dataset_register_adult(steward=cast.steward, declare_types=False)
    assert proposed_type_columns(version.schema)
    entries, events = BudgetEntry.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationError) as refused:
        request_file(requester=cast.requester)
    message = refused.value.message
    assert "cannot be requested yet" in message and "'age'" in message and "'income'" in message
    assert "synthgate dataset declare adult --accept-proposed-types" in message
    assert '/api/datasets/adult/declare/ {"accept_proposed_types": true}' in message
    assert "Declare the proposed types as shown" in message
    assert refused.value.extra["undeclared_types"] == proposed_type_columns(version.schema)
    assert (DataRequest.objects.count(), BudgetEntry.objects.count(), AuditEvent.objects.count()) == (
        0,
        entries,
        events,
    )
    with pytest.raises(ValidationError, match="cannot be requested yet"):
        access_request_outlook(
            actor=cast.requester, dataset_name="adult", purpose_name="research", epsilon="1", delta="1e-6", n_rows=500
        )
    assert BudgetEntry.objects.count() == entries
    declared = proposed_types_declared(steward=cast.steward, name="adult")
    assert proposed_type_columns(declared.schema) == []
    assert request_file(requester=cast.requester).state == "submitted"


def test_accepting_the_proposed_types_is_the_stewards_logged_declaration(cast, data_dir, tmp_path):
    version = register(cast, table(tmp_path, "a.csv"))
    before = {column["name"]: column["type"] for column in version.schema["columns"]}
    with pytest.raises(Exception, match="Only a data steward"):
        dataset_schema_types_accept(actor=cast.requester, name="survey")
    declared = dataset_schema_types_accept(actor=cast.steward, name="survey").version
    assert {column["name"]: column["type"] for column in declared.schema["columns"]} == before
    assert proposed_type_columns(declared.schema) == []
    events = AuditEvent.objects.filter(action="dataset_version.declare").order_by("pk")
    assert [(event.actor, event.after["accepted_proposed_type"]) for event in events] == [
        (cast.steward, before[name]) for name in ("age", "income", "member")
    ]
    assert all(event.before["column"]["type_proposed"] is True for event in events)
    assert all("type_proposed" not in event.after["column"] for event in events)
    with pytest.raises(ValidationError, match="no type of survey@v1 is proposed"):
        dataset_schema_types_accept(actor=cast.steward, name="survey")


def test_the_steward_may_declare_another_type_that_the_stored_values_fit(cast, data_dir, tmp_path):
    register(cast, table(tmp_path, "a.csv"))
    with pytest.raises(ValidationError) as refused:
        dataset_schema_declare_columns(
            actor=cast.steward, name="survey", declarations={"age": {"type": "float"}, "member": {"type": "integer"}}
        )
    assert refused.value.extra["column"] == "member"
    assert "cannot be declared integer" in refused.value.message and "'no' is not a number" in refused.value.message
    stored = DatasetVersion.objects.get()
    assert proposed_type_columns(stored.schema) == ["age", "income", "member"]  # nothing written
    dataset_schema_declare_columns(
        actor=cast.steward,
        name="survey",
        declarations={"age": {"type": "float"}, "income": {"type": "categorical"}},
        accept_proposed_types=True,
    )
    stored.refresh_from_db()
    assert [(c["type"], "type_proposed" in c) for c in stored.schema["columns"]] == [
        ("float", False),
        ("categorical", False),
        ("categorical", False),
    ]


def test_a_given_schema_declares_its_types_outright(cast, data_dir, tmp_path):
    schema = {
        "columns": [
            {"name": "age", "type": "integer", "type_proposed": True},
            {"name": "income", "type": "float"},
            {"name": "member", "type": "categorical"},
        ]
    }
    version = register(cast, table(tmp_path, "a.csv"), schema=schema)
    assert proposed_type_columns(version.schema) == []
    assert version.schema["columns"][1]["type"] == "float"


def test_the_cli_prints_the_declare_command_and_it_works(cast, data_dir, tmp_path):
    path = table(tmp_path, "a.csv")
    run = synthgate("dataset", "register", path, "--name", "survey", "--epsilon-cap", "5", "--delta-cap", "0",
                    "--as", "steward")  # fmt: skip
    assert run.code == 0, run.message
    assert "integer (proposed)" in run.stdout
    command = next(line.strip() for line in run.stdout.splitlines() if "--accept-proposed-types" in line)
    assert command == "synthgate dataset declare survey --accept-proposed-types"
    shown = synthgate("dataset", "show", "survey", "--as", "requester")
    assert shown.code == 0 and "undeclared" in shown.stdout and "integer" not in shown.stdout
    declared = synthgate(*command.split()[1:], "--as", "steward")
    assert declared.code == 0, declared.message
    assert proposed_type_columns(DatasetVersion.objects.get().schema) == []
    assert "integer" in synthgate("dataset", "show", "survey", "--as", "requester").stdout


def test_the_api_and_the_schema_step_declare_the_proposed_types(cast, data_dir, tmp_path, client):
    register(cast, table(tmp_path, "a.csv"))
    client.force_login(cast.requester)
    assert "integer" not in client.get("/datasets/survey/").content.decode()
    client.force_login(cast.steward)
    page = client.get("/datasets/survey/schema/").content.decode()
    assert "Declare the proposed types as shown" in page and "proposed from the rows" in page
    posted = client.post("/datasets/survey/schema/", {"action": "accept_types"})
    assert posted.status_code == 302
    assert proposed_type_columns(DatasetVersion.objects.get().schema) == []
    assert "Declare the proposed types as shown" not in client.get("/datasets/survey/schema/").content.decode()
    register(cast, table(tmp_path, "b.csv", extra="2.5,1070,yes"))
    api = APIClient()
    api.force_authenticate(cast.steward)
    answer = api.post("/api/datasets/survey/declare/", {"accept_proposed_types": True}, format="json")
    assert answer.status_code == 200, answer.content
    assert [column["type"] for column in answer.json()["columns"]] == ["float", "integer", "categorical"]
    assert proposed_type_columns(DatasetVersion.objects.get(number=2).schema) == []
