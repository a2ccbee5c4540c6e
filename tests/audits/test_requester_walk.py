"""Everything a requester can read is a release: a canary row run through the whole path never
shows through any route the requester can open (API, dashboard, downloads, the request outlook,
the CLI), no exact share of the real training rows appears in a JSON answer, and neither does the
exact number of real rows (source, training or holdout: the row count is private, issue 11.2).

The canary is one person with a category nobody else holds and a value far outside every other
row (987,654,321) in a column whose domain is private. The audit's internal diagnostics name
both (that is their job); the requester's views must not.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from audits.datasheets import render_datasheet_html
from audits.facts import datasheet_facts
from audits.models import AuditRun, Release
from governance.models import DatasetVersion, RequestState
from governance.services import access_request_approve, dataset_register
from synth_engine.models import GenerationJob
from synth_engine.services import generation_job_start
from tests.governance.factories import FIXTURES, PurposeFactory, request_file
from tests.jobs.test_api_releases import client_as

pytestmark = pytest.mark.django_db(transaction=True)

CANARY_CATEGORY = "Zq-canary-trade"
CANARY_VALUE = 987_654_321
SOURCE_ROWS = 1937
FORBIDDEN = (CANARY_CATEGORY, "987654321", "987,654,321", "987 654 321", "9.877e+08", "9.8765e+08", "987654320")


def _canary_source(folder: Path, schema: dict) -> tuple[Path, dict]:
    # 1,936 + 1 rows: source, training and holdout sizes that no page shows by coincidence.
    frame = pd.read_csv(FIXTURES / "adult_2000.csv", dtype=str, keep_default_na=False).iloc[: SOURCE_ROWS - 1]
    canary = frame.iloc[[0]].copy()
    canary["occupation"] = CANARY_CATEGORY
    canary["fnlwgt"] = str(CANARY_VALUE)
    frame = pd.concat([frame, canary], ignore_index=True)
    # fnlwgt's domain becomes private (no declared bounds), so the canary's value is data, not clipped.
    for column in schema["columns"]:
        if column["name"] == "fnlwgt":
            for key in ("min", "max", "domain_source"):
                column.pop(key, None)
    path = folder / "canary.csv"
    frame.to_csv(path, index=False)
    return path, schema


def _count_patterns(counts: set[int]) -> list[re.Pattern]:
    """A row count as a number token: 1937, 1,937, 1 937 or 1937.0; not inside a hash or a float."""
    patterns = []
    for count in counts:
        text = str(count)
        head, tail = text[:-3], text[-3:]
        body = rf"{head}[,\u202f\u00a0 ]?{tail}" if head else tail
        patterns.append(re.compile(rf"(?<![\w.,]){body}(?:\.0+)?(?![\w]|[.,]\d)"))
    return patterns


def _check_text(where: str, text: str, counts: list[re.Pattern], hashes: tuple[str, ...] = ()) -> None:
    for needle in FORBIDDEN:
        assert needle not in text, f"{where} shows {needle!r} to the requester"
    for needle in hashes:  # a real version's sha256 (or its first 12 digits, as pages abbreviate it)
        assert needle not in text, f"{where} shows the sha256 of real rows ({needle}…) to the requester"
    for pattern in counts:
        match = pattern.search(text)
        assert match is None, (
            f"{where} shows the exact real row count {match.group(0)!r} to the requester: "
            f"…{text[max(0, match.start() - 80) : match.end() + 80]}…"
        )


def _routes(patterns=None, prefix: str = ""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _urls(values: dict[str, list[str]]) -> list[str]:
    """Every GET-able route, each parameter filled with every value the requester's objects give it."""
    urls = []
    for route in _routes():
        if route.startswith("admin/") or route.startswith("^") or "(?P" in route:
            continue
        filled = ["/" + route]
        for name in re.findall(r"<(?:\w+:)?(\w+)>", route):
            options = values.get(name, [])
            filled = [re.sub(rf"<(?:\w+:)?{name}>", str(option), url, count=1) for url in filled for option in options]
        urls += filled
    return sorted(set(urls))


def _floats(node) -> list[float]:
    if isinstance(node, float):
        return [node]
    if isinstance(node, dict):
        return [value for item in node.values() for value in _floats(item)]
    if isinstance(node, list):
        return [value for item in node for value in _floats(item)]
    return []


def _synthetic_counts(version: DatasetVersion) -> set[int]:
    """Every count of a value in a column of the released rows."""
    frame = pd.read_csv(Path(settings.DATA_DIR) / version.storage_key, dtype=str, keep_default_na=False)
    return {int(count) for column in frame.columns for count in frame[column].value_counts()}


def _real_shares(train: DatasetVersion) -> set[float]:
    """Exact shares of each category in the real training rows, where they are not round numbers."""
    frame = pd.read_csv(Path(settings.DATA_DIR) / train.storage_key, dtype=str, keep_default_na=False)
    shares = set()
    for column in frame.columns:
        if frame[column].nunique() <= 50:
            for share in frame[column].value_counts(normalize=True):
                # Skip shares a rounded value or a synthetic share (k / a few hundred rows) could equal
                # by coincidence: only fractions needing the training set's own size are distinctive.
                simple = Fraction(float(share)).limit_denominator(1000)
                if abs(float(simple) - share) > 1e-12:
                    shares.add(float(share))
    return shares


def test_no_route_the_requester_can_open_shows_the_canary_or_an_exact_real_share(cast, adult_schema):
    PurposeFactory(name="research", approvals_required=2)
    with tempfile.TemporaryDirectory() as folder:
        path, schema = _canary_source(Path(folder), adult_schema)
        dataset_register(
            actor=cast.steward,
            name="canary",
            path=path,
            filename=path.name,
            epsilon_cap="10",
            delta_cap="1e-5",
            schema=schema,
        )
    # a fixed seed whose split puts the canary in the training rows and whose synthetic counts (the
    # profile tables) happen not to equal a real size (11 gave 388 Male rows: the holdout size)
    request = request_file(requester=cast.requester, dataset_name="canary", n_rows=600, seed=13)
    access_request_approve(actor=cast.approver, request_id=request.pk)
    access_request_approve(actor=cast.second_approver, request_id=request.pk)
    job = generation_job_start(actor=cast.requester, request_id=request.pk)
    job = GenerationJob.objects.get(pk=job.pk)
    request.refresh_from_db()
    runs = list(AuditRun.objects.filter(request=request))
    assert runs, "the automatic audit ran"
    # The internal diagnostics do hold the canary: the walk below is not vacuous.
    internal = json.dumps([check.details for run in runs for check in run.checks.all()], default=str)
    internal += json.dumps([check.chart for run in runs for check in run.checks.all()], default=str)
    assert CANARY_CATEGORY in internal or str(CANARY_VALUE) in internal

    if request.state == RequestState.READY:
        from audits.services import release_create

        release_create(actor=cast.approver, request_id=request.pk)
    versions = DatasetVersion.objects.filter(dataset__name="canary")
    values = {
        "name": ["canary"],
        "number": [str(v.number) for v in versions],
        "request_id": [str(request.pk)],
        "job_id": [str(job.pk)],
        "run_id": [str(run.pk) for run in runs],
        "version_id": [str(v.pk) for v in versions],
        "release_id": [str(r.pk) for r in Release.objects.filter(request=request)],
        "kind": ["data", "datasheet", "csv", "parquet"],
        "format": ["csv", "json", "pdf"],
    }
    shares = _real_shares(job.train_version)
    source = DatasetVersion.objects.get(dataset__name="canary", kind="source")
    counts = {source.n_rows, job.train_version.n_rows, job.holdout_version.n_rows}
    assert source.n_rows == SOURCE_ROWS
    # A count of the released rows (a profile's category count) may equal the holdout's size by
    # coincidence: the release's DP fit varies with the version's row estimate. Such a count is a
    # statistic of the synthetic rows, so it is not looked for (the source's count stays above
    # every count of 600 rows).
    counts -= _synthetic_counts(job.output_version)
    assert SOURCE_ROWS in counts
    count_patterns = _count_patterns(counts)
    # The sha256 of real rows would let whoever knows every other row test guesses of the canary's:
    # a requester reads a real version's keyed fingerprint instead.
    hashes = tuple(v.content_hash[:12] for v in (source, job.train_version, job.holdout_version))
    api, page = client_as(cast.requester), Client()
    page.force_login(cast.requester)

    opened = 0
    for url in _urls(values):
        client = api if url.startswith("/api/") else page
        response = client.get(url)
        if response.status_code != 200 or getattr(response, "streaming", False):
            continue
        content_type = response.get("Content-Type", "")
        if not any(kind in content_type for kind in ("json", "html", "csv", "text")):
            continue
        opened += 1
        text = response.content.decode("utf-8", errors="replace")
        _check_text(url, text, count_patterns, hashes)
        if "json" in content_type:
            leaked = [value for value in _floats(response.json()) if any(abs(value - s) < 1e-12 for s in shares)]
            assert not leaked, f"{url} shows exact shares of the real training rows: {leaked[:5]}"
    assert opened >= 15, f"the walk opened only {opened} pages"

    # The outlook (API, dashboard preview, CLI) at a size above the holdout, where the membership
    # checks would score every holdout row.
    fields = {"dataset": "canary", "purpose": "research", "epsilon": "1", "delta": "1e-6", "n_rows": 3000}
    response = api.post("/api/requests/outlook/", fields, format="json")
    assert response.status_code == 200, response.content
    _check_text("the outlook API", response.content.decode(), count_patterns)
    preview = {**fields, "generator": "mst", "recipient_kind": "internal", "preview": "1", "justification": "x" * 40}
    response = page.post("/requests/new/", preview)
    assert b"Predicted" in response.content, response.status_code
    _check_text("the outlook preview", response.content.decode(), count_patterns)

    # The recipient's release datasheet (the PDF's HTML before rendering): no real row count either.
    # The audit may block the request; the recipient datasheet is built the same way either way
    # (an unsaved release of the audited version).
    releases = list(Release.objects.filter(request=request)) or [
        Release(
            request=request,
            version=runs[0].version,
            audit_run=runs[0],
            released_by=cast.approver,
            created_at=timezone.now(),
            expires_at=timezone.now(),
        )
    ]
    for release in releases:
        html = render_datasheet_html(datasheet_facts(release.audit_run, release=release))
        _check_text("the release datasheet", html, count_patterns, hashes)
        assert "row count not disclosed to recipients" in html and "Source fingerprint" in html
    internal = render_datasheet_html(datasheet_facts(runs[0]))
    assert any(pattern.search(internal) for pattern in count_patterns), "the internal report states the counts"
    assert source.content_hash in internal, "the internal report names the source by its sha256"

    # The CLI acting as the requester: `audit show`, `dataset show`, `request outlook`, in both forms.
    commands = [["audit", "show", str(run.pk)] for run in runs] + [["dataset", "show", "canary"]]
    commands.append(
        ["request", "outlook", "--dataset", "canary", "--purpose", "research"]
        + ["--epsilon", "1", "--delta", "1e-6", "--rows", "3000"]
    )
    for command in commands:
        for form in ([], ["--json"]):
            out = io.StringIO()
            call_command(*command, "--as", cast.requester.username, *form, stdout=out)
            _check_text(" ".join(command + form), out.getvalue(), count_patterns, hashes)
