"""What every dashboard view shares: login, the web channel, errors as pages or form errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render

from core.auth import signed_in_user
from core.context import channel
from core.errors import ApplicationError, NotFoundError, PermissionDeniedError, ServiceUnavailableError
from governance.permissions import user_roles

PAGE_SIZE = 25


def dashboard_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Require a login, record actions as channel 'web', and answer 404/403/503 as pages.

    An object the user may not see answers 404 exactly like one that does not exist.
    """

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with channel("web"):
            try:
                return view(request, *args, **kwargs)
            except NotFoundError as error:
                return error_page(request, error, title="Not found")
            except PermissionDeniedError as error:
                return error_page(request, error, title="Not allowed")
            except ServiceUnavailableError as error:  # e.g. the artefact storage refused this host: named, 503
                return error_page(request, error, title="Service unavailable")

    return wrapper


def error_page(request: HttpRequest, error: ApplicationError, *, title: str) -> HttpResponse:
    return render(request, "dashboard/error.html", {"title": title, "message": error.message}, status=error.status)


def add_service_error(
    form: forms.Form, error: ApplicationError, *, fields: dict[str, str] | None = None, fallback: str | None = None
) -> None:
    """Show a service's error next to the field it names (``extra["field"]``), else on the form.

    An error that names several mistakes (``extra["errors"]``, see ``core.errors.errors_combined``)
    puts each next to its own field; a field the form already marked keeps its own error.
    """
    listed = error.extra.get("errors") or [{"field": error.extra.get("field"), "message": error.message}]
    for item in listed:
        named = field = item.get("field")
        if field is not None:
            field = (fields or {}).get(field, field)
        if field not in form.fields:
            field = fallback
        if field is not None and field in form.errors:
            continue
        form.add_error(field, _in_the_forms_words(form, field, named, item["message"]))


def _in_the_forms_words(form: forms.Form, field: str | None, named: object, message: str) -> str:
    """The message with the service's name for the field (``epsilon_cap must be…``) replaced by the
    label the person reads beside it (``ε cap (total privacy budget) must be…``)."""
    if field is None or field not in form.fields or not isinstance(named, str) or not message.startswith(f"{named} "):
        return message
    label = form.fields[field].label or field.replace("_", " ").capitalize()
    return f"{label}{message[len(named) :]}"


def paginate(request: HttpRequest, items: Sequence[Any] | QuerySet[Any], *, per_page: int = PAGE_SIZE) -> Page:
    return Paginator(items, per_page).get_page(request.GET.get("page"))


def query_without_page(request: HttpRequest) -> str:
    """The current filters as a query string, for pagination links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def roles_of(request: HttpRequest) -> set[str]:
    return user_roles(signed_in_user(request))
