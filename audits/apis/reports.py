"""Compliance reports over the REST API: JSON in the body, or a CSV or signed PDF file."""

from __future__ import annotations

from django.http import HttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from audits.models import ReportFormat
from core.apis import READ_ERRORS, FileAnswerApi
from core.auth import signed_in_user


class ComplianceReportApi(FileAnswerApi):  # ?format= is pdf, csv or json
    class InputSerializer(serializers.Serializer):
        def get_fields(self) -> dict[str, serializers.Field]:
            # "from" is a Python keyword, so the fields are declared here rather than as attributes.
            return {
                "from": serializers.DateField(help_text="first day of the period (UTC), inclusive"),
                "to": serializers.DateField(help_text="last day of the period (UTC), inclusive"),
                "dataset": serializers.CharField(required=False, allow_blank=True, default=""),
                "purpose": serializers.CharField(required=False, allow_blank=True, default=""),
                "format": serializers.ChoiceField(choices=ReportFormat.values, default=ReportFormat.JSON),
            }

        class Meta:
            ref_name = "ComplianceReportInput"

    @extend_schema(
        operation_id="compliance_report",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, required=True),
            OpenApiParameter("to", OpenApiTypes.DATE, required=True),
            OpenApiParameter("dataset", OpenApiTypes.STR),
            OpenApiParameter("purpose", OpenApiTypes.STR),
            OpenApiParameter("format", OpenApiTypes.STR, enum=ReportFormat.values),
        ],
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/pdf"): OpenApiTypes.BINARY,
            **READ_ERRORS,
        },
    )
    def get(self, request: Request) -> HttpResponseBase:
        """A compliance report for a period (stewards and auditors); every report is logged."""
        from audits.compliance import compliance_report_render

        params = self.InputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        rendered = compliance_report_render(
            actor=signed_in_user(request),
            date_from=data["from"],
            date_to=data["to"],
            dataset=data["dataset"] or None,
            purpose=data["purpose"] or None,
            format=data["format"],
        )
        if data["format"] == ReportFormat.JSON:
            response: HttpResponseBase = Response(rendered.data)
        else:
            response = HttpResponse(rendered.content, content_type=rendered.content_type)
            response["Content-Disposition"] = f'attachment; filename="{rendered.filename}"'
        response["X-Synthgate-Report-SHA256"] = rendered.sha256
        return response
