"""The predicted audit of a request before it is filed (``POST /api/requests/outlook/``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import WRITE_ERRORS
from core.auth import signed_in_user
from governance import services
from governance.apis.common import delta_field, epsilon_field


class FidelityOutlookSerializer(serializers.Serializer):
    purpose_threshold = serializers.FloatField(allow_null=True)
    sampling_floor = serializers.FloatField(help_text="error a perfect generator would show at this size")
    predicted_noise = serializers.FloatField(allow_null=True, help_text="error the generator's DP noise adds")
    expected_clean = serializers.FloatField()
    calibrated_limit = serializers.FloatField(allow_null=True, help_text="the limit the audit will apply")
    tolerance = serializers.FloatField()
    max_relaxation = serializers.FloatField()
    predicted_value = serializers.FloatField()
    predicted_pass = serializers.BooleanField(allow_null=True)

    class Meta:
        ref_name = "FidelityOutlook"


class MembershipOutlookSerializer(serializers.Serializer):
    decidable = serializers.BooleanField(help_text="false: the audit could only end inconclusive")
    probability_control_caught = serializers.FloatField()
    members_scored = serializers.IntegerField(allow_null=True, help_text="null for requesters (private)")
    planted_copies = serializers.IntegerField(allow_null=True, help_text="null for requesters (private)")
    minimum_rows = serializers.IntegerField(allow_null=True, help_text="smallest size at which the audit can decide")
    explanation = serializers.CharField()

    class Meta:
        ref_name = "MembershipOutlook"


class BiasOutlookSerializer(serializers.Serializer):
    predicted_cell_noise = serializers.FloatField(
        allow_null=True, help_text="noise per cell of the (label, column) table, in training rows; null for requesters"
    )
    min_favourable_rows = serializers.IntegerField(
        help_text="favourable training rows the unprivileged group needs for disparate impact to be decidable"
    )

    class Meta:
        ref_name = "BiasOutlook"


class RequestOutlookApi(APIView):
    class InputSerializer(serializers.Serializer):
        dataset = serializers.CharField(max_length=100, min_length=1)
        purpose = serializers.CharField(max_length=100, min_length=1)
        epsilon = epsilon_field()
        delta = delta_field()
        n_rows = serializers.IntegerField(min_value=1, help_text="rows of synthetic data to produce")
        generator = serializers.CharField(max_length=50, default="mst")
        generator_params = serializers.DictField(required=False, default=dict)

        class Meta:
            ref_name = "RequestOutlookInput"

    class OutputSerializer(serializers.Serializer):
        dataset = serializers.CharField()
        purpose = serializers.CharField()
        generator = serializers.CharField()
        predicted_verdict = serializers.ChoiceField(
            choices=["pass", "fail", "inconclusive", "unknown"],
            help_text="unknown: the generator could not be previewed (prediction_error says why)",
        )
        n_rows = serializers.IntegerField()
        n_train = serializers.IntegerField(allow_null=True, help_text="null for requesters (private)")
        n_holdout = serializers.IntegerField(allow_null=True, help_text="null for requesters (private)")
        fidelity = serializers.DictField(child=FidelityOutlookSerializer(), help_text="per calibrated check")
        membership = MembershipOutlookSerializer()
        bias = serializers.DictField(child=BiasOutlookSerializer(), help_text="per protected column")
        warnings = serializers.ListField(child=serializers.CharField())
        assumptions = serializers.ListField(child=serializers.CharField())
        prediction_error = serializers.CharField(allow_blank=True)

        class Meta:
            ref_name = "RequestOutlook"

    @extend_schema(
        operation_id="request_outlook",
        request=InputSerializer,
        responses={200: OutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        """Predicted audit of a clean release for these fields (nothing is filed or spent)."""
        serializer = RequestOutlookApi.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields: dict[str, Any] = dict(serializer.validated_data)
        outlook = services.access_request_outlook(
            actor=signed_in_user(request),
            dataset_name=fields.pop("dataset"),
            purpose_name=fields.pop("purpose"),
            **fields,
        )
        return Response(RequestOutlookApi.OutputSerializer(outlook).data)
