"""Dashboard fixtures: logged-in clients for the fixed cast, a registered dataset and requests."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture(autouse=True)
def _jobs_in_the_request_thread(request, settings):
    """Client tests run inside one test transaction, which a background thread could not see;
    there the job start stays in the request thread. Browser tests keep the real behaviour."""
    if request.node.get_closest_marker("browser") is None:
        settings.SYNTHGATE_DASHBOARD_BACKGROUND_JOBS = False


@pytest.fixture(autouse=True, scope="session")
def _static_root_exists():
    """WhiteNoise warns at start-up when STATIC_ROOT (filled by collectstatic) is missing."""
    from pathlib import Path

    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def login():
    """``login(user)`` → a test client with that user's session."""

    def _login(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def adult(cast, adult_schema):
    """The 2,000-row adult fixture registered by the steward, and the two-approver purpose."""
    from tests.governance.factories import PurposeFactory, dataset_register_adult

    PurposeFactory(name="research", approvals_required=2)
    return dataset_register_adult(steward=cast.steward, schema=adult_schema).dataset


@pytest.fixture
def submitted(cast, adult):
    from tests.governance.factories import request_file

    return request_file(requester=cast.requester, epsilon="1", n_rows=400, seed=7, justification="Income research")
