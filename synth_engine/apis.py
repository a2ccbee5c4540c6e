"""REST API for generation jobs: start, read progress, cancel."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import DefaultPagination
from core.auth import signed_in_user
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
    @extend_schema(responses=JobOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        queryset = job_list(user=signed_in_user(request))
        if status := request.query_params.get("status"):
            queryset = queryset.filter(status=status)
        if request_id := request.query_params.get("request"):
            queryset = queryset.filter(request_id=request_id)
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(JobOutputSerializer(page, many=True).data)


class JobStartApi(APIView):
    @extend_schema(request=None, responses={201: JobOutputSerializer})
    def post(self, request: Request, request_id: int) -> Response:
        job = generation_job_start(actor=signed_in_user(request), request_id=request_id)
        job.refresh_from_db()
        return Response(JobOutputSerializer(job).data, status=201)


class JobDetailApi(APIView):
    @extend_schema(responses=JobOutputSerializer)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(JobOutputSerializer(job_get(user=signed_in_user(request), job_id=job_id)).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobOutputSerializer)
    def post(self, request: Request, job_id: int) -> Response:
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

    @extend_schema(responses=AssuranceRunOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        runs = assurance_run_list() if request.query_params.get("all") else assurance_latest_list()
        paginator = DefaultPagination()
        page = paginator.paginate_queryset(runs, request, view=self)
        return paginator.get_paginated_response(AssuranceRunOutputSerializer(page, many=True).data)


class AssuranceRunDetailApi(APIView):
    @extend_schema(responses=AssuranceRunOutputSerializer)
    def get(self, request: Request, run_id: int) -> Response:
        return Response(AssuranceRunOutputSerializer(assurance_get(run_id=run_id)).data)
