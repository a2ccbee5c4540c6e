"""Releases: the gate (create), reads, logged downloads with expiry, and revocation."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audits import selectors, services
from audits.models import DownloadKind, Release
from audits.selectors import release_exceptions, released_despite_failed_checks
from core.apis import PAGE_PARAMETERS, READ_ERRORS, WRITE_ERRORS, FileAnswerApi, paginated, paginated_response
from core.auth import signed_in_user
from governance.output_formats import CONTENT_TYPES, SUFFIXES, key_format


class DownloadOutputSerializer(serializers.Serializer):
    user = serializers.CharField(source="user.username")
    kind = serializers.CharField(help_text="data or datasheet")
    channel = serializers.CharField(help_text="api, web or cli")
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "ReleaseDownload"


class ReleaseExceptionSerializer(serializers.Serializer):
    check = serializers.CharField(help_text="the failed check the approver accepted")
    category = serializers.CharField()
    value = serializers.FloatField(
        allow_null=True, help_text="exact for stewards, approvers and auditors; two decimals for anyone else"
    )
    threshold = serializers.FloatField(allow_null=True)
    direction = serializers.CharField()
    approver = serializers.CharField(help_text="who accepted the risk of this check")
    accepted_at = serializers.DateTimeField()
    reason = serializers.CharField(help_text="the approver's reason for accepting this check")

    class Meta:
        ref_name = "ReleaseException"


class ReleaseOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    request = serializers.IntegerField(source="request_id")
    version = serializers.IntegerField(source="version_id", help_text="id of the released synthetic version")
    version_number = serializers.IntegerField(source="version.number")
    version_hash = serializers.CharField(source="version.content_hash")
    n_rows = serializers.IntegerField(source="version.n_rows")
    audit_run = serializers.IntegerField(source="audit_run_id")
    datasheet_sha256 = serializers.CharField(
        source="release_datasheet.sha256",
        allow_null=True,
        default=None,
        help_text="SHA-256 of the signed release datasheet (verify it with datasheet verify --release)",
    )
    released_by = serializers.CharField(source="released_by.username")
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    revoked_by = serializers.CharField(source="revoked_by.username", allow_null=True, default=None)
    revoke_reason = serializers.CharField()
    stale_at = serializers.DateTimeField(allow_null=True)
    active = serializers.SerializerMethodField(help_text="downloadable now: neither revoked nor expired")
    despite_failed_checks = serializers.SerializerMethodField(
        help_text="an exception: released although its audit did not pass (an approver accepted the risk)"
    )
    exceptions = serializers.SerializerMethodField(
        help_text="each accepted failed check with its value, who accepted it, when and why; empty when it passed"
    )

    class Meta:
        ref_name = "Release"

    def get_active(self, release: Release) -> bool:
        return release.revoked_at is None and release.expires_at > timezone.now()

    def get_despite_failed_checks(self, release: Release) -> bool:
        return released_despite_failed_checks(release)

    @extend_schema_field(ReleaseExceptionSerializer(many=True))
    def get_exceptions(self, release: Release) -> list[dict[str, Any]]:
        exceptions = release_exceptions(release=release, user=self.context["user"])
        return list(ReleaseExceptionSerializer(exceptions, many=True).data)


class ReleaseDetailOutputSerializer(ReleaseOutputSerializer):
    downloads = DownloadOutputSerializer(many=True, source="downloads.all", help_text="every download, oldest first")

    class Meta:
        ref_name = "ReleaseDetail"


def _detail(request: Request, release: Release, status_code: int = status.HTTP_200_OK) -> Response:
    context = {"user": signed_in_user(request)}
    return Response(ReleaseDetailOutputSerializer(release, context=context).data, status=status_code)


class ReleaseCreateApi(APIView):
    @extend_schema(
        operation_id="release_create", request=None, responses={201: ReleaseDetailOutputSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, request_id: int) -> Response:
        """Release a ready request (steward or approver).

        409 lists every unmet condition in ``extra.unmet_conditions``: approvals, a passed audit (or an
        accepted risk), a signed datasheet, and the request's state.
        """
        return _detail(
            request,
            services.release_create(actor=signed_in_user(request), request_id=request_id),
            status.HTTP_201_CREATED,
        )


class ReleaseListApi(APIView):
    @extend_schema(
        operation_id="release_list",
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(ReleaseOutputSerializer, "PaginatedReleaseList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """Releases of the requests the user may see, newest first."""
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.release_list(user=signed_in_user(request))
            .select_related("audit_run")
            .prefetch_related("audit_run__checks", "audit_run__risk_acceptances__approver"),
            serializer_class=ReleaseOutputSerializer,
            context={"user": signed_in_user(request)},
        )


class ReleaseDetailApi(APIView):
    @extend_schema(operation_id="release_get", responses={200: ReleaseDetailOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, release_id: int) -> Response:
        """One release with its download log; 404 when the user may not see its request."""
        return _detail(request, selectors.release_get(user=signed_in_user(request), release_id=release_id))


class ReleaseDownloadApi(FileAnswerApi):
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=DownloadKind.choices, default=DownloadKind.DATA)

        class Meta:
            ref_name = "ReleaseDownloadInput"

    @extend_schema(
        operation_id="release_download",
        parameters=[
            OpenApiParameter(
                "kind",
                OpenApiTypes.STR,
                enum=DownloadKind.values,
                description="data (the synthetic table, CSV or Parquet as requested) or datasheet (the signed PDF)",
            )
        ],
        responses={
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/vnd.apache.parquet"): OpenApiTypes.BINARY,
            (200, "application/pdf"): OpenApiTypes.BINARY,
            **WRITE_ERRORS,
        },
    )
    def get(self, request: Request, release_id: int) -> FileResponse:
        """Download a release's synthetic data or its datasheet; every download is logged.

        409 when the release was revoked or has expired (nothing is logged then).
        """
        serializer = self.InputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        kind = serializer.validated_data["kind"]
        path = services.release_download(actor=signed_in_user(request), release_id=release_id, kind=kind)
        if kind == DownloadKind.DATASHEET:
            return FileResponse(
                path.open("rb"),
                content_type="application/pdf",
                as_attachment=True,
                filename=f"release-{release_id}-datasheet.pdf",
            )
        stored_form = key_format(path.key)
        return FileResponse(
            path.open("rb"),
            content_type=CONTENT_TYPES[stored_form],
            as_attachment=True,
            filename=f"release-{release_id}-synthetic{SUFFIXES[stored_form]}",
        )


class ReleaseRevokeApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(help_text="why further downloads stop")

        class Meta:
            ref_name = "ReleaseRevokeInput"

    @extend_schema(
        operation_id="release_revoke",
        request=InputSerializer,
        responses={200: ReleaseDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, release_id: int) -> Response:
        """Revoke a release (steward or approver): every later download is refused."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        release = services.release_revoke(
            actor=signed_in_user(request), release_id=release_id, reason=serializer.validated_data["reason"]
        )
        return _detail(request, release)
