"""Query-string filters for the jobs API. They narrow what ``job_list`` already allows; no rules here."""

from __future__ import annotations

import django_filters

from core.apis import IntegerFilter
from synth_engine.models import GenerationJob, JobStatus


class JobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=JobStatus.choices, label="job status, e.g. running")
    request = IntegerFilter(field_name="request_id", min_value=1, label="the request's id")

    class Meta:
        model = GenerationJob
        fields = ["status", "request"]
