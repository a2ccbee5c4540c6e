"""Dashboard pages, mounted at /. Resources by name; verbs only for real transitions."""

from django.contrib.auth import views as auth_views
from django.urls import path

from dashboard.views import (
    assurance,
    audit_log,
    audits,
    compliance,
    datasets,
    home,
    jobs,
    people,
    releases,
    requests,
    sources,
)

app_name = "dashboard"

urlpatterns = [
    path("", home.home, name="home"),
    path(
        "accounts/login/",
        home.LoginView.as_view(),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="dashboard:login"), name="logout"),
    path("datasets/", datasets.dataset_list, name="dataset-list"),
    path("datasets/new/", datasets.dataset_register, name="dataset-register"),
    path("datasets/new/source/", sources.source_register_view, name="source-register"),
    path("datasets/<slug:name>/", datasets.dataset_detail, name="dataset-detail"),
    path("datasets/<slug:name>/declare/", datasets.dataset_declare, name="dataset-declare"),
    path("datasets/<slug:name>/schema/", datasets.dataset_schema, name="dataset-schema"),
    path("requests/", requests.request_list, name="request-list"),
    path("requests/new/", requests.request_create, name="request-create"),
    path("requests/<int:request_id>/", requests.request_detail, name="request-detail"),
    path("requests/<int:request_id>/submit/", requests.request_submit, name="request-submit"),
    path("requests/<int:request_id>/approve/", requests.request_approve, name="request-approve"),
    path("requests/<int:request_id>/reject/", requests.request_reject, name="request-reject"),
    path("requests/<int:request_id>/withdraw/", requests.request_withdraw, name="request-withdraw"),
    path("requests/<int:request_id>/accept-risk/", requests.request_accept_risk, name="request-accept-risk"),
    path("requests/<int:request_id>/generate/", requests.request_generate, name="request-generate"),
    path("requests/<int:request_id>/release/", requests.request_release, name="request-release"),
    path("jobs/", jobs.job_list_page, name="job-list"),
    path("jobs/<int:job_id>/", jobs.job_detail, name="job-detail"),
    path("jobs/<int:job_id>/progress/", jobs.job_progress, name="job-progress"),
    path("jobs/<int:job_id>/cancel/", jobs.job_cancel, name="job-cancel"),
    path("assurance/", assurance.assurance_list, name="assurance-list"),
    path("audits/", audits.audit_list, name="audit-list"),
    path("audits/<int:run_id>/", audits.audit_detail, name="audit-detail"),
    path("releases/", releases.release_list_page, name="release-list"),
    path("releases/<int:release_id>/", releases.release_detail, name="release-detail"),
    path("releases/<int:release_id>/download/<str:kind>/", releases.release_download, name="release-download"),
    path("releases/<int:release_id>/revoke/", releases.release_revoke, name="release-revoke"),
    path("compliance/", compliance.compliance, name="compliance"),
    path("audit-log/", audit_log.audit_log, name="audit-log"),
    path("people/", people.people, name="people"),
    path("purposes/", people.purposes, name="purposes"),
    path("audit-log/export.csv", audit_log.audit_log_export, name="audit-log-export"),
    path("compliance/report.<str:format>", compliance.compliance_download, name="compliance-download"),
]
