"""The release datasheet cites the generator version's latest assurance run, shows each
membership attack beside the DP ceiling, and says why DCR/NNDR are diagnostics only."""

from __future__ import annotations

import pytest

from audits.datasheets.render import render_datasheet_html
from audits.facts import datasheet_facts
from synth_engine.assurance.version import generator_version
from synth_engine.generators import MSTGenerator
from synth_engine.services import generation_job_start
from synth_engine.services_assurance import assurance_run_start
from tests.jobs.conftest import approved_request_create

pytestmark = pytest.mark.django_db(transaction=True)


def _audited(cast, schema):
    request = approved_request_create(cast, schema, rows=800)
    generation_job_start(actor=cast.requester, request_id=request.pk)
    return request.audit_runs.get()


def test_datasheet_cites_the_latest_assurance_run_of_the_generator_version(cast, adult_schema):
    run = _audited(cast, adult_schema)
    before = datasheet_facts(run)
    assert before.assurance.run_id is None
    assert "accounted, not empirically tested" in render_datasheet_html(before)

    assurance = assurance_run_start(
        actor=cast.steward, generator="mst", epsilon=1.0, runs=2, n_rows=200, canaries=("unique_category",)
    )
    facts = datasheet_facts(run)
    assert run.version.lineage["generator_version"] == generator_version(MSTGenerator)
    assert facts.assurance.run_id == assurance.pk
    assert "the claim was not refuted" in facts.assurance.statement
    ceiling = facts.dp_ceiling
    assert {row.attack for row in ceiling.rows} == {"domias", "distance"}
    assert {row.fpr_display for row in ceiling.rows} == {"1 %", "0.1 %"}
    assert all(row.tpr_low <= row.tpr for row in ceiling.rows)
    html = render_datasheet_html(facts)
    assert f"Assurance run #{assurance.pk}" in html
    assert "Membership attacks beside what differential privacy allows" in html
    assert "never as a privacy verdict" in html
