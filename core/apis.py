"""What every app's ``apis.py`` shares: who may read the API schema, the error schema for the
OpenAPI description, filtered and paginated lists (and their schema), and the 404 for unknown
paths under /api/."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.urls import Resolver404, resolve
from django_filters import ChoiceFilter, Filter, FilterSet, NumberFilter
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ShapeError
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import DefaultPagination


class ApiSchemaAccess(BasePermission):
    """The OpenAPI schema and docs: open when SYNTHGATE_API_SCHEMA_PUBLIC (development), else login."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(settings.SYNTHGATE_API_SCHEMA_PUBLIC or request.user and request.user.is_authenticated)


class FileAnswerApi(APIView):
    """A view that answers with a file: any Accept header is served (DRF's content negotiation is
    forced to its first renderer, JSON, which the errors use), and ``?format=`` may name the file's
    format rather than a DRF renderer."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[BaseRenderer, str]:
        return super().perform_content_negotiation(request, force=True)


class ErrorOutputSerializer(serializers.Serializer):
    """The one error body: every 4xx and 5xx answer has this shape."""

    code = serializers.CharField(help_text="stable machine-readable code, e.g. budget_exhausted")
    message = serializers.CharField(help_text="what went wrong and what to change")
    extra = serializers.DictField(help_text="data a client can act on: field, allowed_transitions, remaining, ...")

    class Meta:
        ref_name = "Error"


def error_responses(*statuses: int) -> dict[int, type[serializers.Serializer]]:
    """Document the error body for the given statuses (401 always applies to authenticated APIs)."""
    return dict.fromkeys(statuses, ErrorOutputSerializer)


READ_ERRORS = error_responses(400, 401, 403, 404)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409)


def paginated(serializer_class: type[serializers.Serializer], name: str) -> serializers.Serializer:
    """The schema of a page: ``{count, next, previous, results: [...]}``."""
    return inline_serializer(
        name=name,
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


class IntegerFilter(NumberFilter):
    """A whole-number filter (ids): ``1.5`` or ``abc`` is a 400 naming the parameter."""

    field_class = forms.IntegerField


PAGE_PARAMETERS = [
    OpenApiParameter("page", {"type": "integer", "minimum": 1}, description="page number, from 1"),
    OpenApiParameter(
        "page_size",
        {"type": "integer", "minimum": 1, "maximum": DefaultPagination.max_page_size},
        description=f"results per page, 1 to {DefaultPagination.max_page_size} (default {DefaultPagination.page_size})",
    ),
]


def list_parameters(filterset_class: type[FilterSet]) -> list[OpenApiParameter]:
    """Query parameters of a filtered, paginated list, typed as the filters check them."""
    return [
        *(_filter_parameter(name, item) for name, item in filterset_class.base_filters.items()),
        *PAGE_PARAMETERS,
    ]


def _filter_parameter(name: str, item: Filter) -> OpenApiParameter:
    description = str(item.label or name)
    if isinstance(item, ChoiceFilter):
        return OpenApiParameter(
            name, OpenApiTypes.STR, enum=[value for value, _ in item.extra["choices"]], description=description
        )
    if isinstance(item, NumberFilter):
        return OpenApiParameter(
            name, {"type": "integer", "minimum": item.extra.get("min_value", 1)}, description=description
        )
    return OpenApiParameter(name, {"type": "string", "minLength": 1}, description=description)


def filtered(filterset_class: type[FilterSet], request: Request, queryset: QuerySet) -> QuerySet:
    """Apply the query-string filters; an invalid filter value is a 400 naming the parameter."""
    filterset = filterset_class(request.query_params, queryset=queryset, request=request)
    if not filterset.is_valid():
        raise ShapeError(filterset.errors)
    return filterset.qs


def paginated_response(
    *,
    request: Request,
    view: APIView,
    queryset: QuerySet,
    serializer_class: type[serializers.Serializer],
    context: dict[str, Any] | None = None,
) -> Response:
    paginator = DefaultPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context or {}).data)


@extend_schema(exclude=True)
class ApiNotFoundApi(APIView):
    """Any other path under /api/: a 404 in the one error shape (not Django's HTML page)."""

    title = "Not found"
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        message = f"No API endpoint at {request.path}."
        if not request.path.endswith("/") and _resolves(request.path + "/"):
            message += f" Did you mean {request.path}/ (with the trailing slash)?"
        raise NotFound(message)


def _resolves(path: str) -> bool:
    try:
        match = resolve(path)
    except Resolver404:
        return False
    return getattr(match.func, "view_class", None) is not ApiNotFoundApi  # set by as_view()
