from django.urls import path

from synth_engine import apis

urlpatterns = [
    path("jobs/", apis.JobListApi.as_view(), name="job-list"),
    path("jobs/<int:job_id>/", apis.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<int:job_id>/cancel/", apis.JobCancelApi.as_view(), name="job-cancel"),
    path("assurance/", apis.AssuranceRunListApi.as_view(), name="assurance-list"),
    path("assurance/<int:run_id>/", apis.AssuranceRunDetailApi.as_view(), name="assurance-detail"),
    path("requests/<int:request_id>/generate/", apis.JobStartApi.as_view(), name="job-start"),
    path("sources/", apis.SourceRegisterApi.as_view(), name="source-register"),
]
