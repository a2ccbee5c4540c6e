"""What a requester reads of how a job and an audit ran, and of the DP ceiling on the release
datasheet: nothing that moves with the number of real rows.

A job's phases (loading, splitting, fitting) and an audit's steps (scoring every holdout row, the
groups in it) take time in proportion to the real rows, and a job's peak memory grows with them:
measurements of the real data, neither computed from the synthetic rows nor differentially
private, so they are read by stewards, approvers and auditors only
(``governance.permissions.run_measurements_visible``). The release datasheet's DP ceiling was the
judged one, e^ε · (Clopper–Pearson upper limit of the FPR reached) + δ: with the same attack
scores, 160 and 161 real non-members give different ceilings, so it told the holdout's size; a
recipient now reads the ceiling at the nominal FPR, a function of (ε, δ) alone.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client

from audits.facts import _dp_ceiling
from audits.metrics.membership import dp_ceiling_check
from audits.models import AuditRun, CheckResult
from dashboard.templatetags.dashboard import filesize, humanise, seconds
from synth_engine.models import GenerationJob
from synth_engine.services import generation_job_start
from tests.jobs.conftest import approved_request_create
from tests.jobs.test_api_releases import client_as

pytestmark = pytest.mark.django_db(transaction=True)


def _job_figures(job: GenerationJob) -> list[str]:
    """The job's measurements as the dashboard renders them."""
    return [f"<dt>{phase}</dt><dd>{seconds(value)}</dd>" for phase, value in job.timings.items()] + [
        f"<dd>{filesize(job.peak_memory_bytes)}</dd>"
    ]


def _audit_figures(run: AuditRun) -> list[str]:
    return [f"{humanise(step)} {seconds(value)}" for step, value in run.timings.items()]


def test_a_requester_reads_no_timing_or_memory_of_a_job_or_its_audit(cast, adult_schema):
    request = approved_request_create(cast, adult_schema, rows=400)
    job = GenerationJob.objects.get(pk=generation_job_start(actor=cast.requester, request_id=request.pk).pk)
    run = AuditRun.objects.get(request=request)
    assert job.timings and job.peak_memory_bytes and run.timings, "the job and the audit were measured"

    for reader, sees in ((cast.requester, False), (cast.steward, True), (cast.auditor, True)):
        api, page = client_as(reader), Client()
        page.force_login(reader)
        answers = [
            api.get(f"/api/jobs/{job.pk}/").json(),
            api.get("/api/jobs/").json()["results"][0],
        ]
        for form in ([], ["--json"]):
            out = io.StringIO()
            call_command("job", "show", str(job.pk), "--as", reader.username, *form, stdout=out)
            if form:
                answers.append(json.loads(out.getvalue()))
            else:
                assert ("peak memory: -" not in out.getvalue()) is sees, out.getvalue()
        for answer in answers:
            assert (answer["timings"] == job.timings, answer["peak_memory_bytes"] == job.peak_memory_bytes) == (
                sees,
                sees,
            ), (reader.username, answer["timings"], answer["peak_memory_bytes"])
        progress = page.get(f"/jobs/{job.pk}/progress/").json()
        assert (progress["timings"] == job.timings) is sees
        shown = page.get(f"/jobs/{job.pk}/").content.decode()
        for figure in _job_figures(job):
            assert (figure in shown) is sees, (reader.username, figure)
        listed = page.get("/jobs/").content.decode()
        assert (seconds(job.timings["total"]) in listed) is sees
        audit_page = page.get(f"/audits/{run.pk}/").content.decode()
        for figure in _audit_figures(run):
            assert (figure in audit_page) is sees, (reader.username, figure)


def _ceiling_check(non_members: int) -> CheckResult:
    """The DP-ceiling check on the same members' scores beside ``non_members`` real non-members."""
    rng = np.random.default_rng(0)
    members, others = rng.normal(0, 1, 200), rng.normal(0, 1, 200)[:non_members]
    truth = np.r_[np.ones(len(members)), np.zeros(len(others))]
    scores = {attack: np.r_[members, others] for attack in ("domias", "distance")}
    result = dp_ceiling_check(truth, scores, (1.0, 1e-6))
    return CheckResult(
        name=result.name, category="membership", value=result.value, passed=result.passed, details=result.details
    )


def test_the_release_datasheets_dp_ceiling_does_not_tell_how_many_real_rows_were_scored():
    """The distinguishing game: holdouts of 160 and 161 real rows, the same attack scores. The judged
    ceilings differ (the internal report states them); the recipient's ceilings are identical."""
    internal = [[row.ceiling for row in _dp_ceiling([_ceiling_check(n)], exact=True).rows] for n in (160, 161)]
    assert internal[0] != internal[1], "one holdout row more moves the judged ceiling"
    shown = [_dp_ceiling([_ceiling_check(n)], exact=False) for n in (160, 161)]
    assert [row.ceiling for row in shown[0].rows] == [row.ceiling for row in shown[1].rows]
    assert [row.contradicted for row in shown[0].rows] == [row.contradicted for row in shown[1].rows]
    # the ceiling at the nominal FPR: e^ε · FPR + δ
    assert [row.ceiling for row in shown[0].rows] == pytest.approx([np.e * 0.01 + 1e-6, np.e * 0.001 + 1e-6] * 2)
    assert not shown[0].judged_ceiling and all(row.tpr is None and row.tpr_low is None for row in shown[0].rows)
