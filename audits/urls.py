"""Audit URLs, mounted at /api/ (before the catch-all 404)."""

from django.urls import path

from audits import apis

urlpatterns = [
    path("audits/", apis.AuditRunListApi.as_view(), name="audit-list"),
    path("audits/external/", apis.AuditExternalApi.as_view(), name="audit-external"),
    path("audits/<int:run_id>/", apis.AuditRunDetailApi.as_view(), name="audit-detail"),
    path("audits/<int:run_id>/datasheet/", apis.AuditDatasheetApi.as_view(), name="audit-datasheet"),
    path("versions/<int:version_id>/audit/", apis.AuditRunOnDemandApi.as_view(), name="audit-on-demand"),
    path("datasheets/verify/", apis.DatasheetVerifyApi.as_view(), name="datasheet-verify"),
    path("requests/<int:request_id>/accept-risk/", apis.RiskAcceptApi.as_view(), name="audit-risk-accept"),
]
