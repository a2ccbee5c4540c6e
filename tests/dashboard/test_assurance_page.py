"""The privacy-assurance page: the latest run per generator version, its figures and verdict."""

from __future__ import annotations

import pytest

from synth_engine.services_assurance import assurance_run_start
from tests.synth_engine.leaky import CopyingGenerator

pytestmark = pytest.mark.django_db


def test_assurance_page_shows_a_contradicted_claim_and_the_untested_generators(cast, login):
    run = assurance_run_start(
        actor=cast.auditor,
        generator="leaky-copy",
        epsilon=1.0,
        runs=20,
        n_rows=100,
        canaries=("unique_category",),
        generator_factory=CopyingGenerator,
    )
    page = login(cast.requester).get("/assurance/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f"run #{run.pk}" in html and "DP claim contradicted" in html
    assert "unique_category: pattern_count gives ε ≥" in html
    assert "copula: not differentially private" in html
    assert "mst: no assurance run for any version yet" in html
    assert 'aria-current="page">Assurance<' in html
