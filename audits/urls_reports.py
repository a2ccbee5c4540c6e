"""Compliance report URLs, mounted at /api/."""

from django.urls import path

from audits.apis_reports import ComplianceReportApi

urlpatterns = [
    path("reports/compliance/", ComplianceReportApi.as_view(), name="compliance-report"),
]
