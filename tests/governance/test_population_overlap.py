"""One privacy budget per population: rows another dataset already holds are refused under a
new name (identical, reordered, subset, superset, or a partial overlap above the threshold),
naming the dataset and the overlap; implausible caps need a logged override.

Each refusal leaves nothing behind: no Dataset, no version, no fingerprint, no file.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from core.errors import ConflictError, ValidationError
from governance.fingerprint import overlap, row_digests
from governance.models import AuditEvent, Dataset, DatasetVersion, SourceFingerprint
from governance.services import dataset_register

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "adult_2000.csv"
KEY = b"test-key"


def adult_frame() -> pd.DataFrame:
    return pd.read_csv(FIXTURE, dtype=str, keep_default_na=False)


def other_people(frame: pd.DataFrame, offset: int = 7) -> pd.DataFrame:
    """The same shape of rows, none of them in ``frame`` (fnlwgt shifted)."""
    shifted = frame.copy()
    shifted["fnlwgt"] = (shifted["fnlwgt"].astype(int) + offset).astype(str)
    return shifted


@pytest.fixture
def write(tmp_path):
    def _write(frame: pd.DataFrame, name: str = "table.csv") -> Path:
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return _write


def register(actor, path: Path, *, name: str, **extra):
    fields = {"epsilon_cap": "10", "delta_cap": "1e-5", **extra}
    return dataset_register(actor=actor, name=name, path=path, filename=path.name, **fields)


@pytest.fixture
def adult(cast, data_dir, write):
    return register(cast.steward, write(adult_frame(), "adult.csv"), name="adult").version


def state(data_dir: Path) -> tuple:
    counts = (Dataset.objects.count(), DatasetVersion.objects.count(), SourceFingerprint.objects.count())
    return (*counts, AuditEvent.objects.count(), sorted(path for path in data_dir.rglob("*") if path.is_file()))


# --- the fingerprint ------------------------------------------------------------------------


def test_the_fingerprint_ignores_row_order_column_order_and_number_spelling():
    frame = pd.DataFrame({"age": [40, 51, 40], "town": ["Leeds", "York", "Leeds"], "pay": [1.0, 2.5, 1.0]})
    shuffled = frame.iloc[[2, 0, 1], ::-1].reset_index(drop=True)
    spelled = frame.assign(age=frame["age"].astype(float))

    digests = row_digests(frame, KEY)

    assert digests.size == 2  # distinct rows
    np.testing.assert_array_equal(row_digests(shuffled, KEY), digests)
    np.testing.assert_array_equal(row_digests(spelled, KEY), digests)
    assert not np.intersect1d(row_digests(frame, b"another key"), digests).size


def test_overlap_counts_shared_rows_as_a_share_of_each_table():
    frame = pd.DataFrame({"a": range(10)})
    measured = overlap(row_digests(frame.iloc[:4], KEY), row_digests(frame, KEY))
    assert (measured.shared_rows, measured.share_of_new, measured.share_of_existing) == (4, 1.0, 0.4)


# --- refusals through the service -------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("variant", "shared", "overridable"),
    [
        ("identical", 2000, False),
        ("rows shuffled, columns reordered", 2000, False),
        ("a subset", 1500, False),
        ("a superset", 2000, False),
        ("a 30 % partial overlap", 600, True),
    ],
)
def test_rows_another_dataset_holds_are_refused_naming_it(cast, adult, data_dir, write, variant, shared, overridable):
    frame = adult_frame()
    table = {
        "identical": frame,
        "rows shuffled, columns reordered": frame.sample(frac=1, random_state=1).iloc[:, ::-1],
        "a subset": frame.iloc[:1500],
        "a superset": pd.concat([frame, other_people(frame).iloc[:500]]),
        "a 30 % partial overlap": pd.concat([frame.iloc[:600], other_people(frame).iloc[600:]]),
    }[variant]
    before = state(data_dir)

    with pytest.raises(ConflictError) as caught:
        register(cast.steward, write(table), name="census")

    error = caught.value
    assert error.code == "population_overlap"
    assert error.extra["dataset"] == "adult" and error.extra["shared_rows"] == shared
    assert error.extra["overridable"] is overridable
    assert "overlap dataset 'adult'" in error.message
    assert "register it with name 'adult'" in error.message
    assert state(data_dir) == before


@pytest.mark.django_db
def test_a_partial_overlap_may_be_registered_with_a_reason_that_is_logged(cast, adult, write):
    frame = adult_frame()
    table = pd.concat([frame.iloc[:600], other_people(frame).iloc[600:]])
    with pytest.raises(ConflictError):
        register(cast.steward, write(table), name="census", overlap_override_reason="ok")

    result = register(
        cast.steward, write(table), name="census", overlap_override_reason="Different survey wave, new people"
    )

    event = AuditEvent.objects.get(action="dataset_version.create", object_id=str(result.version.pk))
    assert event.after["overlaps"] == [
        {
            "dataset": "adult",
            "shared_rows": 600,
            "share_of_new": 0.3,
            "share_of_existing": 0.3,
            "override_reason": "Different survey wave, new people",
        }
    ]


@pytest.mark.django_db
def test_a_subset_cannot_be_overridden(cast, adult, write):
    with pytest.raises(ConflictError) as caught:
        register(cast.steward, write(adult_frame().iloc[:100]), name="census", overlap_override_reason="x" * 40)
    assert caught.value.extra["overridable"] is False


@pytest.mark.django_db
def test_an_overlap_below_the_threshold_is_accepted(cast, adult, write):
    frame = adult_frame()
    table = pd.concat([frame.iloc[:20], other_people(frame).iloc[20:]])  # 1 % shared

    assert register(cast.steward, write(table), name="census").created


@pytest.mark.django_db
def test_a_new_version_of_the_same_dataset_draws_on_its_one_ledger(cast, adult, write):
    frame = adult_frame()
    result = register(cast.steward, write(pd.concat([frame, other_people(frame).iloc[:300]])), name="adult")

    assert result.created and result.version.number == 2 and result.version.dataset == adult.dataset
    assert Dataset.objects.count() == 1


@pytest.mark.django_db
def test_a_version_without_a_stored_fingerprint_is_fingerprinted_from_its_stored_table(cast, adult, write):
    SourceFingerprint.objects.all().delete()

    with pytest.raises(ConflictError):
        register(cast.steward, write(adult_frame()), name="census")
    register(cast.steward, write(other_people(adult_frame())), name="census")

    assert SourceFingerprint.objects.filter(version=adult).exists()


# --- implausible caps -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("caps", "problem"),
    [
        ({"epsilon_cap": "1e9"}, "an ε cap of 1000000000 is above 20"),
        ({"delta_cap": "0.001"}, "a δ cap of 0.001 is at least 1/n for 2,000 rows"),
    ],
)
def test_implausible_caps_are_refused_without_a_reason_and_logged_with_one(cast, data_dir, write, caps, problem):
    path = write(adult_frame())
    with pytest.raises(ValidationError) as caught:
        register(cast.steward, path, name="adult", **caps)
    assert caught.value.code == "implausible_caps" and problem in caught.value.message
    assert Dataset.objects.count() == 0

    register(cast.steward, path, name="adult", cap_override_reason="Benchmark only, never released", **caps)

    event = AuditEvent.objects.get(action="dataset.register")
    assert event.after["cap_override"]["reason"] == "Benchmark only, never released"
    assert problem in event.after["cap_override"]["problems"][0]


# --- API, CLI and dashboard -----------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_answers_409_with_the_overlap(cast, adult):
    client = APIClient()
    client.force_authenticate(cast.steward)
    upload = SimpleUploadedFile("census.csv", FIXTURE.read_bytes(), content_type="text/csv")
    fields = {"file": upload, "name": "census", "epsilon_cap": "10", "delta_cap": "1e-5"}

    response = client.post("/api/datasets/", fields, format="multipart")

    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "population_overlap"
    assert body["extra"]["dataset"] == "adult" and body["extra"]["shared_rows"] == 2000


@pytest.mark.django_db
def test_the_cli_exits_2_naming_the_dataset_and_accepts_a_logged_cap_override(cast, adult, write):
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(
            "dataset", "register", str(FIXTURE), "--name", "census", "--epsilon-cap", "10", "--delta-cap", "1e-5",
            "--as", "steward", stdout=stdout, stderr=stderr,
        )  # fmt: skip
    assert caught.value.returncode == 2 and "overlap dataset 'adult'" in str(caught.value)

    path = write(other_people(adult_frame()))
    call_command(
        "dataset", "register", str(path), "--name", "census", "--epsilon-cap", "1e9", "--delta-cap", "1e-5",
        "--override-caps", "Load test of the platform", "--as", "steward", stdout=stdout, stderr=stderr,
    )  # fmt: skip
    assert Dataset.objects.get(name="census").epsilon_cap == 10**9


@pytest.mark.django_db
def test_the_dashboard_shows_the_overlap_on_the_form(cast, adult, client):
    client.force_login(cast.steward)
    upload = SimpleUploadedFile("census.csv", FIXTURE.read_bytes(), content_type="text/csv")
    fields = {"file": upload, "name": "census", "epsilon_cap": "10", "delta_cap": "1e-5", "sensitivity": "internal"}

    response = client.post("/datasets/new/", fields)

    assert response.status_code == 409
    assert "overlap dataset &#x27;adult&#x27;" in response.content.decode()
    assert Dataset.objects.count() == 1
