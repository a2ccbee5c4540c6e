"""Assurance runs through the service, the API and the CLI (database; the game itself is small).

The service stores the latest result per generator version, a leaky generator's run is stored
as failed, a non-private generator and a requester are refused with nothing stored.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from core.errors import PermissionDeniedError, ValidationError
from governance.models import AuditEvent
from synth_engine.assurance.version import generator_version
from synth_engine.generators import MSTGenerator
from synth_engine.models import AssuranceRun, AssuranceStatus
from synth_engine.services_assurance import assurance_run_start
from tests.governance.test_cli import synthgate
from tests.synth_engine.leaky import CopyingGenerator

pytestmark = pytest.mark.django_db


def test_a_leaky_generator_run_is_stored_as_failed_with_its_figures(cast) -> None:
    run = assurance_run_start(
        actor=cast.auditor,
        generator="leaky-copy",
        epsilon=1.0,
        runs=30,
        n_rows=200,
        canaries=("unique_category",),
        generator_factory=CopyingGenerator,
    )
    assert run.status == AssuranceStatus.FAILED
    assert run.epsilon_lower_bound > 1.0
    assert run.generator_version == generator_version(CopyingGenerator)
    assert run.report["failures"][0].startswith("unique_category: pattern_count gives ε ≥")
    assert AuditEvent.objects.filter(action="assurance.run", object_id=str(run.pk)).exists()


def test_mst_run_passes_and_the_api_lists_the_latest_per_version(cast) -> None:
    older = assurance_run_start(
        actor=cast.steward, generator="mst", epsilon=1.0, runs=3, n_rows=200, canaries=("unique_category",)
    )
    newer = assurance_run_start(
        actor=cast.steward, generator="mst", epsilon=1.0, runs=3, n_rows=200, canaries=("unique_category",)
    )
    assert newer.status == AssuranceStatus.PASSED
    assert newer.generator_version == generator_version(MSTGenerator)
    client = APIClient()
    client.force_authenticate(cast.requester)  # public figures: any signed-in user may read them
    body = client.get("/api/assurance/").json()
    assert [row["id"] for row in body["results"]] == [newer.pk]
    assert body["results"][0]["report"]["canaries"][0]["kind"] == "unique_category"
    assert len(client.get("/api/assurance/?all=1").json()["results"]) == 2
    assert client.get(f"/api/assurance/{older.pk}/").json()["status"] == "passed"
    assert client.get("/api/assurance/999999/").status_code == 404


def test_non_private_generator_is_refused_and_nothing_is_stored(cast) -> None:
    with pytest.raises(ValidationError, match="not differentially private") as caught:
        assurance_run_start(actor=cast.steward, generator="copula", epsilon=1.0, runs=3)
    assert caught.value.code == "non_private"
    assert not AssuranceRun.objects.exists()


def test_requester_may_not_run_assurance(cast) -> None:
    with pytest.raises(PermissionDeniedError):
        assurance_run_start(actor=cast.requester, generator="mst", epsilon=1.0, runs=3)
    assert not AssuranceRun.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--epsilon", "1"], "unknown generator"),
        (["mst", "--epsilon", "0"], "epsilon must be a positive"),
        (["mst", "--epsilon", "1", "--runs", "1"], "runs must be at least 2"),
        (["copula", "--epsilon", "1"], "not differentially private"),
        (["dp-tvae", "--epsilon", "0.5", "--runs", "2", "--canary", "unique_category"], "refused every fit"),
    ],
)
def test_cli_refuses_bad_input_with_exit_2(cast, args, message) -> None:
    result = synthgate("assure", *args, "--as", "steward")
    assert result.code == 2
    assert message in result.stderr
    assert not AssuranceRun.objects.exists()


def test_cli_runs_mst_and_prints_the_figures(cast) -> None:
    result = synthgate(
        "assure",
        "mst",
        "--epsilon",
        "1",
        "--runs",
        "3",
        "--rows",
        "200",
        "--canary",
        "extreme_numeric",
        "--as",
        "auditor",
    )
    assert result.code == 0, result.stderr
    assert "extreme_numeric" in result.stdout and "PASSED" in result.stdout
    result = synthgate("assure", "mst", "--epsilon", "1", "--runs", "3", "--rows", "200", "--as", "auditor", "--json")
    assert result.json()["status"] == "passed"
    assert AssuranceRun.objects.count() == 2
