"""A requester who chose a reproducible seed cannot compute the release's noise.

DP rests on noise the adversary does not know. A request may name a seed for reproducibility; the
job used it as the generator's seed and the train/holdout split's, so the requester who chose it
held every random bit of the release: with the rows they know (all but one person's) they could run
the same code on D and on D without that person and see which reproduces the release byte for byte,
a distinguishing test that always wins (ε = ∞ at any claimed ε). The job now keys the seed with the
installation's secret (``synth_engine.services.noise_seed``): the same inputs still give the same
release, but nobody without the key can compute it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings

from governance.services.budget import version_row_estimate
from governance.storage import version_storage
from synth_engine.generators import MSTGenerator
from synth_engine.models import JobStatus
from synth_engine.services import _split, generation_job_start
from synth_engine.streaming import ChunkDraws, sample_to_file
from tests.jobs.conftest import approved_request_create

pytestmark = pytest.mark.django_db(transaction=True)


def _release_hash_computed_by_the_requester(request, frame: pd.DataFrame, seed: int) -> str:
    """What the requester computes from the rows they know and their own request: the job's split,
    fit and sampling, with the seed they chose (and, to make the attack as strong as can be, the
    version's DP row estimate, which they do not read but could search for)."""
    schema = request.source_version.schema
    fraction = float(request.purpose.holdout_fraction)
    train, _, _ = _split(frame, schema, fraction, seed)
    model = MSTGenerator().fit(
        train,
        schema,
        float(request.epsilon),
        float(request.delta),
        random_state=seed,
        row_estimate=version_row_estimate(version=request.source_version, holdout_fraction=fraction),
    )
    threads = int(settings.SYNTHGATE_SAMPLE_DRAW_THREADS)
    with tempfile.TemporaryDirectory() as directory:
        table = sample_to_file(
            ChunkDraws(lambda rows: model.seeded_output(rows, None), threads),
            int(request.n_rows),
            schema,
            Path(directory),
            chunk_rows=int(settings.SYNTHGATE_SAMPLE_CHUNK_ROWS),
        )
        return table.content_hash


def test_a_requester_who_chose_the_seed_cannot_tell_d_from_d_without_one_row(cast, adult_schema):
    request = approved_request_create(cast, adult_schema, rows=300, seed=7)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    released = job.output_version.content_hash

    source = request.source_version
    d = version_storage().read_version(source.storage_key, source.schema)
    d_without_one = d.iloc[:-1].reset_index(drop=True)
    on_d = _release_hash_computed_by_the_requester(request, d, 7)
    on_neighbour = _release_hash_computed_by_the_requester(request, d_without_one, 7)
    assert on_d != on_neighbour  # the two worlds give different releases for a known seed...
    # ...so a release equal to either would name the world. Keyed with the secret, it equals neither.
    assert released not in (on_d, on_neighbour)

    # Reproducibility is kept: the same request inputs and seed give the same release.
    again = approved_request_create(cast, adult_schema, rows=300, seed=7)
    job_again = generation_job_start(actor=cast.requester, request_id=again.pk)
    job_again.refresh_from_db()
    assert job_again.status == JobStatus.SUCCEEDED, job_again.error
    assert job_again.output_version.content_hash == released
    assert job_again.output_version.lineage["seed"] == 7 and job_again.seed == 7
    # The audit that follows draws from the keyed seed as well: its samples and planted copies are
    # not the requester's to know (the second request's identical release is the same version,
    # audited once).
    assert request.audit_runs.get().seed not in (None, 7)
