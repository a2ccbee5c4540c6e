"""REST API for generation jobs (start, read progress, cancel) and tables registered by reference."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError as ShapeError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import (
    PAGE_PARAMETERS,
    READ_ERRORS,
    WRITE_ERRORS,
    error_responses,
    filtered,
    list_parameters,
    paginated,
    paginated_response,
)
from core.auth import signed_in_user
from governance.apis.common import delta_field, epsilon_field
from governance.apis.datasets import RegistrationOutputSerializer, SchemaField
from governance.models import Sensitivity
from governance.permissions import run_measurements_visible
from synth_engine.filters import JobFilter
from synth_engine.models import GenerationJob
from synth_engine.selectors import (
    assurance_get,
    assurance_latest_list,
    assurance_run_list,
    job_get,
    job_list,
)
from synth_engine.sources import ENGINES, source_register


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
    timings = serializers.JSONField(
        help_text="seconds per phase; empty for anyone but stewards, approvers and auditors (they scale with the "
        "real rows)"
    )
    peak_memory_bytes = serializers.IntegerField(
        allow_null=True, help_text="null for anyone but stewards, approvers and auditors (it scales with the real rows)"
    )
    library_versions = serializers.JSONField()
    privacy_spent = serializers.JSONField()
    warnings = serializers.JSONField()
    error = serializers.CharField()
    output_version = serializers.IntegerField(source="output_version_id", allow_null=True)
    holdout_version = serializers.IntegerField(source="holdout_version_id", allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, instance: GenerationJob) -> dict[str, Any]:
        """The job; its timings and peak memory only for a ``viewer`` who may read them (none given: no one)."""
        data: dict[str, Any] = super().to_representation(instance)
        if not run_measurements_visible(self.context.get("viewer")):
            data["timings"], data["peak_memory_bytes"] = {}, None
        return data


class JobListApi(APIView):
    @extend_schema(
        operation_id="job_list",
        parameters=list_parameters(JobFilter),
        responses={200: paginated(JobOutputSerializer, "PaginatedJobList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """Jobs of the requests you may see, newest first; filter by status or request."""
        queryset = filtered(JobFilter, request, job_list(user=signed_in_user(request)))
        return paginated_response(
            request=request,
            view=self,
            queryset=queryset,
            serializer_class=JobOutputSerializer,
            context={"viewer": signed_in_user(request)},
        )


class JobStartApi(APIView):
    @extend_schema(
        operation_id="job_start",
        request=None,
        responses={201: JobOutputSerializer, **WRITE_ERRORS, **error_responses(503)},
    )
    def post(self, request: Request, request_id: int) -> Response:
        """Approved → generating: start the request's generation job (queued, or in-process without a broker)."""
        # The jobs service (pandas, scikit-learn) loads on the first job, not with the URLconf.
        from synth_engine.services import generation_job_start

        job = generation_job_start(actor=signed_in_user(request), request_id=request_id)
        job.refresh_from_db()
        return Response(JobOutputSerializer(job, context={"viewer": signed_in_user(request)}).data, status=201)


class JobDetailApi(APIView):
    @extend_schema(operation_id="job_get", responses={200: JobOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, job_id: int) -> Response:
        """One job: status, phase, progress, timings, memory and privacy spent."""
        viewer = signed_in_user(request)
        return Response(JobOutputSerializer(job_get(user=viewer, job_id=job_id), context={"viewer": viewer}).data)


class JobCancelApi(APIView):
    @extend_schema(operation_id="job_cancel", request=None, responses={200: JobOutputSerializer, **WRITE_ERRORS})
    def post(self, request: Request, job_id: int) -> Response:
        """Cancel a queued job, or ask a running one to stop; 409 when it has already ended."""
        job_get(user=signed_in_user(request), job_id=job_id)
        from synth_engine.services import generation_job_cancel

        job = generation_job_cancel(actor=signed_in_user(request), job_id=job_id)
        return Response(JobOutputSerializer(job, context={"viewer": signed_in_user(request)}).data)


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


class SourceRegisterApi(APIView):
    """Data registered where it lives: a table of a configured source database, or Parquet files."""

    class InputSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        engine = serializers.ChoiceField(
            choices=sorted(ENGINES),
            required=False,
            help_text="where the data lives; implied when omitted (path: duckdb, connection and table: postgresql)",
        )
        connection = serializers.CharField(
            max_length=100,
            required=False,
            default="",
            help_text="postgresql: a source database named in SYNTHGATE_SOURCE_DATABASES (its name, not a URL)",
        )
        table = serializers.CharField(
            max_length=300,
            required=False,
            default="",
            help_text="postgresql: 'table' or 'schema.table'; spark: a catalog table 'database.table' in a "
            "database of SYNTHGATE_SOURCE_SPARK_DATABASES",
        )
        path = serializers.CharField(
            max_length=1000,
            required=False,
            default="",
            help_text="duckdb or spark: a Parquet file, a directory of them or a glob, under "
            "SYNTHGATE_SOURCE_PARQUET_ROOTS; duckdb also: an s3://bucket/prefix URL under SYNTHGATE_SOURCE_S3_ROOTS",
        )
        schema = SchemaField(
            help_text="the columns to model (required; no value is read into it): a column given without a type, "
            "or marked type_proposed, takes the type its catalog maps to only as a proposal, to declare "
            "(POST /api/datasets/NAME/declare/) before the dataset can be requested"
        )
        epsilon_cap = epsilon_field()
        delta_cap = delta_field()
        description = serializers.CharField(required=False, allow_blank=True, default="")
        sensitivity = serializers.ChoiceField(choices=Sensitivity.choices, default=Sensitivity.CONFIDENTIAL)
        cap_override_reason = serializers.CharField(required=False, allow_blank=True, default="")
        overlap_override_reason = serializers.CharField(required=False, allow_blank=True, default="")
        declared_rows = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            help_text="the table's exact row count, declared public (a published census count): refused unless "
            "it is the count the engine computes; then no DP estimate of the size is charged",
        )

        class Meta:
            ref_name = "SourceRegisterInput"

    @extend_schema(
        operation_id="source_register",
        request=InputSerializer,
        responses={201: RegistrationOutputSerializer, 200: RegistrationOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        """Register data by reference (steward): checked, counted, checksummed and fingerprinted
        where it lives; nothing is stored but the version's record.

        201 when a version is created; 200 when the same data, content and schema is already registered.
        """
        serializer = SourceRegisterApi.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = source_register(actor=signed_in_user(request), **serializer.validated_data)
        data = RegistrationOutputSerializer(result, context={"viewer": signed_in_user(request)}).data
        return Response(data, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
