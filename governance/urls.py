"""The REST API's URLs, mounted at /api/. Resources by name; verbs only for real transitions."""

from django.urls import path

from governance import apis

urlpatterns = [
    path("auth/token/", apis.AuthTokenCreateApi.as_view(), name="auth-token"),
    path("auth/tokens/", apis.AuthTokenListApi.as_view(), name="auth-token-list"),
    path("auth/tokens/<str:token_key>/", apis.AuthTokenRevokeApi.as_view(), name="auth-token-revoke"),
    path("auth/tokens/<str:token_key>/rotate/", apis.AuthTokenRotateApi.as_view(), name="auth-token-rotate"),
    path("datasets/", apis.DatasetCollectionApi.as_view(), name="dataset-list"),
    path("datasets/<slug:name>/", apis.DatasetDetailApi.as_view(), name="dataset-detail"),
    path("datasets/<slug:name>/versions/", apis.DatasetVersionCollectionApi.as_view(), name="dataset-version-list"),
    path(
        "datasets/<slug:name>/versions/<int:number>/",
        apis.DatasetVersionDetailApi.as_view(),
        name="dataset-version-detail",
    ),
    path("datasets/<slug:name>/declare/", apis.DatasetDeclareApi.as_view(), name="dataset-declare"),
    path("datasets/<slug:name>/budget/", apis.DatasetBudgetApi.as_view(), name="dataset-budget"),
    path("purposes/", apis.PurposeCollectionApi.as_view(), name="purpose-list"),
    path("purposes/<slug:name>/", apis.PurposeDetailApi.as_view(), name="purpose-detail"),
    path("requests/", apis.RequestCollectionApi.as_view(), name="request-list"),
    path("requests/outlook/", apis.RequestOutlookApi.as_view(), name="request-outlook"),
    path("requests/<int:request_id>/", apis.RequestDetailApi.as_view(), name="request-detail"),
    path("requests/<int:request_id>/submit/", apis.RequestSubmitApi.as_view(), name="request-submit"),
    path("requests/<int:request_id>/approve/", apis.RequestApproveApi.as_view(), name="request-approve"),
    path("requests/<int:request_id>/reject/", apis.RequestRejectApi.as_view(), name="request-reject"),
    path("requests/<int:request_id>/withdraw/", apis.RequestWithdrawApi.as_view(), name="request-withdraw"),
    path("audit-events/", apis.AuditEventListApi.as_view(), name="audit-event-list"),
    path("audit-events/verify/", apis.AuditLogVerifyApi.as_view(), name="audit-log-verify"),
]
