"""The `synthgate` management commands, run through call_command: tables by default, JSON
with --json, exit status 2 and a message for user mistakes, and the channel `cli` in the
audit log for everything done through them.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from core.context import current_channel
from governance.models import AuditEvent, DataRequest, Purpose, RequestState, Role
from tests.database import owner_without_append_only_triggers
from tests.governance.factories import PurposeFactory, UserFactory, dataset_register_adult, request_file


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    message: str = ""

    def json(self):
        return json.loads(self.stdout)

    def error(self):
        return json.loads(self.stderr)


def synthgate(command: str, *args) -> Run:
    """Run one command as the console would, returning its exit status and output."""
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(command, *[str(arg) for arg in args], stdout=stdout, stderr=stderr)
    except CommandError as error:
        return Run(error.returncode, stdout.getvalue(), stderr.getvalue(), str(error))
    return Run(0, stdout.getvalue(), stderr.getvalue())


@pytest.fixture
def adult(cast, adult_schema):
    return dataset_register_adult(steward=cast.steward, schema=adult_schema)


@pytest.fixture
def research(db):
    return PurposeFactory()


@pytest.fixture
def submitted(cast, adult, research):
    return request_file(requester=cast.requester, epsilon="1.25", delta="1e-6")


def write_schema(tmp_path: Path, schema: dict) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    return path


# --- init and users ---------------------------------------------------------------------


@pytest.mark.django_db
def test_init_creates_roles_and_default_purposes_and_a_second_run_changes_nothing():
    first = synthgate("init", "--json")
    second = synthgate("init", "--json")

    assert first.code == 0 and second.code == 0
    assert set(first.json()["roles"]) == set(Role.values)
    assert first.json()["purposes_created"] == ["internal-analytics", "external-research", "software-testing"]
    assert second.json()["purposes_created"] == []
    assert second.json()["migrations_applied"] == 0
    assert Purpose.objects.count() == 3
    assert set(AuditEvent.objects.filter(action="purpose.create").values_list("channel", "actor_name")) == {
        ("cli", "system")
    }


@pytest.mark.django_db
def test_init_prints_a_table_of_purposes():
    result = synthgate("init")

    assert result.code == 0
    assert "external-research   created" in result.stdout
    assert "exists" in synthgate("init").stdout


@pytest.mark.django_db
def test_user_create_prints_the_api_token_and_is_logged_through_the_cli_channel():
    synthgate("init")

    result = synthgate("user", "create", "alice", "--role", "requester", "--role", "approver", "--json")

    data = result.json()
    assert result.code == 0
    assert data["username"] == "alice" and data["roles"] == ["approver", "requester"]
    assert len(data["token"]) == 67 and data["token"].startswith("sg_")
    assert data["token_expires_at"] is not None
    event = AuditEvent.objects.get(action="user.create")
    assert (event.channel, event.actor_name, event.after["username"]) == ("cli", "system", "alice")
    assert "API token  " in synthgate("user", "create", "bob", "--role", "auditor").stdout


@pytest.mark.django_db
def test_user_create_as_a_user_records_that_user_as_the_actor(cast):
    synthgate("user", "create", "carol", "--role", "auditor", "--as", "steward")

    assert AuditEvent.objects.get(action="user.create", object_type="user", after__username="carol").actor_name == (
        "steward"
    )


@pytest.mark.django_db
def test_user_create_refuses_an_unknown_role_and_an_existing_name(cast):
    unknown = synthgate("user", "create", "dave", "--role", "owner")
    existing = synthgate("user", "create", "steward", "--role", "auditor", "--json")

    assert unknown.code == 2 and "invalid choice: 'owner'" in unknown.message
    assert existing.code == 2
    assert existing.error() == {"code": "conflict", "message": "A user named 'steward' already exists.", "extra": {}}


@pytest.mark.django_db
def test_user_list_shows_every_user_with_roles(cast):
    result = synthgate("user", "list", "--as", "auditor", "--json")

    rows = {row["username"]: row["roles"] for row in result.json()}
    assert rows["approver"] == ["approver"] and rows["steward"] == ["steward"]
    assert "second_approver  approver" in synthgate("user", "list", "--as", "auditor").stdout


@pytest.mark.django_db
def test_an_unknown_acting_user_exits_2_with_a_message(cast):
    result = synthgate("dataset", "list", "--as", "mallory")

    assert result.code == 2
    assert "error: No user named 'mallory' (given with --as)." in result.stderr


@pytest.mark.django_db
def test_an_unknown_acting_user_in_json_mode_prints_the_error_as_json(cast):
    result = synthgate("purpose", "list", "--as", "mallory", "--json")

    assert result.code == 2 and result.stdout == ""
    assert result.error() == {
        "code": "unknown_user",
        "message": "No user named 'mallory' (given with --as).",
        "extra": {"username": "mallory"},
    }


@pytest.mark.django_db
def test_commands_on_data_require_an_acting_user_and_say_where_it_can_come_from(cast):
    result = synthgate("dataset", "list")

    assert result.code == 2
    assert "give --as USER, set SYNTHGATE_USER=USER, or write user = " in result.message


@pytest.mark.django_db
def test_the_acting_user_comes_from_synthgate_user_or_the_config_file_when_as_is_absent(cast, settings, tmp_path):
    settings.SYNTHGATE_USER = "auditor"
    assert synthgate("purpose", "list", "--json").code == 0
    settings.SYNTHGATE_USER = "mallory"
    assert synthgate("purpose", "list").message == "No user named 'mallory' (from SYNTHGATE_USER)."

    settings.SYNTHGATE_USER = None
    config = tmp_path / "config.toml"
    config.write_text('user = "auditor"\n', encoding="utf-8")
    settings.SYNTHGATE_CLI_CONFIG = str(config)
    assert synthgate("dataset", "list", "--json").code == 0
    config.write_text("user = 3\n", encoding="utf-8")
    assert synthgate("dataset", "list").message == f'user in {config} must be a string, e.g. user = "alice".'


@pytest.mark.django_db
def test_a_missing_action_names_the_possible_actions(cast):
    result = synthgate("request")

    assert result.code == 2
    assert "{create,outlook,submit,show,list,approve,reject,withdraw}" in result.message


@pytest.mark.django_db
def test_the_channel_is_cli_only_while_a_command_runs(cast):
    synthgate("user", "list", "--as", "steward")

    assert current_channel() == "api"


# --- datasets --------------------------------------------------------------------------


@pytest.mark.django_db
def test_dataset_register_prints_the_stored_version(cast, adult_csv, adult_schema, tmp_path):
    result = synthgate(
        "dataset",
        "register",
        adult_csv,
        "--name",
        "adult",
        "--schema",
        write_schema(tmp_path, adult_schema),
        "--epsilon-cap",
        "8",
        "--delta-cap",
        "1e-5",
        "--as",
        "steward",
    )

    assert result.code == 0
    assert "Stored: adult version 1 (source)" in result.stdout
    assert "rows                 2000" in result.stdout
    event = AuditEvent.objects.get(action="dataset.register")
    assert (event.actor_name, event.channel) == ("steward", "cli")


@pytest.mark.django_db
def test_dataset_register_json_gives_hash_counts_and_dropped_identifiers(cast, adult_csv, adult_schema, tmp_path):
    adult_schema["columns"][2]["role"] = "identifier"  # fnlwgt

    result = synthgate(
        "dataset",
        "register",
        adult_csv,
        "--name",
        "adult",
        "--schema",
        write_schema(tmp_path, adult_schema),
        "--epsilon-cap",
        "8",
        "--delta-cap",
        "0.00001",
        "--sensitivity",
        "restricted",
        "--as",
        "steward",
        "--json",
    )

    data = result.json()
    assert (data["dataset"], data["number"], data["kind"], data["created"]) == ("adult", 1, "source", True)
    assert (data["n_rows"], data["n_columns"], data["dropped_columns"]) == (2000, 14, ["fnlwgt"])
    assert len(data["content_hash"]) == 64 and data["schema_inferred"] is False


@pytest.mark.django_db
def test_dataset_register_without_a_schema_prints_the_inferred_schema(cast, adult_csv):
    result = synthgate(
        "dataset", "register", adult_csv, "--name", "adult", "--epsilon-cap", "8", "--delta-cap", "0", "--as", "steward"
    )

    assert result.code == 0
    assert "this schema was inferred" in result.stdout
    assert "age             integer (proposed)      other" in result.stdout
    assert "workclass       categorical (proposed)  other" in result.stdout
    assert "synthgate dataset declare adult --accept-proposed-types" in result.stdout


@pytest.mark.django_db
def test_registering_identical_content_again_says_it_is_already_stored(cast, adult_csv):
    args = (
        "dataset",
        "register",
        adult_csv,
        "--name",
        "adult",
        "--epsilon-cap",
        "8",
        "--delta-cap",
        "0",
        "--as",
        "steward",
    )
    synthgate(*args)

    again = synthgate(*args)

    assert again.code == 0 and "Already stored (identical content): adult version 1" in again.stdout


@pytest.mark.django_db
def test_a_malformed_csv_exits_2_naming_the_line(cast, tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n7,8,9\n")

    result = synthgate(
        "dataset", "register", path, "--name", "broken", "--epsilon-cap", "1", "--delta-cap", "0", "--as", "steward"
    )

    assert result.code == 2
    assert "error: Line 3 has 2 fields; the header has 3." in result.stderr
    assert '"line": 3' in result.stderr


@pytest.mark.django_db
def test_a_malformed_csv_in_json_mode_gives_the_code_and_line(cast, tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("a,b\n1,2\nx,y,z\n")

    result = synthgate(
        "dataset",
        "register",
        path,
        "--name",
        "broken",
        "--epsilon-cap",
        "1",
        "--delta-cap",
        "0",
        "--as",
        "steward",
        "--json",
    )

    assert result.code == 2
    assert result.error()["code"] == "invalid_dataset"
    assert result.error()["extra"] == {"line": 3, "fields": 3, "expected": 2}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("epsilon_cap", "message"),
    [
        ("lots", "epsilon_cap must be a number; got 'lots'."),
        ("0", "epsilon_cap must be greater than 0; got 0."),
        ("nan", "epsilon_cap must be a finite number; got 'nan'."),
    ],
)
def test_a_bad_epsilon_cap_exits_2(cast, adult_csv, epsilon_cap, message):
    result = synthgate(
        "dataset",
        "register",
        adult_csv,
        "--name",
        "adult",
        "--epsilon-cap",
        epsilon_cap,
        "--delta-cap",
        "0",
        "--as",
        "steward",
    )

    assert result.code == 2 and result.message == message
    assert not AuditEvent.objects.filter(action="dataset.register").exists()


@pytest.mark.django_db
def test_only_a_steward_can_register(cast, adult_csv):
    result = synthgate(
        "dataset",
        "register",
        adult_csv,
        "--name",
        "adult",
        "--epsilon-cap",
        "1",
        "--delta-cap",
        "0",
        "--as",
        "requester",
        "--json",
    )

    assert result.code == 2
    assert result.error() == {
        "code": "permission_denied",
        "message": "Only a data steward can register datasets.",
        "extra": {},
    }


@pytest.mark.django_db
def test_a_missing_file_or_unreadable_schema_exits_2(cast, adult_csv, tmp_path):
    missing = synthgate(
        "dataset",
        "register",
        tmp_path / "nope.csv",
        "--name",
        "adult",
        "--epsilon-cap",
        "1",
        "--delta-cap",
        "0",
        "--as",
        "steward",
    )
    bad_schema = tmp_path / "schema.json"
    bad_schema.write_text("{not json")
    broken = synthgate(
        "dataset",
        "register",
        adult_csv,
        "--name",
        "adult",
        "--schema",
        bad_schema,
        "--epsilon-cap",
        "1",
        "--delta-cap",
        "0",
        "--as",
        "steward",
        "--json",
    )

    assert missing.code == 2 and missing.message.startswith("No such file:")
    assert broken.code == 2 and broken.error()["code"] == "invalid_schema"


@pytest.mark.django_db
def test_dataset_list_and_show(cast, adult):
    listed = synthgate("dataset", "list", "--as", "requester", "--json")
    shown = synthgate("dataset", "show", "adult", "--as", "auditor", "--json").json()

    assert [(row["name"], row["epsilon_cap"], row["delta_cap"], row["versions"]) for row in listed.json()] == [
        ("adult", "10", "0.0001", 1)
    ]
    assert (shown["epsilon_cap"], shown["delta_cap"], shown["owner"]) == ("10", "0.0001", "steward")
    version = shown["versions"][0]
    assert (version["number"], version["n_rows"], version["n_columns"], version["content_hash"]) == (
        1,
        2000,
        15,
        adult.content_hash,
    )
    assert version["dropped_columns"] == []
    columns = {column["name"]: (column["type"], column["role"]) for column in shown["schema"]["columns"]}
    assert columns["age"] == ("integer", "quasi_identifier") and columns["income"] == ("categorical", "label")


@pytest.mark.django_db
def test_dataset_show_prints_caps_versions_and_a_schema_table(cast, adult):
    result = synthgate("dataset", "show", "adult", "--as", "steward")

    assert "epsilon cap  10" in result.stdout and "delta cap    0.0001" in result.stdout
    assert adult.content_hash in result.stdout
    assert "occupation      categorical  sensitive" in result.stdout


@pytest.mark.django_db
def test_an_unknown_dataset_exits_2(cast):
    result = synthgate("dataset", "show", "nope", "--as", "steward", "--json")

    assert result.code == 2
    assert result.error() == {"code": "not_found", "message": "No dataset named 'nope'.", "extra": {}}


# --- purposes --------------------------------------------------------------------------


@pytest.mark.django_db
def test_purpose_list_and_show(cast):
    synthgate("init")

    listed = synthgate("purpose", "list", "--as", "requester", "--json").json()
    shown = synthgate("purpose", "show", "external-research", "--as", "requester", "--json").json()

    assert [row["name"] for row in listed] == ["external-research", "internal-analytics", "software-testing"]
    assert (shown["max_epsilon"], shown["approvals_required"], shown["allowed_recipients"]) == (
        "1",
        2,
        ["external", "internal"],
    )
    assert "membership_domias_auc" in shown["audit_thresholds"]
    text = synthgate("purpose", "show", "external-research", "--as", "requester").stdout
    assert "approvals required       2" in text and "membership_domias_auc" in text


@pytest.mark.django_db
def test_an_unknown_purpose_exits_2(cast):
    result = synthgate("purpose", "show", "marketing", "--as", "requester")

    assert result.code == 2 and result.message == "No purpose named 'marketing'."


# --- requests --------------------------------------------------------------------------


@pytest.mark.django_db
def test_request_create_submits_and_prints_the_request(cast, adult, research):
    result = synthgate(
        "request",
        "create",
        "--dataset",
        "adult",
        "--purpose",
        "research",
        "--epsilon",
        "0.75",
        "--delta",
        "1e-7",
        "--rows",
        "500",
        "--generator",
        "mst",
        "--param",
        "max_bins=16",
        "--rebalance",
        "income=>50K:0.5",
        "--recipient-kind",
        "external",
        "--recipient",
        "Uni",
        "--justification",
        "study",
        "--seed",
        "7",
        "--as",
        "requester",
        "--json",
    )

    data = result.json()
    assert result.code == 0
    assert (data["state"], data["epsilon"], data["delta"], data["n_rows"]) == ("submitted", "0.75", "0.0000001", 500)
    assert data["generator_params"] == {"max_bins": 16}
    assert data["rebalance"] == {"column": "income", "shares": {">50K": 0.5}}
    assert (data["recipient_kind"], data["seed"]) == ("external", 7)
    assert [event["action"] for event in data["events"]] == ["request.create", "request.submit"]
    assert {event["channel"] for event in data["events"]} == {"cli"}


@pytest.mark.django_db
def test_a_draft_is_kept_until_submitted(cast, adult, research):
    draft = synthgate(
        "request",
        "create",
        "--dataset",
        "adult",
        "--purpose",
        "research",
        "--epsilon",
        "1",
        "--delta",
        "1e-6",
        "--rows",
        "200",
        "--draft",
        "--as",
        "requester",
        "--json",
    ).json()

    submitted = synthgate("request", "submit", draft["id"], "--as", "requester")

    assert draft["state"] == "draft"
    assert submitted.code == 0 and f"Request #{draft['id']} submitted." in submitted.stdout
    assert DataRequest.objects.get(pk=draft["id"]).state == RequestState.SUBMITTED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--dataset", "nope", "No dataset named 'nope'."),
        ("--purpose", "marketing", "No purpose named 'marketing'."),
        ("--epsilon", "a lot", "epsilon must be a number; got 'a lot'."),
        ("--epsilon", "-1", "epsilon must be greater than 0; got -1."),
        ("--epsilon", "9", "ε = 9 is more than purpose “research” allows (at most ε = 5 per release)."),
        ("--rows", "0", "rows must be between 1 and 10,000,000; got 0."),
        ("--generator", "magic", "unknown generator 'magic'; choose one of ['copula', 'dp-tvae', 'mst']"),
    ],
)
def test_request_create_refuses_bad_input_with_exit_2(cast, adult, research, option, value, message):
    values = {
        "--dataset": "adult",
        "--purpose": "research",
        "--epsilon": "1",
        "--delta": "1e-6",
        "--rows": "500",
        "--generator": "mst",
        option: value,
    }

    result = synthgate("request", "create", *[part for pair in values.items() for part in pair], "--as", "requester")

    assert result.code == 2
    assert result.message == message
    assert f"error: {message}" in result.stderr
    assert not DataRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "value"),
    [("--param", "max_bins"), ("--rebalance", "income>50K:0.5"), ("--rebalance", "income=>50K"), ("--seed", "soon")],
)
def test_malformed_request_options_exit_2(cast, adult, research, option, value):
    result = synthgate(
        "request",
        "create",
        "--dataset",
        "adult",
        "--purpose",
        "research",
        "--epsilon",
        "1",
        "--delta",
        "1e-6",
        "--rows",
        "10",
        option,
        value,
        "--as",
        "requester",
    )

    assert result.code == 2 and option in result.message


@pytest.mark.django_db
def test_an_unknown_generator_parameter_exits_2(cast, adult, research):
    result = synthgate(
        "request",
        "create",
        "--dataset",
        "adult",
        "--purpose",
        "research",
        "--epsilon",
        "1",
        "--delta",
        "1e-6",
        "--rows",
        "500",
        "--param",
        "layers=3",
        "--as",
        "requester",
        "--json",
    )

    assert result.code == 2
    assert result.error()["extra"] == {"field": "generator"}
    assert "unknown parameter(s) ['layers']" in result.error()["message"]


@pytest.mark.django_db
def test_two_distinct_approvers_approve_and_the_budget_is_reserved(cast, submitted):
    first = synthgate("request", "approve", submitted.pk, "--as", "approver", "--reason", "fine")
    second = synthgate("request", "approve", submitted.pk, "--as", "second_approver", "--json")

    assert "(1 of 2 required); it stays submitted." in first.stdout
    data = second.json()
    assert data["state"] == "approved"
    assert [(row["approver"], row["decision"]) for row in data["approvals"]] == [
        ("approver", "approve"),
        ("second_approver", "approve"),
    ]
    assert [event["action"] for event in data["events"]] == [
        "request.create",
        "request.submit",
        "approval.approve",
        "approval.approve",
        "budget.reserve",
        "request.approve",
    ]
    assert all(event["channel"] == "cli" for event in data["events"][2:])


@pytest.mark.django_db
def test_approving_your_own_request_exits_2(cast, adult, research):
    UserFactory(username="both", roles=[Role.REQUESTER, Role.APPROVER])
    request = request_file(requester=UserFactory(username="both"))

    result = synthgate("request", "approve", request.pk, "--as", "both", "--json")

    assert result.code == 2
    assert result.error() == {
        "code": "four_eyes",
        "extra": {},
        "message": (f"You filed request #{request.pk}; a requester can never approve their own request."),
    }


@pytest.mark.django_db
def test_a_non_approver_cannot_approve(cast, submitted):
    result = synthgate("request", "approve", submitted.pk, "--as", "steward")

    assert result.code == 2 and result.message == "Only an approver can approve requests."
    assert not submitted.approvals.exists()


@pytest.mark.django_db
def test_the_same_approver_twice_exits_2(cast, submitted):
    synthgate("request", "approve", submitted.pk, "--as", "approver")

    result = synthgate("request", "approve", submitted.pk, "--as", "approver")

    assert result.code == 2 and "a second approval must come from a different approver" in result.message


@pytest.mark.django_db
def test_a_wrong_state_action_lists_the_allowed_transitions(cast, adult, research):
    draft = request_file(requester=cast.requester, submit=False)

    result = synthgate("request", "approve", draft.pk, "--as", "approver", "--json")
    text = synthgate("request", "approve", draft.pk, "--as", "approver")

    assert result.code == 2
    assert result.error() == {
        "code": "invalid_transition",
        "message": f"Cannot approve request #{draft.pk}: it is 'draft'; allowed from 'draft': submitted, withdrawn.",
        "extra": {"state": "draft", "allowed_transitions": ["submitted", "withdrawn"]},
    }
    assert 'details: {"state": "draft", "allowed_transitions": ["submitted", "withdrawn"]}' in text.stderr


@pytest.mark.django_db
def test_reject_needs_a_reason(cast, submitted):
    missing = synthgate("request", "reject", submitted.pk, "--as", "approver")
    blank = synthgate("request", "reject", submitted.pk, "--reason", " ", "--as", "approver")
    rejected = synthgate("request", "reject", submitted.pk, "--reason", "too broad", "--as", "approver", "--json")

    assert missing.code == 2 and "--reason" in missing.message
    assert blank.code == 2 and blank.message == "A reason is required to reject a request."
    assert (rejected.json()["state"], rejected.json()["decision_reason"]) == ("rejected", "too broad")


@pytest.mark.django_db
def test_withdrawing_an_approved_request_releases_its_reservation(cast, submitted):
    synthgate("request", "approve", submitted.pk, "--as", "approver")
    synthgate("request", "approve", submitted.pk, "--as", "second_approver")

    withdrawn = synthgate("request", "withdraw", submitted.pk, "--reason", "not needed", "--as", "requester")
    budget = synthgate("budget", "show", "adult", "--as", "steward", "--json").json()

    assert withdrawn.code == 0 and f"Request #{submitted.pk} withdrawn." in withdrawn.stdout
    # ε 0.02 went on the source version's DP row estimate at registration
    assert budget["epsilon"] == {"cap": "10", "spent": "0.02", "reserved": "0", "remaining": "9.98"}
    assert [entry["kind"] for entry in budget["entries"]] == ["estimate", "reserve", "release"]


@pytest.mark.django_db
def test_only_the_requester_can_withdraw(cast, submitted):
    result = synthgate("request", "withdraw", submitted.pk, "--as", "approver")

    assert result.code == 2 and result.message == f"Only the requester can withdraw request #{submitted.pk}."


@pytest.mark.django_db
def test_request_list_shows_what_the_user_may_see(cast, submitted):
    other = request_file(requester=cast.other_requester, submit=False)

    mine = synthgate("request", "list", "--as", "requester", "--json").json()
    everything = synthgate("request", "list", "--as", "auditor", "--json").json()
    drafts = synthgate("request", "list", "--state", "draft", "--as", "auditor", "--json").json()

    assert [row["id"] for row in mine] == [submitted.pk]
    assert {row["id"] for row in everything} == {submitted.pk, other.pk}
    assert [row["id"] for row in drafts] == [other.pk]
    assert "submitted" in synthgate("request", "list", "--as", "requester").stdout


@pytest.mark.django_db
def test_request_show_of_someone_elses_request_is_not_found(cast, submitted):
    result = synthgate("request", "show", submitted.pk, "--as", "other_requester")

    assert result.code == 2 and result.message == f"No request #{submitted.pk}."


@pytest.mark.django_db
def test_request_show_prints_approvals_and_history(cast, submitted):
    synthgate("request", "approve", submitted.pk, "--as", "approver", "--reason", "looks fine")

    result = synthgate("request", "show", submitted.pk, "--as", "requester")

    assert "Approvals (1 of 2 required)" in result.stdout
    assert "approver  approve   looks fine" in result.stdout
    assert "approval.approve" in result.stdout and "request.submit" in result.stdout


# --- budget ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_budget_show_gives_exact_caps_spent_reserved_and_remaining(cast, submitted):
    synthgate("request", "approve", submitted.pk, "--as", "approver")
    synthgate("request", "approve", submitted.pk, "--as", "second_approver")

    data = synthgate("budget", "show", "adult", "--as", "requester", "--json").json()

    assert data["epsilon"] == {"cap": "10", "spent": "0.02", "reserved": "1.25", "remaining": "8.73"}
    assert data["delta"] == {"cap": "0.0001", "spent": "0", "reserved": "0.000001", "remaining": "0.000099"}
    estimate, entry = data["entries"]
    assert (estimate["kind"], estimate["request"], estimate["version"], estimate["epsilon"], estimate["delta"]) == (
        "estimate",
        None,
        1,
        "0.02",
        "0",
    )
    assert (entry["kind"], entry["request"], entry["epsilon"], entry["delta"], entry["actor"]) == (
        "reserve",
        submitted.pk,
        "1.25",
        "0.000001",
        "second_approver",
    )
    assert sum(Decimal(data["epsilon"][part]) for part in ("spent", "reserved", "remaining")) == Decimal(10)


@pytest.mark.django_db
def test_budget_show_prints_a_table_and_the_ledger(cast, adult):
    result = synthgate("budget", "show", "adult", "--as", "steward")

    assert "epsilon  10      0.02   0         9.98" in result.stdout  # the row estimate, spent at registration
    assert "delta    0.0001  0      0         0.0001" in result.stdout
    [estimate] = [line for line in result.stdout.splitlines() if " estimate " in line]
    assert estimate.split()[4:9] == ["estimate", "-", "1", "-", "0.02"]  # no request, version 1, no job


# --- audit log -------------------------------------------------------------------------


@pytest.mark.django_db
def test_log_verify_exits_0_on_an_intact_chain(cast, submitted):
    result = synthgate("log", "verify", "--as", "auditor", "--json")

    assert result.code == 0
    data = result.json()
    assert data["ok"] is True and data["first_broken_id"] is None
    assert data["events_checked"] == AuditEvent.objects.count()
    assert "audit log       intact" in synthgate("log", "verify").stdout


@pytest.mark.django_db
def test_log_list_shows_the_latest_events_oldest_first(cast, submitted):
    result = synthgate("log", "list", "--limit", "2", "--as", "auditor", "--json")

    assert [event["action"] for event in result.json()] == ["request.create", "request.submit"]
    assert "request.submit" in synthgate("log", "list", "--as", "steward").stdout


@pytest.mark.django_db
def test_log_list_is_for_stewards_and_auditors(cast):
    refused = synthgate("log", "list", "--as", "requester")
    bad_limit = synthgate("log", "list", "--limit", "0", "--as", "auditor")

    assert refused.code == 2 and refused.message == "Only stewards and auditors can read the audit log."
    assert bad_limit.code == 2 and "--limit must be at least 1" in bad_limit.message


@pytest.mark.django_db(transaction=True)
def test_a_row_edited_directly_in_the_database_makes_log_verify_fail_and_name_it(cast, submitted):
    target = AuditEvent.objects.get(action="request.submit")
    tampered_after = json.dumps({"state": "approved"})
    with owner_without_append_only_triggers(), connection.cursor() as cursor:  # an insider with the owner role
        cursor.execute("UPDATE governance_auditevent SET after = %s WHERE id = %s", [tampered_after, target.pk])

    text = synthgate("log", "verify")
    as_json = synthgate("log", "verify", "--as", "auditor", "--json")

    assert text.code == 1 and as_json.code == 1
    reason = f"event {target.pk} (request.submit) was altered: its content does not match its hash"
    assert f"first broken event         {target.pk}" in text.stdout
    assert f"error: The audit log's chain is broken at event {target.pk}: {reason}" in text.stderr
    assert as_json.json()["first_broken_id"] == target.pk and as_json.json()["reason"] == reason
    assert as_json.error()["code"] == "chain_broken"


@pytest.mark.django_db
def test_call_command_also_takes_options_as_keyword_arguments(cast, adult):
    stdout = io.StringIO()

    call_command("dataset", "show", "adult", as_user="auditor", json=True, stdout=stdout)

    assert json.loads(stdout.getvalue())["name"] == "adult"


@pytest.mark.django_db
def test_every_command_prints_json_with_json(cast, adult_csv, research):
    commands = [
        ("init",),
        ("user", "list", "--as", "steward"),
        (
            "dataset",
            "register",
            adult_csv,
            "--name",
            "adult",
            "--epsilon-cap",
            "5",
            "--delta-cap",
            "0",
            "--as",
            "steward",
        ),
        ("dataset", "declare", "adult", "--accept-proposed-types", "--as", "steward"),
        ("dataset", "list", "--as", "steward"),
        ("dataset", "show", "adult", "--as", "steward"),
        ("purpose", "list", "--as", "steward"),
        ("purpose", "show", "research", "--as", "steward"),
        (
            "request",
            "create",
            "--dataset",
            "adult",
            "--purpose",
            "research",
            "--epsilon",
            "1",
            "--delta",
            "1e-6",
            "--rows",
            "500",
            "--draft",
            "--as",
            "requester",
        ),
    ]
    outputs = [synthgate(*command, "--json") for command in commands]
    request_id = outputs[-1].json()["id"]
    for command in [("request", "submit"), ("request", "show"), ("request", "list"), ("request", "withdraw")]:
        outputs.append(
            synthgate(*command, *([] if command[1] == "list" else [request_id]), "--as", "requester", "--json")
        )
    outputs += [
        synthgate("budget", "show", "adult", "--as", "steward", "--json"),
        synthgate("log", "verify", "--json"),
        synthgate("log", "list", "--as", "steward", "--json"),
    ]

    assert [output.code for output in outputs] == [0] * len(outputs)
    parsed = [output.json() for output in outputs]
    assert parsed[9]["state"] == "submitted" and parsed[11][0]["id"] == request_id
    assert parsed[12]["state"] == "withdrawn" and parsed[13]["epsilon"]["cap"] == "5"
    assert [column["type"] for column in parsed[3]["columns"]][:2] == ["integer", "categorical"]


@pytest.mark.django_db
def test_a_database_that_was_never_initialised_asks_for_init(cast, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("governance.0099", False)])

    result = synthgate("dataset", "list", "--as", "steward", "--json")

    assert result.code == 2
    assert result.error()["code"] == "not_initialised"
    assert "run `synthgate init` first" in result.error()["message"]
