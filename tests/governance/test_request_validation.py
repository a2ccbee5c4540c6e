"""Nothing is reserved or spent on a request that cannot run: rebalancing names only the label's
declared categories with shares that sum right, generator parameters are typed and bounded, and
every check runs again at approval against the declarations of that moment.

Also: a steward declares a column's role or public domain (service, CLI, dashboard), logged.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from core.errors import ConflictError, ValidationError
from governance.models import AuditEvent, DataRequest, RequestState
from governance.services import access_request_approve, dataset_schema_declare
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_entries, request_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(cast, settings, tmp_path, adult_schema):
    """adult with the bundled schema (label `income`, declared categories <=50K and >50K)."""
    settings.DATA_DIR = tmp_path / "data"
    dataset_register_adult(steward=cast.steward, schema=adult_schema)
    PurposeFactory()
    return cast


def refused(cast, **overrides) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        request_file(requester=cast.requester, **overrides)
    assert not DataRequest.objects.exists()
    return caught.value


# --- label and protected domains (issue 11.7) --------------------------------------------------


@pytest.mark.parametrize(("column", "role"), [("income", "label"), ("race", "protected")])
def test_a_label_or_protected_column_without_a_declared_domain_is_refused_at_filing(world, column, role):
    dataset_schema_declare(actor=world.steward, name="adult", column=column, changes={"categories": None})

    error = refused(world)

    assert f"{role} column '{column}' has no declared categories" in error.message
    assert f"synthgate dataset declare NAME --column {column} --categories" in error.message
    assert error.extra["field"] == "dataset"


def test_a_protected_domain_withdrawn_after_filing_is_refused_at_approval(world):
    request = request_file(requester=world.requester)
    dataset_schema_declare(actor=world.steward, name="adult", column="sex", changes={"categories": None})

    with pytest.raises(ValidationError, match="protected column 'sex' has no declared categories"):
        access_request_approve(actor=world.approver, request_id=request.pk)
    assert not request_entries().exists()


# --- rebalancing against declared categories ---------------------------------------------------


def test_a_class_the_label_does_not_declare_is_refused_saying_how_to_declare_it(world):
    error = refused(world, rebalance={"column": "income", "shares": {"maybe": 0.5}})

    assert error.message.startswith("'maybe' is not a declared category of 'income' (declared: <=50K, >50K).")
    assert "synthgate dataset declare DATASET --column income --categories" in error.message
    assert error.extra["declared_categories"] == ["<=50K", ">50K"]


def test_a_label_without_declared_categories_cannot_be_rebalanced(world):
    dataset_schema_declare(actor=world.steward, name="adult", column="income", changes={"categories": None})

    error = refused(world, rebalance={"column": "income", "shares": {">50K": 0.5}})

    assert "whose categories are not declared (public)" in error.message


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({">50K": 0.5, "<=50K": 0.4}, "must sum to 1; they sum to 0.9"),
        ({">50K": 0.5, "<=50K": 0.6}, "together at most 1"),
        ({">50K": 0}, "must lie in (0, 1)"),
    ],
)
def test_shares_must_sum_right(world, shares, message):
    assert message in refused(world, rebalance={"column": "income", "shares": shares}).message


def test_shares_for_every_declared_class_summing_to_one_are_accepted(world):
    request = request_file(
        requester=world.requester, rebalance={"column": "income", "shares": {">50K": 0.5, "<=50K": 0.5}}
    )
    assert request.rebalance == {"column": "income", "shares": {">50K": 0.5, "<=50K": 0.5}}


# --- generator parameters -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"epochs": 10**9}, "parameter 'epochs' of generator 'dp-tvae' must be a whole number in [1, 1,000]"),
        ({"epochs": "abc"}, "got 'abc'"),
        ({"epochs": 2.5}, "must be a whole number"),
        ({"hidden_dims": [65536, 65536]}, "'hidden_dims' of generator 'dp-tvae' must be a list of 1 to 8 whole"),
        ({"learning_rate": float("nan")}, "'learning_rate'"),
        ({"batch_size": True}, "'batch_size'"),
    ],
)
def test_generator_parameters_are_typed_and_bounded(world, params, message):
    error = refused(world, generator="dp-tvae", generator_params=params)
    assert message in error.message and error.extra["field"] == "generator"


@pytest.mark.parametrize(
    ("generator", "params", "message"),
    [
        ("mst", {"max_bins": 1}, "parameter 'max_bins' of generator 'mst' must be a whole number in [2, 1,024]; got 1"),
        ("mst", {"max_cells": 10**6}, "'max_cells' of generator 'mst' must be a whole number in [2, 4,096]"),
        ("mst", {"max_cells": "many"}, "got 'many'"),
        ("mst", {"domain_fraction": 1.0}, "'domain_fraction' of generator 'mst' must be a number in (0, 1); got 1.0"),
        ("mst", {"selection_fraction": 0}, "'selection_fraction' of generator 'mst' must be a number in (0, 1)"),
        ("mst", {"min_bin_sigmas": -1}, "'min_bin_sigmas' of generator 'mst' must be a number in [0, 100]"),
        ("mst", {"estimation_iterations": 2.5}, "'estimation_iterations' of generator 'mst' must be a whole number"),
        ("mst", {"structure": "forest"}, "'structure' of generator 'mst' must be one of auto, tree; got 'forest'"),
        ("mst", {"label_fraction": True}, "'label_fraction' of generator 'mst' must be a number in [0, 1)"),
        ("copula", {"n_quantiles": 1}, "'n_quantiles' of generator 'copula' must be a whole number in [2, 100,000]"),
        ("copula", {"n_quantiles": "100"}, "got '100'"),
        ("copula", {"per_class": "yes"}, "'per_class' of generator 'copula' must be true or false; got 'yes'"),
        ("copula", {"min_class_rows": 0}, "'min_class_rows' of generator 'copula' must be a whole number in [1, 1,"),
    ],
)
def test_mst_and_copula_parameters_are_typed_and_bounded_at_filing(world, generator, params, message):
    PurposeFactory(name="testing", allow_non_private=True)
    error = refused(world, generator=generator, generator_params=params, purpose_name="testing")
    assert message in error.message and error.extra["field"] == "generator"
    assert not request_entries().exists()


def test_the_api_refuses_an_out_of_range_mst_or_copula_parameter_with_400_and_spends_nothing(world):
    PurposeFactory(name="testing", allow_non_private=True)
    client = APIClient()
    client.force_authenticate(world.requester)
    base = {"dataset": "adult", "purpose": "testing", "epsilon": "1", "delta": "1e-6", "n_rows": 500}
    for generator, params, message in (
        ("mst", {"max_bins": 100_000}, "parameter 'max_bins' of generator 'mst' must be a whole number in [2, 1,024]"),
        ("mst", {"structure": 3}, "parameter 'structure' of generator 'mst' must be one of auto, tree; got 3"),
        ("copula", {"per_class": "no"}, "parameter 'per_class' of generator 'copula' must be true or false"),
        ("copula", {"n_quantiles": 2.5}, "parameter 'n_quantiles' of generator 'copula' must be a whole number"),
    ):
        response = client.post("/api/requests/", {**base, "generator": generator, "generator_params": params}, "json")
        assert response.status_code == 400, response.content
        assert message in response.json()["message"] and response.json()["extra"]["field"] == "generator"
    assert not DataRequest.objects.exists() and not request_entries().exists()
    accepted = client.post(
        "/api/requests/",
        {**base, "generator": "mst", "generator_params": {"max_bins": 64, "structure": "tree"}},
        "json",
    )
    assert accepted.status_code == 201, accepted.content


def test_bounded_parameters_are_accepted(world):
    params = {"epochs": 20, "hidden_dims": [64, 64], "learning_rate": 0.001}
    assert (
        request_file(requester=world.requester, generator="dp-tvae", generator_params=params).generator_params == params
    )


# --- checked again at approval -------------------------------------------------------------------


def test_approval_checks_the_request_again_and_reserves_nothing_when_it_cannot_run(world):
    request = request_file(requester=world.requester, rebalance={"column": "income", "shares": {">50K": 0.5}})
    dataset_schema_declare(actor=world.steward, name="adult", column="income", changes={"categories": None})

    with pytest.raises(ValidationError) as caught:
        access_request_approve(actor=world.approver, request_id=request.pk)

    assert caught.value.code == "request_invalid"
    assert caught.value.message.startswith(f"Request #{request.pk} can no longer run as filed:")
    request.refresh_from_db()
    assert request.state == RequestState.SUBMITTED and not request.approvals.exists()
    assert not request_entries().exists()


# --- API, CLI, dashboard --------------------------------------------------------------------------


def test_the_api_refuses_an_undeclared_class(world):
    client = APIClient()
    client.force_authenticate(world.requester)
    payload = {
        "dataset": "adult",
        "purpose": "research",
        "epsilon": "1",
        "delta": "1e-6",
        "n_rows": 500,
        "rebalance": {"column": "income", "shares": {"maybe": 0.5}},
    }
    response = client.post("/api/requests/", payload, format="json")

    assert response.status_code == 400
    assert response.json()["message"].startswith("'maybe' is not a declared category of 'income'")
    assert not DataRequest.objects.exists()


def test_the_cli_refuses_an_undeclared_class_and_an_unbounded_parameter(world):
    base = ["request", "create", "--dataset", "adult", "--purpose", "research", "--epsilon", "1"]
    base += ["--delta", "1e-6", "--rows", "500", "--as", "requester"]
    with pytest.raises(CommandError) as rebalance:
        call_command(*base, "--rebalance", "income=maybe:0.5", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError) as epochs:
        call_command(
            *base, "--generator", "dp-tvae", "--param", "epochs=1000000000", stdout=io.StringIO(), stderr=io.StringIO()
        )
    assert rebalance.value.returncode == 2 and "'maybe' is not a declared category" in str(rebalance.value)
    assert epochs.value.returncode == 2 and "'epochs'" in str(epochs.value)
    assert not DataRequest.objects.exists()


def test_the_dashboard_offers_the_declared_classes_only(world, client):
    client.force_login(world.requester)
    page = client.get("/requests/new/")
    choices = [value for value, _ in page.context["form"].fields["rebalance_value"].choices]
    assert choices == ["", "<=50K", ">50K"]

    base = {"dataset": "adult", "purpose": "research", "epsilon": "1", "delta": "1e-6", "n_rows": "500"}
    base |= {"generator": "mst", "recipient_kind": "internal"}
    response = client.post(
        "/requests/new/", {**base, "rebalance_column": "income", "rebalance_value": "maybe", "rebalance_share": "0.5"}
    )
    assert response.status_code == 400 and response.context["form"].errors["rebalance_value"]
    assert not DataRequest.objects.exists()


# --- declaring a column --------------------------------------------------------------------------


def test_a_declaration_is_logged_with_before_and_after(world):
    result = dataset_schema_declare(
        actor=world.steward,
        name="adult",
        column="relationship",
        changes={"categories": ["Husband", "Not-in-family", "Other-relative", "Own-child", "Unmarried", "Wife"]},
    )

    event = AuditEvent.objects.get(action="dataset_version.declare")
    assert "categories" not in event.before["column"]
    assert event.after["column"]["categories"][-1] == "Wife"
    assert result.warnings == [
        "Column 'relationship': the declared categories are exactly the 6 present in the data; this looks read "
        "from the data; declared domains must be public knowledge."
    ]


@pytest.mark.parametrize(
    ("column", "changes", "message"),
    [
        ("sex", {"categories": ["Female"]}, "holds values outside the declared categories: Male"),
        ("age", {"min": 50, "max": 20}, "min is greater than max"),
        ("age", {"role": "identifier"}, "cannot become an identifier"),
        ("age", {"step": 0.5}, "step is only allowed on float columns"),
        ("nope", {"role": "other"}, "has no column 'nope'"),
    ],
)
def test_a_bad_declaration_is_refused_and_changes_nothing(world, column, changes, message):
    with pytest.raises(ValidationError) as caught:
        dataset_schema_declare(actor=world.steward, name="adult", column=column, changes=changes)
    assert message in caught.value.message
    assert not AuditEvent.objects.filter(action="dataset_version.declare").exists()


def test_a_declaration_waits_for_jobs_in_flight(world):
    request = request_file(requester=world.requester)
    DataRequest.objects.filter(pk=request.pk).update(state=RequestState.APPROVED)
    with pytest.raises(ConflictError, match="approved or generating"):
        dataset_schema_declare(actor=world.steward, name="adult", column="age", changes={"role": "other"})


def test_the_cli_declares_a_column(world):
    stdout = io.StringIO()
    call_command(
        "dataset", "declare", "adult", "--column", "hours-per-week", "--min", "0", "--max", "168",
        "--nullable", "no", "--source", "hours in a week", "--as", "steward", "--json", stdout=stdout,
    )  # fmt: skip
    column = json.loads(stdout.getvalue())["column"]
    assert (column["min"], column["max"], column["nullable"], column["domain_source"]) == (
        0,
        168,
        False,
        "hours in a week",
    )


def test_the_dashboard_declares_a_column_and_shows_the_error_at_its_field(world, client):
    client.force_login(world.steward)
    page = client.get("/datasets/adult/")
    assert page.context["declare_form"] is not None

    bad = client.post("/datasets/adult/declare/", {"column": "age", "minimum": "50", "maximum": "20"})
    good = client.post("/datasets/adult/declare/", {"column": "race", "role": "quasi_identifier"})

    assert bad.status_code == 400 and "min is greater than max" in bad.content.decode()
    assert good.status_code == 302
    event = AuditEvent.objects.get(action="dataset_version.declare")
    assert event.after["column"]["role"] == "quasi_identifier" and event.channel == "web"


def test_filing_names_every_mistake_at_once_and_writes_nothing(world):
    error = refused(
        world,
        epsilon="7",
        delta="2",
        n_rows="lots",
        rebalance={"column": "income", "shares": {"middle": 0.5}},
        recipient_kind="public",
    )

    assert [item["field"] for item in error.extra["errors"]] == [
        "epsilon",
        "delta",
        "n_rows",
        "recipient_kind",
        "rebalance",
    ]
    assert "'middle' is not a declared category of 'income'" in error.message
    assert error.extra["field"] == "epsilon"
    assert not AuditEvent.objects.filter(action="request.create").exists()


def test_the_fields_check_files_nothing_and_passes_good_fields(world):
    from governance.services import access_request_fields_check

    access_request_fields_check(dataset_name="adult", purpose_name="research", epsilon="1", delta="1e-6", n_rows=500)
    with pytest.raises(ValidationError) as caught:
        access_request_fields_check(dataset_name="adult", purpose_name="research", epsilon="0", delta="1", n_rows=0)

    assert [item["field"] for item in caught.value.extra["errors"]] == ["epsilon", "delta", "n_rows"]
    assert not DataRequest.objects.exists()
