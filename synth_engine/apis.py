"""REST API for generation jobs: start, read progress, cancel."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError as ShapeError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import (
    PAGE_PARAMETERS,
    READ_ERRORS,
    WRITE_ERRORS,
    filtered,
    list_parameters,
    paginated,
    paginated_response,
)
from core.auth import signed_in_user
from synth_engine.filters import JobFilter
from synth_engine.selectors import (
    assurance_get,
    assurance_latest_list,
    assurance_run_list,
    job_get,
    job_list,
)
from synth_engine.services import generation_job_cancel, generation_job_start


class JobOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    request = serializers.IntegerField(source="request_id")
    generator = serializers.CharField()
    parameters = serializers.JSONField()
    seed_policy = serializers.CharField()
    seed = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    phase = serializers.CharField()
    progress = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    attempts = serializers.IntegerField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    data_touched_at = serializers.DateTimeField(allow_null=True)
    timings = serializers.JSONField()
    peak_memory_bytes = serializers.IntegerField(allow_null=True)
    library_versions = serializers.JSONField()
    privacy_spent = serializers.JSONField()
    warnings = serializers.JSONField()
    error = serializers.CharField()
    output_version = serializers.IntegerField(source="output_version_id", allow_null=True)
    holdout_version = serializers.IntegerField(source="holdout_version_id", allow_null=True)
    created_at = serializers.DateTimeField()


class JobListApi(APIView):
    @extend_schema(
        operation_id="job_list",
        parameters=list_parameters(JobFilter),
        responses={200: paginated(JobOutputSerializer, "PaginatedJobList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """Jobs of the requests you may see, newest first; filter by status or request."""
        queryset = filtered(JobFilter, request, job_list(user=signed_in_user(request)))
        return paginated_response(request=request, view=self, queryset=queryset, serializer_class=JobOutputSerializer)


class JobStartApi(APIView):
    @extend_schema(operation_id="job_start", request=None, responses={201: JobOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, request_id: int) -> Response:
        """Approved → generating: start the request's generation job (queued, or in-process without a broker)."""
        job = generation_job_start(actor=signed_in_user(request), request_id=request_id)
        job.refresh_from_db()
        return Response(JobOutputSerializer(job).data, status=201)


class JobDetailApi(APIView):
    @extend_schema(operation_id="job_get", responses={200: JobOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, job_id: int) -> Response:
        """One job: status, phase, progress, timings, memory and privacy spent."""
        return Response(JobOutputSerializer(job_get(user=signed_in_user(request), job_id=job_id)).data)


class JobCancelApi(APIView):
    @extend_schema(operation_id="job_cancel", request=None, responses={200: JobOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, job_id: int) -> Response:
        """Cancel a queued job, or ask a running one to stop; 409 when it has already ended."""
        job_get(user=signed_in_user(request), job_id=job_id)
        return Response(JobOutputSerializer(generation_job_cancel(actor=signed_in_user(request), job_id=job_id)).data)


class AssuranceRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    generator = serializers.CharField()
    generator_version = serializers.CharField()
    parameters = serializers.JSONField()
    epsilon = serializers.FloatField()
    delta = serializers.FloatField()
    runs = serializers.IntegerField()
    n_rows = serializers.IntegerField()
    status = serializers.CharField()
    epsilon_lower_bound = serializers.FloatField()
    mu_ratio = serializers.FloatField()
    seconds = serializers.FloatField()
    report = serializers.JSONField()
    created_at = serializers.DateTimeField()


class AssuranceRunListApi(APIView):
    """The latest assurance run of every generator version (``?all=1``: every run)."""

    @extend_schema(
        operation_id="assurance_run_list",
        parameters=[
            OpenApiParameter("all", OpenApiTypes.BOOL, description="every run, not only each generator's latest"),
            *PAGE_PARAMETERS,
        ],
        responses={200: paginated(AssuranceRunOutputSerializer, "PaginatedAssuranceRunList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        runs = assurance_run_list() if _flag(request, "all") else assurance_latest_list()
        return paginated_response(
            request=request, view=self, queryset=runs, serializer_class=AssuranceRunOutputSerializer
        )


class AssuranceRunDetailApi(APIView):
    @extend_schema(operation_id="assurance_run_get", responses={200: AssuranceRunOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, run_id: int) -> Response:
        return Response(AssuranceRunOutputSerializer(assurance_get(run_id=run_id)).data)


def _flag(request: Request, name: str) -> bool:
    """A boolean query parameter: true/1/yes or false/0/no (absent is false); anything else is a 400."""
    value = request.query_params.get(name)
    if value is None:
        return False
    if value.lower() in {"true", "1", "yes"}:
        return True
    if value.lower() in {"false", "0", "no"}:
        return False
    raise ShapeError({name: [f"{value!r} is not a boolean (use true or false)."]})
