"""The DRF hooks named in settings: the one error body (``{code, message, extra}``) and pagination.

Views share the rest through ``core.apis`` (the error schema, filtered and paginated lists).
This module imports no view machinery, so settings can name it without an import circle.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import ApplicationError

logger = logging.getLogger(__name__)


class DefaultPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request: Request) -> int | None:
        """``page_size`` is an integer from 1 to ``max_page_size``; anything else is a 400, not ignored."""
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not value.isdigit() or not 1 <= int(value) <= self.max_page_size:
            raise drf_exceptions.ValidationError(
                {self.page_size_query_param: [f"must be an integer from 1 to {self.max_page_size}, not {value!r}."]}
            )
        return int(value)


def error_body(code: str, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "extra": extra or {}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map every error to ``{code, message, extra}`` with the right status."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.extra), status=exc.status)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(error_body("invalid", _first_message(fields), _field_errors(fields)), status=400)
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body("request_too_large", str(exc)), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, SuspiciousOperation):
        # Django's request parsing refuses malformed or abusive input (too many fields or files).
        return Response(error_body("bad_request", str(exc) or "Malformed request."), status=400)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in API view", exc_info=exc)
        return Response(
            error_body("server_error", "Internal server error."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    if isinstance(exc, drf_exceptions.ValidationError):
        response.data = error_body("invalid", _first_message(exc.detail), _field_errors(exc.detail))
    else:
        detail = getattr(exc, "detail", str(exc))
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        response.data = error_body(str(code), str(detail))
    return response


def _field_errors(detail: Any) -> dict[str, Any]:
    """``extra`` for a shape error: the first field at fault (as services name it) and all of them."""
    if isinstance(detail, dict) and detail:
        return {"field": next(iter(detail)), "fields": detail}
    return {"fields": {"non_field_errors": detail if isinstance(detail, list) else [detail]}}


def _first_message(detail: Any) -> str:
    """A readable one-line summary of a DRF validation error tree."""
    if isinstance(detail, dict):
        for field, value in detail.items():
            return f"{field}: {_first_message(value)}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def view_name(view: Any) -> str:
    """The browsable API's page title: the view's ``title``, else its class name in words.

    ``RequestCollectionApi`` reads "Request collection", and the catch-all 404 view "Not found",
    rather than DRF's default "Request Collection Api".
    """
    title = getattr(view, "title", None)
    if title:
        return str(title)
    words = re.findall(r"[A-Z][a-z0-9]*", type(view).__name__.removesuffix("Api"))
    return " ".join(words).capitalize() or "Synthgate API"
