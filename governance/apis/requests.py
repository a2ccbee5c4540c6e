"""Data requests and their transitions (submit, approve, reject, withdraw)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import READ_ERRORS, WRITE_ERRORS, filtered, list_parameters, paginated, paginated_response
from core.auth import signed_in_user
from governance import selectors, services
from governance.apis.common import delta_field, epsilon_field
from governance.filters import DataRequestFilter
from governance.models import DataRequest, OutputFormat, RecipientKind


class ApprovalOutputSerializer(serializers.Serializer):
    approver = serializers.CharField(source="approver.username")
    decision = serializers.CharField(help_text="approve or reject")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Approval"


class RequestOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    state = serializers.CharField()
    allowed_transitions = serializers.SerializerMethodField(help_text="states this request may move to next")
    dataset = serializers.CharField(source="dataset.name")
    source_version = serializers.IntegerField(source="source_version.number")
    purpose = serializers.CharField(source="purpose.name")
    requester = serializers.CharField(source="requester.username")
    epsilon = epsilon_field()
    delta = delta_field()
    n_rows = serializers.IntegerField()
    generator = serializers.CharField()
    generator_params = serializers.JSONField()
    rebalance = serializers.JSONField(allow_null=True)
    seed = serializers.IntegerField(allow_null=True)
    output_format = serializers.CharField(help_text="the synthetic table's stored form: csv or parquet")
    recipient_kind = serializers.CharField()
    recipient = serializers.CharField()
    justification = serializers.CharField()
    decision_reason = serializers.CharField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "DataRequest"

    def get_allowed_transitions(self, request: DataRequest) -> list[str]:
        return services.allowed_transitions(request.state)


class RequestDetailOutputSerializer(RequestOutputSerializer):
    approvals_required = serializers.IntegerField(
        source="purpose.approvals_required", help_text="approvals the purpose needs before budget is reserved"
    )
    approvals = ApprovalOutputSerializer(many=True, source="approvals.all")

    class Meta:
        ref_name = "DataRequestDetail"


def _detail(request: DataRequest, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(RequestDetailOutputSerializer(request).data, status=status_code)


class RequestListApi(APIView):
    @extend_schema(
        operation_id="request_list",
        parameters=list_parameters(DataRequestFilter),
        responses={200: paginated(RequestOutputSerializer, "PaginatedDataRequestList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """Requests: a requester sees their own, stewards, approvers and auditors see all."""
        queryset = filtered(DataRequestFilter, request, selectors.request_list(user=signed_in_user(request)))
        return paginated_response(
            request=request, view=self, queryset=queryset, serializer_class=RequestOutputSerializer
        )


class RebalanceInputSerializer(serializers.Serializer):
    column = serializers.CharField(help_text="the label column")
    shares = serializers.DictField(child=serializers.FloatField(), help_text='target shares, e.g. {">50K": 0.5}')

    class Meta:
        ref_name = "RebalanceInput"


class RequestCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        dataset = serializers.CharField(max_length=100)
        purpose = serializers.CharField(max_length=100)
        epsilon = epsilon_field()
        delta = delta_field()
        n_rows = serializers.IntegerField(help_text="rows of synthetic data to produce")
        generator = serializers.CharField(max_length=50, default="mst")
        generator_params = serializers.DictField(required=False, default=dict)
        rebalance = RebalanceInputSerializer(required=False, allow_null=True, default=None)
        recipient_kind = serializers.ChoiceField(choices=RecipientKind.choices, default=RecipientKind.INTERNAL)
        recipient = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
        justification = serializers.CharField(required=False, allow_blank=True, default="")
        seed = serializers.IntegerField(
            required=False,
            allow_null=True,
            default=None,
            min_value=-(2**63),
            max_value=2**63 - 1,
            help_text="set only when a reproducible run is needed",
        )
        output_format = serializers.ChoiceField(
            choices=OutputFormat.choices,
            default=OutputFormat.CSV,
            help_text="the synthetic table's stored (and downloaded) form: csv (canonical CSV) or parquet",
        )
        draft = serializers.BooleanField(default=False, help_text="true: keep as a draft instead of submitting")

        class Meta:
            ref_name = "DataRequestCreateInput"

    @extend_schema(
        operation_id="request_create",
        request=InputSerializer,
        responses={201: RequestDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        """File a request (requester); it is submitted at once unless draft is true."""
        serializer = RequestCreateApi.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields: dict[str, Any] = dict(serializer.validated_data)
        created = services.access_request_create(
            actor=signed_in_user(request),
            dataset_name=fields.pop("dataset"),
            purpose_name=fields.pop("purpose"),
            submit=not fields.pop("draft"),
            **fields,
        )
        return _detail(created, status.HTTP_201_CREATED)


class RequestCollectionApi(RequestListApi, RequestCreateApi):
    """``/requests/``: GET lists (RequestListApi), POST files a request (RequestCreateApi)."""


class RequestDetailApi(APIView):
    @extend_schema(operation_id="request_get", responses={200: RequestDetailOutputSerializer, **READ_ERRORS})
    def get(self, request: Request, request_id: int) -> Response:
        """One request with its approvals; 404 when the user may not see it."""
        return _detail(selectors.request_get(user=signed_in_user(request), request_id=request_id))


class ReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")

    class Meta:
        ref_name = "ReasonInput"


class RequiredReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="why the request is rejected")

    class Meta:
        ref_name = "RequiredReasonInput"


def _transition(
    request: Request,
    service: Callable[..., DataRequest],
    request_id: int,
    input_serializer: type[serializers.Serializer] | None = None,
) -> Response:
    fields: dict[str, Any] = {}
    if input_serializer is not None:
        serializer = input_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
    return _detail(service(actor=signed_in_user(request), request_id=request_id, **fields))


class RequestSubmitApi(APIView):
    @extend_schema(
        operation_id="request_submit", request=None, responses={200: RequestDetailOutputSerializer, **WRITE_ERRORS}
    )
    def post(self, request: Request, request_id: int) -> Response:
        """Submit a draft (its requester)."""
        return _transition(request, services.access_request_submit, request_id)


class RequestApproveApi(APIView):
    @extend_schema(
        operation_id="request_approve",
        request=ReasonInputSerializer,
        responses={200: RequestDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, request_id: int) -> Response:
        """Record one approval by an approver other than the requester.

        The last approval the purpose requires reserves the budget.
        """
        return _transition(request, services.access_request_approve, request_id, ReasonInputSerializer)


class RequestRejectApi(APIView):
    @extend_schema(
        operation_id="request_reject",
        request=RequiredReasonInputSerializer,
        responses={200: RequestDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, request_id: int) -> Response:
        """Reject with a reason (an approver other than the requester); the request ends."""
        return _transition(request, services.access_request_reject, request_id, RequiredReasonInputSerializer)


class RequestWithdrawApi(APIView):
    @extend_schema(
        operation_id="request_withdraw",
        request=ReasonInputSerializer,
        responses={200: RequestDetailOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, request_id: int) -> Response:
        """Withdraw (its requester); an outstanding budget reservation is released."""
        return _transition(request, services.access_request_withdraw, request_id, ReasonInputSerializer)
