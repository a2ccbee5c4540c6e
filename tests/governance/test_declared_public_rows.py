"""A row count the steward declares public (a census table whose count is published): recorded
with the version, used exactly, and charged nothing; a declaration that is not the table's count
is refused at registration with the reason and nothing written."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import ValidationError
from governance.models import AuditEvent, BudgetEntry, Dataset, DatasetVersion, EntryKind
from governance.services import audit_log_verify, budget_balance, version_row_estimate
from synth_engine.generators.mst import MSTGenerator
from synth_engine.privacy.row_count import training_rows
from tests.governance.factories import FIXTURES, PurposeFactory, dataset_register_adult, request_file

pytestmark = pytest.mark.django_db


def register(cast, adult_schema, declared_rows):
    from governance.services import dataset_register

    path = FIXTURES / "adult_2000.csv"
    return dataset_register(
        actor=cast.steward,
        name="census",
        path=path,
        filename=path.name,
        epsilon_cap="10",
        delta_cap="1e-4",
        schema=adult_schema,
        declared_rows=declared_rows,
    ).version


def test_a_declared_count_is_used_exactly_and_charges_no_estimate(cast, adult_schema, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    purpose = PurposeFactory(name="research", approvals_required=1)

    version = register(cast, adult_schema, "2000")

    assert (version.rows_declared, version.public_rows, version.n_rows) == (True, 2000, 2000)
    assert not BudgetEntry.objects.filter(kind=EntryKind.ESTIMATE).exists()
    assert budget_balance(dataset=version.dataset).epsilon_spent == 0
    event = AuditEvent.objects.get(action="dataset_version.create", object_id=str(version.pk))
    assert event.after["declared_rows"] == 2000
    assert audit_log_verify().ok
    estimate = version_row_estimate(version=version, holdout_fraction=purpose.holdout_fraction)
    assert estimate.rows == training_rows(2000, float(purpose.holdout_fraction)) and estimate.epsilon == 0.0
    assert "declared public" in estimate.source

    # filing decides on the exact, declared count, and filing spends nothing on the size
    refusal = MSTGenerator().budget_refusal(version.schema, 0.05, 1e-6, estimate)
    with pytest.raises(ValidationError) as caught:
        request_file(requester=cast.requester, dataset_name="census", epsilon="0.05", delta="1e-6")
    assert Decimal(caught.value.extra["minimum_epsilon"]) >= Decimal(repr(refusal.minimum_epsilon))
    assert Decimal(caught.value.extra["minimum_epsilon"]) - Decimal("0.01") < Decimal(repr(refusal.minimum_epsilon))
    request_file(requester=cast.requester, dataset_name="census", epsilon="1", delta="1e-6")
    assert not BudgetEntry.objects.exists()


@pytest.mark.parametrize("declared", ["1999", "2001", "0", "many"])
def test_a_declaration_that_is_not_the_count_is_refused_and_nothing_is_written(
    cast, adult_schema, settings, tmp_path, declared
):
    settings.DATA_DIR = tmp_path
    before = (Dataset.objects.count(), DatasetVersion.objects.count(), BudgetEntry.objects.count())

    with pytest.raises(ValidationError) as caught:
        register(cast, adult_schema, declared)

    assert caught.value.extra["field"] == "declared_rows"
    if declared.isdigit() and int(declared) > 0:
        assert f"The table has 2,000 rows, not the {int(declared):,} declared public" in caught.value.message
    else:
        assert "must be a positive whole number" in caught.value.message
    assert (Dataset.objects.count(), DatasetVersion.objects.count(), BudgetEntry.objects.count()) == before
    assert not any(path.is_file() for path in tmp_path.rglob("*"))


def test_without_a_declaration_the_estimate_is_charged_as_before(cast, adult_schema, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    version = dataset_register_adult(steward=cast.steward, schema=adult_schema)
    assert not version.rows_declared
    assert BudgetEntry.objects.get(kind=EntryKind.ESTIMATE).version == version


def test_the_cli_and_the_api_take_the_declaration(cast, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    from tests.governance.test_cli import synthgate

    settings.DATA_DIR = tmp_path
    path = FIXTURES / "adult_2000.csv"
    refused = synthgate(
        "dataset", "register", path, "--name", "census", "--epsilon-cap", "8", "--delta-cap", "0",
        "--declared-rows", "1999", "--as", "steward",
    )  # fmt: skip
    assert refused.code != 0 and "not the 1,999 declared public" in refused.stderr
    assert not Dataset.objects.exists()

    client = APIClient()
    client.force_authenticate(cast.steward)
    response = client.post(
        "/api/datasets/",
        {
            "file": SimpleUploadedFile(path.name, path.read_bytes(), content_type="text/csv"),
            "name": "census",
            "epsilon_cap": "8",
            "delta_cap": "0",
            "declared_rows": "2000",
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    assert DatasetVersion.objects.get().rows_declared
    assert not BudgetEntry.objects.exists()
