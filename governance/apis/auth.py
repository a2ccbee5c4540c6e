"""API tokens: exchange a username and password for one; list, rotate and revoke your own."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.apis import WRITE_ERRORS, error_responses
from core.auth import signed_in_user
from core.errors import TooManyAttemptsError, ValidationError
from governance import services
from governance.logins import login_lockout_message


class TokenOutputSerializer(serializers.Serializer):
    token_key = serializers.CharField(help_text="the token's public prefix: names it for rotation and revocation")
    created_at = serializers.DateTimeField(source="created")
    expires_at = serializers.DateTimeField(source="expiry", allow_null=True)

    class Meta:
        ref_name = "ApiToken"


class IssuedTokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text='send as "Authorization: Token <token>"; shown once, stored hashed')
    token_key = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)

    class Meta:
        ref_name = "AuthToken"


def _issued(token: AuthToken, secret: str) -> dict:
    return {"token": secret, "token_key": token.token_key, "expires_at": token.expiry}


class AuthTokenCreateApi(APIView):
    # No authentication (and so no CSRF check): the credentials are in the body.
    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=200)
        password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False, max_length=4096)

        class Meta:
            ref_name = "AuthTokenInput"

    @extend_schema(
        operation_id="auth_token_create",
        request=InputSerializer,
        responses={200: IssuedTokenOutputSerializer, **error_responses(400, 409, 429)},
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Exchange a username and password for a new, expiring API token (throttled: 429 when locked)."""
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request=request._request, **serializer.validated_data)
        if getattr(request._request, "axes_locked_out", False):
            message, seconds = login_lockout_message()
            raise TooManyAttemptsError(message, extra={"retry_after_seconds": seconds})
        if user is None or not user.is_active:
            raise ValidationError("Unable to log in with the username and password given.", code="invalid_credentials")
        token, secret = services.api_token_issue(user=user, actor=user)
        # As a dashboard login does: resets the failure count (django-axes) and sets last_login.
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        return Response(IssuedTokenOutputSerializer(_issued(token, secret)).data)


class AuthTokenListApi(APIView):
    @extend_schema(
        operation_id="auth_token_list",
        responses={200: TokenOutputSerializer(many=True), **error_responses(401)},
    )
    def get(self, request: Request) -> Response:
        """Your unexpired API tokens, newest first (prefixes only; secrets are never stored)."""
        tokens = services.api_token_list(actor=signed_in_user(request), user=signed_in_user(request))
        return Response(TokenOutputSerializer(tokens, many=True).data)


class AuthTokenRotateApi(APIView):
    @extend_schema(
        operation_id="auth_token_rotate",
        request=None,
        responses={200: IssuedTokenOutputSerializer, **WRITE_ERRORS},
    )
    def post(self, request: Request, token_key: str) -> Response:
        """Replace one of your tokens by a new one with a fresh expiry; the old one stops working."""
        token, secret = services.api_token_rotate(
            actor=signed_in_user(request), user=signed_in_user(request), token_key=token_key
        )
        return Response(IssuedTokenOutputSerializer(_issued(token, secret)).data)


class AuthTokenRevokeApi(APIView):
    @extend_schema(operation_id="auth_token_revoke", request=None, responses={204: None, **WRITE_ERRORS})
    def delete(self, request: Request, token_key: str) -> Response:
        """Revoke one of your tokens at once."""
        services.api_token_revoke(actor=signed_in_user(request), user=signed_in_user(request), token_key=token_key)
        return Response(status=status.HTTP_204_NO_CONTENT)
