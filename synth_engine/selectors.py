"""Permission-aware reads of generation jobs: a job is visible when its request is."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Collate

from core.errors import NotFoundError
from governance.selectors import request_list
from synth_engine.models import AssuranceRun, GenerationJob


def job_list(*, user: User) -> QuerySet[GenerationJob]:
    visible = request_list(user=user).values("pk")
    return GenerationJob.objects.filter(request__in=visible).select_related(
        "request", "request__dataset", "output_version", "holdout_version"
    )


def job_get(*, user: User, job_id: int) -> GenerationJob:
    job = job_list(user=user).filter(pk=job_id).first()
    if job is None:
        raise NotFoundError(f"No job #{job_id}.")
    return job


def assurance_run_list() -> QuerySet[AssuranceRun]:
    """Every assurance run, newest first (computed on public data: visible to every user)."""
    return AssuranceRun.objects.select_related("run_by")


def assurance_latest_list() -> QuerySet[AssuranceRun]:
    """The latest run of each (generator, generator version), generators in name order (code-point
    order, as Python sorts), newest first within a generator."""
    # a correlated subquery rather than DISTINCT ON, which SQLite (the embedded default) lacks
    newest_of_its_version = (
        AssuranceRun.objects.filter(generator=OuterRef("generator"), generator_version=OuterRef("generator_version"))
        .order_by("-created_at", "-id")
        .values("pk")[:1]
    )
    return (
        assurance_run_list()
        .filter(pk=Subquery(newest_of_its_version))
        .order_by(_in_code_point_order("generator"), "-created_at", "-id")
    )


def _in_code_point_order(field: str) -> Collate | F:
    """``field`` ordered by code point: PostgreSQL's "C" collation; SQLite's default (BINARY) is
    already that order and has no collation named "C"."""
    return Collate(field, "C") if connection.vendor == "postgresql" else F(field)


def assurance_latest(*, generator: str, generator_version: str | None = None) -> AssuranceRun | None:
    """The latest run for ``generator`` (at ``generator_version`` when given), or ``None``."""
    runs = assurance_run_list().filter(generator=generator)
    if generator_version is not None:
        runs = runs.filter(generator_version=generator_version)
    return runs.first()


def assurance_get(*, run_id: int) -> AssuranceRun:
    run = assurance_run_list().filter(pk=run_id).first()
    if run is None:
        raise NotFoundError(f"No assurance run #{run_id}.")
    return run
