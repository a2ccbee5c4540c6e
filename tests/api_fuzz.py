"""Fuzz the REST API from its own OpenAPI schema with schemathesis (shared by the test and bench).

Every operation in ``/api/schema/`` is called with inputs generated from that schema, in-process
through the WSGI application, signed in with a knox token as each person given. About half the
examples put the ids of real objects into the path (a registered dataset, a filed request, its
version), so the fuzzer reaches the code behind the 404s; the other half keep the generated ids.
Each response must not be a server error and must conform to the schema: a documented status
code, the documented content type, headers and body.

Operations that would start real work on a real object (a generation job, an audit, revoking the
token in use) keep generated ids only, so they answer 404 or a validation error and never spend
minutes of CPU inside a test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# Path parameters that must not name real objects (see the module docstring).
GENERATED_IDS_ONLY = {
    ("POST", "/api/requests/{request_id}/generate/"),
    ("POST", "/api/versions/{version_id}/audit/"),
    ("DELETE", "/api/auth/tokens/{token_key}/"),
    ("POST", "/api/auth/tokens/{token_key}/rotate/"),
}


@dataclass
class FuzzResult:
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def record(self, status: int) -> None:
        self.cases += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1


@contextmanager
def in_process_requests() -> Iterator[None]:
    """Let the WSGI app run inside the test's transaction, as Django's own test client does.

    Django closes 'old' connections at the start and end of every request; inside a test's
    atomic block that would close the connection holding the test's data.
    """
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def known_ids() -> dict[str, Any]:
    """The ids of real objects a fuzzed path may name: the first of each kind in the database."""
    from audits.models import AuditRun, Release
    from governance.models import DataRequest, Dataset, DatasetVersion, Purpose
    from synth_engine.models import GenerationJob

    def first(model: Any, attribute: str = "pk") -> Any:
        row = model.objects.order_by("pk").first()
        return None if row is None else getattr(row, attribute)

    ids = {
        "name": first(Dataset, "name"),
        "number": 1,
        "request_id": first(DataRequest),
        "version_id": first(DatasetVersion),
        "job_id": first(GenerationJob),
        "run_id": first(AuditRun),
        "release_id": first(Release),
    }
    return {key: value for key, value in ids.items() if value is not None} | {"purpose": first(Purpose, "name")}


def fuzz_api(
    tokens: dict[str, str], *, max_examples: int, seed: int | None = 0, progress: Callable[[str], None] | None = None
) -> FuzzResult:
    """Run every operation ``max_examples`` times per person; return the counts and the failures.

    ``seed`` fixes the examples (the test uses one); ``None`` draws new ones each run.
    """
    import schemathesis
    from django.core.wsgi import get_wsgi_application
    from schemathesis.checks import (
        content_type_conformance,
        not_a_server_error,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    ids = known_ids()
    result = FuzzResult()
    with in_process_requests():
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
        for found in schema.get_all_operations():
            operation = found.ok()
            for person, token in tokens.items():
                run = _examples(operation, person, token, ids, result, checks, max_examples, seed)
                try:
                    run()
                except Exception as error:  # a failure inside hypothesis itself, reported like the others
                    result.failures.append(f"{person} {operation.method.upper()} {operation.path}: {error!r}")
                if progress:
                    progress(f"{person:10} {operation.method.upper():6} {operation.path}: {result.cases} cases so far")
    return result


def _examples(
    operation: Any,
    person: str,
    token: str,
    ids: dict[str, Any],
    result: FuzzResult,
    checks: list,
    max_examples: int,
    seed: int | None,
) -> Callable[[], None]:
    """A hypothesis test calling ``operation`` as ``person``, recording into ``result``."""
    import hypothesis
    from hypothesis import strategies as st
    from schemathesis.core.failures import FailureGroup

    key = (operation.method.upper(), operation.path)
    headers = {"Authorization": f"Token {token}"}
    real_ids = ids | ({"name": ids["purpose"]} if operation.path.startswith("/api/purposes/") else {})

    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    @hypothesis.given(case=operation.as_strategy(), real=st.booleans())
    @hypothesis.seed(seed)
    def run(case: Any, real: bool) -> None:
        if real and key not in GENERATED_IDS_ONLY and case.path_parameters:
            case.path_parameters = {name: real_ids.get(name, value) for name, value in case.path_parameters.items()}
        response = case.call(headers=headers)
        result.record(response.status_code)
        try:
            case.validate_response(response, checks=checks, headers=headers)
        except (AssertionError, FailureGroup) as error:
            lines = [line for line in str(error).strip().splitlines() if line.strip()]
            result.failures.append(
                f"{person} {key[0]} {case.formatted_path} -> {response.status_code}: {' | '.join(lines[:6])[:600]}"
            )

    return run
