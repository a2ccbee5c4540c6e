"""The release datasheet says what the release contains: a data dictionary (type, role, public or
private domain, missing share in the release) and the values the DP domain may have introduced
('other', missing), counted in the synthetic rows of a real job."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
from django.conf import settings

from audits.datasheets.render import render_datasheet_html
from audits.facts import datasheet_facts
from governance.ingest import load_canonical
from synth_engine.services import generation_job_start
from tests.jobs.conftest import approved_request_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_datasheet_has_a_data_dictionary_and_the_values_the_source_may_not_have(cast, adult_schema):
    request = approved_request_create(cast, adult_schema, rows=800)
    generation_job_start(actor=cast.requester, request_id=request.pk)
    run = request.audit_runs.get()
    synthetic = load_canonical(Path(settings.DATA_DIR) / run.version.storage_key, run.version.schema)

    facts = datasheet_facts(run)

    rows = {row.column: asdict(row) for row in facts.dictionary}
    assert list(rows) == [column["name"] for column in adult_schema["columns"]]
    assert rows["age"] == {
        "column": "age",
        "type": "integer",
        "role": "quasi_identifier",
        "domain": "public (declared)",
        "missing_share": f"{100 * synthetic['age'].isna().mean():.1f} %",
    }
    assert rows["income"]["domain"] == "public (declared)" and rows["income"]["role"] == "label"
    assert rows["relationship"]["domain"] == "private (estimated with DP)"
    private_categorical = {
        row.column for row in facts.dictionary if row.type == "categorical" and row.domain.startswith("private")
    }
    expected = []
    for name in synthetic.columns:
        other = int((synthetic[name] == "other").sum()) if name in private_categorical else 0
        missing = int(synthetic[name].isna().sum())
        if other or missing:
            expected.append({"column": name, "other_rows": other, "missing_rows": missing})
    assert [asdict(row) for row in facts.introduced_values] == expected
    html = render_datasheet_html(facts)
    assert "2.1 Data dictionary" in html and "2.2 Values the source may not have" in html
    assert "private (estimated with DP)" in html
