"""Validate before you spend (issue 11.2): an ε the generator would refuse for the version is
refused when the request is filed, and again at approval, with the minimum ε and nothing written.

Before, MST measured its own DP row estimate in the job, after the data was read and the request's
budget spent, and only then refused "epsilon=… is too small for about N rows": a request filed
at ε = 0.05 on the 2,000-row adult table was accepted, approved, and its job failed with ε spent.
Now the job hands the generator the version's paid estimate and the generator decides on it
alone, so filing takes the very same decision first; the agreement test below checks the two over
a grid of ε around the boundary with real fits.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from core.errors import ValidationError
from governance.models import AuditEvent, BudgetEntry, DataRequest, EntryKind, RequestState
from governance.services import access_request_approve, version_row_estimate
from governance.storage import version_storage
from synth_engine.generators.base import InsufficientBudgetError
from synth_engine.generators.mst import MSTGenerator
from synth_engine.services import _split
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_entries, request_file

pytestmark = pytest.mark.django_db

DELTA = "1e-6"


@pytest.fixture
def adult(cast, adult_schema, settings, tmp_path):
    """The 2,000-row adult table (15 columns, holdout 20 %) and a one-approver purpose, ε ≤ 5."""
    settings.DATA_DIR = tmp_path
    version = dataset_register_adult(steward=cast.steward, schema=adult_schema)
    purpose = PurposeFactory(name="research", approvals_required=1)
    return version, purpose


def minimum_epsilon(version, purpose) -> float:
    """The exact boundary the generator decides on, from the version's paid estimate."""
    estimate = version_row_estimate(version=version, holdout_fraction=purpose.holdout_fraction)
    refusal = MSTGenerator().budget_refusal(version.schema, 1e-3, float(DELTA), estimate)
    assert refusal is not None
    return refusal.minimum_epsilon


def ledger_and_log() -> tuple[list, int, int]:
    return (
        list(BudgetEntry.objects.values_list("kind", "epsilon")),
        DataRequest.objects.count(),
        AuditEvent.objects.count(),
    )


def test_a_too_small_epsilon_is_refused_at_filing_naming_the_minimum_and_writing_nothing(cast, adult):
    version, purpose = adult
    before = ledger_and_log()
    assert before[0] == [(EntryKind.ESTIMATE, Decimal("0.02"))]  # registration's paid estimate only

    with pytest.raises(ValidationError) as caught:
        request_file(requester=cast.requester, epsilon="0.05", delta=DELTA)

    error = caught.value
    minimum = Decimal(error.extra["minimum_epsilon"])
    assert error.extra["field"] == "epsilon"
    assert f"Use ε ≥ {error.extra['minimum_epsilon']} at δ = 0.000001" in error.message
    assert "Nothing was spent or reserved" in error.message
    # the figure shown is rounded up to 2 decimals: it passes, and 0.01 less does not
    exact = minimum_epsilon(version, purpose)
    assert minimum - Decimal("0.01") < Decimal(repr(exact)) <= minimum
    # a requester reads no row figure: neither the count nor the estimate nor its training share
    estimate = version_row_estimate(version=version, holdout_fraction=purpose.holdout_fraction)
    for figure in {version.n_rows, version.public_rows, round(estimate.rows), int(estimate.rows)}:
        assert str(figure) not in error.message
    assert ledger_and_log() == before

    filed = request_file(requester=cast.requester, epsilon=str(minimum), delta=DELTA)
    assert filed.state == RequestState.SUBMITTED


def test_the_api_answers_a_400_with_the_minimum(cast, adult):
    client = APIClient()
    client.force_authenticate(cast.requester)
    before = ledger_and_log()

    response = client.post(
        "/api/requests/",
        {"dataset": "adult", "purpose": "research", "epsilon": "0.05", "delta": DELTA, "n_rows": 500},
        format="json",
    )

    assert response.status_code == 400, response.json()
    body = response.json()
    assert body["extra"]["field"] == "epsilon" and "too small for generator 'mst'" in body["message"]
    assert f"Use ε ≥ {body['extra']['minimum_epsilon']}" in body["message"]
    assert ledger_and_log() == before


def test_approval_refuses_a_request_filed_before_the_check_and_reserves_nothing(cast, adult):
    """A request written before filing checked the generator's budget (here: directly) is refused
    at approval, before its reservation; an approver reads the estimate it was judged on."""
    version, purpose = adult
    request = DataRequest.objects.create(
        dataset=version.dataset,
        source_version=version,
        purpose=purpose,
        requester=cast.requester,
        epsilon=Decimal("0.05"),
        delta=Decimal(DELTA),
        n_rows=500,
        generator="mst",
        generator_params={},
        state=RequestState.SUBMITTED,
    )

    with pytest.raises(ValidationError) as caught:
        access_request_approve(actor=cast.approver, request_id=request.pk)

    assert f"Request #{request.pk} can no longer run as filed" in caught.value.message
    assert "training rows (the version's DP row estimate)" in caught.value.message
    assert not request_entries().exists() and not request.approvals.exists()
    request.refresh_from_db()
    assert request.state == RequestState.SUBMITTED


def test_a_purpose_whose_cap_is_below_the_minimum_says_so(cast, adult):
    PurposeFactory(name="tight", approvals_required=1, max_epsilon=Decimal("0.1"))
    with pytest.raises(ValidationError, match="Purpose “tight” allows at most ε = 0.1, below the ε ≥ "):
        request_file(requester=cast.requester, purpose_name="tight", epsilon="0.1", delta=DELTA)


def test_filing_and_the_fit_agree_over_a_grid_of_epsilon_around_the_boundary(cast, adult):
    """For each ε near the boundary: filing accepts exactly when the job's fit (the job's split,
    the estimate the job hands over, the request's ε as the job reads it) does not refuse."""
    version, purpose = adult
    boundary = minimum_epsilon(version, purpose)
    frame = version_storage().read_version(version.storage_key, version.schema)
    train, _, _ = _split(frame, version.schema, float(purpose.holdout_fraction), seed=7)
    grid = sorted(
        {Decimal(repr(boundary * factor)).quantize(Decimal("1e-12")) for factor in (0.9, 0.99, 0.9999, 1.0001, 1.01)}
        | {Decimal(repr(boundary)).quantize(Decimal("1e-12"), "ROUND_CEILING")}
    )
    outcomes = []
    for epsilon in grid:
        try:
            request_file(requester=cast.requester, epsilon=str(epsilon), delta=DELTA, n_rows=500)
            filed = True
        except ValidationError as error:
            assert error.extra["field"] == "epsilon", error.message
            filed = False
        request = DataRequest(epsilon=epsilon, delta=Decimal(DELTA))  # what the job reads back
        estimate = version_row_estimate(version=version, holdout_fraction=purpose.holdout_fraction)
        try:
            MSTGenerator(estimation_iterations=5).fit(
                train,
                version.schema,
                float(request.epsilon),
                float(request.delta),
                random_state=0,
                row_estimate=estimate,
            )
            fitted = True
        except InsufficientBudgetError:
            fitted = False
        outcomes.append((epsilon, filed, fitted))
    assert all(filed == fitted for _, filed, fitted in outcomes), outcomes
    assert [filed for _, filed, _ in outcomes] == [False, False, False, True, True, True], outcomes
    # the version's estimate was charged once, at registration, whatever was filed or fitted
    assert BudgetEntry.objects.filter(kind=EntryKind.ESTIMATE).count() == 1
