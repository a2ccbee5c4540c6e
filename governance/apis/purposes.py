"""Purposes: the policy a request is judged against."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import PAGE_PARAMETERS, READ_ERRORS, WRITE_ERRORS, paginated, paginated_response
from core.auth import signed_in_user
from governance import selectors, services
from governance.apis.common import ExactDecimalField, epsilon_field
from governance.models import RecipientKind


class PurposeOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    max_epsilon = epsilon_field(help_text="largest ε one release may use")
    approvals_required = serializers.IntegerField()
    allowed_recipients = serializers.ListField(child=serializers.CharField())
    allow_non_private = serializers.BooleanField()
    holdout_fraction = ExactDecimalField(max_digits=4, decimal_places=3)
    audit_thresholds = serializers.JSONField()
    release_days = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Purpose"


class PurposeListApi(APIView):
    @extend_schema(
        operation_id="purpose_list",
        parameters=PAGE_PARAMETERS,
        responses={200: paginated(PurposeOutputSerializer, "PaginatedPurposeList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """Purposes and their policy; any role."""
        return paginated_response(
            request=request,
            view=self,
            queryset=selectors.purpose_list(user=signed_in_user(request)),
            serializer_class=PurposeOutputSerializer,
        )


class PurposeCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.SlugField(max_length=100)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        max_epsilon = epsilon_field()
        approvals_required = serializers.IntegerField(default=2, help_text="1 or 2")
        allowed_recipients = serializers.ListField(
            child=serializers.CharField(), required=False, help_text=f"a non-empty subset of {RecipientKind.values}"
        )
        audit_thresholds = serializers.DictField(required=False, help_text="omit for the default thresholds")
        allow_non_private = serializers.BooleanField(default=False)
        holdout_fraction = serializers.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0.2"))
        release_days = serializers.IntegerField(default=90, min_value=0, max_value=2**31 - 1)

        class Meta:
            ref_name = "PurposeCreateInput"

    @extend_schema(
        operation_id="purpose_create", request=InputSerializer, responses={201: PurposeOutputSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request) -> Response:
        """Define a purpose and its policy (steward); audit thresholds are validated against their schema."""
        serializer = PurposeCreateApi.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        purpose = services.purpose_create(actor=signed_in_user(request), **serializer.validated_data)
        return Response(PurposeOutputSerializer(purpose).data, status=status.HTTP_201_CREATED)


class PurposeCollectionApi(PurposeListApi, PurposeCreateApi):
    """``/purposes/``: GET lists (PurposeListApi), POST creates (PurposeCreateApi)."""


class PurposeDetailApi(APIView):
    @extend_schema(operation_id="purpose_get", responses={200: PurposeOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, name: str) -> Response:
        """One purpose and its policy."""
        return Response(PurposeOutputSerializer(selectors.purpose_get(user=signed_in_user(request), name=name)).data)
