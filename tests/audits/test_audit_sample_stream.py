"""A large stored version is not read whole for its audit: above SYNTHGATE_REFERENCE_AUDIT_ROWS
training or holdout rows (SYNTHGATE_AUDIT_SYNTHETIC_ROWS synthetic rows) the audit's uniform random
sample is read from the stored file as a stream (``VersionStorage.read_version_rows``), keeping
only the chosen rows, and they are the rows (and dtypes) reading the whole table and sampling it
with the run's seed gave. The datasheet's dictionary counts a release's missing and 'other' cells
as the file streams by (``VersionStorage.cell_counts``)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from audits.facts import datasheet_facts
from audits.models import Release
from audits.services.runs import _stored_sample
from governance.ingest import build_table, canonical_bytes
from governance.models import DatasetVersion
from governance.storage import VersionStorage, version_storage
from synth_engine.models import JobStatus
from synth_engine.services import generation_job_start
from tests.jobs.conftest import approved_request_create

SCHEMA = {
    "columns": [
        {"name": "note", "type": "categorical", "role": "other"},
        {"name": "count", "type": "integer", "role": "other", "nullable": True},
        {"name": "share", "type": "float", "role": "other", "nullable": True},
        {"name": "flag", "type": "boolean", "role": "other", "nullable": True},
        {"name": "seen", "type": "datetime", "role": "other", "nullable": True},
        {"name": "rare", "type": "integer", "role": "other", "nullable": True},  # missing in the last row only
    ]
}


def _rows(n: int) -> list[list[str]]:
    """Text that a CSV must quote (commas, quotes, line breaks), missing cells, every kind of column."""
    generator = random.Random(7)
    notes = ["plain", "a, comma", 'a "quote"', "two\nlines", "", "ünïcode"]
    return [
        [
            generator.choice(notes),
            generator.choice(["", str(generator.randint(-5, 10**9))]),
            generator.choice(["", repr(generator.uniform(-1e6, 1e6)), "1e-07"]),
            generator.choice(["", "true", "false"]),
            generator.choice(["", f"2024-0{generator.randint(1, 9)}-1{generator.randint(0, 9)} 12:34:56"]),
            "" if number == n - 1 else str(number),
        ]
        for number in range(n)
    ]


def _stored(storage: VersionStorage, n: int) -> tuple[str, dict]:
    header = [column["name"] for column in SCHEMA["columns"]]
    table = build_table(header, _rows(n), {**SCHEMA, "missing_values": [""]}, schema_inferred=False)
    key = f"versions/test-{n}.csv"
    storage.write_new(key, canonical_bytes(table.frame, table.schema))
    return key, table.schema


def test_the_rows_read_as_a_stream_are_those_of_the_whole_table(tmp_path):
    storage = VersionStorage(str(tmp_path))
    key, schema = _stored(storage, 3_000)
    whole = storage.read_version(key, schema)
    assert len(whole) == 3_000 and str(whole["rare"].dtype) == "Int64"
    positions = sorted(np.random.default_rng(1).choice(3_000, size=400, replace=False).tolist())
    for wanted in (positions, [0], [2_999], list(range(3_000))):
        streamed = storage.read_version_rows(key, schema, wanted)
        pd.testing.assert_frame_equal(streamed, whole.iloc[wanted].reset_index(drop=True))
    assert storage.read_version_rows(key, schema, [0, 3_000]) is None  # beyond the file's rows


def test_an_audit_samples_a_large_stored_version_as_the_whole_read_did(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    storage = version_storage()
    key, schema = _stored(storage, 5_000)
    version = DatasetVersion(storage_key=key, schema=schema, n_rows=5_000)
    whole = storage.read_version(key, schema)
    for seed in (0, 12345, 2**31 - 1):
        expected = whole.sample(n=700, random_state=seed % (2**32)).sort_index().reset_index(drop=True)
        pd.testing.assert_frame_equal(_stored_sample(version, seed=seed, limit=700), expected)


def test_the_cells_counted_as_the_file_streams_are_those_of_the_whole_table(tmp_path):
    storage = VersionStorage(str(tmp_path))
    key, schema = _stored(storage, 3_000)
    whole = storage.read_version(key, schema)
    texts = {"note": ("", "a, comma", "two\nlines", "absent"), "count": ("",), "rare": ("", "7")}
    for chunk_rows in (7, 100_000):  # chunks that end inside the table and one that holds it all
        n_rows, counts = storage.cell_counts(key, texts, chunk_rows=chunk_rows)
        assert n_rows == 3_000
        assert counts["note"] == {
            "": int(whole["note"].isna().sum()),
            "a, comma": int((whole["note"] == "a, comma").sum()),
            "two\nlines": int((whole["note"] == "two\nlines").sum()),
            "absent": 0,
        }
        assert counts["count"] == {"": int(whole["count"].isna().sum())}
        assert counts["rare"] == {"": 1, "7": 1}


@pytest.mark.django_db(transaction=True)
def test_a_synthetic_table_above_the_limit_is_audited_on_a_stated_sample(cast, adult_schema, settings):
    settings.SYNTHGATE_AUDIT_SYNTHETIC_ROWS = 250  # the job writes 400; the controls need at least 181
    request = approved_request_create(cast, adult_schema)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    run = request.audit_runs.get()
    assert run.version.n_rows == 400 and run.audit_sample_rows == {"synthetic": 250}
    assert run.checks.exists() and all(control["caught"] for control in run.controls)
    internal = " ".join(datasheet_facts(run).preprocessing)
    assert "uniform random sample of 250 of its rows" in internal
    assert "random samples of" not in internal  # the training rows and holdout were read whole
    release = Release(audit_run=run, request=request, version=run.version, released_by=cast.requester)
    assert "sample" not in " ".join(datasheet_facts(run, release=release).preprocessing)
