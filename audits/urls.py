"""Audit URLs, mounted at /api/ (before the catch-all 404)."""

from django.urls import path

from audits import apis, apis_releases

urlpatterns = [
    path("audits/", apis.AuditRunListApi.as_view(), name="audit-list"),
    path("audits/external/", apis.AuditExternalApi.as_view(), name="audit-external"),
    path("audits/<int:run_id>/", apis.AuditRunDetailApi.as_view(), name="audit-detail"),
    path("audits/<int:run_id>/datasheet/", apis.AuditDatasheetApi.as_view(), name="audit-datasheet"),
    path("versions/<int:version_id>/audit/", apis.AuditRunOnDemandApi.as_view(), name="audit-on-demand"),
    path("datasheets/verify/", apis.DatasheetVerifyApi.as_view(), name="datasheet-verify"),
    path("requests/<int:request_id>/release/", apis_releases.ReleaseCreateApi.as_view(), name="release-create"),
    path("releases/", apis_releases.ReleaseListApi.as_view(), name="release-list"),
    path("releases/<int:release_id>/", apis_releases.ReleaseDetailApi.as_view(), name="release-detail"),
    path("releases/<int:release_id>/download/", apis_releases.ReleaseDownloadApi.as_view(), name="release-download"),
    path("releases/<int:release_id>/revoke/", apis_releases.ReleaseRevokeApi.as_view(), name="release-revoke"),
    path("requests/<int:request_id>/accept-risk/", apis.RiskAcceptApi.as_view(), name="audit-risk-accept"),
]
