"""Exchange a username and password for an API token."""

from __future__ import annotations

from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import error_responses
from core.errors import ValidationError


class AuthTokenCreateApi(APIView):
    # No authentication (and so no CSRF check): the credentials are in the body.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)

        class Meta:
            ref_name = "AuthTokenInput"

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text='send as "Authorization: Token <token>"')

        class Meta:
            ref_name = "AuthToken"

    @extend_schema(
        operation_id="auth_token_create",
        request=InputSerializer,
        responses={200: OutputSerializer, **error_responses(400)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Exchange a username and password for an API token."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request=request._request, **serializer.validated_data)
        if user is None or not user.is_active:
            raise ValidationError("Unable to log in with the username and password given.", code="invalid_credentials")
        # The same token every time; DRF's own obtain_auth_token does exactly this.
        token, _ = Token.objects.get_or_create(user=user)
        return Response(self.OutputSerializer({"token": token.key}).data)
