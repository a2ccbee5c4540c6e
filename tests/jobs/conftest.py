from __future__ import annotations

import pytest

from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file


@pytest.fixture
def approved_request(cast, adult_schema):
    """An approved request on the 2,000-row adult fixture (ε=1, δ=1e-6, 400 rows, seed 7)."""
    return approved_request_create(cast, adult_schema)


def approved_request_create(cast, schema, *, epsilon="1", rows=400, seed=7, **extra):
    from governance.services import access_request_approve

    PurposeFactory(name="research", approvals_required=2)
    if not cast.steward.datasets.filter(name="adult").exists():
        dataset_register_adult(steward=cast.steward, schema=schema)
    request = request_file(requester=cast.requester, epsilon=epsilon, n_rows=rows, seed=seed, **extra)
    access_request_approve(actor=cast.approver, request_id=request.pk)
    return access_request_approve(actor=cast.second_approver, request_id=request.pk)


def reasons_for(run, why: str) -> dict[str, str]:
    """A distinct, reasoned acceptance for each failed check of ``run`` (risk_accept's ``reasons``)."""
    return {name: f"{why} (reviewed {name} against the purpose's needs)" for name in run.failed_checks}
