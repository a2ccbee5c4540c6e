"""Permission-aware reads of generation jobs: a job is visible when its request is."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet

from core.errors import NotFoundError
from governance.selectors import request_list
from synth_engine.models import GenerationJob


def job_list(*, user: AbstractUser) -> QuerySet[GenerationJob]:
    visible = request_list(user=user).values("pk")
    return GenerationJob.objects.filter(request__in=visible).select_related(
        "request", "request__dataset", "output_version", "holdout_version"
    )


def job_get(*, user: AbstractUser, job_id: int) -> GenerationJob:
    job = job_list(user=user).filter(pk=job_id).first()
    if job is None:
        raise NotFoundError(f"No job #{job_id}.")
    return job
