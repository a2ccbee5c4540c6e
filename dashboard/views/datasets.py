from __future__ import annotations

import logging
import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.forms import HiddenInput
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from audits.recipient import reads_real_diagnostics
from core.auth import signed_in_user
from core.errors import ApplicationError, PermissionDeniedError, ValidationError
from core.schema import COLUMN_ROLES, proposed_type_columns
from dashboard.forms import ColumnDeclareForm, DatasetRegisterForm
from dashboard.profiles import dataset_profile
from dashboard.selectors import dataset_columns, dataset_lineage, dataset_rows, dataset_rows_unchecked
from dashboard.uploads import StagedUpload, upload_discard, upload_stage, upload_staged
from dashboard.views.common import add_service_error, dashboard_view, paginate
from governance import services
from governance.apis.datasets import saved_upload
from governance.models import Role
from governance.permissions import user_has_role
from governance.selectors import (
    budget_balance,
    budget_entry_list,
    dataset_get,
    dataset_latest_source,
    dataset_version_list,
)

logger = logging.getLogger(__name__)


@dashboard_view
def dataset_list(request: HttpRequest) -> HttpResponse:
    rows = dataset_rows(user=signed_in_user(request))
    sources = bool(settings.SYNTHGATE_SOURCE_DATABASES or settings.SYNTHGATE_SOURCE_PARQUET_ROOTS)
    return render(
        request,
        "dashboard/datasets/list.html",
        {"page": paginate(request, rows), "can_register": _is_steward(request), "can_register_source": sources},
    )


@dashboard_view
def dataset_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _detail_page(request, name, declare_form=None)


def _detail_page(request: HttpRequest, name: str, *, declare_form: ColumnDeclareForm | None) -> HttpResponse:
    user = signed_in_user(request)
    dataset = dataset_get(user=user, name=name)
    latest = dataset_latest_source(dataset=dataset)
    if declare_form is None and latest is not None and not latest.source_reference and _is_steward(request):
        declare_form = _declare_form(None, latest)  # data registered where it lives has a fixed schema
    columns = dataset_columns(user=user, version=latest)
    versions = list(dataset_version_list(dataset=dataset))
    return render(
        request,
        "dashboard/datasets/detail.html",
        {
            "dataset": dataset,
            "balance": budget_balance(dataset=dataset),
            "versions": versions,
            "rows_unchecked": dataset_rows_unchecked(user=user, versions=versions),
            "lineage": dataset_lineage(user=signed_in_user(request), dataset=dataset),
            "ledger": paginate(request, budget_entry_list(user=signed_in_user(request), dataset=dataset), per_page=50),
            "columns": columns,
            "has_proposed_types": any(column["proposed"] for column in columns),
            "latest": latest,
            "declare_form": declare_form,
            "profiles": dataset_profile(user=user, dataset=dataset, source=latest),
            "reads_real": reads_real_diagnostics(user),
        },
        status=400 if declare_form is not None and declare_form.errors else 200,
    )


@dashboard_view
def dataset_declare(request: HttpRequest, name: str) -> HttpResponse:
    """A steward declares one column's role or public domain (POST only)."""
    if request.method != "POST" or not _is_steward(request):
        raise PermissionDeniedError("Only a data steward can declare a dataset's schema.")
    latest = dataset_latest_source(dataset=dataset_get(user=signed_in_user(request), name=name))
    if latest is None:
        return redirect("dashboard:dataset-detail", name=name)
    form = _declare_form(request.POST, latest)
    if form.is_valid():
        try:
            result = services.dataset_schema_declare(
                actor=signed_in_user(request), name=name, column=form.cleaned_data["column"], changes=form.changes()
            )
        except ApplicationError as error:
            add_service_error(form, error, fields={"min": "minimum", "max": "maximum"})
        else:
            messages.success(request, f"Declared {form.cleaned_data['column']!r} on {result.version}.")
            for warning in result.warnings:
                messages.warning(request, warning)
            return redirect("dashboard:dataset-detail", name=name)
    return _detail_page(request, name, declare_form=form)


@dashboard_view
def dataset_schema(request: HttpRequest, name: str) -> HttpResponse:
    """The registration's second step: the stored schema (inferred or given), one declaration per column.

    A steward declares roles and public domains for any columns at once (all or none, one audit event
    per column, through ``dataset_schema_declare_columns``); columns left empty stay as they are, and
    an undeclared domain stays private (estimated with DP and paid for).
    """
    if not _is_steward(request):
        raise PermissionDeniedError("Only a data steward can declare a dataset's schema.")
    dataset = dataset_get(user=signed_in_user(request), name=name)
    latest = dataset_latest_source(dataset=dataset)
    action = request.POST.get("action") if request.method == "POST" else None
    if latest is not None and action in TYPE_ACTIONS:
        return _types_changed(request, dataset.name, action, back="dataset-detail" if latest.source_reference else None)
    if latest is None or latest.source_reference:  # nothing to declare yet, or a schema fixed at registration
        return redirect("dashboard:dataset-detail", name=name)
    data = request.POST if request.method == "POST" else None
    # read from the stored rows for the steward only; pre-filled, so submitting the form declares them
    suggestions = services.dataset_schema_suggestions(actor=signed_in_user(request), version=latest)
    forms = [
        (
            {**column, "suggested": _suggested_text(suggestions.get(column["name"], {}))},
            _column_form(data, latest, index, suggestions.get(column["name"], {})),
        )
        for index, column in enumerate(dataset_columns(user=signed_in_user(request), version=latest))
    ]
    error, status = None, 200
    if data is not None:
        status = 400
        valid = [form.is_valid() for _, form in forms]  # every column's form checked, not up to the first mistake
        # What each form could read (a form with a mistake still names its other fields' changes).
        declarations = {
            form.cleaned_data["column"]: form.changes() for _, form in forms if form.cleaned_data.get("column")
        }
        try:
            if not all(valid):
                # The service's own checks run as well, writing nothing: one send names every mistake.
                services.dataset_schema_declarations_check(
                    actor=signed_in_user(request), name=name, declarations=declarations
                )
            else:
                result = services.dataset_schema_declare_columns(
                    actor=signed_in_user(request), name=name, declarations=declarations
                )
                declared = ", ".join(column for column, changes in declarations.items() if changes)
                messages.success(request, f"Declared {declared} on {result.version}; each declaration is logged.")
                for warning in result.warnings:
                    messages.warning(request, warning)
                return redirect("dashboard:dataset-detail", name=name)
        except ApplicationError as failure:
            error, status = _schema_error(forms, failure), failure.status
    return render(
        request,
        "dashboard/datasets/schema.html",
        {
            "dataset": dataset,
            "latest": latest,
            "forms": forms,
            "error": error,
            "suggestions": bool(suggestions),
            "proposed_types": proposed_type_columns(latest.schema),
        },
        status=status,
    )


#: the schema step's one-step changes of every type: declare the proposed types as shown, or propose
#: the declared ones again (a version registered before type proposals existed: it cannot be
#: requested until they are declared again); each logged per column. The service by name: the
#: services load on first use (``core.lazy``), not when this module is imported.
TYPE_ACTIONS: dict[str, tuple[str, str]] = {
    "accept_types": (
        "dataset_schema_types_accept",
        "Declared the proposed types on {version} as shown; each declaration is logged.",
    ),
    "repropose_types": (
        "dataset_schema_types_repropose",
        "The types of {version} are proposed again; it cannot be requested until you declare them. "
        "Each column is logged.",
    ),
}


def _types_changed(request: HttpRequest, name: str, action: str, *, back: str | None = None) -> HttpResponse:
    """One of :data:`TYPE_ACTIONS`, back to the schema step, or for data registered where it lives to
    the dataset's page (``back``) where its buttons are."""
    page = f"dashboard:{back or 'dataset-schema'}"
    service, success = TYPE_ACTIONS[action]
    try:
        result = getattr(services, service)(actor=signed_in_user(request), name=name)
    except ApplicationError as error:
        messages.error(request, error.message)
        return redirect(page, name=name)
    messages.success(request, success.format(version=result.version))
    return redirect(page, name=name)


def _suggested_text(suggested: dict[str, Any]) -> str:
    parts = []
    if "resolution" in suggested:
        parts.append(f"whole {suggested['resolution']}s")
    if "calendar" in suggested:
        parts.append(f"{suggested['calendar']} only")
    if "step" in suggested:
        parts.append(f"step {suggested['step']}")
    return "; ".join(parts)


def _column_form(data: Any, version: Any, index: int, suggested: dict[str, Any]) -> ColumnDeclareForm:
    column = version.schema["columns"][index]["name"]
    initial = {"column": column, **{key: str(value) for key, value in suggested.items()}}
    form = _declare_form(data, version, prefix=f"c{index}", initial=initial)
    form.fields["column"].widget = HiddenInput()
    return form


def _schema_error(forms: list[tuple[dict[str, Any], ColumnDeclareForm]], error: ApplicationError) -> str | None:
    """Put each of the service's mistakes at the column and field it names (``extra["errors"]``, or
    the error itself); return the text of those that name no column, for the top of the page."""
    listed = error.extra.get("errors") or [{**error.extra, "message": error.message}]
    by_column = {column["name"]: form for column, form in forms}
    unplaced = []
    for item in listed:
        form = by_column.get(item.get("column"))
        if form is None:
            unplaced.append(item["message"])
            continue
        field, message = _in_the_columns_words(form, item["column"], item["message"])
        if field is not None and field not in form.errors:
            form.add_error(field, message)
        elif field is None:
            add_service_error(form, ValidationError(message, extra={"field": item.get("field")}), fields=BOUNDS)
    return " ".join(unplaced) or None


# The schema's names for a column's bounds, and the fields (always shown) that declare them.
BOUNDS = {"min": "minimum", "max": "maximum"}


def _in_the_columns_words(form: ColumnDeclareForm, column: str, message: str) -> tuple[str | None, str]:
    """A schema mistake about one of the column's bounds, shown in its box: the field it concerns and
    the message in the form's words ("Schema column 'age': min is greater than max." becomes "Public
    minimum is greater than public maximum." beside the minimum); (None, message) for any other."""
    prefix = f"Schema column {column!r}: "
    rest = message.removeprefix(prefix)
    key = next((key for key in BOUNDS if rest.startswith(f"{key} ")), None)
    if rest == message or key is None:
        return None, message
    labels = {name: str(form.fields[field].label) for name, field in BOUNDS.items()}
    words = re.sub(r"\b(min|max)\b", lambda found: labels[found.group(1)].lower(), rest[len(key) :])
    return BOUNDS[key], labels[key] + words


def _declare_form(data: Any, version: Any, **kwargs: Any) -> ColumnDeclareForm:
    return ColumnDeclareForm(
        data,
        columns=[column["name"] for column in version.schema["columns"]],
        roles=[role for role in COLUMN_ROLES if role != "identifier"],
        types={column["name"]: column["type"] for column in version.schema["columns"]},
        **kwargs,
    )


@dashboard_view
def dataset_register(request: HttpRequest) -> HttpResponse:
    if not _is_steward(request):
        raise PermissionDeniedError("Only a data steward can register datasets.")
    user = signed_in_user(request)
    staged = upload_staged(user_id=user.pk, token=request.POST.get("staged_file")) if request.method == "POST" else None
    form = DatasetRegisterForm(request.POST or None, request.FILES or None, staged=staged)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                result = _register(request, form.cleaned_data, staged)
            except ApplicationError as error:
                add_service_error(form, error, fallback="file")
                status = error.status
            else:
                upload_discard(user_id=user.pk, token=staged.token if staged else None)
                version = result.version
                note = "registered" if result.created else "was already stored (identical content)"
                messages.success(
                    request,
                    f"{version} {note}: {version.n_rows:,} rows × {version.n_columns} columns. "
                    "Step 2: review its schema and declare what is public.",
                )
                for warning in result.warnings:
                    messages.warning(request, warning)
                return redirect("dashboard:dataset-schema", name=version.dataset.name)
        else:
            status = 400
            dataset_field_mistakes(form)
        form.staged = _kept_upload(request, staged)
    return render(request, "dashboard/datasets/register.html", {"form": form}, status=status)


def dataset_field_mistakes(form: forms.Form) -> None:
    """Every mistake in a registration's dataset fields (name, caps, description, sensitivity, declared
    row count) the service checks, beside the form's own errors (all at once): for an upload and a
    table by reference."""
    try:
        services.dataset_register_fields_check(
            name=form.data.get("name", ""),
            epsilon_cap=form.data.get("epsilon_cap", ""),
            delta_cap=form.data.get("delta_cap", ""),
            description=form.data.get("description", ""),
            sensitivity=form.data.get("sensitivity", ""),
            declared_rows=form.data.get("declared_rows", "").strip() or None,
        )
    except ApplicationError as error:
        add_service_error(form, error)


def _kept_upload(request: HttpRequest, staged: StagedUpload | None) -> StagedUpload | None:
    """The table the form failed with, staged for the next attempt (a new file replaces the old)."""
    upload = request.FILES.get("file")
    if upload is None:
        return staged
    user_id = signed_in_user(request).pk
    try:
        upload_discard(user_id=user_id, token=staged.token if staged else None)
        return upload_stage(user_id=user_id, upload=upload)
    except OSError:  # the storage refuses this host (the form says why when it registers): not kept
        logger.warning("The upload of user %s could not be staged for the next attempt", user_id, exc_info=True)
        return staged


def _register(request: HttpRequest, data: dict, staged: StagedUpload | None) -> services.RegistrationResult:
    upload = data["file"]
    fields = {
        "actor": signed_in_user(request),
        "name": data["name"],
        "epsilon_cap": data["epsilon_cap"],
        "delta_cap": data["delta_cap"],
        "schema": data["schema"],
        "description": data["description"],
        "sensitivity": data["sensitivity"],
        "cap_override_reason": data["cap_override_reason"],
        "overlap_override_reason": data["overlap_override_reason"],
        "declared_rows": data["declared_rows"].strip() or None,
    }
    if upload is None and staged is not None:
        with staged.local() as path:
            return services.dataset_register(path=path, filename=staged.filename, **fields)
    with saved_upload(upload) as path:
        return services.dataset_register(path=path, filename=upload.name or "", **fields)


def _is_steward(request: HttpRequest) -> bool:
    return user_has_role(signed_in_user(request), Role.STEWARD)
