"""Versions stored before registration checked their rows against their declarations.

Registration and ``dataset declare`` refuse a declaration the stored rows contradict
(test_declarations_hold_on_the_rows), but versions stored before that check (migration 0015 adds
``rows_checked`` false for them) never were: their jobs failed with a reason the requester reads
("column 'age' is declared nullable: false but has missing values"), one row flipping the outcome.
Such a version is now checked before anything is filed against it (and by its job before the
rows are read): a contradiction refuses the filing naming no column, value or count, and the
steward reads the reason. An old version is made here as the migration leaves one: the flag unset
under a declaration its rows contradict (the schema written as the old code stored it).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ValidationError
from governance.apis.datasets import VersionOutputSerializer
from governance.models import BudgetEntry, DataRequest, DatasetVersion
from governance.services import (
    access_request_approve,
    dataset_register,
    dataset_rows_check,
    dataset_schema_declare_columns,
)
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from tests.governance.factories import PurposeFactory, request_file

pytestmark = pytest.mark.django_db(transaction=True)

COLUMNS = [
    {"name": "age", "type": "integer", "role": "other", "min": 0, "max": 100, "nullable": True},
    {"name": "label", "type": "categorical", "role": "label", "categories": ["no", "yes"]},
]


def _register(cast, tmp_path: Path, *, missing_age: bool) -> DatasetVersion:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"age": rng.integers(18, 80, 1_500).astype(str), "label": rng.choice(["no", "yes"], 1_500, p=[0.8, 0.2])}
    )
    if missing_age:
        frame.loc[7, "age"] = ""
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return dataset_register(
        actor=cast.steward,
        name="t",
        path=path,
        filename=path.name,
        epsilon_cap="10",
        delta_cap="1e-4",
        schema={"columns": COLUMNS},
    ).version


def _stored_before_the_check(version: DatasetVersion) -> DatasetVersion:
    """As an installation upgraded past migration 0015 holds it: ``age`` declared nullable: false
    (the old code stored that over a missing value) and the rows never checked."""
    schema = {"columns": [{**COLUMNS[0], "nullable": False}, COLUMNS[1]]}
    DatasetVersion.objects.filter(pk=version.pk).update(schema=schema, rows_checked=False)
    return DatasetVersion.objects.get(pk=version.pk)


def _seen_by(user, version: DatasetVersion) -> dict:
    return VersionOutputSerializer(DatasetVersion.objects.get(pk=version.pk), context={"viewer": user}).data


def test_new_registrations_record_that_their_rows_were_checked(cast, tmp_path):
    version = _register(cast, tmp_path, missing_age=False)
    assert DatasetVersion.objects.get(pk=version.pk).rows_checked is True


def test_an_old_version_whose_rows_contradict_a_declaration_is_refused_at_filing_naming_nothing(cast, tmp_path):
    version = _stored_before_the_check(_register(cast, tmp_path, missing_age=True))
    PurposeFactory(name="research", approvals_required=2)
    with pytest.raises(ValidationError) as caught:
        request_file(requester=cast.requester, dataset_name="t", epsilon="1", delta="1e-5", n_rows=1_000)
    message = caught.value.message
    assert "await its steward's review" in message
    assert "age" not in message and "missing" not in message and not re.search(r"\d", message)
    assert not DataRequest.objects.exists()
    assert not BudgetEntry.objects.exclude(
        kind="estimate"
    ).exists()  # nothing reserved (the estimate is registration's)
    assert DatasetVersion.objects.get(pk=version.pk).rows_checked is False
    steward_view, requester_view = _seen_by(cast.steward, version), _seen_by(cast.requester, version)
    assert "'age'" in steward_view["rows_contradiction"] and "missing" in steward_view["rows_contradiction"]
    assert requester_view["rows_contradiction"] == ""


def test_an_old_version_whose_rows_hold_is_filed_and_marked_checked(cast, tmp_path):
    version = _stored_before_the_check(_register(cast, tmp_path, missing_age=False))
    PurposeFactory(name="research", approvals_required=2)
    request = request_file(requester=cast.requester, dataset_name="t", epsilon="1", delta="1e-5", n_rows=1_000)
    assert request.source_version_id == version.pk
    version.refresh_from_db()
    assert version.rows_checked is True and version.rows_contradiction == ""


def test_a_request_filed_before_the_upgrade_fails_its_job_naming_nothing(cast, tmp_path):
    version = _register(cast, tmp_path, missing_age=True)
    PurposeFactory(name="research", approvals_required=2)
    request = request_file(requester=cast.requester, dataset_name="t", epsilon="1", delta="1e-5", n_rows=1_000)
    access_request_approve(actor=cast.approver, request_id=request.pk)
    access_request_approve(actor=cast.second_approver, request_id=request.pk)
    _stored_before_the_check(version)  # filed and approved on the old code, then upgraded
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "await its steward's review" in job.error  # on the old code: "... 'age' ... has missing values"
    assert "age" not in job.error and "missing" not in job.error
    assert not BudgetEntry.objects.filter(kind="spend").exists()
    assert "'age'" in _seen_by(cast.steward, version)["rows_contradiction"]


def test_the_upgrade_command_checks_every_unchecked_version_once(cast, tmp_path):
    version = _stored_before_the_check(_register(cast, tmp_path, missing_age=True))
    [(checked, reason)] = dataset_rows_check(actor=cast.steward)
    assert checked.pk == version.pk and "'age'" in reason
    DatasetVersion.objects.filter(pk=version.pk).update(schema={"columns": COLUMNS})  # the steward corrects it
    [(_, reason)] = dataset_rows_check(actor=cast.steward, name="t")
    assert reason == "" and DatasetVersion.objects.get(pk=version.pk).rows_checked is True
    assert dataset_rows_check(actor=cast.steward) == []


def test_a_declaration_that_makes_an_old_version_hold_marks_it_checked(cast, tmp_path):
    version = _stored_before_the_check(_register(cast, tmp_path, missing_age=True))
    dataset_schema_declare_columns(actor=cast.steward, name="t", declarations={"label": {"categories": ["no", "yes"]}})
    version.refresh_from_db()  # the label's declaration holds, but 'age' still contradicts its own
    assert version.rows_checked is False and "'age'" in version.rows_contradiction
    dataset_schema_declare_columns(actor=cast.steward, name="t", declarations={"age": {"nullable": True}})
    version.refresh_from_db()
    assert version.rows_checked is True and version.rows_contradiction == ""
