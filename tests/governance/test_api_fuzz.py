"""The REST API against its own OpenAPI schema: fuzzed by schemathesis as a steward and a requester.

A few fixed examples per operation and person keep this small; ``bench/fuzz_api.py`` is the
fuller run (every role, many examples, new ones each time).
"""

from __future__ import annotations

import pytest
from knox.models import AuthToken

from tests.api_fuzz import fuzz_api
from tests.governance.factories import PurposeFactory, dataset_register_adult, request_file

EXAMPLES_PER_OPERATION = 4


@pytest.fixture
def tokens(cast) -> dict[str, str]:
    PurposeFactory()
    dataset_register_adult(steward=cast.steward)
    request_file(requester=cast.requester)
    return {person: AuthToken.objects.create(user=getattr(cast, person))[1] for person in ("steward", "requester")}


def test_every_operation_answers_fuzzed_input_without_server_errors_and_as_documented(tokens, schema_operations):
    result = fuzz_api(tokens, max_examples=EXAMPLES_PER_OPERATION, seed=13)

    assert result.failures == []
    # Every operation ran for both people, and the fuzzer reached real objects and real refusals.
    assert result.cases >= 2 * len(schema_operations) * 2
    assert result.by_status.get(200, 0) > 0
    assert result.by_status.get(400, 0) > 0
    assert result.by_status.get(404, 0) > 0
    assert set(result.by_status) <= {200, 201, 204, 400, 401, 403, 404, 409, 413, 429}


@pytest.fixture
def schema_operations(db) -> list[tuple[str, str]]:
    from rest_framework.test import APIClient

    paths = APIClient().get("/api/schema/", {"format": "json"}).json()["paths"]
    return [(method, path) for path, methods in paths.items() for method in methods]
