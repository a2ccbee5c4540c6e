"""The hash-chained audit log: read it, and verify the chain."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import READ_ERRORS, filtered, list_parameters, paginated, paginated_response
from core.auth import signed_in_user
from governance import selectors, services
from governance.filters import AuditEventFilter


class AuditEventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_name")
    channel = serializers.CharField(help_text="api, web, cli, worker or system")
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    prev_hash = serializers.CharField()
    hash = serializers.CharField()

    class Meta:
        ref_name = "AuditEvent"


class AuditEventListApi(APIView):
    @extend_schema(
        operation_id="audit_event_list",
        parameters=list_parameters(AuditEventFilter),
        responses={200: paginated(AuditEventOutputSerializer, "PaginatedAuditEventList"), **READ_ERRORS},
    )
    def get(self, request: Request) -> Response:
        """The hash-chained audit log, oldest first (stewards and auditors)."""
        queryset = filtered(AuditEventFilter, request, selectors.audit_event_list(user=signed_in_user(request)))
        return paginated_response(
            request=request, view=self, queryset=queryset, serializer_class=AuditEventOutputSerializer
        )


class AuditLogVerifyApi(APIView):
    class OutputSerializer(serializers.Serializer):
        ok = serializers.BooleanField()
        events_checked = serializers.IntegerField()
        first_broken_id = serializers.IntegerField(allow_null=True)
        reason = serializers.CharField(help_text="empty when the chain is intact")

        class Meta:
            ref_name = "AuditLogVerification"

    @extend_schema(operation_id="audit_log_verify", responses={200: OutputSerializer, **READ_ERRORS})
    def get(self, request: Request) -> Response:
        """Recompute every hash in order and name the first event that does not match (stewards and auditors)."""
        # Verifying reads every event, so it is open to exactly those who may read the log.
        selectors.audit_event_list(user=signed_in_user(request))
        return Response(self.OutputSerializer(services.audit_log_verify()).data)
