"""The REST API: one small APIView per operation. URL → APIView → service or selector.

Where two operations share a resource URL (GET lists, POST creates), a collection view
combines the two operation views; each keeps its own serializers and schema.
"""

from core.apis import ApiNotFoundApi
from governance.apis.audit import AuditEventListApi, AuditLogVerifyApi
from governance.apis.auth import AuthTokenCreateApi, AuthTokenListApi, AuthTokenRevokeApi, AuthTokenRotateApi
from governance.apis.datasets import (
    DatasetBudgetApi,
    DatasetCollectionApi,
    DatasetDeclareApi,
    DatasetDetailApi,
    DatasetListApi,
    DatasetRegisterApi,
    DatasetVersionCollectionApi,
    DatasetVersionCreateApi,
    DatasetVersionDetailApi,
    DatasetVersionListApi,
)
from governance.apis.outlook import RequestOutlookApi
from governance.apis.purposes import PurposeCollectionApi, PurposeCreateApi, PurposeDetailApi, PurposeListApi
from governance.apis.requests import (
    RequestApproveApi,
    RequestCollectionApi,
    RequestCreateApi,
    RequestDetailApi,
    RequestListApi,
    RequestRejectApi,
    RequestSubmitApi,
    RequestWithdrawApi,
)

__all__ = [
    "RequestOutlookApi",
    "ApiNotFoundApi",
    "AuditEventListApi",
    "AuditLogVerifyApi",
    "AuthTokenCreateApi",
    "AuthTokenListApi",
    "AuthTokenRevokeApi",
    "AuthTokenRotateApi",
    "DatasetBudgetApi",
    "DatasetCollectionApi",
    "DatasetDeclareApi",
    "DatasetDetailApi",
    "DatasetListApi",
    "DatasetRegisterApi",
    "DatasetVersionCollectionApi",
    "DatasetVersionCreateApi",
    "DatasetVersionDetailApi",
    "DatasetVersionListApi",
    "PurposeCollectionApi",
    "PurposeCreateApi",
    "PurposeDetailApi",
    "PurposeListApi",
    "RequestApproveApi",
    "RequestCollectionApi",
    "RequestCreateApi",
    "RequestDetailApi",
    "RequestListApi",
    "RequestRejectApi",
    "RequestSubmitApi",
    "RequestWithdrawApi",
]
