"""The audits app's API URLs (audits, datasheets, releases, compliance reports), mounted at /api/
(before the catch-all 404)."""

from django.urls import path

from audits.apis import releases, reports, runs

urlpatterns = [
    path("audits/", runs.AuditRunListApi.as_view(), name="audit-list"),
    path("audits/external/", runs.AuditExternalApi.as_view(), name="audit-external"),
    path("audits/<int:run_id>/", runs.AuditRunDetailApi.as_view(), name="audit-detail"),
    path("audits/<int:run_id>/datasheet/", runs.AuditDatasheetApi.as_view(), name="audit-datasheet"),
    path("versions/<int:version_id>/audit/", runs.AuditRunOnDemandApi.as_view(), name="audit-on-demand"),
    path("datasheets/verify/", runs.DatasheetVerifyApi.as_view(), name="datasheet-verify"),
    path("requests/<int:request_id>/release/", releases.ReleaseCreateApi.as_view(), name="release-create"),
    path("releases/", releases.ReleaseListApi.as_view(), name="release-list"),
    path("releases/<int:release_id>/", releases.ReleaseDetailApi.as_view(), name="release-detail"),
    path("releases/<int:release_id>/download/", releases.ReleaseDownloadApi.as_view(), name="release-download"),
    path("releases/<int:release_id>/revoke/", releases.ReleaseRevokeApi.as_view(), name="release-revoke"),
    path("requests/<int:request_id>/accept-risk/", runs.RiskAcceptApi.as_view(), name="audit-risk-accept"),
    path("reports/compliance/", reports.ComplianceReportApi.as_view(), name="compliance-report"),
]
