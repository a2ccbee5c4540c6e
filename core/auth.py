"""The signed-in user of a request, typed: views hand services a ``User``, never an ``AnonymousUser``."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.request import Request


def signed_in_user(request: HttpRequest | Request) -> User:
    """The request's user, checked at run time: views behind a login or ``IsAuthenticated`` reach here signed in.

    A view that forgot its login guard answers 403 here instead of passing an anonymous user to a service.
    """
    user = request.user
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    return user
